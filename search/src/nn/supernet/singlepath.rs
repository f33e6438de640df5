//! Single-Path NAS superkernels (Stamoulis et al., 2019; dstamoulis/single-path-nas):
//! each searchable layer holds one 5x5 depthwise kernel over the full e6 width, and three
//! trainable thresholds decide — through straight-through indicators — whether the outer
//! 5x5 ring, the second half of the channels (e6 vs e3), and the layer itself (skip) are
//! used. Only the depthwise kernel is masked; the 1x1 convs always run at full width.
//! See `shared/reference/spaces.md` §3.

use super::super::layers::{self, Ctx, LayerTensors};
use super::super::model::{Model, BN_MOMENTUM};
use spaces::ir::Network;
use spaces::spaces::singlepath::{SinglePath, KE, SEARCHABLE};
use spaces::{Genome, SearchSpace};
use std::cell::RefCell;
use tch::nn::Path;
use tch::{Kind, Tensor};

/// The three indicator values of one searchable layer from the latest forward pass
/// (scalar tensors: hard 0/1 forward values that carry sigmoid gradients).
#[derive(Debug)]
pub struct Indicators {
    /// Use the outer ring of the 5x5 kernel (k5 instead of k3).
    pub d5: Tensor,
    /// Use the layer at all (1 on layers that cannot be skipped).
    pub d50: Tensor,
    /// Use the second half of the channels (e6 instead of e3).
    pub d100: Tensor,
}

/// Thresholds of one searchable layer (scalars, initialised to 0).
pub struct Thresholds {
    pub t5x5: Tensor,
    pub t50c: Tensor,
    pub t100c: Tensor,
}

pub struct SinglePathSupernet {
    /// The all-k5e6 network at 224 (the superkernel layout).
    pub full: Network,
    tensors: Vec<LayerTensors>,
    pub thresholds: Vec<Thresholds>,
    /// Overrides the indicators (d5, d50, d100) per searchable layer, e.g. to run one member.
    pub forced: Option<Vec<[bool; 3]>>,
    /// Keep-probability of dropout on the indicator values (0.6 for the first 5 epochs of
    /// the paper's search; 1 disables it).
    pub indicator_keep: f64,
    last: RefCell<Vec<Indicators>>,
    pub bn_momentum: f64,
}

/// Ind(x) = stopgrad(1(x >= 0) - sigmoid(x)) + sigmoid(x): a hard step forward, sigmoid' backward.
pub fn indicator(x: &Tensor) -> Tensor {
    let s = x.sigmoid();
    (x.ge(0.0).to_kind(Kind::Float) - &s).detach() + s
}

impl SinglePathSupernet {
    pub fn new(root: &Path) -> SinglePathSupernet {
        let full = SinglePath::default().network_at(&Genome(vec![3; SEARCHABLE]), 224);
        let tensors = full.layers.iter().map(|l| layers::layer_vars(root, l)).collect();
        let thresholds = (1..=SEARCHABLE)
            .map(|i| {
                let p = root.sub(format!("layer{i}")).sub("dw");
                Thresholds { t5x5: p.zeros("t5x5", &[]), t50c: p.zeros("t50c", &[]), t100c: p.zeros("t100c", &[]) }
            })
            .collect();
        SinglePathSupernet {
            full,
            tensors,
            thresholds,
            forced: None,
            indicator_keep: 1.0,
            last: RefCell::new(Vec::new()),
            bn_momentum: BN_MOMENTUM,
        }
    }

    /// Searchable layer index (0-based) of supernet layer `name` (`layer1`..`layer20`).
    fn searchable(name: &str) -> Option<usize> {
        let i: usize = name.strip_prefix("layer")?.parse().ok()?;
        (1..=SEARCHABLE).contains(&i).then(|| i - 1)
    }

