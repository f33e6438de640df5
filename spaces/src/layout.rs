//! Which layers a space's genes control, for spaces built layer by layer (OFA): the
//! network of a member is a fixed sequence of positions, each holding one layer chosen by
//! a few genes (or a fixed layer), some switched off by a depth gene. A per-layer cost
//! model can then be compiled per gene choice, and a member priced without building its
//! network (search's per-gene latency table).

use crate::genome::Genome;
use crate::ir::{Layer, Network};

/// One position of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Position {
    /// (gene, cardinality) pairs whose choices pick the layer, in mixed radix (first gene most
    /// significant); empty for a fixed layer.
    pub genes: Vec<(usize, usize)>,
    /// The position holds a layer only when this gene's choice index is at least this (OFA's
    /// elastic depth); `None`: always present.
    pub present_if: Option<(usize, u8)>,
}

impl Position {
    /// Whether member `g` has a layer here.
    #[inline]
    pub fn present(&self, g: &Genome) -> bool {
        self.present_if.is_none_or(|(gene, min)| g.0[gene] >= min)
    }

    /// The index of `g`'s candidate layer here.
    #[inline]
    pub fn choice(&self, g: &Genome) -> usize {
        self.genes.iter().fold(0, |acc, &(gene, card)| acc * card + g.0[gene] as usize)
    }

    /// Candidate layers at this position.
    pub fn candidates(&self) -> usize {
        self.genes.iter().map(|&(_, c)| c).product()
    }
}

/// How members' layers follow from their genes.
///
/// Contract: for every member `g` at resolution choice `ri` (`resolutions[ri]`), the layers
/// of `space.network(g)` are, in order, `layers[ri][p][positions[p].choice(g)]` for every
/// position `p` present in `g`.
#[derive(Clone, Debug)]
pub struct GeneLayout {
    /// The gene whose choice index selects `resolutions` (None: one fixed resolution).
    pub resolution_gene: Option<usize>,
    pub resolutions: Vec<u32>,
    pub positions: Vec<Position>,
    /// `layers[ri][p][c]`: the candidate layers of each position at each resolution.
    pub layers: Vec<Vec<Vec<Layer>>>,
}

impl GeneLayout {
    /// The resolution index of member `g`.
    #[inline]
    pub fn resolution_index(&self, g: &Genome) -> usize {
        self.resolution_gene.map_or(0, |i| g.0[i] as usize)
    }

    /// The network's layers of member `g` as the layout gives them (for checking the contract).
    pub fn layers_of(&self, g: &Genome) -> Vec<&Layer> {
        let by_pos = &self.layers[self.resolution_index(g)];
        self.positions.iter().zip(by_pos).filter(|(p, _)| p.present(g)).map(|(p, c)| &c[p.choice(g)]).collect()
    }

    /// Whether `net` is what the layout gives for `g` (same layers, names included, in order).
    pub fn reproduces(&self, g: &Genome, net: &Network) -> bool {
        let ours = self.layers_of(g);
        ours.len() == net.layers.len() && ours.iter().zip(&net.layers).all(|(a, b)| *a == b)
    }

    /// The layout with the resolution gene restricted to the choices `keep` (indices into
    /// `resolutions`, in the restricted gene's order).
    pub fn restrict_resolutions(&self, keep: &[usize]) -> GeneLayout {
        GeneLayout {
            resolution_gene: self.resolution_gene,
            resolutions: keep.iter().map(|&i| self.resolutions[i]).collect(),
            positions: self.positions.clone(),
            layers: keep.iter().map(|&i| self.layers[i].clone()).collect(),
        }
    }
}
