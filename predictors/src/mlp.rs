//! End-to-end MLP predictors: an architecture encoding in, latency (or accuracy) out.
//! Trained with tch (AdamW, full batch, standardised target, linear path then hidden path); the weights are saved
//! as safetensors next to the JSON document, and prediction runs the small network in
//! plain Rust (no libtorch call per query, and the predictor is `Sync`).
//!
//! The latency family built on it is [`crate::latency_mlp`].

use crate::{DocumentError, MlpError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Tensor};

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
    /// Both stages by AdamW: the linear path over every input, then the hidden path.
    pub fn train(x: &[Vec<f32>], y: &[f64], cfg: &MlpConfig) -> Result<Mlp, MlpError> {
        Self::train_stages(x, y, cfg, None)
    }

    /// The two stages with a linear path fitted elsewhere: `linear` = (weights, bias) in
    /// the target's own units (`y ≈ b + w·x`); only the hidden path is trained here.
    pub fn train_on_linear(x: &[Vec<f32>], y: &[f64], cfg: &MlpConfig, linear: (&[f64], f64)) -> Result<Mlp, MlpError> {
        Self::train_stages(x, y, cfg, Some(linear))
    }

    fn train_stages(
        x: &[Vec<f32>],
        y: &[f64],
        cfg: &MlpConfig,
        linear: Option<(&[f64], f64)>,
    ) -> Result<Mlp, MlpError> {
        let n = x.len();
        if n < 2 || y.len() != n {
            return Err(MlpError::Examples { inputs: n, targets: y.len() });
        }
        let d = x[0].len();
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let y_std = (y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64).sqrt().max(1e-12);
        tch::manual_seed(cfg.seed as i64);
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        let xs = Tensor::from_slice(&flat).reshape([n as i64, d as i64]);
        let ys_v: Vec<f32> = y.iter().map(|v| ((v - y_mean) / y_std) as f32).collect();
        let ys = Tensor::from_slice(&ys_v).reshape([n as i64, 1]);
        // Stage 1: the linear path alone (standardised target units).
        let skip: (Vec<f32>, f32) = match linear {
            Some((w, b)) => {
                if w.len() != d {
                    return Err(MlpError::LinearPath { weights: w.len(), inputs: d });
                }
                (w.iter().map(|v| (v / y_std) as f32).collect(), ((b - y_mean) / y_std) as f32)
            }
            None => {
                let vs_skip = nn::VarStore::new(Device::Cpu);
                let skip = nn::linear(vs_skip.root() / "skip", d as i64, 1, Default::default());
                let mut opt = nn::AdamW { wd: cfg.weight_decay, ..Default::default() }.build(&vs_skip, cfg.lr)?;
                for _ in 0..cfg.epochs {
                    opt.backward_step(&skip.forward(&xs).mse_loss(&ys, tch::Reduction::Mean));
                }
                let bias = skip.bs.as_ref().ok_or_else(|| MlpError::Untrained("skip bias".into()))?;
                (to_vec(&skip.ws)?, to_vec(bias)?[0])
            }
        };
        // Stage 2: the hidden path on what the linear path leaves; its output layer starts at
        // zero, so where the data are additive it stays (close to) zero.
        let base = xs.matmul(&Tensor::from_slice(&skip.0).reshape([d as i64, 1])) + skip.1 as f64;
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
            let var = |name: String| vars.get(&name).ok_or(MlpError::Untrained(name));
            let (w, b) = (var(format!("fc{i}.weight"))?, var(format!("fc{i}.bias"))?);
            layers.push((dims[i], dims[i + 1], to_vec(w)?, to_vec(b)?));
        }
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
    pub fn from_layers(layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>) -> Result<Mlp, MlpError> {
        let chained = layers.windows(2).all(|p| p[0].1 == p[1].0);
        let sized = layers.iter().all(|(din, dout, w, b)| w.len() == din * dout && b.len() == *dout);
        if layers.is_empty() || !chained || !sized || layers.last().unwrap().1 != 1 {
            return Err(MlpError::NotChain);
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
            let mut next: Vec<Vec<f32>> = vec![b.clone(); h.len()];
            let mut terms: Vec<(usize, f32)> = Vec::with_capacity(ROWS_PER_BLOCK);
            for start in (0..*din).step_by(ROWS_PER_BLOCK) {
                let end = (start + ROWS_PER_BLOCK).min(*din);
                for (hin, out) in h.iter().zip(next.iter_mut()) {
                    terms.clear();
                    terms.extend(
                        hin[start..end].iter().enumerate().filter(|e| *e.1 != 0.0).map(|(i, &v)| (start + i, v)),
                    );
                    accumulate(out, &terms, wt);
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

    /// Width of the first layer's pre-activation: up to there the network is linear in its
    /// input, so contributions of groups of inputs (a layer's, a gene choice's) can be summed
    /// separately with [`Mlp::add_input`] and finished once ([`Mlp::finish`]).
    pub fn first_width(&self) -> usize {
        self.layers[0].1
    }

    /// Adds `v` × input `i`'s first-layer weights to `acc[..first_width]` and `v` × its skip
    /// weight to `acc[first_width]` (`acc` holds `first_width + 1` values).
    #[inline]
    pub fn add_input(&self, i: usize, v: f32, acc: &mut [f32]) {
        let w = self.first_width();
        let row = &self.by_input[0][i * w..(i + 1) * w];
        acc[..w].iter_mut().zip(row).for_each(|(a, r)| *a += v * r);
        acc[w] += v * self.skip.0[i];
    }

    /// The prediction for an input whose contributions [`Mlp::add_input`] summed into `acc`
    /// (biases not included): the rest of the network after the first layer's sum.
    pub fn finish(&self, acc: &[f32]) -> f64 {
        let w = self.first_width();
        let b1 = &self.layers[0].3;
        let out = match &self.layers[..] {
            [_] => acc[0] + b1[0],
            // One hidden layer (the default) into one output: no buffers, the terms added in
            // index order as `accumulate` adds them.
            [_, (_, 1, _, b2)] => {
                let w2 = &self.by_input[1];
                let mut o = b2[0];
                for j in 0..w {
                    let h = (acc[j] + b1[j]).max(0.0);
                    if h != 0.0 {
                        o += h * w2[j];
                    }
                }
                o
            }
            _ => {
                let mut h: Vec<f32> = acc[..w].iter().zip(b1).map(|(a, b)| (a + b).max(0.0)).collect();
                let mut terms: Vec<(usize, f32)> = Vec::new();
                for (li, ((_, _, _, b), wt)) in self.layers.iter().zip(&self.by_input).enumerate().skip(1) {
                    terms.clear();
                    terms.extend(h.iter().enumerate().filter(|e| *e.1 != 0.0).map(|(i, &v)| (i, v)));
                    h.clear();
                    h.extend_from_slice(b);
                    accumulate(&mut h, &terms, wt);
                    if li + 1 < self.layers.len() {
                        h.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                }
                h[0]
            }
        };
        self.y_mean + self.y_std * (out + (acc[w] + self.skip.1)) as f64
    }

    /// The same network run by libtorch (the training path's layers and matrix products),
    /// for many inputs. Slow per query; kept as the reference the Rust forward is checked against.
    pub fn forward_tch(&self, xs: &[&[f32]]) -> Result<Vec<f64>, MlpError> {
        let d = self.input_dim();
        if let Some(x) = xs.iter().find(|x| x.len() != d) {
            return Err(MlpError::InputSize { found: x.len(), expected: d });
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
    pub fn save_beside(&self, json: &Path) -> Result<String, DocumentError> {
        let weights = weights_path(json);
        let name = weights.file_name().ok_or_else(|| DocumentError::NoFileName { path: json.into() })?;
        crate::document::create_parent(&weights)?;
        self.save_weights(&weights)?;
        Ok(name.to_string_lossy().into_owned())
    }

    pub fn save_weights(&self, path: &Path) -> Result<(), MlpError> {
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
        Tensor::write_safetensors(&named, path).map_err(|source| MlpError::WriteWeights { path: path.into(), source })
    }

    pub fn load_weights(path: &Path, y_mean: f64, y_std: f64) -> Result<Mlp, MlpError> {
        let named: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
            .map_err(|source| MlpError::ReadWeights { path: path.into(), source })?
            .into_iter()
            .collect();
        let get = |name: String| named.get(&name).ok_or(MlpError::NoTensor { path: path.into(), name });
        let mut layers = Vec::new();
        for i in 0.. {
            let Some(w) = named.get(&format!("fc{i}.weight")) else { break };
            let b = get(format!("fc{i}.bias"))?;
            let s = w.size();
            if s.len() != 2 || b.size() != [s[0]] {
                return Err(MlpError::LayerShape { path: path.into(), layer: i, weight: s, bias: b.size() });
            }
            layers.push((s[1] as usize, s[0] as usize, to_vec(w)?, to_vec(b)?));
        }
        if layers.is_empty() || layers.windows(2).any(|p| p[0].1 != p[1].0) || layers.last().unwrap().1 != 1 {
            return Err(MlpError::FileNotChain { path: path.into() });
        }
        let (sw, sb) = (get("skip.weight".into())?, get("skip.bias".into())?);
        let bias = to_vec(sb)?.first().copied().ok_or_else(|| MlpError::EmptySkipBias { path: path.into() })?;
        let skip = (to_vec(sw)?, bias);
        if skip.0.len() != layers[0].0 {
            return Err(MlpError::SkipInputs { path: path.into(), skip: skip.0.len(), first: layers[0].0 });
        }
        Ok(Mlp::new(layers, skip, y_mean, y_std))
    }

    pub fn input_dim(&self) -> usize {
        self.layers[0].0
    }
}

/// `out += v · row(i)` for each `(i, v)` of `terms` in turn, rows of `out.len()` in `wt`.
/// Element by element, the sums in `terms` order (no sum is reordered, so any vector width
/// gives the same bits); four rows per pass, so `out` is loaded and stored once per four
/// rows instead of once per row (the loop is load/store-bound otherwise).
#[inline(always)]
fn accumulate(out: &mut [f32], terms: &[(usize, f32)], wt: &[f32]) {
    let n = out.len();
    let row = |i: usize| &wt[i * n..(i + 1) * n];
    let mut quads = terms.chunks_exact(8);
    for q in &mut quads {
        let r: [&[f32]; 8] = std::array::from_fn(|j| row(q[j].0));
        let a: [f32; 8] = std::array::from_fn(|j| q[j].1);
        for k in 0..n {
            out[k] = (((((((out[k] + a[0] * r[0][k]) + a[1] * r[1][k]) + a[2] * r[2][k]) + a[3] * r[3][k])
                + a[4] * r[4][k])
                + a[5] * r[5][k])
                + a[6] * r[6][k])
                + a[7] * r[7][k];
        }
    }
    for &(i, a) in quads.remainder() {
        for (o, w) in out.iter_mut().zip(row(i)) {
            *o += a * w;
        }
    }
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>, MlpError> {
    Ok(Vec::<f32>::try_from(t.detach().to_kind(Kind::Float).flatten(0, -1))?)
}

/// The weights file that goes with a predictor document at `json`.
pub fn weights_path(json: &Path) -> PathBuf {
    json.with_extension("safetensors")
}
