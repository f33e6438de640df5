//! Every search space is a product of categorical decisions ("genes"). Sampling,
//! mutation and crossover work gene-wise, so they only ever produce valid members;
//! each space then canonicalises what it does not use (e.g. OFA's inactive slots).

use crate::SearchSpace;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One categorical decision of a space, with printable choice labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gene {
    pub name: String,
    pub choices: Vec<String>,
}

impl Gene {
    pub fn new<T: ToString>(name: impl Into<String>, choices: impl IntoIterator<Item = T>) -> Self {
        Gene { name: name.into(), choices: choices.into_iter().map(|c| c.to_string()).collect() }
    }
    pub fn cardinality(&self) -> usize {
        self.choices.len()
    }
}

/// A member of a space: one choice index per gene, in the space's gene order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Genome(pub Vec<u8>);

/// Uniform sample of the gene encoding, canonicalised.
pub fn sample(space: &dyn SearchSpace, rng: &mut dyn rand::RngCore) -> Genome {
    let mut g = Genome(space.genes().iter().map(|gene| rng.random_range(0..gene.cardinality()) as u8).collect());
    space.canonicalize(&mut g);
    g
}

/// Resamples each gene with probability `prob` (OFA's mutation), canonicalised.
pub fn mutate(space: &dyn SearchSpace, parent: &Genome, prob: f64, rng: &mut dyn rand::RngCore) -> Genome {
    let mut g = parent.clone();
    for (v, gene) in g.0.iter_mut().zip(space.genes()) {
        if rng.random_bool(prob.clamp(0.0, 1.0)) {
            *v = rng.random_range(0..gene.cardinality()) as u8;
        }
    }
    space.canonicalize(&mut g);
    g
}

/// Uniform crossover: each gene from either parent with equal probability, canonicalised.
pub fn crossover(space: &dyn SearchSpace, a: &Genome, b: &Genome, rng: &mut dyn rand::RngCore) -> Genome {
    let mut g = Genome(a.0.iter().zip(&b.0).map(|(&x, &y)| if rng.random_bool(0.5) { x } else { y }).collect());
    space.canonicalize(&mut g);
    g
}

/// Whether `g` is a member: right length, every index in range, canonical form.
pub fn check(space: &dyn SearchSpace, g: &Genome) -> Result<(), crate::ArchError> {
    let genes = space.genes();
    if g.0.len() != genes.len() {
        return Err(crate::ArchError::Other(format!(
            "genome has {} genes, space {} has {}",
            g.0.len(),
            space.name(),
            genes.len()
        )));
    }
    for (v, gene) in g.0.iter().zip(genes) {
        if *v as usize >= gene.cardinality() {
            return Err(crate::ArchError::field(&gene.name, format!("choice index {v} out of range")));
        }
    }
    let mut canon = g.clone();
    space.canonicalize(&mut canon);
    if &canon != g {
        return Err(crate::ArchError::Other("genome is not in canonical form".into()));
    }
    Ok(())
}
