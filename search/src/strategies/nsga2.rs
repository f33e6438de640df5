//! NSGA-II (Deb et al. 2002) over (accuracy, latency on each predictor): binary tournaments
//! on (rank, crowding distance), crossover + mutation, and elitist survival of the best
//! `population` of parents ∪ offspring. The latency target enters through Deb's constrained
//! domination: feasible beats infeasible, and of two infeasible members the smaller
//! violation wins, so the front converges inside the constraint.

use super::{restore_state, save_state, Ctx, Strategy, StrategyError};
use crate::config::Nsga2Config;
use crate::evaluate::Evaluation;
use crate::pareto::{crowding_distance, dominates, non_dominated_sort};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

pub struct Nsga2 {
    config: Nsga2Config,
    target_ms: f64,
    population: Vec<Evaluation>,
}

/// Minimised objectives of one member: −accuracy, then every latency.
fn objectives(e: &Evaluation) -> Vec<f64> {
    std::iter::once(-e.accuracy).chain(e.latency_ms.iter().copied()).collect()
}

impl Nsga2 {
    pub fn new(config: Nsga2Config, target_ms: f64) -> Self {
        Nsga2 { config, target_ms, population: Vec::new() }
    }

    fn violation(&self, e: &Evaluation) -> f64 {
        (e.latency_ms[0] - self.target_ms).max(0.0)
    }

    /// Front rank and crowding distance of every member of `pop`.
    fn rank(&self, pop: &[Evaluation]) -> (Vec<Vec<usize>>, Vec<usize>, Vec<f64>) {
        let obj: Vec<Vec<f64>> = pop.iter().map(objectives).collect();
        let viol: Vec<f64> = pop.iter().map(|e| self.violation(e)).collect();
        let fronts = non_dominated_sort(pop.len(), |a, b| match (viol[a] > 0.0, viol[b] > 0.0) {
            (false, true) => true,
            (true, false) => false,
            (true, true) => viol[a] < viol[b],
            (false, false) => dominates(&obj[a], &obj[b]),
        });
        let mut rank = vec![0; pop.len()];
        let mut crowd = vec![0.0; pop.len()];
        for (r, front) in fronts.iter().enumerate() {
            for (&i, d) in front.iter().zip(crowding_distance(front, &obj)) {
                rank[i] = r;
                crowd[i] = d;
            }
        }
        (fronts, rank, crowd)
    }
}

impl Strategy for Nsga2 {
    fn step(&mut self, generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>, StrategyError> {
        let p = ctx.population;
        let space = &*ctx.ev.space;
        if generation == 0 {
            let genomes = (0..p).map(|_| space.sample(rng)).collect();
            self.population = ctx.ev.evaluate(genomes)?;
            return Ok(self.population.clone());
        }
        let (_, rank, crowd) = self.rank(&self.population);
        let n = self.population.len();
        let better = |a: usize, b: usize| rank[a] < rank[b] || (rank[a] == rank[b] && crowd[a] > crowd[b]);
        let tournament = |r: &mut StdRng| {
            let (a, b) = (r.random_range(0..n), r.random_range(0..n));
            if better(b, a) {
                b
            } else {
                a
            }
        };
        let mut genomes = Vec::with_capacity(p);
        for _ in 0..p {
            let (a, b) = (tournament(rng), tournament(rng));
            let (ga, gb) = (&self.population[a].genome, &self.population[b].genome);
            let child =
                if rng.random_bool(self.config.crossover_prob) { space.crossover(ga, gb, rng) } else { ga.clone() };
            genomes.push(space.mutate(&child, self.config.mutate_prob, rng));
        }
        let offspring = ctx.ev.evaluate(genomes)?;
        let mut merged = std::mem::take(&mut self.population);
        merged.extend(offspring.iter().cloned());
        let (fronts, _, crowd) = self.rank(&merged);
        let mut keep = Vec::with_capacity(p);
        for front in fronts {
            if keep.len() + front.len() <= p {
                keep.extend(front);
            } else {
                let mut last = front;
                last.sort_by(|&a, &b| crowd[b].total_cmp(&crowd[a]).then(a.cmp(&b)));
                keep.extend(last.into_iter().take(p - keep.len()));
                break;
            }
        }
        keep.sort_unstable();
        self.population = keep.into_iter().map(|i| merged[i].clone()).collect();
        Ok(offspring)
    }

    fn state(&self) -> Result<Value, StrategyError> {
        save_state(&self.population)
    }
    fn restore(&mut self, state: Value) -> Result<(), StrategyError> {
        self.population = restore_state(state)?;
        Ok(())
    }
}
