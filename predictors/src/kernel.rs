//! nn-Meter-style kernel predictors (`shared/reference/latency.md` §4): one random-forest
//! regressor per kernel kind on layer features, network latency = Σ predicted layer
//! latencies (+ the table's offset). Our kernels are IR layers (an MBConv block is one
//! fused unit), see [`crate::features`].
//!
//! The forests train on what can be observed per layer: measured single-layer rows (or a
//! table of them). From whole-network rows alone there are no per-layer targets, and a
//! forest trained on another fit's guesses only adds noise to them; the kernel family is
//! then the per-kind cost model fitted to the networks themselves
//! ([`crate::network_fit`]: per-kind rates on MACs, depthwise MACs, activation and weight
//! bytes, shrunk toward global rates) — the same per-kind kernels, fitted where the data are.
//!
//! Layers are priced once each and cached ([`LayerId`]), so predicting a network is a
//! few hash lookups, and the family is a [`PerLayer`] predictor search compiles.
//!
//! smartcore's forest is serialised with serde, so the trees live in the JSON file.

use crate::additive::{Calibration, PerLayer};
use crate::cost_model::CostModel;
use crate::features::{self, FEATURE_NAMES};
use crate::lut::LutPredictor;
use crate::{document, DocumentError, FitError, LatencyPredictor, PredictError};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use spaces::ir::{Layer, LayerId, Network};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

pub const FAMILY: &str = "kernel";
type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// Forests need a few samples to split; kinds with fewer (the one classifier, the one
/// pooling layer of a space) predict their mean.
const MIN_FOREST_SAMPLES: usize = 5;

#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "model", rename_all = "kebab-case")]
enum KindModel {
    Constant { ms: f64, samples: usize },
    Forest { samples: usize, forest: Forest },
}

#[derive(Serialize, Deserialize, Debug)]
pub struct KernelPredictor {
    source: String,
    /// The spaces of the networks it was fitted on (empty: not recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spaces: Vec<String>,
    /// Where the per-layer training targets came from.
    trained_on: String,
    /// Added to the sum (the lookup table's offset: shared per-network overhead).
    offset_ms: f64,
    features: Vec<String>,
    params: RandomForestRegressorParameters,
    /// Forests per kind (from per-layer targets); empty when `cost_model` prices the layers.
    models: BTreeMap<String, KindModel>,
    /// The per-kind cost model fitted to whole networks (no per-layer targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost_model: Option<CostModel>,
    /// Each distinct layer's price, computed once.
    #[serde(skip)]
    cache: RwLock<FxHashMap<LayerId, f64>>,
}

/// nn-Meter's conv forest uses 320 trees and 6 of 7 features per split; 14 features here.
pub fn default_params(seed: u64) -> RandomForestRegressorParameters {
    RandomForestRegressorParameters::default().with_n_trees(200).with_m(10).with_seed(seed)
}

impl KernelPredictor {
    /// Trains one forest per kind on `layers` with targets from `lut` (layers the table has no
    /// value for are left out). The table's calibration is folded in: targets are scaled, the
    /// offset kept.
    pub fn fit(
        lut: &LutPredictor,
        layers: &[&Layer],
        params: RandomForestRegressorParameters,
    ) -> Result<Self, FitError> {
        let cal = lut.calibration();
        let mut by_kind: BTreeMap<&str, (Vec<Vec<f64>>, Vec<f64>)> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for l in layers.iter().filter(|l| l.is_timed()) {
            if !seen.insert(l.key()) {
                continue;
            }
            let Ok(ms) = lut.layer_ms(l) else { continue };
            let e = by_kind.entry(features::LayerKind::of(l).name()).or_default();
            e.0.push(features::features(l).to_vec());
            e.1.push(cal.scale * ms);
        }
        if by_kind.is_empty() {
            return Err(FitError::NoKernelTargets);
        }
        let mut models = BTreeMap::new();
        for (kind, (x, y)) in by_kind {
            let n = y.len();
            let model = if n < MIN_FOREST_SAMPLES {
                KindModel::Constant { ms: y.iter().sum::<f64>() / n as f64, samples: n }
            } else {
                let x = DenseMatrix::from_2d_vec(&x)
                    .map_err(|source| FitError::Features { kind: kind.to_string(), source })?;
                let forest = Forest::fit(&x, &y, params.clone())
                    .map_err(|source| FitError::Forest { kind: kind.to_string(), source })?;
                KindModel::Forest { samples: n, forest }
            };
            models.insert(kind.to_string(), model);
        }
        let trained_on = match lut.fit_info() {
            Some(f) => format!("entries of a lookup table NNLS-fitted to {} networks", f.networks),
            None => "single-layer measurements".to_string(),
        };
        Ok(KernelPredictor {
            spaces: Vec::new(),
            source: lut_source(lut),
            trained_on,
            offset_ms: cal.offset_ms,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            params,
            models,
            cost_model: None,
            cache: RwLock::default(),
        })
    }

