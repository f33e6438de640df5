//! End-to-end MLP predictors: an architecture encoding in, latency (or accuracy) out.
//! Trained with tch (AdamW, full batch, standardised target, linear path then hidden path); the weights are saved
//! as safetensors next to the JSON document, and prediction runs the small network in
//! plain Rust (no libtorch call per query, and the predictor is `Sync`).
//!
//! The latency MLP encodes a [`Network`] as a multi-hot vector over `(layer name, layer
//! key)` tokens seen in training plus the normalised resolution. For layer-wise spaces this
//! is the gene one-hot with inactive genes dropped (a skipped or depth-cut layer is simply
//! absent), and it needs nothing but the network, as every latency predictor must.

use crate::layer_sig::LayerSig;
use crate::{document, LatencyPredictor, PredictError};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use spaces::ir::Network;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};

pub const FAMILY: &str = "mlp";

/// Training settings (recorded in the file).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MlpConfig {
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        // Small: with a few hundred architectures a wide net only memorises (OFA's accuracy
        // predictor, 3 × 400, was trained on 16k samples).
        MlpConfig { hidden: vec![64], epochs: 1000, lr: 1e-2, weight_decay: 1e-3, seed: 0 }
    }
}

/// A trained fully connected ReLU network plus a linear skip from input to output,
/// weights row-major `[out][in]`. The skip matters: on latency data, which are close to
/// additive over layers, a plain ReLU MLP trained on a few hundred architectures
/// interpolates wildly (≈55 % within ±10 % on HW-NAS-Bench with 200 samples), while the
/// linear path alone is exact. So training is two-stage: the linear path first, then the
/// hidden path (output initialised to zero) on what remains — it models interactions only.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>,
    /// `layers[i].2` transposed to `[in][out]`, the layout the forward uses: an input's
    /// contribution to a layer is then one contiguous row scaled by it (a one-hot input is a
    /// plain row sum, ReLU zeros are skipped), and the inner loop is an element-wise
    /// `out += v · row` that vectorises without reordering any sum.
    by_input: Vec<Vec<f32>>,
    skip: (Vec<f32>, f32),
    /// Target standardisation: prediction = y_mean + y_std · output.
    pub y_mean: f64,
    pub y_std: f64,
}

/// Input rows of one layer streamed per pass over a batch: ≈64 KiB of a 400-wide layer, so
/// the rows stay in cache while every member of the batch uses them.
const ROWS_PER_BLOCK: usize = 40;

