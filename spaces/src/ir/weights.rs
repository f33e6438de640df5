//! Concrete tensors for a [`Network`]: the values behind [`Layer::param_specs`]
//! names, shared by the tch modules, checkpoints and the TFLite/ONNX writers.
//!
//! Stored as safetensors (the format PyTorch, tch and the HF tools all read), so a
//! checkpoint written here opens anywhere and vice versa.

use super::{Act, Conv, Layer, MbConv, Network, Op, Shortcut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;

/// Why a set of weights cannot be used for a network, read or written.
/// Every message names the offending tensor or file.
#[derive(Debug, Error)]
pub enum WeightsError {
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("tensor `{name}` has shape {found:?}, but the network needs {expected:?}")]
    Shape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has {found} values, but its shape {shape:?} holds {expected}")]
    Length { name: String, shape: Vec<usize>, expected: usize, found: usize },
    #[error("tensor `{0}` is not part of the network")]
    Unexpected(String),
    #[error("tensor `{name}` has dtype {dtype:?}; only F32 and F64 are supported")]
    Dtype { name: String, dtype: Dtype },
    #[error("not a safetensors file: {0}")]
    Format(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// One tensor: its shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Tensor { shape, data }
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

/// Named tensors, ordered by name (so iteration and files are deterministic).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Weights {
    tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a tensor; the data must fill the shape.
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Result<(), WeightsError> {
        let name = name.into();
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(WeightsError::Length { name, shape, expected, found: data.len() });
        }
        self.tensors.insert(name, Tensor { shape, data });
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// The tensor `name`, or an error naming it.
    pub fn tensor(&self, name: &str) -> Result<&Tensor, WeightsError> {
        self.tensors.get(name).ok_or_else(|| WeightsError::Missing(name.to_string()))
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Deterministic random weights for every tensor of `net`, seeded by `seed`.
    ///
    /// Chosen so that activations stay of order one through any depth (the files
    /// written from these weights are compared across runtimes in absolute terms):
    /// - conv and linear weights are normal with std √(g/fan_in), g = 2 (He) when an
    ///   activation follows and 1 (LeCun) otherwise, so second moments are preserved;
    /// - every BN has non-trivial statistics: running mean and β ~ N(0, 0.05), running
    ///   variance ∈ [0.5, 1.5], and γ = √(σ²+ε)·r with r ∈ [0.8, 1.2], so that the folded
    ///   scale γ/√(σ²+ε) is r (the BN neither inflates nor shrinks the signal on average);
    /// - the last BN of a residual branch has r ∈ [0.2, 0.4] (the "small last γ" init of
    ///   Goyal et al.), otherwise each residual add would double the stream's variance;
    /// - biases ~ N(0, 0.05).
    pub fn random(net: &Network, seed: u64) -> Weights {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = Weights::new();
        for layer in &net.layers {
            w.add_random_layer(layer, net.bn_eps, &mut rng);
        }
        w
    }

    /// Deterministic random weights for one layer (the unit a lookup table times),
    /// drawn as [`Weights::random`] does, with PyTorch's BN epsilon.
    pub fn random_layer(layer: &Layer, seed: u64) -> Weights {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = Weights::new();
        w.add_random_layer(layer, 1e-5, &mut rng);
        w
    }

    fn add_random_layer(&mut self, layer: &Layer, eps: f64, rng: &mut StdRng) {
        let small = Normal::new(0.0f32, 0.05).expect("valid std");
        for spec in layer.param_specs() {
            if self.tensors.contains_key(&spec.name) {
                continue; // the rest of a BN, drawn with its weight
            }
            // The tensor's name inside the layer, e.g. `expand.bn.weight`, `weight`.
            let part = spec.name.strip_prefix(&layer.name).and_then(|p| p.strip_prefix('.')).unwrap_or(&spec.name);
            let n: usize = spec.shape.iter().product();
            if let Some(bn) = part.strip_suffix(".weight").filter(|p| *p == "bn" || p.ends_with(".bn")) {
                let r = if ends_residual_branch(layer, bn) { 0.2..0.4 } else { 0.8..1.2 };
                let var: Vec<f32> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
                let gamma =
                    var.iter().map(|&v| ((v as f64 + eps).sqrt() * rng.random_range(r.clone())) as f32).collect();
                let beta = (0..n).map(|_| small.sample(rng)).collect();
                let mean = (0..n).map(|_| small.sample(rng)).collect();
                let prefix = &spec.name[..spec.name.len() - "weight".len()];
                for (t, data) in [("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var)] {
                    self.tensors.insert(format!("{prefix}{t}"), Tensor { shape: spec.shape.clone(), data });
                }
                continue;
            }
            let data: Vec<f32> = if spec.shape.len() >= 2 {
                let fan_in: usize = spec.shape[1..].iter().product();
                let gain = if activation_follows(layer, part) { 2.0 } else { 1.0 };
                let std = Normal::new(0.0f32, (gain / fan_in as f32).sqrt()).expect("valid std");
                (0..n).map(|_| std.sample(rng)).collect()
            } else {
                (0..n).map(|_| small.sample(rng)).collect()
            };
            self.tensors.insert(spec.name, Tensor { shape: spec.shape, data });
        }
    }

    /// Checks that every tensor `net` needs is present with its shape, and that
    /// there is nothing else (a stray tensor means the weights belong to another network).
    pub fn check(&self, net: &Network) -> Result<(), WeightsError> {
        let mut needed = std::collections::BTreeSet::new();
        for layer in &net.layers {
            for spec in layer.param_specs() {
                let t = self.tensor(&spec.name)?;
                if t.shape != spec.shape {
                    return Err(WeightsError::Shape { name: spec.name, expected: spec.shape, found: t.shape.clone() });
                }
                needed.insert(spec.name);
            }
        }
        match self.tensors.keys().find(|n| !needed.contains(*n)) {
            Some(extra) => Err(WeightsError::Unexpected(extra.clone())),
            None => Ok(()),
        }
    }

    /// The weights as safetensors bytes (F32, little-endian; deterministic).
    pub fn to_safetensors(&self) -> Vec<u8> {
        safetensors::serialize(self.tensors.iter(), None).expect("F32 tensors whose data fills their shapes serialize")
    }

    /// Reads safetensors bytes; F64 tensors are narrowed to F32.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Weights, WeightsError> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
        let mut w = Weights::new();
        for (name, view) in st.iter() {
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => {
                    view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
                }
                Dtype::F64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect(),
                dtype => return Err(WeightsError::Dtype { name: name.to_string(), dtype }),
            };
            w.insert(name, view.shape().to_vec(), data)?;
        }
        Ok(w)
    }

    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WeightsError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_safetensors())
            .map_err(|source| WeightsError::Io { path: path.display().to_string(), source })
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Weights, WeightsError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| WeightsError::Io { path: path.display().to_string(), source })?;
        Self::from_safetensors(&bytes).map_err(|e| match e {
            WeightsError::Format(m) => WeightsError::Format(format!("{}: {m}", path.display())),
            e => e,
        })
    }
}

