//! The smallest latency a space can reach under a predictor, so that an infeasible target
//! is reported up front instead of sampling forever (OFA's tutorial search hangs there).
//!
//! Method: per-gene coordinate descent. From each start (the space's smallest member by
//! MACs plus `RANDOM_STARTS` uniform samples), repeatedly set each gene to the choice that
//! minimises the predicted latency with the other genes fixed, until a full pass changes
//! nothing (at most `MAX_PASSES`). The result is the best local minimum found: an upper
//! bound on the true minimum, exact whenever genes act independently on latency.
//!
//! A measured objective cannot afford that (thousands of device runs), so there the
//! smallest member by MACs is timed alone: an upper bound again, usually a close one.

use crate::evaluate::Evaluator;
use crate::objectives::ObjectiveError;
use rayon::prelude::*;
use spaces::Genome;

pub const RANDOM_STARTS: usize = 8;
pub const MAX_PASSES: usize = 10;

#[derive(Clone, Debug)]
pub struct MinLatency {
    pub genome: Genome,
    pub latency_ms: f64,
    /// Predictor calls spent.
    pub evaluations: usize,
}

impl MinLatency {
    /// How the minimum was searched, for a predicted or a `measured` objective.
    pub fn method(measured: bool) -> String {
        if measured {
            return "timing the smallest member by MACs on the device (an upper bound on the true minimum)".into();
        }
        format!(
            "per-gene coordinate descent on the predictor from the smallest-MACs member and {RANDOM_STARTS} random \
             members (an upper bound on the true minimum)"
        )
    }
}

fn descend(ev: &Evaluator, start: Genome) -> Result<MinLatency, ObjectiveError> {
    let genes = ev.space.genes();
    let mut best = start;
    ev.space.canonicalize(&mut best);
    let mut best_ms = ev.primary_ms(&best)?;
    let mut evaluations = 1;
    for _ in 0..MAX_PASSES {
        let mut improved = false;
        for (i, gene) in genes.iter().enumerate() {
            for c in 0..gene.cardinality() as u8 {
                if c == best.0[i] {
                    continue;
                }
                let mut g = best.clone();
                g.0[i] = c;
                ev.space.canonicalize(&mut g);
                if g == best {
                    continue;
                }
                let ms = ev.primary_ms(&g)?;
                evaluations += 1;
                if ms < best_ms {
                    best = g;
                    best_ms = ms;
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    Ok(MinLatency { genome: best, latency_ms: best_ms, evaluations })
}

/// Smallest reachable latency under the job's constrained objective; deterministic for `seed`.
pub fn min_latency(ev: &Evaluator, seed: u64) -> Result<MinLatency, ObjectiveError> {
    if ev.latency[0].meter().is_some() {
        let genome = ev.space.extremes().0;
        return Ok(MinLatency { latency_ms: ev.primary_ms(&genome)?, genome, evaluations: 1 });
    }
    let mut rng = crate::rng::generation_rng(seed, crate::rng::AUX_STREAM);
    let mut starts = vec![ev.space.extremes().0];
    starts.extend((0..RANDOM_STARTS).map(|_| ev.space.sample(&mut rng)));
    let results = starts.into_par_iter().map(|s| descend(ev, s)).collect::<Result<Vec<_>, _>>()?;
    let evaluations = results.iter().map(|r| r.evaluations).sum();
    // First strict minimum in start order: deterministic.
    let mut best = results.into_iter().reduce(|a, b| if b.latency_ms < a.latency_ms { b } else { a }).expect("starts");
    best.evaluations = evaluations;
    Ok(best)
}
