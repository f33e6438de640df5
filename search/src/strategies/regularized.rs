//! Regularized (aging) evolution, Real et al. "Regularized Evolution for Image Classifier
//! Architecture Search" (AAAI 2019): tournament selection of size S, a one-gene mutation,
//! and removal of the OLDEST member rather than the worst. A generation breeds
//! `children_per_generation` children against the same population (the paper's parallel
//! workers); infeasible children are resampled (bounded), as in OFA's constrained search.

use super::{feasible_population, mutate_one, restore_state, save_state, Ctx, Strategy, StrategyError};
use crate::config::RegularizedConfig;
use crate::evaluate::Evaluation;
use rand::rngs::StdRng;
use serde_json::Value;

pub struct Regularized {
    config: RegularizedConfig,
    /// Oldest first.
    population: Vec<Evaluation>,
}

impl Regularized {
    /// `config` as resolved by `JobConfig::resolve` (unset sizes mean 1).
    pub fn new(config: RegularizedConfig) -> Self {
        Regularized { config, population: Vec::new() }
    }
}

impl Strategy for Regularized {
    fn step(&mut self, generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>, StrategyError> {
        if generation == 0 {
            let init = feasible_population(ctx, ctx.population, rng)?;
            self.population = ctx.ev.finish(init)?;
            return Ok(self.population.clone());
        }
        let space = &*ctx.ev.space;
        let pop = &self.population;
        let s = self.config.sample_size.unwrap_or(1).min(pop.len());
        let tournament = |_, r: &mut StdRng| {
            let winner = rand::seq::index::sample(r, pop.len(), s)
                .into_iter()
                .max_by(|&a, &b| pop[a].accuracy.total_cmp(&pop[b].accuracy).then(b.cmp(&a)))
                .expect("non-empty tournament");
            mutate_one(space, &pop[winner].genome, r)
        };
        let n = self.config.children_per_generation.unwrap_or(1);
        let (children, tries) = ctx.ev.fill_feasible(n, ctx.max_tries, rng, tournament)?;
        if children.len() < n {
            (ctx.log)(format!("generation {generation}: {} of {n} children feasible in {tries} tries", children.len()));
        }
        let children = ctx.ev.finish(children)?;
        let drop = children.len().min(self.population.len().saturating_sub(1));
        self.population.drain(..drop);
        self.population.extend(children.iter().cloned());
        Ok(children)
    }

    fn state(&self) -> Result<Value, StrategyError> {
        save_state(&self.population)
    }
    fn restore(&mut self, state: Value) -> Result<(), StrategyError> {
        self.population = restore_state(state)?;
        Ok(())
    }
}
