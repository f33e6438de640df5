//! Predictors that are additive per layer, and their compiled form.
//!
//! A [`PerLayer`] predictor prices a network as
//! `calibration.scale · Σ_{timed layers} layer_ms(l) + calibration.offset_ms`, summed in
//! layer order from 0. [`LayerTable`] holds `layer_ms` of a fixed set of layers (a space's
//! layer table) under [`LayerId`], so search and the differentiable searches read one
//! compiled table, calibration included, and [`LayerTable::network_ms`] returns the same
//! bits as the predictor's own `predict_ms` (same values, same summation order).

use crate::PredictError;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, LayerId, Network};

/// `latency = scale · Σ entries + offset_ms`; the offset carries inter-layer overhead
/// (and, in tables fitted to networks, everything all networks share).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub scale: f64,
    pub offset_ms: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration { scale: 1.0, offset_ms: 0.0 }
    }
}

impl Calibration {
    /// `scale · raw_sum_ms + offset_ms`: the one place the calibration is applied.
    #[inline]
    pub fn apply(&self, raw_sum_ms: f64) -> f64 {
        self.scale * raw_sum_ms + self.offset_ms
    }
}

/// latency(net) = calibration.scale · Σ_{timed layers} layer_ms(l) + calibration.offset_ms
pub trait PerLayer: Send + Sync {
    /// The raw (uncalibrated) cost of one layer, independent of the layer's name and neighbours.
    fn layer_ms(&self, l: &Layer) -> Result<f64, PredictError>;
    fn calibration(&self) -> Calibration;
}

/// `layer_ms` of a fixed set of layers, and the calibration: a [`PerLayer`] predictor compiled.
#[derive(Clone, Debug)]
pub struct LayerTable {
    calibration: Calibration,
    ms: FxHashMap<LayerId, f64>,
}

impl LayerTable {
    /// Prices every timed layer of `layers` once. Layers the predictor has no entry for
    /// ([`PredictError::MissingKey`]) stay out of the table: networks containing them get
    /// `None` from [`network_ms`](Self::network_ms), and the predictor itself names the layer.
    /// Any other error is returned.
    pub fn compile<'a>(
        p: &dyn PerLayer,
        layers: impl IntoIterator<Item = &'a Layer>,
    ) -> Result<LayerTable, PredictError> {
        let mut ms = FxHashMap::default();
        for l in layers.into_iter().filter(|l| l.is_timed()) {
            match p.layer_ms(l) {
                Ok(v) => {
                    ms.insert(l.id(), v);
                }
                Err(PredictError::MissingKey { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(LayerTable { calibration: p.calibration(), ms })
    }

    pub fn calibration(&self) -> Calibration {
        self.calibration
    }

    /// Distinct layers priced.
    pub fn len(&self) -> usize {
        self.ms.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ms.is_empty()
    }

    /// The raw cost of `l`, if the table has it.
    #[inline]
    pub fn get(&self, l: &Layer) -> Option<f64> {
        self.ms.get(&l.id()).copied()
    }

    /// The raw cost of `l`, or a [`PredictError::MissingKey`] naming it (for callers that
    /// need every layer, e.g. a differentiable search's per-layer table).
    pub fn require(&self, l: &Layer) -> Result<f64, PredictError> {
        self.get(l).ok_or_else(|| PredictError::MissingKey { layer: l.name.clone(), key: l.key() })
    }

    /// Exactly what the predictor's `predict_ms` computes (bit for bit), or `None` when a
    /// timed layer of `net` is not in the table.
    pub fn network_ms(&self, net: &Network) -> Option<f64> {
        let mut sum = 0.0;
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            sum += self.get(l)?;
        }
        Some(self.calibration.apply(sum))
    }
}

impl PerLayer for LayerTable {
    fn layer_ms(&self, l: &Layer) -> Result<f64, PredictError> {
        self.require(l)
    }
    fn calibration(&self) -> Calibration {
        self.calibration
    }
}
