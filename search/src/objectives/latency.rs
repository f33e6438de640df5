//! Latency objectives: a predictor (plus, for additive lookup-table predictors, a
//! precomputed per-layer table so the search's hot loop hashes plain layer structs
//! instead of formatting a key string for every layer of every candidate), or live
//! measurement on a device (`latency::profile::LiveMeter`: serialised per device,
//! journaled, and cached by architecture).

use ::latency::profile::LiveMeter;
use anyhow::{anyhow, Result};
use predictors::layer_sig::LayerSig;
use predictors::LatencyPredictor;
use rustc_hash::FxHashMap;
use spaces::ir::Network;
use spaces::{Genome, SearchSpace};
use std::sync::Arc;

/// Where a job's latencies come from.
#[derive(Clone)]
pub enum LatencySource {
    Predictor(Arc<dyn LatencyPredictor>),
    /// Every candidate timed on a device.
    Device(Arc<LiveMeter>),
}

impl From<Arc<dyn LatencyPredictor>> for LatencySource {
    fn from(p: Arc<dyn LatencyPredictor>) -> Self {
        LatencySource::Predictor(p)
    }
}

/// One latency objective of a job (one device / predictor).
pub struct LatencyObjective {
    /// Label used in the history's column names and the log (e.g. `pixel3`).
    pub label: String,
    source: Source,
}

enum Source {
    Predicted {
        predictor: Arc<dyn LatencyPredictor>,
        /// Per-layer latencies when the predictor was verified to be affine in its layers.
        table: Option<Table>,
    },
    Measured(Arc<LiveMeter>),
}

/// latency(net) = base_ms + Σ per_layer[layer].
struct Table {
    base_ms: f64,
    per_layer: FxHashMap<LayerSig, f64>,
}

/// Relative tolerance of the additivity check (sums of float means in a different order).
const ADDITIVE_TOL: f64 = 1e-9;

impl LatencyObjective {
    /// Wraps `predictor`; `lut` predictors are tabulated per layer (see [`tabulate`]).
    pub fn new(label: impl Into<String>, predictor: Arc<dyn LatencyPredictor>, space: &dyn SearchSpace) -> Self {
        let table = if predictor.family() == "lut" { tabulate(&predictor, space) } else { None };
        LatencyObjective { label: label.into(), source: Source::Predicted { predictor, table } }
    }

    pub fn from_source(label: impl Into<String>, source: LatencySource, space: &dyn SearchSpace) -> Self {
        match source {
            LatencySource::Predictor(p) => Self::new(label, p, space),
            LatencySource::Device(m) => LatencyObjective { label: label.into(), source: Source::Measured(m) },
        }
    }

    /// Whether calls are answered from the per-layer table.
    pub fn is_tabulated(&self) -> bool {
        matches!(self.source, Source::Predicted { table: Some(_), .. })
    }

    /// The device meter of a measured objective.
    pub fn meter(&self) -> Option<&LiveMeter> {
        match &self.source {
            Source::Measured(m) => Some(m),
            Source::Predicted { .. } => None,
        }
    }

    /// The predictor's family, or `measured`.
    pub fn family(&self) -> &str {
        match &self.source {
            Source::Predicted { predictor, .. } => predictor.family(),
            Source::Measured(_) => "measured",
        }
    }

    /// Latency of member `g` of `space`, whose network is `net`.
    pub fn latency_ms(&self, space: &dyn SearchSpace, g: &Genome, net: &Network) -> Result<f64> {
        match &self.source {
            Source::Predicted { predictor, table } => match table.as_ref().and_then(|t| t.sum(net)) {
                Some(ms) => Ok(ms),
                None => predict(&self.label, predictor, net),
            },
            Source::Measured(m) => m.measure(space, g).map_err(|e| anyhow!("latency `{}`: {e}", self.label)),
        }
    }

    /// The predictor's own answer, bypassing the table (whose sums can differ in the last
    /// bits): used where a value sits on the latency target, so that "feasible" always
    /// means feasible under the predictor itself.
    pub fn exact_ms(&self, space: &dyn SearchSpace, g: &Genome, net: &Network) -> Result<f64> {
        match &self.source {
            Source::Predicted { predictor, .. } => predict(&self.label, predictor, net),
            Source::Measured(_) => self.latency_ms(space, g, net),
        }
    }

    /// Latency of a member of `space`.
    pub fn genome_ms(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64> {
        self.latency_ms(space, g, &space.network(g))
    }
}

fn predict(label: &str, predictor: &Arc<dyn LatencyPredictor>, net: &Network) -> Result<f64> {
    predictor.predict_ms(net).map_err(|e| anyhow!("latency predictor `{label}`: {e}"))
}

/// Tabulates every layer the space can contain: base = prediction of the empty network (a
/// calibration offset), entry = prediction of the single-layer network minus base. The
/// table is kept only if base + Σ entries reproduces the predictor on the space's extremes
/// and on sampled members; otherwise every call goes to the predictor.
fn tabulate(predictor: &Arc<dyn LatencyPredictor>, space: &dyn SearchSpace) -> Option<Table> {
    let layers = space.layer_table(&space.resolutions());
    let input = layers.first()?.input;
    let base_ms = predictor.predict_ms(&Network { input, layers: Vec::new(), bn_eps: 1e-5 }).ok()?;
    let mut per_layer = FxHashMap::default();
    for l in layers {
        let single = Network { input: l.input, layers: vec![l.clone()], bn_eps: 1e-5 };
        // A layer the table cannot price stays out; candidates with it fall back to the predictor.
        if let Ok(ms) = predictor.predict_ms(&single) {
            per_layer.insert(LayerSig::of(&l), ms - base_ms);
        }
    }
    let table = Table { base_ms, per_layer };
    let (lo, hi) = space.extremes();
    let mut rng = crate::rng::generation_rng(0x1a7e, crate::rng::AUX_STREAM);
    let mut probes = vec![lo, hi];
    probes.extend((0..16).map(|_| space.sample(&mut rng)));
    for g in &probes {
        let net = space.network(g);
        let (Ok(direct), Some(summed)) = (predictor.predict_ms(&net), table.sum(&net)) else {
            continue;
        };
        if (direct - summed).abs() > ADDITIVE_TOL * direct.abs().max(1.0) {
            return None;
        }
    }
    Some(table)
}

impl Table {
    fn sum(&self, net: &Network) -> Option<f64> {
        let mut sum = self.base_ms;
        for l in net.layers.iter().filter(|l| l.is_timed()) {
            sum += self.per_layer.get(&LayerSig::of(l))?;
        }
        Some(sum)
    }
}
