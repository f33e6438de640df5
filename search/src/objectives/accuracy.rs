//! Accuracy objectives. A job names the source of its accuracy numbers in every output,
//! because a training-free proxy and a trained predictor are not comparable.

use super::ObjectiveError;
use rayon::prelude::*;
use spaces::ir::Network;
use spaces::{Genome, SearchSpace};

/// Where a job's accuracy numbers come from.
pub trait AccuracySource: Send + Sync {
    /// Short kind, written to history, best.json and the CLI: `predictor`, `supernet`, `capacity-proxy`.
    fn kind(&self) -> &str;
    /// One line on what exactly the numbers are.
    fn describe(&self) -> String;
    fn accuracy(&self, space: &dyn SearchSpace, genome: &Genome, net: &Network) -> Result<f64, ObjectiveError>;
    /// Accuracies of many members at once; override when a batch is cheaper (e.g. an MLP
    /// as one matrix product). Results must not depend on how the batch is split.
    fn accuracy_batch(
        &self,
        space: &dyn SearchSpace,
        items: &[(&Genome, &Network)],
    ) -> Result<Vec<f64>, ObjectiveError> {
        items.par_iter().map(|(g, n)| self.accuracy(space, g, n)).collect()
    }
    /// Accuracies from the genomes alone, for sources that read no network (a predictor on
    /// the gene encoding): the evaluator then builds none. `None`: this source needs networks.
    fn genome_batch(&self, _space: &dyn SearchSpace, _genomes: &[&Genome]) -> Option<Result<Vec<f64>, ObjectiveError>> {
        None
    }
}

/// Training-free "capacity" proxy used when a job is given no accuracy source.
///
/// score = (norm(ln MACs) + norm(ln params) + norm(depth)) / 3, where depth is the number of
/// layers that carry computation and norm(x) = clamp((x - x_lo) / (x_hi - x_lo), 0, 1) with
/// x_lo, x_hi taken from the space's smallest and largest members by MACs.
///
/// It is a proxy, not an accuracy: it only encodes "bigger and deeper networks of one
/// space tend to be more accurate", costs one pass over the IR, and lies in [0, 1]. Under a
/// latency constraint it steers the search towards the networks that use the latency budget
/// for the most computation. Use a trained predictor or a supernet for real accuracy numbers.
pub struct CapacityProxy {
    lo: [f64; 3],
    hi: [f64; 3],
}

fn features(net: &Network) -> [f64; 3] {
    [(net.macs().max(1) as f64).ln(), (net.params().max(1) as f64).ln(), net.compute_layers().count() as f64]
}

impl CapacityProxy {
    pub fn new(space: &dyn SearchSpace) -> Self {
        let (small, large) = space.extremes();
        CapacityProxy { lo: features(&space.network(&small)), hi: features(&space.network(&large)) }
    }

    pub fn score(&self, net: &Network) -> f64 {
        let f = features(net);
        let norm = |i: usize| {
            let span = self.hi[i] - self.lo[i];
            if span <= 0.0 {
                0.5
            } else {
                ((f[i] - self.lo[i]) / span).clamp(0.0, 1.0)
            }
        };
        (norm(0) + norm(1) + norm(2)) / 3.0
    }
}

impl AccuracySource for CapacityProxy {
    fn kind(&self) -> &str {
        "capacity-proxy"
    }
    fn describe(&self) -> String {
        "training-free capacity proxy in [0,1]: mean of min-max normalised ln(MACs), ln(params) and compute depth \
         over the space's extremes (NOT an accuracy)"
            .into()
    }
    fn accuracy(&self, _space: &dyn SearchSpace, _genome: &Genome, net: &Network) -> Result<f64, ObjectiveError> {
        Ok(self.score(net))
    }
}

/// A trained accuracy predictor (`predictors::AccuracyPredictor`, e.g. OFA's MLP on the gene one-hot).
pub struct PredictedAccuracy {
    predictor: std::sync::Arc<dyn predictors::AccuracyPredictor>,
    source: String,
}

impl PredictedAccuracy {
    pub fn new(predictor: std::sync::Arc<dyn predictors::AccuracyPredictor>, source: impl Into<String>) -> Self {
        PredictedAccuracy { predictor, source: source.into() }
    }
}

impl AccuracySource for PredictedAccuracy {
    fn kind(&self) -> &str {
        "predictor"
    }
    fn describe(&self) -> String {
        format!("accuracy predicted by the `{}` predictor {}", self.predictor.family(), self.source)
    }
    fn accuracy(&self, space: &dyn SearchSpace, genome: &Genome, _net: &Network) -> Result<f64, ObjectiveError> {
        Ok(self.predictor.predict(space, genome)?)
    }
    /// Chunks of the batch go to the predictor's own batch call in parallel; a predictor's
    /// batch entries equal its single predictions, so the split (and thread count) changes nothing.
    fn accuracy_batch(
        &self,
        space: &dyn SearchSpace,
        items: &[(&Genome, &Network)],
    ) -> Result<Vec<f64>, ObjectiveError> {
        let genomes: Vec<&Genome> = items.iter().map(|(g, _)| *g).collect();
        self.genome_batch(space, &genomes).expect("a predictor reads genomes")
    }
    fn genome_batch(&self, space: &dyn SearchSpace, genomes: &[&Genome]) -> Option<Result<Vec<f64>, ObjectiveError>> {
        // Equal shares for the threads (a generation's few dozen new members split 14 + 13,
        // not 8 + 8 + 8 + 3), at most MAX_CHUNK members each.
        let chunk = genomes.len().div_ceil(rayon::current_num_threads()).clamp(1, MAX_CHUNK);
        let chunks = genomes
            .par_chunks(chunk)
            .map(|chunk| self.predictor.predict_batch(space, chunk))
            .collect::<Result<Vec<Vec<f64>>, _>>();
        Some(chunks.map(|c| c.concat()).map_err(ObjectiveError::from))
    }
}

/// Most members per predictor batch call: beyond a few dozen the batch's activations no
/// longer stay in cache next to the weights (measured on OFA's 128-400-400-400-1 MLP).
const MAX_CHUNK: usize = 64;

/// The accuracy source a job's configuration names.
///
/// - `capacity-proxy`: [`CapacityProxy`].
/// - `predictor`: an accuracy predictor file of any family (`predictors::accuracy::load`: a trained
///   `accuracy-mlp`, or OFA's own predictor imported as `ofa-accuracy`).
/// - `supernet`: sub-networks of a trained weight-sharing supernet checkpoint
///   ([`super::supernet::SupernetAccuracy`]).
pub fn load(
    spec: &crate::config::AccuracySpec,
    space: &dyn SearchSpace,
) -> Result<std::sync::Arc<dyn AccuracySource>, ObjectiveError> {
    use crate::config::AccuracySpec;
    match spec {
        AccuracySpec::CapacityProxy => Ok(std::sync::Arc::new(CapacityProxy::new(space))),
        AccuracySpec::Predictor { path } => {
            let p = predictors::accuracy::load(std::path::Path::new(path))
                .map_err(|source| ObjectiveError::LoadAccuracyPredictor { path: path.clone(), source })?;
            Ok(std::sync::Arc::new(PredictedAccuracy::new(std::sync::Arc::from(p), path.clone())))
        }
        AccuracySpec::Supernet { path, eval } => Ok(std::sync::Arc::new(super::supernet::SupernetAccuracy::load(
            std::path::Path::new(path),
            eval.clone(),
            space,
        )?)),
    }
}
