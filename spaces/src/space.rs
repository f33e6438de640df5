use crate::genome::{self, Gene, Genome};
use crate::ir::{Layer, Network};
use crate::layout::GeneLayout;
use crate::ArchError;
use serde_json::Value;
use std::collections::BTreeMap;

/// A search space: a product of genes, each member decoding to a [`Network`].
/// Object-safe, so strategies, predictors and the CLI work on any space by name.
pub trait SearchSpace: Send + Sync {
    fn name(&self) -> &str;
    /// One line on what the space is and where it comes from.
    fn description(&self) -> String;
    fn genes(&self) -> &[Gene];
    /// Normalises genes that do not affect the network (e.g. inactive OFA slots),
    /// so that equal networks have equal genomes.
    fn canonicalize(&self, _g: &mut Genome) {}
    /// Which genes `g` uses: a gene it does not (an inactive OFA slot) holds a placeholder
    /// that [`canonicalize`](Self::canonicalize) resets.
    fn active_genes(&self, g: &Genome) -> Vec<bool> {
        vec![true; g.0.len()]
    }
    /// The first gene of the group gene `i` mutates with (one draw per group, as OFA resamples
    /// a slot's kernel and expansion together); a gene is its own group by default.
    fn gene_group(&self, i: usize) -> usize {
        i
    }
    /// Number of distinct members (after canonicalisation).
    fn size(&self) -> f64 {
        self.genes().iter().map(|g| g.cardinality() as f64).product()
    }
    /// Input resolutions members can have (one for fixed-resolution spaces).
    fn resolutions(&self) -> Vec<u32>;
    /// The resolution a member runs at.
    fn resolution(&self, _g: &Genome) -> u32 {
        self.resolutions()[0]
    }
    /// The member as a network on a `resolution` x `resolution` input.
    fn network_at(&self, g: &Genome, resolution: u32) -> Network;
    fn network(&self, g: &Genome) -> Network {
        self.network_at(g, self.resolution(g))
    }
    /// The space's own JSON encoding of a member (e.g. OFA's `{ks, e, d, r}`).
    fn to_json(&self, g: &Genome) -> Value;
    /// Parses the space's JSON encoding; errors name the offending field. (Takes `&self`:
    /// the encoding is the space's own, e.g. OFA slot counts differ between spaces.)
    #[allow(clippy::wrong_self_convention)]
    fn from_json(&self, v: &Value) -> Result<Genome, ArchError>;
    /// Every distinct layer configuration a member can contain at `resolution`:
    /// the keys a per-layer lookup table needs.
    fn layer_table_at(&self, resolution: u32) -> Vec<Layer>;
    /// The smallest and largest members by MACs, for sanity checks and infeasibility messages.
    fn extremes(&self) -> (Genome, Genome);
    /// The gene whose choice index c gives the input resolution `resolutions()[c]`, if the
    /// resolution is a gene (OFA's `r`).
    fn resolution_gene(&self) -> Option<usize> {
        None
    }
    /// Which layers the genes control, for spaces built layer by layer ([`GeneLayout`]).
    fn gene_layout(&self) -> Option<GeneLayout> {
        None
    }
}

impl dyn SearchSpace + '_ {
    pub fn sample(&self, rng: &mut dyn rand::RngCore) -> Genome {
        genome::sample(self, rng)
    }
    pub fn mutate(&self, g: &Genome, prob: f64, rng: &mut dyn rand::RngCore) -> Genome {
        genome::mutate(self, g, prob, rng)
    }
    pub fn mutate_with(&self, g: &Genome, prob: f64, resolution_prob: f64, rng: &mut dyn rand::RngCore) -> Genome {
        genome::mutate_with(self, g, prob, resolution_prob, rng)
    }
    pub fn crossover(&self, a: &Genome, b: &Genome, rng: &mut dyn rand::RngCore) -> Genome {
        genome::crossover(self, a, b, rng)
    }
    pub fn check(&self, g: &Genome) -> Result<(), ArchError> {
        genome::check(self, g)
    }
    /// Parses JSON text; bad JSON and non-members are errors that name the field.
    pub fn parse(&self, text: &str) -> Result<Genome, ArchError> {
        let v: Value = serde_json::from_str(text).map_err(|e| ArchError::Json(e.to_string()))?;
        self.from_json(&v)
    }
    /// Distinct layers over several resolutions, deduplicated by key, in first-seen order.
    pub fn layer_table(&self, resolutions: &[u32]) -> Vec<Layer> {
        dedup_layers(resolutions.iter().flat_map(|&r| self.layer_table_at(r)))
    }
}

/// Keeps the first layer of each key, dropping untimed layers (dropout).
pub fn dedup_layers(layers: impl IntoIterator<Item = Layer>) -> Vec<Layer> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for l in layers {
        if l.is_timed() && seen.insert(l.key(), ()).is_none() {
            out.push(l);
        }
    }
    out
}
