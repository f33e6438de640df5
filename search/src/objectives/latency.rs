//! Latency objectives: a predictor (plus, for predictors additive per layer, their compiled
//! [`LayerTable`] so the search's hot loop hashes plain layer structs instead of formatting
//! a key string for every layer of every candidate), or live
//! measurement on a device (`latency::profile::LiveMeter`: serialised per device,
//! journaled, and cached by architecture).

use super::ObjectiveError;
use ::latency::profile::LiveMeter;
use predictors::additive::LayerTable;
use predictors::gene_table::GeneTable;
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
        /// The predictor compiled over the space's layers at each resolution where it is
        /// additive per layer ([`LatencyPredictor::per_layer_at`]).
        tables: Vec<(u32, LayerTable)>,
        /// The same compiled per gene choice, for spaces with a [`spaces::GeneLayout`].
        genes: Option<GeneTable>,
    },
    Measured(Arc<LiveMeter>),
}

impl LatencyObjective {
    /// Wraps `predictor`. Where it is additive per layer, it is compiled over every layer the
    /// space can contain ([`LayerTable`], one per resolution), and for layer-wise spaces per
    /// gene choice ([`GeneTable`]); so is a predictor additive up to a final function (the
    /// latency MLP's per-layer embeddings). Each answers the predictor's own bits.
    pub fn new(label: impl Into<String>, predictor: Arc<dyn LatencyPredictor>, space: &dyn SearchSpace) -> Self {
        let tables: Vec<(u32, LayerTable)> = space
            .resolutions()
            .into_iter()
            .filter_map(|r| {
                let p = predictor.per_layer_at(r)?;
                LayerTable::compile(p, &space.layer_table_at(r)).ok().map(|t| (r, t))
            })
            .collect();
        let find = |r: u32| tables.iter().find(|(x, _)| *x == r).map(|(_, t)| t);
        let genes = space.gene_layout().and_then(|layout| {
            GeneTable::compile(&layout, find)
                // Not additive: its per-layer embedding (the latency MLP), if it has one; a
                // predictor with neither prices networks one by one.
                .or_else(|| GeneTable::compile_embedded(&layout, predictor.clone()))
        });
        LatencyObjective { label: label.into(), source: Source::Predicted { predictor, tables, genes } }
    }

    pub fn from_source(label: impl Into<String>, source: LatencySource, space: &dyn SearchSpace) -> Self {
        match source {
            LatencySource::Predictor(p) => Self::new(label, p, space),
            LatencySource::Device(m) => LatencyObjective { label: label.into(), source: Source::Measured(m) },
        }
    }

    /// Whether calls are answered from compiled per-layer tables.
    pub fn is_tabulated(&self) -> bool {
        matches!(&self.source, Source::Predicted { tables, .. } if !tables.is_empty())
    }

    /// Whether members are priced from their genes alone ([`GeneTable`]).
    pub fn is_gene_tabulated(&self) -> bool {
        matches!(self.source, Source::Predicted { genes: Some(_), .. })
    }

    /// Whether [`latency_ms`](Self::latency_ms) reads the network (a predictor that is not
    /// compiled per gene); otherwise [`genome_ms`](Self::genome_ms) builds none.
    pub fn needs_network(&self) -> bool {
        matches!(self.source, Source::Predicted { genes: None, .. })
    }

    /// The compiled per-layer table of an additive predictor at resolution `r`.
    pub fn table(&self, r: u32) -> Option<&LayerTable> {
        match &self.source {
            Source::Predicted { tables, .. } => tables.iter().find(|(x, _)| *x == r).map(|(_, t)| t),
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
    pub fn latency_ms(&self, space: &dyn SearchSpace, g: &Genome, net: &Network) -> Result<f64, ObjectiveError> {
        match &self.source {
            Source::Predicted { genes: Some(t), .. } => Ok(t.latency_ms(g)),
            Source::Predicted { predictor, .. } => match self.table(net.resolution()).and_then(|t| t.network_ms(net)) {
                Some(ms) => Ok(ms),
                None => predict(&self.label, predictor, net),
            },
            Source::Measured(m) => self.measure(m, space, g),
        }
    }

    /// Latency of a member of `space`; its network is built only if the objective needs it.
    pub fn genome_ms(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64, ObjectiveError> {
        match &self.source {
            Source::Predicted { genes: Some(t), .. } => Ok(t.latency_ms(g)),
            Source::Predicted { .. } => self.latency_ms(space, g, &space.network(g)),
            Source::Measured(m) => self.measure(m, space, g),
        }
    }

    fn measure(&self, m: &LiveMeter, space: &dyn SearchSpace, g: &Genome) -> Result<f64, ObjectiveError> {
        m.measure(space, g).map_err(|e| ObjectiveError::Measure { label: self.label.clone(), source: e.into() })
    }
}

fn predict(label: &str, predictor: &Arc<dyn LatencyPredictor>, net: &Network) -> Result<f64, ObjectiveError> {
    predictor.predict_ms(net).map_err(|source| ObjectiveError::Predict { label: label.into(), source })
}
