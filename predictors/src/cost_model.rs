//! A per-layer physical cost model: a layer's latency as a linear function of its
//! physical quantities ([`features::physical`]: a launch cost, dense and depthwise MACs,
//! activation and weight bytes), with global rates shared by every layer plus a
//! per-kind correction. It prices any layer, seen in training or not: it is the prior
//! lookup tables shrink toward and the model that prices their unseen keys, and it is
//! the kernel family when no single layer was ever measured.

use crate::features::{self, LayerKind};
use serde::{Deserialize, Serialize};
use spaces::ir::Layer;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CostModel {
    /// ms per million MACs (dense and depthwise alike), the flops baseline's rate.
    pub ms_per_mmac: f64,
    /// ms per MB moved (activations and weights alike).
    pub ms_per_mb: f64,
    /// Per-kind corrections on the physical features, in [`PHYSICAL_NAMES`] order.
    pub per_kind: BTreeMap<LayerKind, [f64; 5]>,
}

impl CostModel {
    /// The model's latency of one layer, in ms.
    pub fn layer_ms(&self, l: &Layer) -> f64 {
        let f = features::physical(l);
        let mut ms = self.ms_per_mmac * (f[1] + f[2]) + self.ms_per_mb * (f[3] + f[4]);
        if let Some(c) = self.per_kind.get(&LayerKind::of(l)) {
            ms += c.iter().zip(&f).map(|(a, b)| a * b).sum::<f64>();
        }
        ms
    }
}
