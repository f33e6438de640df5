//! Latency (and accuracy) predictors fitted from measurements.
//!
//! Every latency predictor answers for a concrete [`Network`] from the IR, so the
//! same predictor serves any space whose layers it knows.

use spaces::ir::Network;

/// Why a predictor could not answer.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    /// A lookup table has no entry for a layer and its fallback policy is to refuse.
    #[error("no lookup-table entry for layer `{layer}` (key {key})")]
    MissingKey { layer: String, key: String },
    #[error("{0}")]
    Other(String),
}

/// A latency predictor for whole networks, in milliseconds.
pub trait LatencyPredictor: Send + Sync {
    /// Family name: `lut`, `kernel`, `mlp`, `flops`, ...
    fn family(&self) -> &str;
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError>;
}
