//! FBNet's differentiable supernet (Wu et al., CVPR 2019): every searchable layer runs all
//! 9 candidate ops and mixes them with Gumbel-softmax samples of architecture logits θ at
//! temperature τ. The caller adds the latency term from the returned probabilities
//! (Σ_i p_{l,i}·LUT(l, i)); the derived architecture is the per-layer argmax of θ.

use super::super::layers::{self, Ctx, LayerTensors};
use super::super::model::{Model, BN_MOMENTUM};
use crate::nn::NnError;
use rand::Rng;
use spaces::ir::{Layer, Network, Op};
use spaces::spaces::fbnet::{FbNet, LAYERS, OPS};
use spaces::{Genome, SearchSpace, SpaceFamily};
use tch::nn::Path;
use tch::{Kind, Tensor};

pub struct FbNetSupernet {
    pub space: Box<dyn SearchSpace>,
    /// Member with every layer `k3_e1`: supplies stem, head and classifier.
    base: Network,
    base_tensors: Vec<LayerTensors>,
    /// Per searchable layer, the 9 candidate ops (named `{layer}.{op}`) with their weights.
    candidates: Vec<Vec<(Layer, LayerTensors)>>,
    /// Architecture logits θ, [22, 9], initialised to 0 (uniform).
    pub theta: Tensor,
    /// Gumbel-softmax temperature τ (paper: 5.0, ×exp(−0.045) per epoch).
    pub temperature: f64,
    /// Head width gene (ImageNet: 0 = 1984, 1 = 1504).
    head_gene: Option<u8>,
    pub bn_momentum: f64,
}

impl FbNetSupernet {
    /// Name of θ in the VarStore (kept out of the weight optimizer).
    pub const THETA: &'static str = "arch.theta";

    pub fn new(root: &Path, space_name: &str) -> Result<FbNetSupernet, NnError> {
        if !spaces::is_family(space_name, |f| f == SpaceFamily::FbNet) {
            return Err(NnError::NotFbNet(space_name.into()));
        }
        let space = spaces::space(space_name)?;
        let head_gene = (space.genes().len() > LAYERS).then_some(0u8);
        let mut genes = vec![0u8; LAYERS];
        genes.extend(head_gene);
        let base = space.network_at(&Genome(genes), space.resolutions()[0]);
        let mut base_tensors = Vec::new();
        let mut candidates = Vec::new();
        for layer in &base.layers {
            if FbNet::is_searchable(layer) {
                let Op::MbConv(m) = &layer.op else { return Err(NnError::NotK3E1(layer.name.clone())) };
                let ops = (0..OPS.len())
                    .map(|j| {
                        let op = FbNet::layer_op(layer.input, m.out, m.stride, j);
                        let name = format!("{}.{}", layer.name, OPS[j]);
                        let cand = Layer { name, input: layer.input, output: layer.output, op };
                        let w = layers::layer_vars(root, &cand);
                        (cand, w)
                    })
                    .collect();
                candidates.push(ops);
                base_tensors.push(LayerTensors::new());
            } else {
                base_tensors.push(layers::layer_vars(root, layer));
            }
        }
        let theta = root.sub("arch").zeros("theta", &[LAYERS as i64, OPS.len() as i64]);
        Ok(FbNetSupernet {
            space,
            base,
            base_tensors,
            candidates,
            theta,
            temperature: 5.0,
            head_gene,
            bn_momentum: BN_MOMENTUM,
        })
    }

    /// Gumbel-softmax sample of the mixing weights: softmax((θ + g) / τ), g ~ Gumbel(0, 1).
    pub fn gumbel_mask(&self) -> Tensor {
        let u = self.theta.rand_like().clamp(1e-10, 1.0 - 1e-7);
        let g = -(-u.log()).log();
        ((&self.theta + g) / self.temperature).softmax(-1, Kind::Float)
    }

