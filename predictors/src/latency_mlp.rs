//! `mlp`: an end-to-end latency MLP ([`Mlp`]: a linear path plus a ReLU hidden path).
//!
//! Inputs: a multi-hot over the `(layer name, layer key)` tokens seen in training (for
//! layer-wise spaces the gene one-hot with inactive genes dropped: a skipped or depth-cut
//! layer is simply absent), the standardised resolution, and the network's physical totals
//! ([`features::physical`] summed over its timed layers: layer count, dense and depthwise
//! MACs, activation and weight bytes), standardised. It needs nothing but the network.
//!
//! The linear path is a ridge fit, not gradient descent: the resolution and physical totals
//! nearly unpenalised, the tokens penalised by a strength k-fold CV chooses on the training
//! networks (or left out of the linear path). From a few networks it is then the MACs/bytes
//! model, not noise fitted to a few hundred tokens (the token-only MLP ranked HW-NAS-Bench
//! at ρ 0.16 from 20 networks where counting MACs gives 0.95), and with many it is the
//! additive table. The hidden path (AdamW) then models what the linear path leaves.

use crate::embedding::{with_zeros, LayerEmbedding};
use crate::features::{self, PHYSICAL_NAMES};
use crate::mlp::{Mlp, MlpConfig};
use crate::{document, ridge, DocumentError, FitError, LatencyPredictor, PredictError};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, LayerId, Network};
use std::collections::BTreeMap;
use std::path::Path;

pub const FAMILY: &str = "mlp";
const PHYSICAL: usize = PHYSICAL_NAMES.len();
/// Token penalties the linear path's CV tries (ridge on counts, target in ms).
const TOKEN_RIDGES: [f64; 5] = [1e-2, 1e-1, 1.0, 1e1, 1e2];
/// Penalty on the standardised resolution and physical totals: negligible against the
/// residuals, but it keeps the system solvable with fewer networks than columns.
const PHYSICAL_RIDGE: f64 = 1e-3;
const CV_FOLDS: usize = 5;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct MlpDoc {
    source: String,
    encoding: String,
    /// Vocabulary of `name|key` tokens (input i ↔ tokens[i]; then the resolution, then the
    /// physical totals).
    tokens: Vec<String>,
    resolution_mean: f64,
    resolution_std: f64,
    /// Standardisation of the physical totals, in [`PHYSICAL_NAMES`] order (empty in files
    /// written before the MLP had physical inputs: those are read without them).
    #[serde(default)]
    physical_mean: Vec<f64>,
    #[serde(default)]
    physical_std: Vec<f64>,
    /// The spaces of the networks it was fitted on (empty: not recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spaces: Vec<String>,
    /// The token penalty CV chose for the linear path; `None`: tokens left out of it.
    #[serde(default)]
    token_ridge: Option<f64>,
    y_mean: f64,
    y_std: f64,
    config: MlpConfig,
    /// The safetensors file, relative to this document.
    weights: String,
}

pub struct MlpPredictor {
    doc: MlpDoc,
    index: BTreeMap<String, usize>,
    mlp: Mlp,
    /// What every network shares in the first layer's sum: the physical totals' means
    /// taken off (a layer's embedding adds its own quantities, unshifted).
    shared: Vec<f32>,
    /// Each layer's embedding ([`LayerEmbedding::embed`]) per layer name seen with it, so a
    /// prediction formats no keys (the search loop prices the same few hundred layers
    /// millions of times).
    seen: std::sync::RwLock<SeenLayers>,
}

fn token(l: &Layer) -> String {
    format!("{}|{}", l.name, l.key())
}

fn timed(net: &Network) -> impl Iterator<Item = &Layer> {
    net.layers.iter().filter(|l| l.is_timed())
}

type SeenLayers = rustc_hash::FxHashMap<LayerId, Vec<(String, Box<[f32]>)>>;

fn lookup<'a>(seen: &'a SeenLayers, l: &Layer) -> Option<&'a [f32]> {
    seen.get(&l.id())?.iter().find(|(n, _)| *n == l.name).map(|(_, v)| &v[..])
}

fn physical_totals(net: &Network) -> [f64; PHYSICAL] {
    let mut t = [0.0; PHYSICAL];
    for l in timed(net) {
        t.iter_mut().zip(features::physical(l)).for_each(|(a, v)| *a += v);
    }
    t
}

fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count().max(1) as f64;
    let m = v.clone().sum::<f64>() / n;
    let sd = (v.map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt();
    (m, sd)
}

