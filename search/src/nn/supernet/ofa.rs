//! The once-for-all supernet (Cai et al., ICLR 2020; mit-han-lab/once-for-all): one set of
//! weights at the largest configuration (k7, e6, depth 4), from which every sub-network
//! takes views without copying:
//! - elastic kernel: the centre of the 7x7 depthwise kernel through learned per-layer
//!   transforms (25x25 for 7->5, then 9x9 for 5->3, identity-initialised, shared by channels);
//! - elastic expansion: the leading `mid` channels of expand/dw/SE/project weights, after
//!   [`sort_channels`](OfaSupernet::sort_channels) put the most important ones first;
//! - elastic depth: the first d blocks of each stage (the IR network just omits the rest);
//! - elastic resolution: the network runs at whatever size the batch has.

use super::super::layers::{self, Ctx, LayerTensors};
use super::super::model::{Model, BN_MOMENTUM};
use crate::nn::NnError;
use rand::Rng;
use spaces::ir::{Layer, Network, Op};
use spaces::{GeneRole, Genome, SearchSpace};
use std::collections::HashMap;
use tch::nn::Path;
use tch::{Kind, Tensor};

/// Progressive-shrinking phases in training order (OFA §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The largest network only (OFA trains it first, then shrinks).
    Full,
    /// Elastic kernel size; depth and expansion at their maximum.
    Kernel,
    /// Elastic depth: first {3, 4}, then {2, 3, 4}.
    Depth { all: bool },
    /// Elastic expansion: first {4, 6}, then {3, 4, 6}; everything else elastic too.
    Expand { all: bool },
}

impl Phase {
    /// The phase at training progress `t` in [0, 1], in proportion to OFA's published
    /// schedule: 180 epochs full, 120 kernel, 25 + 120 depth, 25 + 120 expansion.
    pub fn at(t: f64) -> Phase {
        let cut = [180.0, 300.0, 325.0, 445.0, 470.0].map(|e| e / 590.0);
        match cut.iter().position(|&c| t < c) {
            Some(0) => Phase::Full,
            Some(1) => Phase::Kernel,
            Some(2) => Phase::Depth { all: false },
            Some(3) => Phase::Depth { all: true },
            Some(4) => Phase::Expand { all: false },
            _ => Phase::Expand { all: true },
        }
    }

    /// Allowed choice indices of the kernel, expansion and depth genes (choices {3,5,7},
    /// {3,4,6}, {2,3,4}).
    fn allowed(self) -> [&'static [u8]; 3] {
        let (all, top2, max): (&[u8], &[u8], &[u8]) = (&[0, 1, 2], &[1, 2], &[2]);
        match self {
            Phase::Full => [max, max, max],
            Phase::Kernel => [all, max, max],
            Phase::Depth { all: false } => [all, max, top2],
            Phase::Depth { all: true } => [all, max, all],
            Phase::Expand { all: false } => [all, top2, all],
            Phase::Expand { all: true } => [all, all, all],
        }
    }
}

/// Which member of a phase's sub-space to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Largest,
    Smallest,
    Random,
}

pub struct OfaSupernet {
    pub space: Box<dyn SearchSpace>,
    /// The largest member at 224: names and full shapes of every tensor.
    pub full: Network,
    tensors: HashMap<String, LayerTensors>,
    /// Per block: (7->5, 5->3) kernel transformation matrices.
    matrices: HashMap<String, (Tensor, Tensor)>,
    pub active: Genome,
    pub bn_momentum: f64,
}

impl OfaSupernet {
    /// Creates the supernet of an `ofa-*` space under `root`.
    pub fn new(root: &Path, space_name: &str) -> Result<OfaSupernet, NnError> {
        if !spaces::is_family(space_name, spaces::ofa) {
            return Err(NnError::NotOfa(space_name.into()));
        }
        let space = spaces::space(space_name)?;
        let (_, largest) = space.extremes();
        let full = space.network_at(&largest, 224);
        let mut tensors = HashMap::new();
        let mut matrices = HashMap::new();
        for layer in &full.layers {
            tensors.insert(layer.name.clone(), layers::layer_vars(root, layer));
            if matches!(&layer.op, Op::MbConv(m) if m.kernel == 7) {
                let eye = |n: i64, what: &str| {
                    let name = format!("{}.dw.{what}", layer.name);
                    let (p, last) = layers::nested(root, &name);
                    p.var_copy(last, &Tensor::eye(n, (Kind::Float, root.device())))
                };
                matrices.insert(layer.name.clone(), (eye(25, "7to5_matrix"), eye(9, "5to3_matrix")));
            }
        }
        Ok(OfaSupernet { space, full, tensors, matrices, active: largest, bn_momentum: BN_MOMENTUM })
    }