/// Whether the weight `part` of `layer` feeds an activation (He gain) rather than a
/// linear output (LeCun gain).
fn activation_follows(layer: &Layer, part: &str) -> bool {
    let act = match (&layer.op, part) {
        (Op::Conv(c), "conv.weight") => c.act,
        (Op::MbConv(m), "expand.conv.weight" | "dw.conv.weight") => m.act,
        (Op::Conv(Conv { se: Some(se), .. }) | Op::MbConv(MbConv { se: Some(se), .. }), "se.reduce.weight") => se.act,
        (Op::Linear(l), "weight") => l.act,
        _ => Act::None,
    };
    act != Act::None
}

/// Whether the BN called `bn` (within `layer`) ends a branch that a residual adds to.
fn ends_residual_branch(layer: &Layer, bn: &str) -> bool {
    match &layer.op {
        Op::Conv(c) => c.shortcut != Shortcut::None && bn == "bn",
        Op::MbConv(m) => m.shortcut != Shortcut::None && bn == "project.bn",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Act, Gate, MbConv, NetBuilder, Op, Shortcut, SqueezeExcite};

    /// A small network with every kind of tensor (conv, BN, SE, linear), cheap in debug builds.
    fn net() -> Network {
        let se = SqueezeExcite { mid: 8, act: Act::Relu, gate: Gate::HSigmoid };
        let block = MbConv {
            out: 16,
            mid: 48,
            expand: true,
            kernel: 3,
            stride: 1,
            groups: 1,
            shuffle: false,
            act: Act::Relu,
            se: Some(se),
            shortcut: Shortcut::Identity,
        };
        let mut b = NetBuilder::new(32);
        b.push("stem", Op::conv_bn(16, 3, 2, Act::HSwish))
            .push("block", Op::MbConv(block))
            .push("head", Op::conv_bn(256, 1, 1, Act::HSwish))
            .push("pool", Op::GlobalAvgPool)
            .classifier(0.2, 10);
        b.finish()
    }

    #[test]
    fn random_weights_match_their_network_and_are_deterministic() {
        let n = net();
        let a = Weights::random(&n, 7);
        a.check(&n).unwrap();
        assert_eq!(a, Weights::random(&n, 7));
        assert_ne!(a, Weights::random(&n, 8));
        let specs: usize = n.layers.iter().map(|l| l.param_specs().len()).sum();
        assert_eq!(a.len(), specs);
        assert!(a.iter().all(|(_, t)| t.data.iter().all(|v| v.is_finite())));
        let var = a.tensor("stem.bn.running_var").unwrap();
        assert!(var.data.iter().all(|&v| (0.5..1.5).contains(&v)));
        // The folded BN scale γ/√(σ²+ε) is ~1, except at the end of a residual branch.
        let scale = |bn: &str| {
            let (g, v) = (a.tensor(&format!("{bn}.weight")).unwrap(), a.tensor(&format!("{bn}.running_var")).unwrap());
            g.data.iter().zip(&v.data).map(|(g, v)| g / (v + 1e-5).sqrt()).collect::<Vec<f32>>()
        };
        assert!(scale("block.dw.bn").iter().all(|s| (0.79..1.21).contains(s)));
        assert!(scale("block.project.bn").iter().all(|s| (0.19..0.41).contains(s)));
    }

    #[test]
    fn he_init_has_the_expected_spread() {
        let w = Weights::random(&net(), 1);
        for (name, gain) in [("head.conv.weight", 2.0), ("classifier.weight", 1.0), ("block.project.conv.weight", 1.0)]
        {
            let t = w.tensor(name).unwrap();
            let fan_in: usize = t.shape[1..].iter().product();
            let var = t.data.iter().map(|v| (v * v) as f64).sum::<f64>() / t.data.len() as f64;
            let expected = gain / fan_in as f64;
            assert!((var / expected - 1.0).abs() < 0.15, "{name}: variance {var} vs {expected}");
        }
    }

    #[test]
    fn check_names_the_offending_tensor() {
        let n = net();
        let mut w = Weights::random(&n, 0);
        w.insert("stem.conv.weight", vec![16, 3, 3, 2], vec![0.0; 288]).unwrap();
        let e = w.check(&n).unwrap_err().to_string();
        assert!(e.contains("stem.conv.weight") && e.contains("[16, 3, 3, 3]"), "{e}");
        w.tensors.remove("stem.conv.weight");
        assert!(w.check(&n).unwrap_err().to_string().contains("`stem.conv.weight` is missing"));
        let mut w = Weights::random(&n, 0);
        w.insert("bogus.weight", vec![1], vec![0.0]).unwrap();
        assert!(w.check(&n).unwrap_err().to_string().contains("`bogus.weight` is not part"));
        assert!(w.insert("x", vec![2, 2], vec![0.0; 3]).unwrap_err().to_string().contains("`x` has 3 values"));
    }

    #[test]
    fn safetensors_round_trip_is_exact_and_deterministic() {
        let n = net();
        let w = Weights::random(&n, 3);
        let bytes = w.to_safetensors();
        assert_eq!(bytes, w.to_safetensors());
        let back = Weights::from_safetensors(&bytes).unwrap();
        assert_eq!(back, w);
        back.check(&n).unwrap();

        let dir = std::env::temp_dir().join(format!("hwnas-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        w.save(&path).unwrap();
        assert_eq!(Weights::load(&path).unwrap(), w);
        std::fs::write(&path, b"garbage").unwrap();
        let e = Weights::load(&path).unwrap_err().to_string();
        assert!(e.contains("w.safetensors") && e.contains("not a safetensors file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn f64_tensors_are_read_as_f32() {
        let data: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(Dtype::F64, vec![2], &data).unwrap();
        let bytes = safetensors::serialize([("a", view)], None).unwrap();
        let w = Weights::from_safetensors(&bytes).unwrap();
        assert_eq!(w.tensor("a").unwrap().data, vec![1.5, -2.0]);
    }
}
