//! A space with some genes held at one choice (a job's `fixed`, e.g. `{"r": "128"}` to
//! search OFA at one resolution, or `{"ops": "k3_e6"}` to hold every FBNet layer's op).
//! Pins are applied in `canonicalize`, which sampling, mutation and crossover all end
//! with, so every strategy only ever proposes members that honour them.

use anyhow::{bail, Result};
use serde_json::Value;
use spaces::ir::{Layer, Network};
use spaces::{ArchError, Gene, Genome, SearchSpace};
use std::collections::BTreeMap;

pub struct Pinned {
    inner: Box<dyn SearchSpace>,
    /// (gene index, choice index), in gene order.
    pins: Vec<(usize, u8)>,
    summary: String,
}

/// `fixed` maps a gene name (`r`, `ks[3]`) or a gene family (`ks` = every `ks[i]`) to a
/// choice label as `hwnas spaces` lists it. Returns `space` unchanged when nothing is fixed.
pub fn pin(space: Box<dyn SearchSpace>, fixed: &BTreeMap<String, String>) -> Result<Box<dyn SearchSpace>> {
    if fixed.is_empty() {
        return Ok(space);
    }
    let family = |g: &Gene| g.name.split('[').next().unwrap_or(&g.name).to_string();
    let mut pins = Vec::new();
    for (name, choice) in fixed {
        let genes: Vec<(usize, &Gene)> =
            space.genes().iter().enumerate().filter(|(_, g)| g.name == *name || family(g) == *name).collect();
        if genes.is_empty() {
            let mut names: Vec<String> = space.genes().iter().map(family).collect();
            names.dedup();
            bail!("fixed: space {} has no gene `{name}` (genes: {})", space.name(), names.join(", "));
        }
        for (i, g) in genes {
            let Some(c) = g.choices.iter().position(|c| c == choice) else {
                bail!("fixed: gene `{}` has no choice `{choice}` (choices: {})", g.name, g.choices.join(", "));
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
    fn unknown_genes_and_choices_are_named() {
        let e = pin(spaces::space("fbnet-cifar100").unwrap(), &fixed(&[("kernel", "3")])).err().unwrap().to_string();
        assert!(e.contains("no gene `kernel`") && e.contains("ops"), "{e}");
        let e =
            pin(spaces::space("fbnet-cifar100").unwrap(), &fixed(&[("ops[2]", "k7_e6")])).err().unwrap().to_string();
        assert!(e.contains("`ops[2]` has no choice `k7_e6`") && e.contains("k3_e1"), "{e}");
    }
}
