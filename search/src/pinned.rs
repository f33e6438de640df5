//! A space with some genes held at one choice (a job's `fixed`, e.g. `{"r": "128"}` to
//! search OFA at one resolution, or `{"ops": "k3_e6"}` to hold every FBNet layer's op).
//! Pins are applied in `canonicalize`, which sampling, mutation and crossover all end
//! with, so every strategy only ever proposes members that honour them.

use serde_json::Value;
use spaces::ir::{Layer, Network};
use spaces::{ArchError, Gene, GeneRole, Genome, SearchSpace, SpaceFamily};
use std::collections::BTreeMap;

/// A `fixed` setting, or a resolution restriction, that the space does not allow.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("fixed: space {space} has no gene `{gene}` (genes: {genes})")]
    NoGene { space: String, gene: String, genes: String },
    #[error("fixed: gene `{gene}` has no choice `{choice}` (choices: {choices})")]
    NoChoice { gene: String, choice: String, choices: String },
    /// `why` (who covers `allowed`) covers none of the space's resolutions.
    #[error("{why} covers resolutions {allowed} only, none of space {space}'s ({all})")]
    NoneCovered { why: String, allowed: String, space: String, all: String },
    #[error("{why} covers resolutions {allowed} only, but space {space} runs at {all}")]
    NoResolutionGene { why: String, allowed: String, space: String, all: String },
}

pub struct Pinned {
    inner: Box<dyn SearchSpace>,
    /// (gene index, choice index), in gene order.
    pins: Vec<(usize, u8)>,
    summary: String,
}

/// `fixed` maps a gene name (`r`, `ks[3]`) or a gene family (`ks` = every `ks[i]`) to a
/// choice label as `hwnas spaces` lists it. Returns `space` unchanged when nothing is fixed.
pub fn pin(space: Box<dyn SearchSpace>, fixed: &BTreeMap<String, String>) -> Result<Box<dyn SearchSpace>, PinError> {
    if fixed.is_empty() {
        return Ok(space);
    }
    let family = |g: &Gene| g.family().to_string();
    let mut pins = Vec::new();
    for (name, choice) in fixed {
        let genes: Vec<(usize, &Gene)> =
            space.genes().iter().enumerate().filter(|(_, g)| g.name == *name || family(g) == *name).collect();
        if genes.is_empty() {
            let mut names: Vec<String> = space.genes().iter().map(family).collect();
            names.dedup();
            return Err(PinError::NoGene { space: space.name().into(), gene: name.clone(), genes: names.join(", ") });
        }
        for (i, g) in genes {
            let Some(c) = g.choices.iter().position(|c| c == choice) else {
                return Err(PinError::NoChoice {
                    gene: g.name.clone(),
                    choice: choice.clone(),
                    choices: g.choices.join(", "),
                });
            };
            pins.push((i, c as u8));
        }
    }
    pins.sort_unstable();
    let summary = fixed.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    Ok(Box::new(Pinned { inner: space, pins, summary }))
}

impl Pinned {
    fn apply(&self, g: &mut Genome) {
        for &(i, c) in &self.pins {
            g.0[i] = c;
        }
    }
}

impl SearchSpace for Pinned {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn family(&self) -> SpaceFamily {
        self.inner.family()
    }
    fn gene_role(&self, i: usize) -> GeneRole {
        self.inner.gene_role(i)
    }
    fn description(&self) -> String {
        format!("{} (fixed: {})", self.inner.description(), self.summary)
    }
    fn genes(&self) -> &[Gene] {
        self.inner.genes()
    }
    fn canonicalize(&self, g: &mut Genome) {
        self.apply(g);
        self.inner.canonicalize(g);
    }
    fn active_genes(&self, g: &Genome) -> Vec<bool> {
        self.inner.active_genes(g)
    }
    fn gene_group(&self, i: usize) -> usize {
        self.inner.gene_group(i)
    }
    fn size(&self) -> f64 {
        let genes = self.inner.genes();
        self.inner.size() / self.pins.iter().map(|&(i, _)| genes[i].cardinality() as f64).product::<f64>()
    }
    fn resolutions(&self) -> Vec<u32> {
        let (lo, hi) = self.extremes();
        let mut r: Vec<u32> = self.inner.resolutions();
        // A pinned resolution gene leaves one: both extremes have it.
        if self.inner.resolution(&lo) == self.inner.resolution(&hi) && r.len() > 1 {
            let only = self.inner.resolution(&lo);
            r.retain(|&x| x == only);
        }
        r
    }
    fn resolution(&self, g: &Genome) -> u32 {
        self.inner.resolution(g)
    }
    fn network_at(&self, g: &Genome, resolution: u32) -> Network {
        self.inner.network_at(g, resolution)
    }
    fn to_json(&self, g: &Genome) -> Value {
        self.inner.to_json(g)
    }
    fn from_json(&self, v: &Value) -> Result<Genome, ArchError> {
        let g = self.inner.from_json(v)?;
        let mut pinned = g.clone();
        self.canonicalize(&mut pinned);
        if pinned != g {
            return Err(ArchError::Other(format!("the architecture does not keep the fixed genes ({})", self.summary)));
        }
        Ok(g)
    }
    fn layer_table_at(&self, resolution: u32) -> Vec<Layer> {
        self.inner.layer_table_at(resolution)
    }
    /// The inner space's extremes with the pins applied.
    fn extremes(&self) -> (Genome, Genome) {
        let (mut lo, mut hi) = self.inner.extremes();
        self.canonicalize(&mut lo);
        self.canonicalize(&mut hi);
        (lo, hi)
    }
    fn resolution_gene(&self) -> Option<usize> {
        self.inner.resolution_gene()
    }
    fn gene_layout(&self) -> Option<spaces::GeneLayout> {
        self.inner.gene_layout()
    }
}