    /// The masked superkernel of searchable layer `i` and its indicators.
    fn superkernel(&self, i: usize, w: &Tensor, train: bool) -> (Tensor, Indicators) {
        let dev = w.device();
        let (mid, k) = (w.size()[0], w.size()[2]);
        let inner = Tensor::zeros([1, 1, k, k], (Kind::Float, dev));
        let _ = inner.narrow(2, 1, k - 2).narrow(3, 1, k - 2).fill_(1.0);
        let first_half = Tensor::zeros([mid, 1, 1, 1], (Kind::Float, dev));
        let _ = first_half.narrow(0, 0, mid / 2).fill_(1.0);
        let outer: Tensor = 1.0 - &inner;
        let (w3, ring): (Tensor, Tensor) = (w * &inner, w * outer);
        let t = &self.thresholds[i];
        let forced = self.forced.as_ref().map(|f| f[i]);
        let ind = |x: Tensor, which: usize| -> Tensor {
            let d = match forced {
                // Forced values still carry the sigmoid gradient of the norm/threshold gap.
                Some(f) => {
                    let s = x.sigmoid();
                    (Tensor::from(f[which] as u8 as f32).to_device(dev) - &s).detach() + s
                }
                None => indicator(&x),
            };
            if train && self.indicator_keep < 1.0 {
                d.dropout(1.0 - self.indicator_keep, true) * self.indicator_keep
            } else {
                d
            }
        };
        let d5 = ind(ring.norm() - &t.t5x5, 0);
        let wk = w3 + &d5 * ring;
        let second: Tensor = 1.0 - &first_half;
        let (lo, hi): (Tensor, Tensor) = (&wk * &first_half, &wk * second);
        let d100 = ind(hi.norm() - &t.t100c, 2);
        let d50 =
            if SinglePath::skippable(i) { ind(lo.norm() - &t.t50c, 1) } else { Tensor::from(1f32).to_device(dev) };
        let kernel = &d50 * (lo + &d100 * hi);
        (kernel, Indicators { d5, d50, d100 })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let ctx = Ctx { train, bn_eps: self.full.bn_eps, bn_momentum: self.bn_momentum };
        let mut y = x.shallow_clone();
        let mut inds = Vec::with_capacity(SEARCHABLE);
        for (layer, w) in self.full.layers.iter().zip(&self.tensors) {
            y = match Self::searchable(&layer.name) {
                Some(i) => {
                    let (kernel, ind) = self.superkernel(i, &w["dw.conv.weight"], train);
                    let mut w = w.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect::<LayerTensors>();
                    w.insert("dw.conv.weight".into(), kernel);
                    let out = layers::forward(layer, &w, &y, &ctx);
                    // d50 = 0 leaves only the residual: the branch (out - y) is scaled away, so
                    // a decoded `skip` is exactly the identity [inferred; the paper zeroes the layer].
                    let out = if SinglePath::skippable(i) { &y + &ind.d50 * (out - &y) } else { out };
                    inds.push(ind);
                    out
                }
                None => layers::forward(layer, w, &y, &ctx),
            };
        }
        *self.last.borrow_mut() = inds;
        y
    }