impl MlpPredictor {
    fn inputs(&self) -> usize {
        self.doc.tokens.len() + 1 + self.doc.physical_mean.len()
    }

    /// The dense input vector: token counts, standardised resolution and physical totals.
    fn encode(&self, net: &Network) -> Vec<f32> {
        let t = self.doc.tokens.len();
        let mut x = vec![0f32; self.inputs()];
        for l in timed(net) {
            if let Some(&i) = self.index.get(&token(l)) {
                x[i] += 1.0;
            }
        }
        x[t] = ((net.resolution() as f64 - self.doc.resolution_mean) / self.doc.resolution_std) as f32;
        let totals = physical_totals(net);
        for (k, (m, sd)) in self.doc.physical_mean.iter().zip(&self.doc.physical_std).enumerate() {
            x[t + 1 + k] = ((totals[k] - m) / sd) as f32;
        }
        x
    }

    /// The physical totals' standardisation shift, in the first layer's sum.
    fn shared_part(doc: &MlpDoc, mlp: &Mlp) -> Vec<f32> {
        let mut acc = vec![0f32; mlp.first_width() + 1];
        let t = doc.tokens.len();
        for (k, (m, sd)) in doc.physical_mean.iter().zip(&doc.physical_std).enumerate() {
            mlp.add_input(t + 1 + k, -(m / sd) as f32, &mut acc);
        }
        acc
    }

    /// Adds the embeddings of `net`'s timed layers into `acc` (zeros), in layer order,
    /// computing those not seen before.
    fn sum_layers(&self, net: &Network, acc: &mut [f32]) {
        if self.try_sum(net, acc) {
            return;
        }
        self.enter(net);
        acc.fill(0.0);
        let complete = self.try_sum(net, acc);
        debug_assert!(complete, "every layer was just entered");
    }

    /// The sum of [`Self::sum_layers`] while every layer is known; false at the first one not.
    fn try_sum(&self, net: &Network, acc: &mut [f32]) -> bool {
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        for l in timed(net) {
            match lookup(&seen, l) {
                Some(v) => acc.iter_mut().zip(v).for_each(|(a, x)| *a += x),
                None => return false,
            }
        }
        true
    }

    /// Computes and keeps the embeddings of `net`'s layers not seen before.
    fn enter(&self, net: &Network) {
        let mut seen = self.seen.write().unwrap_or_else(|e| e.into_inner());
        for l in timed(net) {
            if lookup(&seen, l).is_none() {
                let mut v = vec![0f32; self.width()];
                self.embed(l, &mut v);
                seen.entry(l.id()).or_default().push((l.name.clone(), v.into()));
            }
        }
    }

    pub fn fit(source: &str, nets: &[&Network], latency_ms: &[f64], cfg: &MlpConfig) -> Result<Self, FitError> {
        let mut vocab = std::collections::BTreeSet::new();
        for n in nets {
            vocab.extend(timed(n).map(token));
        }
        let tokens: Vec<String> = vocab.into_iter().collect();
        let index = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        let (rm, rsd) = mean_std(nets.iter().map(|n| n.resolution() as f64));
        let totals: Vec<[f64; PHYSICAL]> = nets.iter().map(|n| physical_totals(n)).collect();
        let (physical_mean, physical_std): (Vec<f64>, Vec<f64>) = (0..PHYSICAL)
            .map(|k| {
                let (m, sd) = mean_std(totals.iter().map(|t| t[k]));
                // A constant total (every network has the same layer count) is input 0.
                (m, if sd > 1e-12 * m.abs().max(1.0) { sd } else { 1.0 })
            })
            .unzip();
        let mut p = MlpPredictor {
            doc: MlpDoc {
                source: source.into(),
                encoding: format!(
                    "multi-hot over (layer name, layer key) + standardised resolution + standardised network totals \
                     of {}",
                    PHYSICAL_NAMES.join(", ")
                ),
                tokens,
                resolution_mean: rm,
                resolution_std: rsd.max(1.0),
                physical_mean,
                physical_std,
                spaces: Vec::new(),
                token_ridge: None,
                y_mean: 0.0,
                y_std: 1.0,
                config: cfg.clone(),
                weights: String::new(),
            },
            index,
            shared: Vec::new(),
            seen: Default::default(),
            // Replaced below; encoding the training networks needs the vocabulary only.
            mlp: Mlp::from_layers(vec![(1, 1, vec![0.0], vec![0.0])])?,
        };
        let x: Vec<Vec<f32>> = nets.iter().map(|n| p.encode(n)).collect();
        let (linear, token_ridge) = linear_path(&x, latency_ms, p.doc.tokens.len(), cfg.seed)?;
        p.doc.token_ridge = token_ridge;
        p.mlp = Mlp::train_on_linear(&x, latency_ms, cfg, (&linear[..x[0].len()], linear[x[0].len()]))?;
        p.shared = Self::shared_part(&p.doc, &p.mlp);
        p.doc.y_mean = p.mlp.y_mean;
        p.doc.y_std = p.mlp.y_std;
        Ok(p)
    }

