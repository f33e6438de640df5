//! nn-Meter-style kernel predictors (`shared/reference/latency.md` §4): one random-forest
//! regressor per kernel kind on layer features, network latency = Σ predicted layer
//! latencies (+ the table's offset). Our kernels are IR layers (an MBConv block is one
//! fused unit), see [`crate::features`].
//!
//! Training targets are per-layer latencies of a lookup table: measured single-layer rows
//! when the dataset has them, otherwise the entries of a table NNLS-fitted to the training
//! networks (see [`crate::train::fit_lut`]). The forest then generalises to layer
//! configurations the table has no key for.
//!
//! smartcore's forest is serialised with serde, so the trees live in the JSON file.

use crate::features::{self, FEATURE_NAMES};
use crate::lut::LutPredictor;
use crate::{document, LatencyPredictor, PredictError};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use spaces::ir::{Layer, Network};
use std::collections::BTreeMap;
use std::path::Path;

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
    /// Where the per-layer training targets came from.
    trained_on: String,
    /// Added to the sum (the lookup table's offset: shared per-network overhead).
    offset_ms: f64,
    features: Vec<String>,
    params: RandomForestRegressorParameters,
    models: BTreeMap<String, KindModel>,
}

/// nn-Meter's conv forest uses 320 trees and 6 of 7 features per split; 14 features here.
pub fn default_params(seed: u64) -> RandomForestRegressorParameters {
    RandomForestRegressorParameters::default().with_n_trees(200).with_m(10).with_seed(seed)
}

impl KernelPredictor {
    /// Trains one forest per kind on `layers` with targets from `lut` (layers the table has no
    /// value for are left out). The table's calibration is folded in: targets are scaled, the
    /// offset kept.
    pub fn fit(lut: &LutPredictor, layers: &[&Layer], params: RandomForestRegressorParameters) -> Result<Self> {
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
            bail!("no layer has a lookup-table value to train the kernel forests on");
        }
        let mut models = BTreeMap::new();
        for (kind, (x, y)) in by_kind {
            let n = y.len();
            let model = if n < MIN_FOREST_SAMPLES {
                KindModel::Constant { ms: y.iter().sum::<f64>() / n as f64, samples: n }
            } else {
                let x = DenseMatrix::from_2d_vec(&x).map_err(|e| anyhow!("{kind} features: {e}"))?;
                let forest =
                    Forest::fit(&x, &y, params.clone()).map_err(|e| anyhow!("fitting the {kind} forest: {e}"))?;
                KindModel::Forest { samples: n, forest }
            };
            models.insert(kind.to_string(), model);
        }
        let trained_on = match lut.fit_info() {
            Some(f) => format!("entries of a lookup table NNLS-fitted to {} networks", f.networks),
            None => "single-layer measurements".to_string(),
        };
        Ok(KernelPredictor {
            source: lut_source(lut),
            trained_on,
            offset_ms: cal.offset_ms,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            params,
            models,
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let p: Self = document::read(path, FAMILY)?;
        if p.features != FEATURE_NAMES {
            bail!("{}: trained on features {:?}, this build computes {:?}", path.display(), p.features, FEATURE_NAMES);
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
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let mut rows: BTreeMap<&str, Vec<Vec<f64>>> = BTreeMap::new();
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            rows.entry(features::LayerKind::of(l).name()).or_default().push(features::features(l).to_vec());
        }
        let mut total = self.offset_ms;
        for (kind, x) in rows {
            let model = self
                .models
                .get(kind)
                .ok_or_else(|| PredictError::Other(format!("the kernel predictor has no model for `{kind}` layers")))?;
            total += match model {
                KindModel::Constant { ms, .. } => ms * x.len() as f64,
                KindModel::Forest { forest, .. } => {
                    let m = DenseMatrix::from_2d_vec(&x).map_err(|e| PredictError::Other(e.to_string()))?;
                    forest.predict(&m).map_err(|e| PredictError::Other(e.to_string()))?.iter().sum()
                }
            };
        }
        Ok(total)
    }
    fn save(&self, path: &Path) -> Result<()> {
        document::write(path, FAMILY, self)
    }
}
