//! Latency objectives: a predictor (plus, for predictors additive per layer, their compiled
//! [`LayerTable`] so the search's hot loop hashes plain layer structs instead of formatting
//! a key string for every layer of every candidate), or live
//! measurement on a device (`latency::profile::LiveMeter`: serialised per device,
//! journaled, and cached by architecture).

use ::latency::profile::LiveMeter;
use anyhow::{anyhow, Result};
use predictors::additive::LayerTable;
use predictors::LatencyPredictor;
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
        /// The predictor compiled over the space's layers, when it is additive per layer.
        table: Option<LayerTable>,
    },
    Measured(Arc<LiveMeter>),
}

impl LatencyObjective {
    /// Wraps `predictor`; one that is additive per layer ([`LatencyPredictor::per_layer`]) is
    /// compiled over every layer the space can contain ([`LayerTable`]), whose sums equal the
    /// predictor's bit for bit.
    pub fn new(label: impl Into<String>, predictor: Arc<dyn LatencyPredictor>, space: &dyn SearchSpace) -> Self {
        let table =
            predictor.per_layer().and_then(|p| LayerTable::compile(p, &space.layer_table(&space.resolutions())).ok());
        LatencyObjective { label: label.into(), source: Source::Predicted { predictor, table } }
    }

    pub fn from_source(label: impl Into<String>, source: LatencySource, space: &dyn SearchSpace) -> Self {
        match source {
            LatencySource::Predictor(p) => Self::new(label, p, space),
            LatencySource::Device(m) => LatencyObjective { label: label.into(), source: Source::Measured(m) },
        }
    }

    /// Whether calls are answered from the compiled per-layer table.
    pub fn is_tabulated(&self) -> bool {
        self.table().is_some()
    }

    /// The compiled per-layer table of an additive predictor.
    pub fn table(&self) -> Option<&LayerTable> {
        match &self.source {
            Source::Predicted { table, .. } => table.as_ref(),
            Source::Measured(_) => None,
        }
    }

    /// The predictor of a predicted objective.
    pub fn predictor(&self) -> Option<&Arc<dyn LatencyPredictor>> {
        match &self.source {
            Source::Predicted { predictor, .. } => Some(predictor),
            Source::Measured(_) => None,
        }
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
            Source::Predicted { predictor, table } => match table.as_ref().and_then(|t| t.network_ms(net)) {
                Some(ms) => Ok(ms),
                None => predict(&self.label, predictor, net),
            },
            Source::Measured(m) => m.measure(space, g).map_err(|e| anyhow!("latency `{}`: {e}", self.label)),
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
