//! Candidate evaluation: latency first (cheap, decides feasibility), accuracy only for
//! candidates a strategy keeps. Batches run in parallel with rayon; results come back in
//! proposal order, so a run is identical for any number of threads.

use crate::objectives::{AccuracySource, LatencyObjective, ObjectiveError};
use rand::rngs::StdRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use spaces::ir::Network;
use spaces::{Genome, SearchSpace};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One fully evaluated architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub genome: Genome,
    /// One latency per objective; [0] is the constrained one.
    pub latency_ms: Vec<f64>,
    pub accuracy: f64,
    /// latency_ms[0] <= the job's target.
    pub feasible: bool,
    /// The strategy's scalar objective (accuracy of feasible members, or the MnasNet reward).
    pub objective: Option<f64>,
}

/// A candidate whose latencies are known but whose accuracy is not yet.
pub struct Timed {
    pub genome: Genome,
    /// The network, when timing needed it (objectives compiled per gene do not).
    pub net: Option<Network>,
    pub latency_ms: Vec<f64>,
    pub feasible: bool,
}

pub struct Evaluator {
    pub space: Box<dyn SearchSpace>,
    pub latency: Vec<LatencyObjective>,
    pub accuracy: Arc<dyn AccuracySource>,
    pub max_latency_ms: f64,
    /// Accuracy of every member seen: evolution re-proposes members (unchanged mutations,
    /// crossovers of near-identical parents), and accuracy is the expensive query. The
    /// sources are pure functions, so caching does not change any result.
    cache: Mutex<HashMap<Genome, f64>>,
    accuracy_calls: AtomicUsize,
}

/// Proposals per round when filling a quota of feasible candidates: enough to keep both
/// cores busy, fixed so that the generator is consumed identically on every machine.
const MIN_ROUND: usize = 16;

impl Evaluator {
    pub fn new(
        space: Box<dyn SearchSpace>,
        latency: Vec<LatencyObjective>,
        accuracy: Arc<dyn AccuracySource>,
        max_latency_ms: f64,
    ) -> Self {
        Evaluator {
            space,
            latency,
            accuracy,
            max_latency_ms,
            cache: Default::default(),
            accuracy_calls: AtomicUsize::new(0),
        }
    }

    /// Members whose accuracy was actually computed (cache misses).
    pub fn accuracy_calls(&self) -> usize {
        self.accuracy_calls.load(Ordering::Relaxed)
    }

    /// Latency of one member under the constrained (first) objective.
    pub fn primary_ms(&self, g: &Genome) -> Result<f64, ObjectiveError> {
        self.latency[0].genome_ms(&*self.space, g)
    }