    /// The kernel family from whole-network rows: the per-kind cost model of `fit` (fitted
    /// to `networks` networks with no per-key level) and its offset.
    /// Records the spaces the training networks came from (refused: members of any other).
    pub fn serving(mut self, spaces: Vec<String>) -> Self {
        self.spaces = spaces;
        self
    }

    pub fn from_network_fit(source: impl Into<String>, fit: &crate::network_fit::AdditiveFit, networks: usize) -> Self {
        KernelPredictor {
            spaces: Vec::new(),
            source: source.into(),
            trained_on: format!("a per-kind cost model fitted to {networks} networks"),
            offset_ms: fit.offset_ms,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            params: RandomForestRegressorParameters::default(),
            models: BTreeMap::new(),
            cost_model: Some(fit.cost.clone()),
            cache: RwLock::default(),
        }
    }

    /// One layer's price, uncached.
    fn price(&self, l: &Layer) -> Result<f64, PredictError> {
        if let Some(c) = &self.cost_model {
            return Ok(c.layer_ms(l));
        }
        let kind = features::LayerKind::of(l).name();
        let model = self.models.get(kind).ok_or_else(|| PredictError::UnknownLayer {
            layer: l.name.clone(),
            why: format!("the kernel predictor has no model for `{kind}` layers"),
        })?;
        Ok(match model {
            KindModel::Constant { ms, .. } => *ms,
            KindModel::Forest { forest, .. } => {
                let failed = |source| PredictError::Forest { layer: l.name.clone(), source };
                let m = DenseMatrix::from_2d_vec(&vec![features::features(l).to_vec()]).map_err(failed)?;
                forest.predict(&m).map_err(failed)?[0]
            }
        })
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        let p: Self = document::read(path, FAMILY)?;
        if p.features != FEATURE_NAMES {
            return Err(DocumentError::Features {
                path: path.into(),
                found: p.features,
                expected: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            });
        }
        Ok(p)
    }
}

fn lut_source(lut: &LutPredictor) -> String {
    format!("{} ({} lookup-table entries)", lut.source(), lut.entries().len())
}

impl LatencyPredictor for KernelPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn spaces_served(&self) -> Option<Vec<String>> {
        (!self.spaces.is_empty()).then(|| self.spaces.clone())
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let mut sum = 0.0;
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            sum += PerLayer::layer_ms(self, l)?;
        }
        Ok(PerLayer::calibration(self).apply(sum))
    }
    fn per_layer(&self) -> Option<&dyn PerLayer> {
        Some(self)
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        document::write(path, FAMILY, self)
    }
}

impl PerLayer for KernelPredictor {
    fn layer_ms(&self, l: &Layer) -> Result<f64, PredictError> {
        let sig = l.id();
        // A poisoned cache still holds only finished prices.
        if let Some(&ms) = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(&sig) {
            return Ok(ms);
        }
        let ms = self.price(l)?;
        self.cache.write().unwrap_or_else(|e| e.into_inner()).insert(sig, ms);
        Ok(ms)
    }
    fn calibration(&self) -> Calibration {
        Calibration { scale: 1.0, offset_ms: self.offset_ms }
    }
}