/// A space whose resolution gene offers only some of its resolutions (those every latency
/// predictor of a job covers, e.g. OFA's Note10 tables: 160–224 in steps of 16). Unlike a
/// pin, the gene itself has fewer choices, so sampling and mutation stay uniform over the
/// allowed ones; genomes index the restricted gene, and are translated for the inner space.
pub struct Restricted {
    inner: Box<dyn SearchSpace>,
    gene: usize,
    /// Inner choice index of each restricted choice, ascending.
    keep: Vec<u8>,
    genes: Vec<Gene>,
    resolutions: Vec<u32>,
}

/// Restricts `space`'s resolution gene to `allowed` (returns `space` unchanged when that
/// keeps every resolution). Refuses, naming both lists, when `allowed` has none of the space's
/// resolutions or the space's resolution is not a gene.
pub fn restrict_resolutions(
    space: Box<dyn SearchSpace>,
    allowed: &[u32],
    why: &str,
) -> Result<Box<dyn SearchSpace>, PinError> {
    let all = space.resolutions();
    let list = |r: &[u32]| r.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let keep: Vec<u8> = (0..all.len()).filter(|&i| allowed.contains(&all[i])).map(|i| i as u8).collect();
    if keep.len() == all.len() {
        return Ok(space);
    }
    if keep.is_empty() {
        return Err(PinError::NoneCovered {
            why: why.into(),
            allowed: list(allowed),
            space: space.name().into(),
            all: list(&all),
        });
    }
    let Some(gene) = space.resolution_gene() else {
        return Err(PinError::NoResolutionGene {
            why: why.into(),
            allowed: list(allowed),
            space: space.name().into(),
            all: list(&all),
        });
    };
    let mut genes = space.genes().to_vec();
    genes[gene].choices = keep.iter().map(|&c| space.genes()[gene].choices[c as usize].clone()).collect();
    let resolutions = keep.iter().map(|&c| all[c as usize]).collect();
    Ok(Box::new(Restricted { inner: space, gene, keep, genes, resolutions }))
}

impl Restricted {
    fn to_inner(&self, g: &Genome) -> Genome {
        let mut inner = g.clone();
        inner.0[self.gene] = self.keep[g.0[self.gene] as usize];
        inner
    }
    /// The restricted choice of an inner one, if it is kept.
    fn outer_choice(&self, inner: u8) -> Option<u8> {
        self.keep.iter().position(|&c| c == inner).map(|i| i as u8)
    }
    fn outer(&self, mut g: Genome) -> Genome {
        g.0[self.gene] = self.outer_choice(g.0[self.gene]).expect("a kept resolution");
        g
    }
}