impl Mlp {
    pub fn train(x: &[Vec<f32>], y: &[f64], cfg: &MlpConfig) -> Result<Mlp> {
        let n = x.len();
        if n < 2 || y.len() != n {
            bail!("an MLP needs at least 2 examples with targets, got {n} inputs and {} targets", y.len());
        }
        let d = x[0].len();
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let y_std = (y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64).sqrt().max(1e-12);
        tch::manual_seed(cfg.seed as i64);
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        let xs = Tensor::from_slice(&flat).reshape([n as i64, d as i64]);
        let ys_v: Vec<f32> = y.iter().map(|v| ((v - y_mean) / y_std) as f32).collect();
        let ys = Tensor::from_slice(&ys_v).reshape([n as i64, 1]);
        // Stage 1: the linear path alone.
        let vs_skip = nn::VarStore::new(Device::Cpu);
        let skip = nn::linear(vs_skip.root() / "skip", d as i64, 1, Default::default());
        let mut opt = nn::AdamW { wd: cfg.weight_decay, ..Default::default() }.build(&vs_skip, cfg.lr)?;
        for _ in 0..cfg.epochs {
            opt.backward_step(&skip.forward(&xs).mse_loss(&ys, tch::Reduction::Mean));
        }
        // Stage 2: the hidden path on what the linear path leaves; its output layer starts at
        // zero, so where the data are additive it stays (close to) zero.
        let base = tch::no_grad(|| skip.forward(&xs));
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mut seq = nn::seq();
        let mut dims = vec![d];
        dims.extend(&cfg.hidden);
        dims.push(1);
        for i in 0..dims.len() - 1 {
            let last = i + 2 == dims.len();
            let init = if last {
                nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true }
            } else {
                Default::default()
            };
            seq = seq.add(nn::linear(&root / format!("fc{i}"), dims[i] as i64, dims[i + 1] as i64, init));
            if !last {
                seq = seq.add_fn(|t| t.relu());
            }
        }
        let mut opt = nn::AdamW { wd: cfg.weight_decay, ..Default::default() }.build(&vs, cfg.lr)?;
        for _ in 0..cfg.epochs {
            let loss = (seq.forward(&xs) + &base).mse_loss(&ys, tch::Reduction::Mean);
            opt.backward_step(&loss);
        }
        let vars = vs.variables();
        let mut layers = Vec::new();
        for i in 0..dims.len() - 1 {
            let w = vars.get(&format!("fc{i}.weight")).context("trained weight")?;
            let b = vars.get(&format!("fc{i}.bias")).context("trained bias")?;
            layers.push((dims[i], dims[i + 1], to_vec(w)?, to_vec(b)?));
        }
        let skip = (to_vec(&skip.ws)?, to_vec(skip.bs.as_ref().context("skip bias")?)?[0]);
        Ok(Mlp::new(layers, skip, y_mean, y_std))
    }

    fn new(layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>, skip: (Vec<f32>, f32), y_mean: f64, y_std: f64) -> Mlp {
        let by_input = layers
            .iter()
            .map(|(din, dout, w, _)| (0..din * dout).map(|k| w[(k % dout) * din + k / dout]).collect())
            .collect();
        Mlp { layers, by_input, skip, y_mean, y_std }
    }

    /// A plain ReLU chain from given weights (`(in, out, weight [out][in], bias)` per layer),
    /// without skip path or target scaling: how a network trained elsewhere (OFA's accuracy
    /// predictor) runs on this forward. The zero skip adds exactly 0 to the output.
    pub fn from_layers(layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>) -> Result<Mlp> {
        let chained = layers.windows(2).all(|p| p[0].1 == p[1].0);
        let sized = layers.iter().all(|(din, dout, w, b)| w.len() == din * dout && b.len() == *dout);
        if layers.is_empty() || !chained || !sized || layers.last().unwrap().1 != 1 {
            bail!("not a chain of fully connected layers ending in one output");
        }
        let din = layers[0].0;
        Ok(Mlp::new(layers, (vec![0.0; din], 0.0), 0.0, 1.0))
    }

    /// Layer widths, input first: `[in, hidden…, 1]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.input_dim()];
        d.extend(self.layers.iter().map(|l| l.1));
        d
    }

    /// Prediction for one encoded input; identical, bit for bit, to its entry in [`Mlp::forward_batch`].
    pub fn forward(&self, x: &[f32]) -> f64 {
        self.forward_batch(&[x])[0]
    }

    /// Predictions for many encoded inputs. Each input's arithmetic is the same whatever
    /// the batch (sums run in input order), so results do not depend on how a caller splits
    /// its work; the batch only lets every block of weight rows be reused while in cache.
    pub fn forward_batch(&self, xs: &[&[f32]]) -> Vec<f64> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.forward_batch_avx2(xs) };
        }
        self.forward_batch_portable(xs)
    }

    /// The portable forward compiled for 8-wide vectors. Only element-wise multiplies and
    /// adds (no FMA), so its results are bit-identical to the portable build's.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_batch_avx2(&self, xs: &[&[f32]]) -> Vec<f64> {
        self.forward_batch_portable(xs)
    }

    #[inline(always)]
    fn forward_batch_portable(&self, xs: &[&[f32]]) -> Vec<f64> {
        let mut h: Vec<Vec<f32>> = xs.iter().map(|x| x.to_vec()).collect();
        for (li, ((din, _, _, b), wt)) in self.layers.iter().zip(&self.by_input).enumerate() {
            let dout = b.len();
            let mut next: Vec<Vec<f32>> = vec![b.clone(); h.len()];
            for start in (0..*din).step_by(ROWS_PER_BLOCK) {
                let end = (start + ROWS_PER_BLOCK).min(*din);
                for (hin, out) in h.iter().zip(next.iter_mut()) {
                    for (i, &v) in hin.iter().enumerate().take(end).skip(start) {
                        if v != 0.0 {
                            axpy(out, v, &wt[i * dout..(i + 1) * dout]);
                        }
                    }
                }
            }
            if li + 1 < self.layers.len() {
                next.iter_mut().flatten().for_each(|v| *v = v.max(0.0));
            }
            h = next;
        }
        xs.iter()
            .zip(h)
            .map(|(x, out)| {
                let mut linear = self.skip.1;
                for (a, &v) in self.skip.0.iter().zip(x.iter()) {
                    if v != 0.0 {
                        linear += a * v;
                    }
                }
                self.y_mean + self.y_std * (out[0] + linear) as f64
            })
            .collect()
    }

    /// Prediction for a sparse input: `(index, value)` pairs in increasing index order (zeros
    /// may be left out). Bit-identical to [`Mlp::forward`] of the dense vector: the same
    /// products added in the same order, without touching the zero entries.
    pub fn forward_sparse(&self, x: &[(usize, f32)]) -> f64 {
        let mut h: Vec<f32> = Vec::new();
        for (li, ((_, _, _, b), wt)) in self.layers.iter().zip(&self.by_input).enumerate() {
            let dout = b.len();
            let mut next = b.clone();
            if li == 0 {
                for &(i, v) in x.iter().filter(|e| e.1 != 0.0) {
                    axpy(&mut next, v, &wt[i * dout..(i + 1) * dout]);
                }
            } else {
                for (i, &v) in h.iter().enumerate() {
                    if v != 0.0 {
                        axpy(&mut next, v, &wt[i * dout..(i + 1) * dout]);
                    }
                }
            }
            if li + 1 < self.layers.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            h = next;
        }
        let mut linear = self.skip.1;
        for &(i, v) in x.iter().filter(|e| e.1 != 0.0) {
            linear += self.skip.0[i] * v;
        }
        self.y_mean + self.y_std * (h[0] + linear) as f64
    }

    /// The same network run by libtorch (the training path's layers and matrix products),
    /// for many inputs. Slow per query; kept as the reference the Rust forward is checked against.
    pub fn forward_tch(&self, xs: &[&[f32]]) -> Result<Vec<f64>> {
        let d = self.input_dim();
        if let Some(x) = xs.iter().find(|x| x.len() != d) {
            bail!("an input has {} values, the network takes {d}", x.len());
        }
        let flat: Vec<f32> = xs.iter().flat_map(|x| x.iter().copied()).collect();
        let x = Tensor::from_slice(&flat).reshape([xs.len() as i64, d as i64]);
        let tensor = |v: &[f32], rows: usize, cols: usize| Tensor::from_slice(v).reshape([rows as i64, cols as i64]);
        let mut h = x.shallow_clone();
        for (li, (din, dout, w, b)) in self.layers.iter().enumerate() {
            h = h.linear(&tensor(w, *dout, *din), Some(&Tensor::from_slice(b)));
            if li + 1 < self.layers.len() {
                h = h.relu();
            }
        }
        let skip = tensor(&self.skip.0, 1, d);
        let out = h + x.linear(&skip, Some(&Tensor::from_slice(&[self.skip.1])));
        Ok(to_vec(&out)?.into_iter().map(|v| self.y_mean + self.y_std * v as f64).collect())
    }

    /// Writes the weights (`fc{i}.weight` `[out, in]`, `fc{i}.bias`, `skip.weight` `[1, in]`,
    /// `skip.bias`) as safetensors.
    /// Writes the weights beside the JSON document `json` ([`weights_path`]) and returns the
    /// file name the document records.
    pub fn save_beside(&self, json: &Path) -> Result<String> {
        let weights = weights_path(json);
        self.save_weights(&weights)?;
        Ok(weights.file_name().context("weights file name")?.to_string_lossy().into_owned())
    }

    pub fn save_weights(&self, path: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, (din, dout, w, b))| {
                [
                    (format!("fc{i}.weight"), Tensor::from_slice(w).reshape([*dout as i64, *din as i64])),
                    (format!("fc{i}.bias"), Tensor::from_slice(b)),
                ]
            })
            .collect();
        named.push(("skip.weight".into(), Tensor::from_slice(&self.skip.0).reshape([1, self.skip.0.len() as i64])));
        named.push(("skip.bias".into(), Tensor::from_slice(&[self.skip.1])));
        Tensor::write_safetensors(&named, path).with_context(|| format!("writing {}", path.display()))
    }

    pub fn load_weights(path: &Path, y_mean: f64, y_std: f64) -> Result<Mlp> {
        let named: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
            .with_context(|| format!("reading {}", path.display()))?
            .into_iter()
            .collect();
        let mut layers = Vec::new();
        for i in 0.. {
            let Some(w) = named.get(&format!("fc{i}.weight")) else { break };
            let b = named.get(&format!("fc{i}.bias")).with_context(|| format!("{}: no fc{i}.bias", path.display()))?;
            let s = w.size();
            if s.len() != 2 || b.size() != [s[0]] {
                bail!("{}: fc{i} has weight shape {s:?} and bias shape {:?}", path.display(), b.size());
            }
            layers.push((s[1] as usize, s[0] as usize, to_vec(w)?, to_vec(b)?));
        }
        if layers.is_empty() || layers.windows(2).any(|p| p[0].1 != p[1].0) || layers.last().unwrap().1 != 1 {
            bail!("{}: not a chain of fully connected layers ending in one output", path.display());
        }
        let sw = named.get("skip.weight").with_context(|| format!("{}: no skip.weight", path.display()))?;
        let sb = named.get("skip.bias").with_context(|| format!("{}: no skip.bias", path.display()))?;
        let skip = (to_vec(sw)?, to_vec(sb)?.first().copied().context("empty skip.bias")?);
        if skip.0.len() != layers[0].0 {
            bail!("{}: skip.weight has {} inputs, fc0 {}", path.display(), skip.0.len(), layers[0].0);
        }
        Ok(Mlp::new(layers, skip, y_mean, y_std))
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].0
    }
}

