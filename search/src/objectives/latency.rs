//! Latency objectives: a predictor plus, for additive (lookup-table) predictors, a
//! precomputed per-layer table so the search's hot loop hashes plain layer structs
//! instead of formatting a key string for every layer of every candidate.

use anyhow::{anyhow, Result};
use predictors::LatencyPredictor;
use rustc_hash::FxHashMap;
use spaces::ir::{Conv, Layer, Linear, MbConv, Network, Op, Shape};
use spaces::{Genome, SearchSpace};
use std::sync::Arc;

/// A layer's identity without its name: equal signatures have equal lookup keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum OpSig {
    Conv(Conv),
    MbConv(MbConv),
    Identity,
    GlobalAvgPool,
    Dropout,
    Linear(Linear),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct LayerSig {
    input: Shape,
    output: Shape,
    op: OpSig,
}

impl LayerSig {
    fn of(l: &Layer) -> LayerSig {
        let op = match l.op {
            Op::Conv(c) => OpSig::Conv(c),
            Op::MbConv(m) => OpSig::MbConv(m),
            Op::Identity => OpSig::Identity,
            Op::GlobalAvgPool => OpSig::GlobalAvgPool,
            Op::Dropout { .. } => OpSig::Dropout,
            Op::Linear(x) => OpSig::Linear(x),
        };
        LayerSig { input: l.input, output: l.output, op }
    }
}

/// One latency objective of a job (one device / predictor).
pub struct LatencyObjective {
    /// Label used in the history's column names and the log (e.g. `pixel3`).
    pub label: String,
    predictor: Arc<dyn LatencyPredictor>,
    /// Per-layer latencies when the predictor was verified to be affine in its layers.
    table: Option<Table>,
}

/// latency(net) = base_ms + Σ per_layer[layer].
struct Table {
    base_ms: f64,
    per_layer: FxHashMap<LayerSig, f64>,
}

/// Relative tolerance of the additivity check (sums of float means in a different order).
const ADDITIVE_TOL: f64 = 1e-9;

impl LatencyObjective {
    /// Wraps `predictor`. For `lut` predictors, tabulates every layer the space can
    /// contain: base = prediction of the empty network (a calibration offset), entry =
    /// prediction of the single-layer network minus base. The table is kept only if
    /// base + Σ entries reproduces the predictor on the space's extremes and on sampled
    /// members; otherwise every call goes to the predictor.
    pub fn new(label: impl Into<String>, predictor: Arc<dyn LatencyPredictor>, space: &dyn SearchSpace) -> Self {
        let mut obj = LatencyObjective { label: label.into(), predictor, table: None };
        if obj.predictor.family() == "lut" {
            obj.table = obj.tabulate(space);
        }
        obj
    }

    fn tabulate(&self, space: &dyn SearchSpace) -> Option<Table> {
        let layers = space.layer_table(&space.resolutions());
        let input = layers.first()?.input;
        let base_ms = self.predictor.predict_ms(&Network { input, layers: Vec::new(), bn_eps: 1e-5 }).ok()?;
        let mut per_layer = FxHashMap::default();
        for l in layers {
            let single = Network { input: l.input, layers: vec![l.clone()], bn_eps: 1e-5 };
            // A layer the table cannot price stays out; candidates with it fall back to the predictor.
            if let Ok(ms) = self.predictor.predict_ms(&single) {
                per_layer.insert(LayerSig::of(&l), ms - base_ms);
            }
        }
        let table = Table { base_ms, per_layer };
        let (lo, hi) = space.extremes();
        let mut rng = crate::rng::generation_rng(0x1a7e, crate::rng::AUX_STREAM);
        let mut probes = vec![lo, hi];
        probes.extend((0..16).map(|_| space.sample(&mut rng)));
        let candidate =
            LatencyObjective { label: String::new(), predictor: self.predictor.clone(), table: Some(table) };
        for g in &probes {
            let net = space.network(g);
            let (Ok(direct), Some(summed)) = (self.predictor.predict_ms(&net), candidate.table_sum(&net)) else {
                continue;
            };
            if (direct - summed).abs() > ADDITIVE_TOL * direct.abs().max(1.0) {
                return None;
            }
        }
        candidate.table
    }

    fn table_sum(&self, net: &Network) -> Option<f64> {
        let table = self.table.as_ref()?;
        let mut sum = table.base_ms;
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            sum += table.per_layer.get(&LayerSig::of(l))?;
        }
        Some(sum)
    }

    /// Whether calls are answered from the per-layer table.
    pub fn is_tabulated(&self) -> bool {
        self.table.is_some()
    }

    pub fn family(&self) -> &str {
        self.predictor.family()
    }

    pub fn latency_ms(&self, net: &Network) -> Result<f64> {
        if let Some(ms) = self.table_sum(net) {
            return Ok(ms);
        }
        self.predictor.predict_ms(net).map_err(|e| anyhow!("latency predictor `{}`: {e}", self.label))
    }

    /// The predictor's own answer, bypassing the table (whose sums can differ in the last
    /// bits): used where a value sits on the latency target, so that "feasible" always
    /// means feasible under the predictor itself.
    pub fn exact_ms(&self, net: &Network) -> Result<f64> {
        self.predictor.predict_ms(net).map_err(|e| anyhow!("latency predictor `{}`: {e}", self.label))
    }

    /// Latency of a member of `space`.
    pub fn genome_ms(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64> {
        self.latency_ms(&space.network(g))
    }
}