    /// Latencies (and, where an objective needs it, networks) of `genomes`, in order.
    pub fn time(&self, genomes: Vec<Genome>) -> Result<Vec<Timed>, ObjectiveError> {
        let needs_net = self.latency.iter().any(|l| l.needs_network());
        let space = &*self.space;
        let one = |genome: Genome| -> Result<Timed, ObjectiveError> {
            let net = needs_net.then(|| space.network(&genome));
            // Compiled tables answer the predictor's own bits, so feasibility on the target is exact.
            let latency_ms = self
                .latency
                .iter()
                .map(|l| match &net {
                    Some(n) => l.latency_ms(space, &genome, n),
                    None => l.genome_ms(space, &genome),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let feasible = latency_ms[0] <= self.max_latency_ms;
            Ok(Timed { genome, net, latency_ms, feasible })
        };
        let measured = self.latency.iter().any(|l| l.meter().is_some());
        if needs_net || measured {
            genomes.into_par_iter().map(one).collect()
        } else {
            // A per-gene table prices a member in well under a microsecond: less than
            // handing a batch to the thread pool costs.
            genomes.into_iter().map(one).collect()
        }
    }

    /// Accuracies of timed candidates (one batch), as evaluations without an objective.
    /// Members not in the cache are computed once each, as one batch, in first-seen order.
    pub fn finish(&self, timed: Vec<Timed>) -> Result<Vec<Evaluation>, ObjectiveError> {
        let mut cache = self.cache.lock().map_err(|_| ObjectiveError::Poisoned("accuracy cache"))?;
        let mut missing: Vec<usize> = Vec::new();
        let mut queued = HashSet::new();
        for (i, t) in timed.iter().enumerate() {
            if !cache.contains_key(&t.genome) && queued.insert(&t.genome) {
                missing.push(i);
            }
        }
        let genomes: Vec<&Genome> = missing.iter().map(|&i| &timed[i].genome).collect();
        let acc = match self.accuracy.genome_batch(&*self.space, &genomes) {
            Some(acc) => acc?,
            None => {
                // The source reads networks: build those that timing did not.
                let built: Vec<Option<Network>> = missing
                    .par_iter()
                    .map(|&i| timed[i].net.is_none().then(|| self.space.network(&timed[i].genome)))
                    .collect();
                let items: Vec<(&Genome, &Network)> = missing
                    .iter()
                    .zip(&built)
                    .map(|(&i, b)| (&timed[i].genome, timed[i].net.as_ref().or(b.as_ref()).expect("built")))
                    .collect();
                self.accuracy.accuracy_batch(&*self.space, &items)?
            }
        };
        if acc.len() != genomes.len() {
            return Err(ObjectiveError::AccuracyCount { returned: acc.len(), asked: genomes.len() });
        }
        self.accuracy_calls.fetch_add(genomes.len(), Ordering::Relaxed);
        for (&i, a) in missing.iter().zip(acc) {
            cache.insert(timed[i].genome.clone(), a);
        }
        Ok(timed
            .into_iter()
            .map(|t| {
                let accuracy = cache[&t.genome];
                Evaluation {
                    objective: t.feasible.then_some(accuracy),
                    genome: t.genome,
                    latency_ms: t.latency_ms,
                    accuracy,
                    feasible: t.feasible,
                }
            })
            .collect())
    }

    /// Latency and accuracy of `genomes`, in order; objective = accuracy of feasible members.
    pub fn evaluate(&self, genomes: Vec<Genome>) -> Result<Vec<Evaluation>, ObjectiveError> {
        self.finish(self.time(genomes)?)
    }

    /// Up to `n` feasible candidates, one per slot: `propose(slot, rng)` is retried until it
    /// gives a feasible one (OFA's rejection sampling, each child from its own parents, with the
    /// cap of `max_tries` proposals in all that its tutorial lacks). Proposals are drawn in rounds
    /// of fixed size, spread over the open slots in turn and accepted in order, so the outcome does
    /// not depend on threads. Returns the filled slots' candidates in slot order and the number
    /// of proposals tried.
    pub fn fill_feasible(
        &self,
        n: usize,
        max_tries: usize,
        rng: &mut StdRng,
        mut propose: impl FnMut(usize, &mut StdRng) -> Genome,
    ) -> Result<(Vec<Timed>, usize), ObjectiveError> {
        let mut filled: Vec<Option<Timed>> = (0..n).map(|_| None).collect();
        let mut open: Vec<usize> = (0..n).collect();
        let mut tries = 0;
        // A measured objective times every proposal on a device, one at a time: propose only
        // what is still missing, since surplus proposals cost device time, not idle cores.
        let measured = self.latency[0].meter().is_some();
        while !open.is_empty() && tries < max_tries {
            let missing = open.len();
            let round = if measured { missing } else { (2 * missing).max(MIN_ROUND) }.min(max_tries - tries);
            let slots: Vec<usize> = (0..round).map(|k| open[k % missing]).collect();
            let proposals: Vec<Genome> = slots.iter().map(|&s| propose(s, rng)).collect();
            tries += round;
            for (t, s) in self.time(proposals)?.into_iter().zip(slots) {
                if t.feasible && filled[s].is_none() {
                    filled[s] = Some(t);
                }
            }
            open.retain(|&s| filled[s].is_none());
        }
        Ok((filled.into_iter().flatten().collect(), tries))
    }
}