/// `out += a · row`, element by element (no sum is reordered, so any vector width gives the same bits).
#[inline(always)]
fn axpy(out: &mut [f32], a: f32, row: &[f32]) {
    for (o, w) in out.iter_mut().zip(row) {
        *o += a * w;
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.detach().to_kind(Kind::Float).flatten(0, -1))?)
}

/// The weights file that goes with a predictor document at `json`.
pub fn weights_path(json: &Path) -> PathBuf {
    json.with_extension("safetensors")
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct MlpDoc {
    source: String,
    encoding: String,
    /// Vocabulary of `name|key` tokens (input i ↔ tokens[i]; the last input is the resolution).
    tokens: Vec<String>,
    resolution_mean: f64,
    resolution_std: f64,
    y_mean: f64,
    y_std: f64,
    config: MlpConfig,
    /// The safetensors file, relative to this document.
    weights: String,
}

/// Per layer signature: the layer names seen with it and their token's input index.
type TokenCache = rustc_hash::FxHashMap<LayerSig, Vec<(String, Option<usize>)>>;

pub struct MlpPredictor {
    doc: MlpDoc,
    index: BTreeMap<String, usize>,
    mlp: Mlp,
    /// Each (layer signature, name) seen: its token's input index, so a prediction formats
    /// no keys (the search loop prices the same few hundred layers millions of times).
    seen: std::sync::RwLock<TokenCache>,
}

fn token(l: &spaces::ir::Layer) -> String {
    format!("{}|{}", l.name, l.key())
}

impl MlpPredictor {
    /// The input index of `l`'s token, if training saw it.
    fn token_index(&self, l: &spaces::ir::Layer) -> Option<usize> {
        let sig = LayerSig::of(l);
        if let Ok(seen) = self.seen.read() {
            if let Some((_, i)) = seen.get(&sig).and_then(|v| v.iter().find(|(n, _)| *n == l.name)) {
                return *i;
            }
        }
        let i = self.index.get(&token(l)).copied();
        if let Ok(mut seen) = self.seen.write() {
            seen.entry(sig).or_default().push((l.name.clone(), i));
        }
        i
    }

    fn encode(&self, net: &Network) -> Vec<f32> {
        let mut x = vec![0f32; self.doc.tokens.len() + 1];
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            if let Some(i) = self.token_index(l) {
                x[i] += 1.0;
            }
        }
        x[self.doc.tokens.len()] = self.resolution_input(net);
        x
    }

    fn resolution_input(&self, net: &Network) -> f32 {
        ((net.resolution() as f64 - self.doc.resolution_mean) / self.doc.resolution_std) as f32
    }

    pub fn fit(source: &str, nets: &[&Network], latency_ms: &[f64], cfg: &MlpConfig) -> Result<Self> {
        let mut vocab = std::collections::BTreeSet::new();
        for n in nets {
            vocab.extend(n.layers.iter().filter(|l| l.is_timed()).map(token));
        }
        let tokens: Vec<String> = vocab.into_iter().collect();
        let index = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        let rs: Vec<f64> = nets.iter().map(|n| n.resolution() as f64).collect();
        let rm = rs.iter().sum::<f64>() / rs.len().max(1) as f64;
        let rsd = (rs.iter().map(|r| (r - rm).powi(2)).sum::<f64>() / rs.len().max(1) as f64).sqrt().max(1.0);
        let mut p = MlpPredictor {
            doc: MlpDoc {
                source: source.into(),
                encoding: "multi-hot over (layer name, layer key) + standardised resolution".into(),
                tokens,
                resolution_mean: rm,
                resolution_std: rsd,
                y_mean: 0.0,
                y_std: 1.0,
                config: cfg.clone(),
                weights: String::new(),
            },
            index,
            seen: Default::default(),
            mlp: Mlp::new(vec![], (vec![], 0.0), 0.0, 1.0),
        };
        let x: Vec<Vec<f32>> = nets.iter().map(|n| p.encode(n)).collect();
        p.mlp = Mlp::train(&x, latency_ms, cfg)?;
        p.doc.y_mean = p.mlp.y_mean;
        p.doc.y_std = p.mlp.y_std;
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let doc: MlpDoc = document::read(path, FAMILY)?;
        let weights = path.parent().unwrap_or(Path::new(".")).join(&doc.weights);
        let mlp = Mlp::load_weights(&weights, doc.y_mean, doc.y_std)?;
        if mlp.input_dim() != doc.tokens.len() + 1 {
            bail!(
                "{}: weights take {} inputs, the encoding has {}",
                path.display(),
                mlp.input_dim(),
                doc.tokens.len() + 1
            );
        }
        let index = doc.tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        Ok(MlpPredictor { doc, index, mlp, seen: Default::default() })
    }
}