    /// The indicators of the latest forward pass, one per searchable layer — the inputs of
    /// the differentiable runtime model R (spaces.md §3).
    pub fn indicators(&self) -> std::cell::Ref<'_, Vec<Indicators>> {
        self.last.borrow()
    }

    /// The member the current weights and thresholds select (hard indicators, no dropout).
    pub fn decode(&self) -> Genome {
        let on = |t: &Tensor| t.double_value(&[]) >= 0.5;
        tch::no_grad(|| {
            let mut ops = vec![0u8; SEARCHABLE];
            for (layer, w) in self.full.layers.iter().zip(&self.tensors) {
                if let Some(i) = Self::searchable(&layer.name) {
                    let (_, d) = self.superkernel(i, &w["dw.conv.weight"], false);
                    ops[i] = Self::op_index(on(&d.d5), on(&d.d50), on(&d.d100));
                }
            }
            Genome(ops)
        })
    }

    /// Moves every threshold to half the relevant norm below (indicator on) or above (off)
    /// it, so the hard indicators select member `g`.
    pub fn set_thresholds_for(&mut self, g: &Genome) {
        let settings = Self::settings_for(g);
        let _guard = tch::no_grad_guard();
        for (layer, w) in self.full.layers.iter().zip(&self.tensors) {
            let Some(i) = Self::searchable(&layer.name) else { continue };
            let [d5, d50, d100] = settings[i];
            let w = &w["dw.conv.weight"];
            let k = w.size()[2];
            let inner = Tensor::zeros([1, 1, k, k], (Kind::Float, w.device()));
            let _ = inner.narrow(2, 1, k - 2).narrow(3, 1, k - 2).fill_(1.0);
            let outer: Tensor = 1.0 - &inner;
            let ring: Tensor = w * outer;
            let wk = w * &inner + (d5 as u8 as f64) * ring.shallow_clone();
            let half = w.size()[0] / 2;
            let set = |t: &Tensor, norm: Tensor, on: bool| {
                let n = norm.double_value(&[]);
                let margin = 0.5 * n + 1e-3;
                let _ = t.shallow_clone().fill_(if on { n - margin } else { n + margin });
            };
            let t = &self.thresholds[i];
            set(&t.t5x5, ring.norm(), d5);
            set(&t.t50c, wk.narrow(0, 0, half).norm(), d50);
            set(&t.t100c, wk.narrow(0, half, half).norm(), d100);
        }
    }

    /// The `singlepath` op index for indicator values: skip, else k5 if d5 and e6 if d100.
    pub fn op_index(d5: bool, d50: bool, d100: bool) -> u8 {
        if !d50 {
            return 4;
        }
        let ke = (if d5 { 5 } else { 3 }, if d100 { 6 } else { 3 });
        KE.iter().position(|&x| x == ke).expect("k and e in KE") as u8
    }

    /// Indicator settings that select member `g` (for [`forced`](Self::forced)).
    pub fn settings_for(g: &Genome) -> Vec<[bool; 3]> {
        g.0.iter()
            .map(|&o| match KE.get(o as usize) {
                Some(&(k, e)) => [k == 5, true, e == 6],
                None => [false, false, false],
            })
            .collect()
    }

    /// A stand-alone model of member `g`: the expand/dw/project weights of the leading e·C
    /// channels and the centre of the superkernel, as the superkernel encodes them. Members
    /// built of k3e6, k5e6 and skip compute exactly what the supernet computes (tested); e3
    /// members do not, since the supernet keeps its 1x1 convs at full width during the
    /// search (the masked channels still pass BN shifts on), which is why the search
    /// re-calibrates BN before evaluating an extracted member; the paper retrains it.
    pub fn extract(&self, root: &Path, g: &Genome, resolution: u32) -> Model {
        let net = SinglePath::default().network_at(g, resolution);
        let mut model = Model::new(root, &net);
        model.bn_momentum = self.bn_momentum;
        tch::no_grad(|| {
            for (layer, dst) in net.layers.iter().zip(&mut model.tensors) {
                let i = self.full.layers.iter().position(|l| l.name == layer.name).expect("layer of the supernet");
                for (part, t) in dst.iter_mut() {
                    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                    t.copy_(&layers::slice_to(&self.tensors[i][part], &shape));
                }
            }
        });
        model
    }

    /// The differentiable runtime of spaces.md §3 from the latest forward pass's indicators:
    /// R = constant + Σ_l d50·(R_l[k5e3] + d100·(R_l[k5e6] − R_l[k5e3]))·(ρ_l + (1 − ρ_l)·d5),
    /// ρ_l = R_l[k3e6] / R_l[k5e6]; `lut[l]` = (R_l[k5e3], R_l[k5e6], R_l[k3e6]) of searchable layer l.
    pub fn runtime(&self, lut: &[[f64; 3]], constant: f64) -> Tensor {
        let inds = self.indicators();
        assert_eq!(lut.len(), inds.len(), "one LUT row per searchable layer (run a forward pass first)");
        let start = Tensor::from(constant as f32).to_device(inds[0].d5.device());
        inds.iter().zip(lut).fold(start, |r, (d, &[k5e3, k5e6, k3e6])| {
            let rho = k3e6 / k5e6;
            let width = (&d.d100 * (k5e6 - k5e3)) + k5e3;
            let kernel = (&d.d5 * (1.0 - rho)) + rho;
            r + &d.d50 * width * kernel
        })
    }

    /// Every trainable threshold (for a separate learning rate or inspection).
    pub fn threshold_tensors(&self) -> Vec<&Tensor> {
        self.thresholds.iter().flat_map(|t| [&t.t5x5, &t.t50c, &t.t100c]).collect()
    }
}
