//! Search strategies. Each runs generation by generation: generation 0 builds the initial
//! population, later ones breed from it. A strategy's whole state serialises to JSON for
//! the job's checkpoint; its randomness comes from the per-generation generator the job
//! passes in, so a resumed run replays an uninterrupted one exactly.

mod evolution;
mod nsga2;
mod random;
mod regularized;
mod rl;

pub use evolution::Evolution;
pub use nsga2::Nsga2;
pub use random::RandomSearch;
pub use regularized::Regularized;
pub use rl::Reinforce;

use crate::config::{SamplingConfig, StrategyConfig};
use crate::evaluate::{Evaluation, Evaluator, Timed};
use crate::objectives::ObjectiveError;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use spaces::{Genome, SearchSpace};

/// What a strategy sees of its job.
pub struct Ctx<'a> {
    pub ev: &'a Evaluator,
    pub population: usize,
    pub max_tries: usize,
    /// A member known to meet the latency target (the minimum-latency search's result).
    pub fastest: &'a Genome,
    /// Progress notes for the job log.
    pub log: &'a mut dyn FnMut(String),
}

/// Why a strategy could not run a generation, save its state or take a checkpoint's back.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// Timing or scoring the members.
    #[error(transparent)]
    Objective(Box<ObjectiveError>),
    #[error("cannot serialise the strategy's state")]
    SaveState(#[source] serde_json::Error),
    #[error("the checkpoint's strategy state is not this strategy's")]
    RestoreState(#[source] serde_json::Error),
    #[error("rl: every gene needs 1 to 256 choices")]
    RlGenes,
    #[error("the checkpoint's RL state is not an LSTM controller")]
    RlState(#[source] serde_json::Error),
    #[error("the RL controller state does not match its own layout")]
    RlLayout,
    #[error("the checkpoint's RL controller was built for another space or hidden size")]
    RlShape,
}

impl From<ObjectiveError> for StrategyError {
    fn from(e: ObjectiveError) -> Self {
        StrategyError::Objective(Box::new(e))
    }
}

pub trait Strategy: Send {
    /// Runs generation `generation` and returns every architecture it evaluated, in order.
    fn step(&mut self, generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>, StrategyError>;
    fn state(&self) -> Result<Value, StrategyError>;
    fn restore(&mut self, state: Value) -> Result<(), StrategyError>;
}

/// A strategy's state as JSON (the job's checkpoint holds it).
pub(crate) fn save_state(state: &impl serde::Serialize) -> Result<Value, StrategyError> {
    serde_json::to_value(state).map_err(StrategyError::SaveState)
}

/// A strategy's state from the JSON [`save_state`] wrote.
pub(crate) fn restore_state<T: serde::de::DeserializeOwned>(state: Value) -> Result<T, StrategyError> {
    serde_json::from_value(state).map_err(StrategyError::RestoreState)
}

/// The strategy of a sampling job under the latency target `max_latency_ms`.
pub fn build(config: &SamplingConfig, max_latency_ms: f64, space: &dyn SearchSpace) -> Box<dyn Strategy> {
    match &config.strategy {
        StrategyConfig::Random => Box::new(RandomSearch),
        StrategyConfig::Evolution(c) => Box::new(Evolution::new(c.clone())),
        StrategyConfig::Regularized(c) => Box::new(Regularized::new(c.clone())),
        StrategyConfig::Nsga2(c) => Box::new(Nsga2::new(c.clone(), max_latency_ms)),
        StrategyConfig::Rl(c) => Box::new(Reinforce::new(c.clone(), space, max_latency_ms)),
    }
}

/// `n` feasible members: rejection sampling (bounded by `max_tries`), then, if the target
/// is tight, the known-feasible fastest member and mutations of the feasible ones found.
pub(crate) fn feasible_population(ctx: &mut Ctx, n: usize, rng: &mut StdRng) -> Result<Vec<Timed>, ObjectiveError> {
    let space = &*ctx.ev.space;
    let (mut kept, tries) = ctx.ev.fill_feasible(n, ctx.max_tries, rng, |_, r| space.sample(r))?;
    if kept.len() < n {
        (ctx.log)(format!(
            "rejection sampling found {} of {n} feasible members in {tries} tries; completing from the fastest member",
            kept.len()
        ));
        kept.extend(ctx.ev.time(vec![ctx.fastest.clone()])?);
        let pool: Vec<Genome> = kept.iter().map(|t| t.genome.clone()).collect();
        let need = n - kept.len();
        let (more, _) = ctx.ev.fill_feasible(need, ctx.max_tries, rng, |_, r| {
            space.mutate(&pool[r.random_range(0..pool.len())], 0.1, r)
        })?;
        kept.extend(more);
        if kept.len() < n {
            (ctx.log)(format!("population has {} members instead of {n}: the target admits few members", kept.len()));
        }
    }
    Ok(kept)
}

/// Changes exactly one gene to another choice (Real et al.'s mutation), retrying when the
/// change only touched a gene the member does not use.
pub(crate) fn mutate_one(space: &dyn SearchSpace, parent: &Genome, rng: &mut StdRng) -> Genome {
    let genes = space.genes();
    let free: Vec<usize> = (0..genes.len()).filter(|&i| genes[i].cardinality() > 1).collect();
    let mut child = parent.clone();
    for _ in 0..16 {
        if free.is_empty() {
            break;
        }
        let i = free[rng.random_range(0..free.len())];
        let k = genes[i].cardinality() as u8;
        let mut g = parent.clone();
        g.0[i] = (g.0[i] + rng.random_range(1..k)) % k;
        space.canonicalize(&mut g);
        child = g;
        if &child != parent {
            break;
        }
    }
    child
}

/// Indices sorted best first by `key` (descending; NaN last), stable.
pub(crate) fn ranked(pop: &[Evaluation], key: impl Fn(&Evaluation) -> f64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..pop.len()).collect();
    let k = |i: usize| {
        let v = key(&pop[i]);
        if v.is_nan() {
            f64::NEG_INFINITY
        } else {
            v
        }
    };
    idx.sort_by(|&a, &b| k(b).total_cmp(&k(a)));
    idx
}
