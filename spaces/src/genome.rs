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
    /// The name without its index: `ks` for `ks[3]`, `blocks` for `blocks[2].op`, `r` for `r`.
    pub fn family(&self) -> &str {
        self.name.split('[').next().unwrap_or(&self.name)
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
    mutate_with(space, parent, prob, prob, rng)
}

/// OFA's `mutate_arch` and `mutate_resolution`: one draw of probability `prob` per group of
/// genes ([`SearchSpace::gene_group`], e.g. a slot's kernel and expansion), `resolution_prob`
/// for the resolution gene. A gene the parent does not use holds a placeholder, not an
/// inherited choice, so where the child starts using it (a deeper stage) it is drawn uniformly,
/// as OFA's latent values of inactive slots are.
pub fn mutate_with(
    space: &dyn SearchSpace,
    parent: &Genome,
    prob: f64,
    resolution_prob: f64,
    rng: &mut dyn rand::RngCore,
) -> Genome {
    let genes = space.genes();
    let resolution = space.resolution_gene();
    let mut g = parent.clone();
    let mut drawn = vec![false; genes.len()];
    for (i, gene) in genes.iter().enumerate() {
        let lead = space.gene_group(i);
        drawn[i] = if lead < i {
            drawn[lead]
        } else {
            let p = if Some(i) == resolution { resolution_prob } else { prob };
            rng.random_bool(p.clamp(0.0, 1.0))
        };
        if drawn[i] {
            g.0[i] = rng.random_range(0..gene.cardinality()) as u8;
        }
    }
    if g != *parent {
        let used = space.active_genes(parent);
        let now_used = space.active_genes(&g);
        for (i, gene) in genes.iter().enumerate() {
            if !used[i] && now_used[i] && !drawn[i] {
                g.0[i] = rng.random_range(0..gene.cardinality()) as u8;
            }
        }
    }
    space.canonicalize(&mut g);
    g
}

/// Uniform crossover: each gene from either parent with equal probability, canonicalised.
/// A gene the chosen parent does not use comes from the other parent if that one uses it,
/// and is drawn uniformly if neither does (placeholders are not inherited; see [`mutate_with`]).
pub fn crossover(space: &dyn SearchSpace, a: &Genome, b: &Genome, rng: &mut dyn rand::RngCore) -> Genome {
    let (used_a, used_b) = (space.active_genes(a), space.active_genes(b));
    let mut g = Genome(Vec::with_capacity(a.0.len()));
    let mut placeholder = vec![false; a.0.len()];
    for i in 0..a.0.len() {
        let ((x, ux), (y, uy)) = if rng.random_bool(0.5) {
            ((a.0[i], used_a[i]), (b.0[i], used_b[i]))
        } else {
            ((b.0[i], used_b[i]), (a.0[i], used_a[i]))
        };
        g.0.push(if ux || !uy { x } else { y });
        placeholder[i] = !ux && !uy;
    }
    let used = space.active_genes(&g);
    for (i, gene) in space.genes().iter().enumerate() {
        if placeholder[i] && used[i] {
            g.0[i] = rng.random_range(0..gene.cardinality()) as u8;
        }
    }
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
