//! The architecture IR: every architecture of every space becomes a [`Network`],
//! an ordered list of concrete [`Layer`]s with input and output shapes. Counting
//! (MACs, params), lookup-table keys, model builders and predictor features are
//! all derived from it, so each concept has exactly one definition.

mod builder;
mod cost;
mod key;
mod params;
mod weights;

pub use builder::NetBuilder;
pub use cost::CountOverflow;
pub use key::{KeyError, LayerId, OpId};
pub use params::ParamSpec;
use serde::{Deserialize, Serialize};
use std::fmt;
pub use weights::{Tensor, Weights, WeightsError};

/// A feature-map shape (channels, height, width); batch is always 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shape {
    pub c: u32,
    pub h: u32,
    pub w: u32,
}

impl Shape {
    pub fn new(c: u32, h: u32, w: u32) -> Self {
        Shape { c, h, w }
    }
    pub fn elements(&self) -> u64 {
        self.c as u64 * self.h as u64 * self.w as u64
    }
    /// "Same" padding: H_out = ceil(H_in / stride).
    fn strided(&self, c: u32, stride: u32) -> Shape {
        Shape::new(c, self.h.div_ceil(stride), self.w.div_ceil(stride))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.h, self.w, self.c)
    }
}

/// Activation functions used by the supported spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    None,
    Relu,
    Relu6,
    HSwish,
}

impl Act {
    pub fn name(&self) -> &'static str {
        match self {
            Act::None => "none",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
            Act::HSwish => "hswish",
        }
    }
}

/// The gating non-linearity of squeeze-and-excitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    Sigmoid,
    HSigmoid,
}

/// Squeeze-and-excitation: global pool -> 1x1 conv (bias) -> act -> 1x1 conv (bias) -> gate -> scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SqueezeExcite {
    /// Width of the reduced vector.
    pub mid: u32,
    pub act: Act,
    pub gate: Gate,
}

/// How a block's input is added back to its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    None,
    /// Identity residual: stride 1 and equal channels.
    Identity,
    /// Average-pooled residual (MnasNet's "pooling" skip op): equal channels, any stride.
    AvgPool,
}

/// A k x k convolution (+ BN) (+ activation), optionally with SE and a residual.
/// Stems, heads, 1x1 projections and MnasNet's plain "conv" op are all this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv {
    pub out: u32,
    pub kernel: u32,
    pub stride: u32,
    pub groups: u32,
    pub bias: bool,
    pub bn: bool,
    pub act: Act,
    pub se: Option<SqueezeExcite>,
    pub shortcut: Shortcut,
}

/// Inverted residual (MBConv): [1x1 expand (+BN+act)] -> kxk depthwise (+BN+act) -> [SE] ->
/// 1x1 project (+BN), with group 1x1 convs and channel shuffle for FBNet's g2 ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MbConv {
    pub out: u32,
    /// Width of the depthwise conv (= input width when there is no expand conv).
    pub mid: u32,
    /// Whether the 1x1 expand conv exists (MnasNet/OFA drop it at e = 1; FBNet keeps it).
    pub expand: bool,
    pub kernel: u32,
    pub stride: u32,
    /// Groups of both 1x1 convs.
    pub groups: u32,
    /// Channel shuffle after the expand conv (FBNet g2 ops).
    pub shuffle: bool,
    pub act: Act,
    pub se: Option<SqueezeExcite>,
    pub shortcut: Shortcut,
}

/// Fully connected layer on a pooled vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Linear {
    pub out: u32,
    pub bias: bool,
    pub act: Act,
}

/// What a layer computes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Conv(Conv),
    MbConv(MbConv),
    /// A skipped layer that keeps the shape (FBNet's `skip` where shapes match).
    Identity,
    GlobalAvgPool,
    /// Dropout before the classifier (no cost; matters for training only).
    Dropout {
        p: f32,
    },
    Linear(Linear),
}

/// One concrete layer: what it computes and on what shapes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Position-based name, e.g. `stem`, `stage2.block1`, `head`, `classifier`.
    pub name: String,
    pub input: Shape,
    pub output: Shape,
    #[serde(flatten)]
    pub op: Op,
}

/// A concrete network at one input resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub input: Shape,
    pub layers: Vec<Layer>,
    /// Batch-norm epsilon of every BN (1e-5 in OFA/PyTorch nets, 1e-3 in TF-born ones).
    pub bn_eps: f64,
}

impl Network {
    pub fn resolution(&self) -> u32 {
        self.input.h
    }
    pub fn num_classes(&self) -> u32 {
        self.layers.last().map(|l| l.output.c).unwrap_or(0)
    }
    /// Total MACs, saturating at u64::MAX (see [`Network::checked_counts`] to refuse those).
    pub fn macs(&self) -> u64 {
        self.layers.iter().fold(0u64, |a, l| a.saturating_add(l.macs()))
    }
    /// Total params, saturating at u64::MAX.
    pub fn params(&self) -> u64 {
        self.layers.iter().fold(0u64, |a, l| a.saturating_add(l.params()))
    }
    /// Layers that carry computation (identity, pooling and dropout excluded).
    pub fn compute_layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().filter(|l| l.macs() > 0)
    }
}
