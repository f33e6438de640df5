//! The baseline: latency linear in MACs (`macs`), or in MACs and memory traffic
//! (`macs+memory`, nn-Meter's "FLOPs+MAC" regression), least squares with intercept.
//! Linear in per-layer sums, so it is additive per layer too ([`PerLayer`]: each layer's MACs
//! and bytes at the fitted rates, the intercept as the offset): search compiles it like a
//! table, and `fit --from` can adapt it to another device.

use crate::additive::{Calibration, PerLayer};
use crate::{document, nnls, DocumentError, FitError, LatencyPredictor, PredictError};
use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, Network};
use std::path::Path;

pub const FAMILY: &str = "flops";

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Macs,
    #[serde(rename = "macs+memory")]
    MacsMemory,
}

impl Variant {
    pub fn parse(s: &str) -> Result<Self, FitError> {
        Ok(match s {
            "macs" => Variant::Macs,
            "macs+memory" => Variant::MacsMemory,
            _ => return Err(FitError::UnknownVariant(s.into())),
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlopsPredictor {
    pub variant: Variant,
    pub intercept_ms: f64,
    pub ms_per_mmac: f64,
    /// Zero for the `macs` variant.
    pub ms_per_mb: f64,
    /// The spaces of the networks it was fitted on (empty: not recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spaces: Vec<String>,
}

/// MACs/1e6 and memory traffic in MB summed over the timed layers.
fn totals(net: &Network) -> (f64, f64) {
    let timed = net.layers.iter().filter(|l| l.is_timed());
    timed.fold((0.0, 0.0), |(m, b), l| (m + l.macs() as f64 / 1e6, b + l.memory_bytes() as f64 / 1e6))
}

impl FlopsPredictor {
    /// Ordinary least squares (intercept free, slopes unconstrained-sign would let memory
    /// traffic act as a negative cost; they are kept ≥ 0).
    pub fn fit(variant: Variant, nets: &[&Network], latency_ms: &[f64]) -> Result<Self, FitError> {
        if nets.len() < 3 {
            return Err(FitError::FlopsNetworks(nets.len()));
        }
        let rows: Vec<Vec<(usize, f64)>> = nets
            .iter()
            .map(|n| {
                let (m, b) = totals(n);
                match variant {
                    Variant::Macs => vec![(0, 1.0), (1, m)],
                    Variant::MacsMemory => vec![(0, 1.0), (1, m), (2, b)],
                }
            })
            .collect();
        let p = if variant == Variant::Macs { 2 } else { 3 };
        let mut free = vec![false; p];
        free[0] = true;
        let mut x = nnls::nnls_rows(&rows, latency_ms, p, &free, 0.0);
        if x[1..].iter().all(|&r| r == 0.0) {
            // Every slope at its bound leaves a constant, which ranks nothing: keep the prior
            // that latency grows with work, through the origin in MACs (as `auto` does).
            let free = vec![false; p];
            let macs: Vec<Vec<(usize, f64)>> = rows.iter().map(|r| vec![r[1]]).collect();
            x = nnls::nnls_rows(&macs, latency_ms, p, &free, 0.0);
        }
        Ok(FlopsPredictor {
            variant,
            intercept_ms: x[0],
            ms_per_mmac: x[1],
            ms_per_mb: x.get(2).copied().unwrap_or(0.0),
            spaces: Vec::new(),
        })
    }

    pub fn load(path: &Path) -> Result<Self, DocumentError> {
        document::read(path, FAMILY)
    }
}

impl LatencyPredictor for FlopsPredictor {
    fn family(&self) -> &str {
        FAMILY
    }
    fn spaces_served(&self) -> Option<Vec<String>> {
        (!self.spaces.is_empty()).then(|| self.spaces.clone())
    }
    /// The per-layer sum, in the order [`crate::additive::LayerTable`] adds it (so a compiled
    /// table answers these bits).
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let mut sum = 0.0;
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            sum += self.layer_ms(l)?;
        }
        Ok(self.calibration().apply(sum))
    }
    fn save(&self, path: &Path) -> Result<(), DocumentError> {
        document::write(path, FAMILY, self)
    }
    fn per_layer(&self) -> Option<&dyn PerLayer> {
        Some(self)
    }
}

impl PerLayer for FlopsPredictor {
    fn layer_ms(&self, l: &Layer) -> Result<f64, PredictError> {
        let (m, b) = (l.macs() as f64 / 1e6, l.memory_bytes() as f64 / 1e6);
        Ok(self.ms_per_mmac * m + self.ms_per_mb * b)
    }
    fn calibration(&self) -> Calibration {
        Calibration { scale: 1.0, offset_ms: self.intercept_ms }
    }
}
