//! Scoring a predictor on measured networks.

use crate::dataset::NetworkRow;
use crate::metrics::Metrics;
use crate::{LatencyPredictor, RowPredictError};

/// Predictions for `rows` (in order); the first failure is an error naming the row's architecture.
pub fn predict_rows(p: &dyn LatencyPredictor, rows: &[&NetworkRow]) -> Result<Vec<f64>, RowPredictError> {
    rows.iter()
        .map(|r| p.predict_ms(&r.network).map_err(|source| RowPredictError { arch_id: r.arch_id.clone(), source }))
        .collect()
}

/// Metrics of `p` on `rows`, with the predictions (for plots).
pub fn evaluate(p: &dyn LatencyPredictor, rows: &[&NetworkRow]) -> Result<(Metrics, Vec<f64>), RowPredictError> {
    let pred = predict_rows(p, rows)?;
    let measured: Vec<f64> = rows.iter().map(|r| r.value).collect();
    Ok((Metrics::compute(&pred, &measured), pred))
}