    /// Logits and softmax(θ) [22, 9]. Training mixes all ops with a Gumbel sample;
    /// evaluation runs only the argmax op of each layer (the derived architecture).
    pub fn forward_with_probs(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let ctx = Ctx { train, bn_eps: self.base.bn_eps, bn_momentum: self.bn_momentum };
        let mask = if train { Some(self.gumbel_mask()) } else { None };
        let arg = self.derive();
        let mut y = x.shallow_clone();
        let mut l = 0;
        for (layer, w) in self.base.layers.iter().zip(&self.base_tensors) {
            y = if FbNet::is_searchable(layer) {
                let cands = &self.candidates[l];
                let out = match &mask {
                    Some(m) => cands
                        .iter()
                        .enumerate()
                        .map(|(j, (c, cw))| layers::forward(c, cw, &y, &ctx) * m.get(l as i64).get(j as i64))
                        .reduce(|a, b| a + b)
                        .expect("9 candidates"),
                    None => {
                        let (c, cw) = &cands[arg.0[l] as usize];
                        layers::forward(c, cw, &y, &ctx)
                    }
                };
                l += 1;
                out
            } else {
                layers::forward(layer, w, &y, &ctx)
            };
        }
        (y, self.theta.softmax(-1, Kind::Float))
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_with_probs(x, train).0
    }

    /// Expected latency Σ_l Σ_i p_{l,i}·LUT[l][i] of per-layer op probabilities `probs` [22, 9]
    /// (from [`forward_with_probs`](Self::forward_with_probs)); differentiable in θ.
    pub fn expected_latency(probs: &Tensor, lut: &[[f64; 9]]) -> Tensor {
        let flat: Vec<f32> = lut.iter().flatten().map(|&v| v as f32).collect();
        let lut = Tensor::from_slice(&flat).view([lut.len() as i64, 9]).to_device(probs.device());
        (probs * lut).sum(Kind::Float)
    }

    /// The argmax architecture of θ as a member of the space.
    pub fn derive(&self) -> Genome {
        let idx = self.theta.argmax(-1, false);
        let mut g: Vec<u8> = (0..LAYERS as i64).map(|l| idx.int64_value(&[l]) as u8).collect();
        g.extend(self.head_gene);
        Genome(g)
    }

    /// A member drawn from the architecture distribution: layer l's op ~ softmax(θ_l)
    /// (FBNet samples its final architectures this way instead of taking the argmax).
    pub fn sample(&self, rng: &mut impl Rng) -> Genome {
        let probs = tch::no_grad(|| self.theta.softmax(-1, Kind::Double).to_device(tch::Device::Cpu));
        let mut g: Vec<u8> = (0..LAYERS as i64)
            .map(|l| {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                for j in 0..OPS.len() {
                    acc += probs.double_value(&[l, j as i64]);
                    if u < acc {
                        return j as u8;
                    }
                }
                // u within rounding of 1: the last op with non-zero probability.
                (0..OPS.len()).rev().find(|&j| probs.double_value(&[l, j as i64]) > 0.0).unwrap_or(0) as u8
            })
            .collect();
        g.extend(self.head_gene);
        Genome(g)
    }

    /// A stand-alone model of member `g` with copies of the chosen candidates' weights.
    pub fn extract(&self, root: &Path, g: &Genome) -> Model {
        let net = self.space.network_at(g, self.base.resolution());
        let mut model = Model::new(root, &net);
        model.bn_momentum = self.bn_momentum;
        let mut l = 0;
        tch::no_grad(|| {
            for (layer, dst) in net.layers.iter().zip(&mut model.tensors) {
                let src = if FbNet::is_searchable(layer) {
                    l += 1;
                    &self.candidates[l - 1][g.0[l - 1] as usize].1
                } else {
                    let i = self.base.layers.iter().position(|b| b.name == layer.name).expect("fixed layer");
                    &self.base_tensors[i]
                };
                for (part, t) in dst.iter_mut() {
                    t.copy_(&src[part]);
                }
            }
        });
        model
    }
}
