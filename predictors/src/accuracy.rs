//! Accuracy predictors (OFA-style): an MLP on the one-hot gene encoding of a space
//! member plus its resolution, trained from (arch, accuracy) tables. Same file format
//! (family `accuracy-mlp`), same metrics.

use crate::document;
use crate::mlp::{Mlp, MlpConfig};
use crate::{AccuracyError, DocumentError, MlpError};
use serde::{Deserialize, Serialize};
use spaces::{Genome, SearchSpace};
use std::path::Path;

pub const FAMILY: &str = "accuracy-mlp";

pub trait AccuracyPredictor: Send + Sync {
    fn family(&self) -> &str;
    fn predict(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64, AccuracyError>;
    /// Predictions for many members, each equal to what [`AccuracyPredictor::predict`] gives
    /// it; override when a batch is cheaper than its members one by one.
    fn predict_batch(&self, space: &dyn SearchSpace, gs: &[&Genome]) -> Result<Vec<f64>, AccuracyError> {
        gs.iter().map(|g| self.predict(space, g)).collect()
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError>;
}

/// Loads any accuracy predictor file, dispatching on its `family`.
pub fn load(path: &Path) -> Result<Box<dyn AccuracyPredictor>, DocumentError> {
    let (family, _) = document::read_any(path)?;
    Ok(match family.as_str() {
        FAMILY => Box::new(MlpAccuracyPredictor::load(path)?),
        crate::ofa_accuracy::FAMILY => Box::new(crate::ofa_accuracy::OfaAccuracyPredictor::load(path)?),
        _ => return Err(DocumentError::NotAccuracy { path: path.into(), family }),
    })
}

/// One-hot of every gene (space.genes() order) followed by the standardised resolution.
pub fn one_hot(space: &dyn SearchSpace, g: &Genome, r_mean: f64, r_std: f64) -> Vec<f32> {
    let mut x = Vec::new();
    for (gene, &v) in space.genes().iter().zip(&g.0) {
        let start = x.len();
        x.resize(start + gene.cardinality(), 0.0);
        x[start + v as usize] = 1.0;
    }
    x.push(((space.resolution(g) as f64 - r_mean) / r_std) as f32);
    x
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct AccDoc {
    space: String,
    source: String,
    resolution_mean: f64,
    resolution_std: f64,
    y_mean: f64,
    y_std: f64,
    config: MlpConfig,
    weights: String,
}

pub struct MlpAccuracyPredictor {
    doc: AccDoc,
    mlp: Mlp,
}

impl MlpAccuracyPredictor {
    pub fn fit(
        source: &str,
        space: &dyn SearchSpace,
        archs: &[&Genome],
        accuracy: &[f64],
        cfg: &MlpConfig,
    ) -> Result<Self, MlpError> {
        let rs: Vec<f64> = archs.iter().map(|g| space.resolution(g) as f64).collect();
        let rm = rs.iter().sum::<f64>() / rs.len().max(1) as f64;
        let rsd = (rs.iter().map(|r| (r - rm).powi(2)).sum::<f64>() / rs.len().max(1) as f64).sqrt().max(1.0);
        let x: Vec<Vec<f32>> = archs.iter().map(|g| one_hot(space, g, rm, rsd)).collect();
        let mlp = Mlp::train(&x, accuracy, cfg)?;
        let doc = AccDoc {
            space: space.name().into(),
            source: source.into(),
            resolution_mean: rm,
            resolution_std: rsd,
            y_mean: mlp.y_mean,
            y_std: mlp.y_std,
            config: cfg.clone(),
            weights: String::new(),
        };
        Ok(MlpAccuracyPredictor { doc, mlp })
    }

    /// One-hot encodings of `gs`, after checking that they belong to the space trained on.
    fn encode(&self, space: &dyn SearchSpace, gs: &[&Genome]) -> Result<Vec<Vec<f32>>, AccuracyError> {
        if space.name() != self.doc.space {
            return Err(AccuracyError::TrainedOn { trained_on: self.doc.space.clone(), space: space.name().into() });
        }
        gs.iter()
            .map(|g| {
                let x = one_hot(space, g, self.doc.resolution_mean, self.doc.resolution_std);
                if x.len() != self.mlp.input_dim() {
                    return Err(AccuracyError::Encoding { found: x.len(), expected: self.mlp.input_dim() });
                }
                Ok(x)
            })
            .collect()
    }

    /// [`AccuracyPredictor::predict_batch`] computed by libtorch instead of the Rust forward:
    /// the reference that forward is tested against (equal up to float rounding).
    pub fn predict_batch_tch(&self, space: &dyn SearchSpace, gs: &[&Genome]) -> Result<Vec<f64>, AccuracyError> {
        let xs = self.encode(space, gs)?;
        Ok(self.mlp.forward_tch(&xs.iter().map(Vec::as_slice).collect::<Vec<_>>())?)
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        let doc: AccDoc = document::read(path, FAMILY)?;
        let weights = path.parent().unwrap_or(Path::new(".")).join(&doc.weights);
        let mlp = Mlp::load_weights(&weights, doc.y_mean, doc.y_std)?;
        Ok(MlpAccuracyPredictor { doc, mlp })
    }
}

impl AccuracyPredictor for MlpAccuracyPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn predict(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64, AccuracyError> {
        Ok(self.predict_batch(space, &[g])?[0])
    }
    fn predict_batch(&self, space: &dyn SearchSpace, gs: &[&Genome]) -> Result<Vec<f64>, AccuracyError> {
        let xs = self.encode(space, gs)?;
        Ok(self.mlp.forward_batch(&xs.iter().map(Vec::as_slice).collect::<Vec<_>>()))
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        let mut doc = self.doc.clone();
        doc.weights = self.mlp.save_beside(path)?;
        document::write(path, FAMILY, &doc)
    }
}
