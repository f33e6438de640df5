//! Random search: `population` uniform samples per generation, constraint ignored when
//! sampling (the baseline every other strategy must beat per evaluation).

use super::{Ctx, Strategy, StrategyError};
use crate::evaluate::Evaluation;
use rand::rngs::StdRng;
use serde_json::Value;

pub struct RandomSearch;

impl Strategy for RandomSearch {
    fn step(&mut self, _generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>, StrategyError> {
        let genomes = (0..ctx.population).map(|_| ctx.ev.space.sample(rng)).collect();
        Ok(ctx.ev.evaluate(genomes)?)
    }
    fn state(&self) -> Result<Value, StrategyError> {
        Ok(Value::Null)
    }
    fn restore(&mut self, _state: Value) -> Result<(), StrategyError> {
        Ok(())
    }
}
