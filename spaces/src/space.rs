use crate::genome::{self, Gene, Genome};
use crate::ir::{Layer, Network};
use crate::layout::GeneLayout;
use crate::ArchError;
use serde_json::Value;
use std::collections::BTreeMap;

/// The paper a space comes from. Supernets, differentiable searches, importers and exporters
/// dispatch on this, never on the space's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpaceFamily {
    /// Once-for-all supernets: elastic kernel, expansion, depth and resolution.
    Ofa(OfaBase),
    /// Single-Path NAS: MobileNetV2 superkernels.
    SinglePath,
    /// MnasNet's factorized hierarchical space.
    MnasNet,
    /// FBNet's layer-wise space (ImageNet or HW-NAS-Bench's CIFAR-100 macro).
    FbNet,
}

/// The network an OFA space's blocks are elastic versions of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OfaBase {
    MobileNetV3,
    ProxylessNas,
}

/// What one gene of a space chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeneRole {
    /// A block's depthwise kernel size (OFA `ks[i]`).
    Kernel,
    /// A block's expansion ratio (OFA `e[i]`).
    Expand,
    /// A stage's depth (OFA `d[i]`).
    Depth,
    /// The input resolution (OFA `r`).
    Resolution,
    /// The op of one searchable layer (FBNet `ops[i]`, Single-Path `ops[i]`).
    LayerOp,
    /// The head width (FBNet-A's 1504 or 1984).
    Head,
    /// Any other choice (MnasNet's per-block genes).
    Other,
}

/// A search space: a product of genes, each member decoding to a [`Network`].
/// Object-safe, so strategies, predictors and the CLI work on any space by name.
pub trait SearchSpace: Send + Sync {
    fn name(&self) -> &str;
    /// The paper the space comes from.
    fn family(&self) -> SpaceFamily;
    /// What gene `i` chooses.
    fn gene_role(&self, _i: usize) -> GeneRole {
        GeneRole::Other
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spaces::fbnet::FbNet;

    #[test]
    fn every_registered_space_says_its_family() {
        let families: Vec<SpaceFamily> = crate::all_spaces().iter().map(|s| s.family()).collect();
        use SpaceFamily::*;
        assert_eq!(
            families,
            [
                Ofa(OfaBase::MobileNetV3),
                Ofa(OfaBase::MobileNetV3),
                Ofa(OfaBase::ProxylessNas),
                SinglePath,
                MnasNet,
                FbNet,
                FbNet
            ]
        );
    }

    #[test]
    fn ofa_gene_roles_follow_the_gene_names() {
        for name in ["ofa-mbv3-w1.0", "ofa-proxyless-w1.3"] {
            let space = crate::space(name).unwrap();
            for (i, gene) in space.genes().iter().enumerate() {
                let expected = match gene.family() {
                    "ks" => GeneRole::Kernel,
                    "e" => GeneRole::Expand,
                    "d" => GeneRole::Depth,
                    "r" => GeneRole::Resolution,
                    other => panic!("{name}: unexpected gene {other}"),
                };
                assert_eq!(space.gene_role(i), expected, "{name} gene {}", gene.name);
            }
        }
    }

    #[test]
    fn fbnet_has_one_searchable_layer_per_op_gene() {
        for name in ["fbnet", "fbnet-cifar100"] {
            let space = crate::space(name).unwrap();
            let (small, large) = space.extremes();
            let op_genes = (0..space.genes().len()).filter(|&i| space.gene_role(i) == GeneRole::LayerOp).count();
            for g in [small, large] {
                let searchable = space.network(&g).layers.iter().filter(|l| FbNet::is_searchable(l)).count();
                assert_eq!(searchable, op_genes, "{name}");
            }
        }
    }
}
