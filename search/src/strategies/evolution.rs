//! OFA's constrained evolutionary search (once-for-all `EvolutionFinder.run_evolution_search`):
//! a feasible initial population by rejection sampling; each generation keeps the top
//! `parent_ratio` by accuracy as parents and breeds `population` feasible children,
//! `mutation_ratio` of them by mutation (per slot, kernel and expansion together; the
//! resolution at its own rate) and the rest by uniform crossover, each child retried on its
//! own parents until it meets the latency target (bounded here by `max_tries`).

use super::{feasible_population, ranked, restore_state, save_state, Ctx, Strategy, StrategyError};
use crate::config::EvolutionConfig;
use crate::evaluate::Evaluation;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use spaces::Genome;

pub struct Evolution {
    config: EvolutionConfig,
    population: Vec<Evaluation>,
}

impl Evolution {
    pub fn new(config: EvolutionConfig) -> Self {
        Evolution { config, population: Vec::new() }
    }
}

impl Strategy for Evolution {
    fn step(&mut self, generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>, StrategyError> {
        let p = ctx.population;
        if generation == 0 {
            let init = feasible_population(ctx, p, rng)?;
            self.population = ctx.ev.finish(init)?;
            return Ok(self.population.clone());
        }
        let n_parents = ((self.config.parent_ratio * p as f64).round() as usize).clamp(1, self.population.len());
        let parents: Vec<Evaluation> = ranked(&self.population, |e| e.accuracy)
            .into_iter()
            .take(n_parents)
            .map(|i| self.population[i].clone())
            .collect();
        let n_mut = (self.config.mutation_ratio * p as f64).round() as usize;
        let space = &*ctx.ev.space;
        let (prob, r_prob) = (self.config.mutate_prob, self.config.resolution_mutate_prob);
        // Each child has its own parents, drawn once; its proposals are retried on them (OFA's
        // `mutate_sample` / `crossover_sample`), so parents whose children rarely meet the
        // target are not crowded out by the fast ones.
        let mut parent = || &parents[rng.random_range(0..parents.len())].genome;
        let mutated: Vec<&Genome> = (0..n_mut).map(|_| parent()).collect();
        let crossed: Vec<(&Genome, &Genome)> = (n_mut..p).map(|_| (parent(), parent())).collect();
        let (mut children, tries_m) =
            ctx.ev.fill_feasible(n_mut, ctx.max_tries, rng, |i, r| space.mutate_with(mutated[i], prob, r_prob, r))?;
        let (crossed, tries_c) = ctx
            .ev
            .fill_feasible(p - n_mut, ctx.max_tries, rng, |i, r| space.crossover(crossed[i].0, crossed[i].1, r))?;
        children.extend(crossed);
        if children.len() < p {
            (ctx.log)(format!(
                "generation {generation}: only {} of {p} children met the target within {} tries",
                children.len(),
                tries_m + tries_c
            ));
        }
        let children = ctx.ev.finish(children)?;
        self.population = parents;
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