impl LatencyPredictor for MlpPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        // The multi-hot has ~20 non-zeros among hundreds of tokens: run it sparse.
        let mut active: Vec<(usize, f32)> = Vec::with_capacity(net.layers.len() + 1);
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            if let Some(i) = self.token_index(l) {
                active.push((i, 1.0));
            }
        }
        active.sort_unstable_by_key(|e| e.0);
        active.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                kept.1 += 1.0;
            }
            same
        });
        active.push((self.doc.tokens.len(), self.resolution_input(net)));
        Ok(self.mlp.forward_sparse(&active))
    }
    fn save(&self, path: &Path) -> Result<()> {
        let mut doc = self.doc.clone();
        doc.weights = self.mlp.save_beside(path)?;
        document::write(path, FAMILY, &doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sparse forward of `predict_ms` gives the dense forward's bits, tokens training
    /// never saw included (half the networks are not in the training set).
    #[test]
    fn sparse_prediction_equals_the_dense_forward_bit_for_bit() {
        let space = spaces::space("fbnet-cifar100").unwrap();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
        let nets: Vec<Network> = (0..40).map(|_| space.network(&space.sample(&mut rng))).collect();
        let train: Vec<&Network> = nets[..20].iter().collect();
        let y: Vec<f64> =
            train.iter().map(|n| 1.0 + n.layers.iter().map(|l| l.macs() as f64).sum::<f64>() / 1e7).collect();
        let cfg = MlpConfig { epochs: 50, ..Default::default() };
        let p = MlpPredictor::fit("t", &train, &y, &cfg).unwrap();
        for n in &nets {
            let dense = p.mlp.forward(&p.encode(n));
            assert_eq!(p.predict_ms(n).unwrap().to_bits(), dense.to_bits());
        }
    }
}