impl SearchSpace for Restricted {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn family(&self) -> SpaceFamily {
        self.inner.family()
    }
    fn gene_role(&self, i: usize) -> GeneRole {
        self.inner.gene_role(i)
    }
    fn description(&self) -> String {
        let r = self.resolutions.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        format!("{} (resolutions {r} only)", self.inner.description())
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn canonicalize(&self, g: &mut Genome) {
        let c = g.0[self.gene];
        g.0[self.gene] = self.keep[c as usize];
        self.inner.canonicalize(g);
        // The inner spaces never move the resolution gene; if one did, keep the choice.
        g.0[self.gene] = self.outer_choice(g.0[self.gene]).unwrap_or(c);
    }
    fn active_genes(&self, g: &Genome) -> Vec<bool> {
        self.inner.active_genes(&self.to_inner(g))
    }
    fn gene_group(&self, i: usize) -> usize {
        self.inner.gene_group(i)
    }
    fn size(&self) -> f64 {
        self.inner.size() / self.inner.genes()[self.gene].cardinality() as f64 * self.keep.len() as f64
    }
    fn resolutions(&self) -> Vec<u32> {
        self.resolutions.clone()
    }
    fn resolution(&self, g: &Genome) -> u32 {
        self.resolutions[g.0[self.gene] as usize]
    }
    fn network_at(&self, g: &Genome, resolution: u32) -> Network {
        self.inner.network_at(&self.to_inner(g), resolution)
    }
    fn to_json(&self, g: &Genome) -> Value {
        self.inner.to_json(&self.to_inner(g))
    }
    fn from_json(&self, v: &Value) -> Result<Genome, ArchError> {
        let g = self.inner.from_json(v)?;
        if self.outer_choice(g.0[self.gene]).is_none() {
            let r = self.resolutions.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            return Err(ArchError::field(
                self.genes[self.gene].name.clone(),
                format!("resolution {} is not one of this job's ({r})", self.inner.resolution(&g)),
            ));
        }
        Ok(self.outer(g))
    }
    fn layer_table_at(&self, resolution: u32) -> Vec<Layer> {
        self.inner.layer_table_at(resolution)
    }
    /// The inner extremes at the smallest and the largest kept resolution.
    fn extremes(&self) -> (Genome, Genome) {
        let (mut lo, mut hi) = self.inner.extremes();
        lo.0[self.gene] = self.keep[0];
        hi.0[self.gene] = *self.keep.last().expect("non-empty");
        (self.outer(lo), self.outer(hi))
    }
    fn resolution_gene(&self) -> Option<usize> {
        Some(self.gene)
    }
    fn gene_layout(&self) -> Option<spaces::GeneLayout> {
        let keep: Vec<usize> = self.keep.iter().map(|&c| c as usize).collect();
        self.inner.gene_layout().map(|l| l.restrict_resolutions(&keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn fixed(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_proposal_keeps_the_pins() {
        let s = pin(spaces::space("ofa-mbv3-w1.0").unwrap(), &fixed(&[("r", "128"), ("ks", "7")])).unwrap();
        assert_eq!(s.resolutions(), vec![128]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut g = s.sample(&mut rng);
        for _ in 0..200 {
            let other = s.sample(&mut rng);
            g = s.mutate(&s.crossover(&g, &other, &mut rng), 0.5, &mut rng);
            assert_eq!(s.resolution(&g), 128);
            let ks = s.to_json(&g)["ks"].clone();
            assert!(ks.as_array().unwrap().iter().all(|k| k == 7 || k == 0), "{ks}");
            assert_eq!(s.from_json(&s.to_json(&g)).unwrap(), g);
        }
        let free = spaces::space("ofa-mbv3-w1.0").unwrap();
        assert!(s.size() < free.size());
        // Members that break a pin are refused by name.
        let (lo, _) = free.extremes();
        let e = s.from_json(&free.to_json(&lo)).unwrap_err().to_string();
        assert!(e.contains("r=128"), "{e}");
    }

    #[test]
    fn restricted_resolutions_are_the_only_ones_proposed_uniformly() {
        let note10 = [160, 176, 192, 208, 224];
        let s = restrict_resolutions(spaces::space("ofa-mbv3-w1.2").unwrap(), &note10, "test").unwrap();
        assert_eq!(s.resolutions(), note10.to_vec());
        assert_eq!(s.genes().last().unwrap().choices, ["160", "176", "192", "208", "224"]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut seen = BTreeMap::new();
        let mut g = s.sample(&mut rng);
        let layout = s.gene_layout().unwrap();
        for _ in 0..1000 {
            let other = s.sample(&mut rng);
            *seen.entry(s.resolution(&other)).or_insert(0) += 1;
            g = s.mutate(&s.crossover(&g, &other, &mut rng), 0.5, &mut rng);
            let net = s.network(&g);
            assert!(note10.contains(&net.resolution()));
            assert!(layout.reproduces(&g, &net));
            assert_eq!(s.from_json(&s.to_json(&g)).unwrap(), g);
        }
        assert_eq!(seen.len(), 5);
        assert!(seen.values().all(|&n| (150..250).contains(&n)), "uniform over the kept choices: {seen:?}");
        let (lo, hi) = s.extremes();
        assert_eq!((s.resolution(&lo), s.resolution(&hi)), (160, 224));
        let free = spaces::space("ofa-mbv3-w1.2").unwrap();
        let e = s.from_json(&free.to_json(&free.extremes().0)).unwrap_err().to_string();
        assert!(e.contains("128") && e.contains("160, 176, 192, 208, 224"), "{e}");
        // Pins apply on top, in the restricted choices.
        let p = pin(s, &fixed(&[("r", "176")])).unwrap();
        assert_eq!(p.resolutions(), vec![176]);
        // All kept: unchanged; none kept: refused with both lists.
        let all = restrict_resolutions(spaces::space("ofa-mbv3-w1.0").unwrap(), &(128..=224).collect::<Vec<_>>(), "t");
        assert_eq!(all.unwrap().genes().last().unwrap().cardinality(), 25);
        let e = restrict_resolutions(spaces::space("fbnet").unwrap(), &[160], "the table").err().unwrap().to_string();
        assert!(e.contains("the table covers resolutions 160 only"), "{e}");
    }

    #[test]
    fn unknown_genes_and_choices_are_named() {
        let e = pin(spaces::space("fbnet-cifar100").unwrap(), &fixed(&[("kernel", "3")])).err().unwrap().to_string();
        assert!(e.contains("no gene `kernel`") && e.contains("ops"), "{e}");
        let e =
            pin(spaces::space("fbnet-cifar100").unwrap(), &fixed(&[("ops[2]", "k7_e6")])).err().unwrap().to_string();
        assert!(e.contains("`ops[2]` has no choice `k7_e6`") && e.contains("k3_e1"), "{e}");
    }
}
