//! Random search: `population` uniform samples per generation, constraint ignored when
//! sampling (the baseline every other strategy must beat per evaluation).

use super::{Ctx, Strategy};
use crate::evaluate::Evaluation;
use anyhow::Result;
use rand::rngs::StdRng;
use serde_json::Value;

pub struct RandomSearch;

impl Strategy for RandomSearch {
    fn step(&mut self, _generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>> {
        let genomes = (0..ctx.population).map(|_| ctx.ev.space.sample(rng)).collect();
        ctx.ev.evaluate(genomes)
    }
    fn state(&self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn restore(&mut self, _state: Value) -> Result<()> {
        Ok(())
    }
}