    /// Samples a member of the phase's sub-space; the resolution gene is left at its
    /// first choice (the trainer picks the batch resolution).
    pub fn sample(&self, phase: Phase, pick: Pick, rng: &mut impl Rng) -> Genome {
        let [ks, e, d] = phase.allowed();
        let mut g = Genome(
            self.space
                .genes()
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    let allowed: &[u8] = match self.space.gene_role(i) {
                        GeneRole::Kernel => ks,
                        GeneRole::Expand => e,
                        GeneRole::Depth => d,
                        _ => return 0,
                    };
                    match pick {
                        Pick::Largest => allowed[allowed.len() - 1],
                        Pick::Smallest => allowed[0],
                        Pick::Random => allowed[rng.random_range(0..allowed.len())],
                    }
                })
                .collect(),
        );
        self.space.canonicalize(&mut g);
        g
    }

    /// The active sub-network at `resolution`.
    pub fn active_network(&self, resolution: u32) -> Network {
        self.space.network_at(&self.active, resolution)
    }

    /// The kernel of `layer`'s depthwise conv at size `k`: OFA's chain of centre crops,
    /// each passed through the layer's transformation matrix (`F.linear(crop, M)`).
    fn kernel(&self, layer: &str, w: &Tensor, k: i64) -> Tensor {
        let (c, full) = (w.size()[0], w.size()[2]);
        let mut f = w.shallow_clone();
        let mut src = full;
        while src > k {
            let tgt = src - 2;
            let m = &self.matrices[layer];
            let m = if src == 7 { &m.0 } else { &m.1 };
            let crop = f.narrow(2, 1, tgt).narrow(3, 1, tgt).contiguous().view([c, tgt * tgt]);
            f = crop.linear::<&Tensor>(m, None).view([c, 1, tgt, tgt]);
            src = tgt;
        }
        f
    }

    /// Views of the shared weights with the shapes `layer` (a layer of a sub-network) needs.
    pub fn layer_tensors(&self, layer: &Layer) -> LayerTensors {
        let full = &self.tensors[&layer.name];
        layer
            .param_specs()
            .into_iter()
            .map(|spec| {
                let part = layers::part_name(&layer.name, &spec.name).to_string();
                let mut t = full[&part].shallow_clone();
                let dims = if part == "dw.conv.weight" { 2 } else { spec.shape.len() };
                for (d, &n) in spec.shape.iter().enumerate().take(dims) {
                    if (n as i64) < t.size()[d] {
                        t = t.narrow(d as i64, 0, n as i64);
                    }
                }
                if part == "dw.conv.weight" {
                    t = self.kernel(&layer.name, &t, spec.shape[2] as i64);
                }
                (part, t)
            })
            .collect()
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let net = self.active_network(x.size()[2] as u32);
        let ctx = Ctx { train, bn_eps: net.bn_eps, bn_momentum: self.bn_momentum };
        let mut y = x.shallow_clone();
        for layer in &net.layers {
            y = layers::forward(layer, &self.layer_tensors(layer), &y, &ctx);
        }
        y
    }

    /// A stand-alone model of sub-network `g` at `resolution` under `root`, holding copies of
    /// the weights the supernet would use (transformed kernels, leading channels, BN stats).
    pub fn extract(&self, root: &Path, g: &Genome, resolution: u32) -> Model {
        let net = self.space.network_at(g, resolution);
        let mut model = Model::new(root, &net);
        model.bn_momentum = self.bn_momentum;
        tch::no_grad(|| {
            for (layer, dst) in net.layers.iter().zip(&mut model.tensors) {
                for (part, src) in self.layer_tensors(layer) {
                    dst.get_mut(&part).expect("same specs").copy_(&src);
                }
            }
        });
        model
    }

    /// OFA's `re_organize_middle_weights`: per block, sort the hidden channels by the L1
    /// norm of the project conv's input weights (descending) and permute expand, dw, BN and
    /// SE accordingly; then sort the SE hidden units by the L1 norm of SE-expand weights.
    /// The function computed by the largest network is unchanged, and repeated calls are
    /// no-ops, so it is safe to call on every entry to the expansion phase.
    pub fn sort_channels(&mut self) {
        let _guard = tch::no_grad_guard();
        for layer in &self.full.layers {
            let Op::MbConv(m) = &layer.op else { continue };
            if !m.expand {
                continue;
            }
            let w = self.tensors.get_mut(&layer.name).expect("block tensors");
            let permute = |w: &mut LayerTensors, name: &str, dim: i64, idx: &Tensor| {
                let t = w.get_mut(name).expect("tensor of an MBConv");
                let sorted = t.index_select(dim, idx);
                t.copy_(&sorted);
            };
            let importance = w["project.conv.weight"].abs().sum_dim_intlist(&[0i64, 2, 3][..], false, Kind::Float);
            let order = importance.argsort_stable(true, 0, true);
            permute(w, "project.conv.weight", 1, &order);
            for n in ["dw.conv.weight", "dw.bn.weight", "dw.bn.bias", "dw.bn.running_mean", "dw.bn.running_var"] {
                permute(w, n, 0, &order);
            }
            if m.se.is_some() {
                permute(w, "se.expand.weight", 0, &order);
                permute(w, "se.expand.bias", 0, &order);
                permute(w, "se.reduce.weight", 1, &order);
                let se_imp = w["se.expand.weight"].abs().sum_dim_intlist(&[0i64, 2, 3][..], false, Kind::Float);
                let se_order = se_imp.argsort_stable(true, 0, true);
                permute(w, "se.expand.weight", 1, &se_order);
                permute(w, "se.reduce.weight", 0, &se_order);
                permute(w, "se.reduce.bias", 0, &se_order);
            }
            for n in ["expand.bn.weight", "expand.bn.bias", "expand.bn.running_mean", "expand.bn.running_var"] {
                permute(w, n, 0, &order);
            }
            permute(w, "expand.conv.weight", 0, &order);
        }
    }
}