    /// Records the spaces the training networks came from (refused: members of any other).
    pub fn serving(mut self, spaces: Vec<String>) -> Self {
        self.doc.spaces = spaces;
        self
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        let doc: MlpDoc = document::read(path, FAMILY)?;
        if doc.physical_mean.len() != doc.physical_std.len()
            || !(doc.physical_mean.is_empty() || doc.physical_mean.len() == PHYSICAL)
        {
            return Err(DocumentError::Physical {
                path: path.into(),
                means: doc.physical_mean.len(),
                deviations: doc.physical_std.len(),
                expected: PHYSICAL,
            });
        }
        let weights = path.parent().unwrap_or(Path::new(".")).join(&doc.weights);
        let mlp = Mlp::load_weights(&weights, doc.y_mean, doc.y_std)?;
        let index = doc.tokens.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
        let shared = Self::shared_part(&doc, &mlp);
        let p = MlpPredictor { doc, index, mlp, shared, seen: Default::default() };
        if p.mlp.input_dim() != p.inputs() {
            return Err(DocumentError::Inputs { path: path.into(), weights: p.mlp.input_dim(), encoding: p.inputs() });
        }
        Ok(p)
    }
}

/// The linear path: ridge over `x`'s columns plus an intercept (last coefficient), the
/// first `tokens` columns penalised by the strength k-fold CV picks by squared error (or
/// dropped, the first option, kept unless a penalty does strictly better).
fn linear_path(x: &[Vec<f32>], y: &[f64], tokens: usize, seed: u64) -> Result<(Vec<f64>, Option<f64>), FitError> {
    let n = x.len();
    let d = x.first().map_or(0, Vec::len);
    let rows = |keep_tokens: bool| -> Vec<ridge::Row> {
        x.iter()
            .map(|xi| {
                let mut r: ridge::Row = xi
                    .iter()
                    .enumerate()
                    .filter(|(j, v)| **v != 0.0 && (keep_tokens || *j >= tokens))
                    .map(|(j, v)| (j, *v as f64))
                    .collect();
                r.push((d, 1.0));
                r
            })
            .collect()
    };
    let penalty = |ridge: Option<f64>| -> Vec<f64> {
        let mut p: Vec<f64> = (0..d).map(|j| if j < tokens { ridge.unwrap_or(1.0) } else { PHYSICAL_RIDGE }).collect();
        p.push(0.0);
        p
    };
    let with = rows(true);
    let without = rows(false);
    let options: Vec<Option<f64>> = std::iter::once(None).chain(TOKEN_RIDGES.map(Some)).collect();
    let mut chosen = None;
    let k = CV_FOLDS.min(n);
    if k >= 3 {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let mut best = f64::INFINITY;
        for &option in &options {
            let all = if option.is_some() { &with } else { &without };
            let mut sse = 0.0;
            for f in 0..k {
                let (test, train): (Vec<usize>, Vec<usize>) = order.iter().partition(|&&i| i % k == f);
                let tr: Vec<ridge::Row> = train.iter().map(|&i| all[i].clone()).collect();
                let ty: Vec<f64> = train.iter().map(|&i| y[i]).collect();
                let coef = ridge::fit(&tr, &ty, &penalty(option));
                sse += test
                    .iter()
                    .map(|&i| (y[i] - all[i].iter().map(|&(j, v)| coef[j] * v).sum::<f64>()).powi(2))
                    .sum::<f64>();
            }
            if sse < best * (1.0 - 1e-9) {
                best = sse;
                chosen = option;
            }
        }
    }
    let coef = ridge::fit(if chosen.is_some() { &with } else { &without }, y, &penalty(chosen));
    if coef.iter().any(|c| !c.is_finite()) {
        return Err(FitError::LinearPath);
    }
    Ok((coef, chosen))
}

