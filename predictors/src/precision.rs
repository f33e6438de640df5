//! The precision a latency predictor prices: the one its measurements were deployed in.
//!
//! A fitted predictor file records it as a top-level `precision` field (`fp32`, `fp16`,
//! `int8`); a file written before hwnas recorded it, and every imported table, reads as
//! `fp32`. [`check_precision`] refuses a job of another precision.

use crate::additive::PerLayer;
use crate::{DocumentError, LatencyPredictor, PredictError, ServeError};
use latency::modelfile::Precision;
use serde_json::Value;
use spaces::ir::Network;
use std::path::Path;

/// The saved document's field.
pub const FIELD: &str = "precision";

/// A predictor with the precision its measurements were made in; answers as the predictor
/// it wraps, and saves the precision into that predictor's document.
pub struct WithPrecision {
    inner: Box<dyn LatencyPredictor>,
    precision: Precision,
}

/// `p`, recorded as pricing models deployed in `precision`.
pub fn with_precision(p: Box<dyn LatencyPredictor>, precision: Precision) -> Box<dyn LatencyPredictor> {
    Box::new(WithPrecision { inner: p, precision })
}

/// The `precision` of a saved document: absent (files of older builds, imports) is `fp32`.
pub fn of_document(path: &Path, doc: &Value) -> Result<Precision, DocumentError> {
    match doc.get(FIELD) {
        None | Some(Value::Null) => Ok(Precision::Fp32),
        Some(Value::String(s)) => {
            s.parse::<Precision>().map_err(|e| DocumentError::Precision { path: path.into(), why: e.to_string() })
        }
        Some(other) => Err(DocumentError::PrecisionType { path: path.into(), found: other.clone() }),
    }
}

impl LatencyPredictor for WithPrecision {
    fn family(&self) -> &str {
        self.inner.family()
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        self.inner.predict_ms(net)
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        self.inner.save(path)?;
        crate::document::attach(path, FIELD, Value::String(self.precision.to_string()))
    }
    fn per_layer(&self) -> Option<&dyn PerLayer> {
        self.inner.per_layer()
    }
    fn per_layer_at(&self, resolution: u32) -> Option<&dyn PerLayer> {
        self.inner.per_layer_at(resolution)
    }
    fn layer_embedding(&self) -> Option<&dyn crate::embedding::LayerEmbedding> {
        self.inner.layer_embedding()
    }
    fn resolutions_covered(&self, space: &str) -> Option<Vec<u32>> {
        self.inner.resolutions_covered(space)
    }
    fn spaces_served(&self) -> Option<Vec<String>> {
        self.inner.spaces_served()
    }
    fn precision(&self) -> Precision {
        self.precision
    }
}

/// Refuses to price models deployed in `job` with a predictor fitted on measurements of
/// another precision (int8 kernels are not fp32 kernels at a scale: their ranking differs
/// by layer kind). `allow`: say so and go on (the caller reports it).
pub fn check_precision(p: &dyn LatencyPredictor, job: Precision) -> Result<(), ServeError> {
    let fitted = p.precision();
    if fitted != job {
        return Err(ServeError::Precision { family: p.family().to_string(), fitted, job });
    }
    Ok(())
}