/// The first layer's pre-activation (and the linear path) is linear in the token counts
/// and the physical totals, which are sums over layers: a layer's embedding is its token's
/// first-layer weights plus its physical quantities (divided by their deviations) times
/// theirs, and `finish` adds what no layer owns (the totals' means, the resolution) and runs
/// the rest of the network.
impl LayerEmbedding for MlpPredictor {
    fn width(&self) -> usize {
        self.mlp.first_width() + 1
    }
    fn embed(&self, l: &Layer, acc: &mut [f32]) {
        if let Some(&i) = self.index.get(&token(l)) {
            self.mlp.add_input(i, 1.0, acc);
        }
        let t = self.doc.tokens.len();
        let physical = features::physical(l);
        for (k, sd) in self.doc.physical_std.iter().enumerate() {
            self.mlp.add_input(t + 1 + k, (physical[k] / sd) as f32, acc);
        }
    }
    fn finish(&self, acc: &[f32], resolution: u32) -> f64 {
        with_zeros(acc.len(), |a| {
            a.iter_mut().zip(acc.iter().zip(&self.shared)).for_each(|(a, (x, s))| *a = x + s);
            let r = (resolution as f64 - self.doc.resolution_mean) / self.doc.resolution_std;
            self.mlp.add_input(self.doc.tokens.len(), r as f32, a);
            self.mlp.finish(a)
        })
    }
}

impl LatencyPredictor for MlpPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn spaces_served(&self) -> Option<Vec<String>> {
        (!self.doc.spaces.is_empty()).then(|| self.doc.spaces.clone())
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        Ok(with_zeros(self.width(), |acc| {
            self.sum_layers(net, acc);
            self.finish(acc, net.resolution())
        }))
    }
    fn layer_embedding(&self) -> Option<&dyn LayerEmbedding> {
        Some(self)
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        let mut doc = self.doc.clone();
        doc.weights = self.mlp.save_beside(path)?;
        document::write(path, FAMILY, &doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fbnet(n: usize, seed: u64) -> Vec<Network> {
        let space = spaces::space("fbnet-cifar100").unwrap();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        (0..n).map(|_| space.network(&space.sample(&mut rng))).collect()
    }

    fn mmacs(n: &Network) -> f64 {
        n.layers.iter().map(|l| l.macs() as f64).sum::<f64>() / 1e6
    }

    /// `predict_ms` (per-layer embeddings summed, then the rest of the network) agrees with
    /// the dense forward of the encoded input and with libtorch's, tokens training never saw
    /// included (half the networks are not in the training set); a second prediction (from
    /// the layer cache) repeats the first one's bits.
    #[test]
    fn per_layer_prediction_equals_the_dense_forward() {
        let nets = fbnet(40, 5);
        let train: Vec<&Network> = nets[..20].iter().collect();
        let y: Vec<f64> = train.iter().map(|n| 1.0 + mmacs(n) / 10.0).collect();
        let cfg = MlpConfig { epochs: 50, ..Default::default() };
        let p = MlpPredictor::fit("t", &train, &y, &cfg).unwrap();
        let xs: Vec<Vec<f32>> = nets.iter().map(|n| p.encode(n)).collect();
        let torch = p.mlp.forward_tch(&xs.iter().map(|x| &x[..]).collect::<Vec<_>>()).unwrap();
        for ((n, x), t) in nets.iter().zip(&xs).zip(torch) {
            let first = p.predict_ms(n).unwrap();
            let dense = p.mlp.forward(x);
            assert!((first - dense).abs() <= 1e-4 * dense.abs().max(1.0), "{first} vs dense {dense}");
            assert!((first - t).abs() <= 1e-4 * t.abs().max(1.0), "{first} vs libtorch {t}");
            assert_eq!(p.predict_ms(n).unwrap().to_bits(), first.to_bits());
        }
    }

    /// Latency linear in MACs, 10 training networks of a space with ~100 tokens: the
    /// physical inputs let the linear path find the rate, so unseen networks are priced
    /// within a few per cent (a token-only encoding cannot: it interpolates 10 points).
    #[test]
    fn ten_networks_extrapolate_through_the_physical_inputs() {
        let nets = fbnet(200, 9);
        let truth = |n: &Network| 2.0 + mmacs(n) / 5.0;
        let train: Vec<&Network> = nets[..10].iter().collect();
        let y: Vec<f64> = train.iter().map(|n| truth(n)).collect();
        let cfg = MlpConfig { epochs: 200, ..Default::default() };
        let p = MlpPredictor::fit("t", &train, &y, &cfg).unwrap();
        let worst = nets[10..].iter().map(|n| (p.predict_ms(n).unwrap() / truth(n) - 1.0).abs()).fold(0.0, f64::max);
        assert!(worst < 0.05, "worst relative error {worst}");
    }
}
