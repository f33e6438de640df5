//! The inference graph of a [`Network`], independent of file format: BN folded
//! into its conv, every block expanded into primitive steps. The TFLite and ONNX
//! writers both emit this graph, so a block means the same computation in both
//! files (and the two runtimes can be checked against each other).
//!
//! Semantics follow the PyTorch modules the spaces come from:
//! - convs pad k//2 on every side (PyTorch's "same" for odd k; output ceil(H/s));
//! - BN is inference BN with the network's epsilon, folded: w' = w·γ/√(σ²+ε),
//!   b' = (b − μ)·γ/√(σ²+ε) + β;
//! - SE: global mean → 1×1 conv (bias) → act → 1×1 conv (bias) → gate → channel scale;
//!   h-sigmoid is relu6(x + 3)/6;
//! - a channel shuffle of g groups follows the expand conv's activation
//!   (x.view(g, C/g, H, W).transpose(0, 1)), as in ShuffleNet/FBNet;
//! - the avg-pool shortcut (MnasNet's pooling skip op) is AvgPool2d(kernel = stride,
//!   stride, ceil_mode) with a divisor that counts only input pixels, then an add;
//! - dropout and identity layers vanish.

use super::ModelFileError;
use spaces::ir::{Act, Gate, Layer, Network, Op, Shape, Shortcut, SqueezeExcite, Weights};

/// Index of a value: 0 is the graph input, `i + 1` the output of node `i`.
pub type Value = usize;

/// The shape of a value (batch 1 implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dims {
    /// A feature map.
    Map(Shape),
    /// A vector: the output of a fully connected layer.
    Vector(u32),
}

impl Dims {
    pub fn channels(&self) -> u32 {
        match self {
            Dims::Map(s) => s.c,
            Dims::Vector(c) => *c,
        }
    }
}

/// A convolution with BN folded in: weight [out, in/groups, k, k], bias [out].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvStep {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub out: u32,
    pub kernel: u32,
    pub stride: u32,
    pub groups: u32,
    pub act: Act,
}

impl ConvStep {
    /// Symmetric padding on each spatial side.
    pub fn pad(&self) -> u32 {
        self.kernel / 2
    }
}

/// One primitive step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Conv(ConvStep),
    /// Mean over H and W, keeping them as 1×1.
    GlobalMean,
    Gate(Gate),
    /// Elementwise product of two values (the second may broadcast over H, W).
    Mul,
    Add,
    /// Average pool with kernel = stride, ceil mode, divisor counting input pixels only.
    AvgPool {
        stride: u32,
    },
    ChannelShuffle {
        groups: u32,
    },
    /// Fully connected on a 1×1 map or a vector: weight [out, in], bias [out].
    Linear {
        weight: Vec<f32>,
        bias: Vec<f32>,
        out: u32,
        act: Act,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique, readable name, derived from the IR layer name.
    pub name: String,
    /// The IR layer (index into the network's layers) this step computes part of.
    pub layer: usize,
    pub step: Step,
    pub inputs: Vec<Value>,
    pub dims: Dims,
}

/// A straight-line graph from one input to one output.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub input: Shape,
    pub nodes: Vec<Node>,
    pub output: Value,
}

impl Graph {
    pub fn dims(&self, v: Value) -> Dims {
        if v == 0 {
            Dims::Map(self.input)
        } else {
            self.nodes[v - 1].dims
        }
    }

    /// Lowers `net` with `weights`, which must match it exactly.
    pub fn lower(net: &Network, weights: &Weights) -> Result<Graph, ModelFileError> {
        weights.check(net)?;
        let mut g = Lowering {
            graph: Graph { input: net.input, nodes: Vec::new(), output: 0 },
            weights,
            eps: net.bn_eps,
            layer: 0,
        };
        let mut x = 0;
        for (i, layer) in net.layers.iter().enumerate() {
            g.layer = i;
            if layer.input != g.map(x) {
                return Err(ModelFileError::Network(format!(
                    "layer {} expects input {} but receives {:?}",
                    layer.name,
                    layer.input,
                    g.graph.dims(x)
                )));
            }
            x = g.layer(layer, x)?;
        }
        g.graph.output = x;
        Ok(g.graph)
    }
}

struct Lowering<'a> {
    graph: Graph,
    weights: &'a Weights,
    eps: f64,
    /// The layer being lowered.
    layer: usize,
}

impl Lowering<'_> {
    fn push(&mut self, name: String, step: Step, inputs: Vec<Value>, dims: Dims) -> Value {
        self.graph.nodes.push(Node { name, layer: self.layer, step, inputs, dims });
        self.graph.nodes.len()
    }

    fn map(&self, v: Value) -> Shape {
        match self.graph.dims(v) {
            Dims::Map(s) => s,
            Dims::Vector(c) => Shape::new(c, 1, 1),
        }
    }

    fn layer(&mut self, layer: &Layer, x: Value) -> Result<Value, ModelFileError> {
        let n = &layer.name;
        Ok(match &layer.op {
            Op::Conv(c) => {
                let conv_bias = c.bias.then(|| format!("{n}.conv.bias"));
                let bn = c.bn.then(|| format!("{n}.bn"));
                let step = self.conv(
                    &format!("{n}.conv.weight"),
                    conv_bias.as_deref(),
                    bn.as_deref(),
                    c.stride,
                    c.groups,
                    c.act,
                )?;
                let mut y = self.push_conv(n.clone(), step, x);
                if let Some(se) = &c.se {
                    y = self.se(n, se, y)?;
                }
                self.shortcut(n, c.shortcut, c.stride, x, y)
            }
            Op::MbConv(m) => {
                let mut h = x;
                if m.expand {
                    let step = self.conv(
                        &format!("{n}.expand.conv.weight"),
                        None,
                        Some(&format!("{n}.expand.bn")),
                        1,
                        m.groups,
                        m.act,
                    )?;
                    h = self.push_conv(format!("{n}.expand"), step, h);
                }
                if m.shuffle && m.groups > 1 {
                    let dims = self.graph.dims(h);
                    h = self.push(format!("{n}.shuffle"), Step::ChannelShuffle { groups: m.groups }, vec![h], dims);
                }
                let step = self.conv(
                    &format!("{n}.dw.conv.weight"),
                    None,
                    Some(&format!("{n}.dw.bn")),
                    m.stride,
                    m.mid,
                    m.act,
                )?;
                h = self.push_conv(format!("{n}.dw"), step, h);
                if let Some(se) = &m.se {
                    h = self.se(n, se, h)?;
                }
                let step = self.conv(
                    &format!("{n}.project.conv.weight"),
                    None,
                    Some(&format!("{n}.project.bn")),
                    1,
                    m.groups,
                    Act::None,
                )?;
                h = self.push_conv(format!("{n}.project"), step, h);
                self.shortcut(n, m.shortcut, m.stride, x, h)
            }
            Op::Identity | Op::Dropout { .. } => x,
            Op::GlobalAvgPool => {
                let s = self.map(x);
                self.push(n.clone(), Step::GlobalMean, vec![x], Dims::Map(Shape::new(s.c, 1, 1)))
            }
            Op::Linear(l) => {
                let s = self.map(x);
                if s.h != 1 || s.w != 1 || s.c != layer.input.c {
                    return Err(ModelFileError::Network(format!(
                        "layer {n}: a linear layer needs a pooled {}-vector, got {s}",
                        layer.input.c
                    )));
                }
                let weight = self.weights.tensor(&format!("{n}.weight"))?.data.clone();
                let bias = match l.bias {
                    true => self.weights.tensor(&format!("{n}.bias"))?.data.clone(),
                    false => vec![0.0; l.out as usize],
                };
                let step = Step::Linear { weight, bias, out: l.out, act: l.act };
                self.push(n.clone(), step, vec![x], Dims::Vector(l.out))
            }
        })
    }

    fn push_conv(&mut self, name: String, step: ConvStep, x: Value) -> Value {
        let s = self.map(x);
        let dims = Dims::Map(Shape::new(step.out, s.h.div_ceil(step.stride), s.w.div_ceil(step.stride)));
        self.push(name, Step::Conv(step), vec![x], dims)
    }

    /// A conv step from `weight` (+ `bias`) with the BN called `bn` folded in.
    fn conv(
        &self,
        weight: &str,
        bias: Option<&str>,
        bn: Option<&str>,
        stride: u32,
        groups: u32,
        act: Act,
    ) -> Result<ConvStep, ModelFileError> {
        let w = self.weights.tensor(weight)?;
        let (out, kernel) = (w.shape[0], w.shape[2]);
        let mut bias: Vec<f64> = match bias {
            Some(b) => self.weights.tensor(b)?.data.iter().map(|&v| v as f64).collect(),
            None => vec![0.0; out],
        };
        let mut scale = vec![1.0f64; out];
        if let Some(bn) = bn {
            let t = |part: &str| self.weights.tensor(&format!("{bn}.{part}"));
            let (gamma, beta, mean, var) = (t("weight")?, t("bias")?, t("running_mean")?, t("running_var")?);
            for o in 0..out {
                scale[o] = gamma.data[o] as f64 / (var.data[o] as f64 + self.eps).sqrt();
                bias[o] = (bias[o] - mean.data[o] as f64) * scale[o] + beta.data[o] as f64;
            }
        }
        let per_out = w.data.len() / out;
        let weight =
            w.data.iter().enumerate().map(|(i, &v)| (v as f64 * scale[i / per_out]) as f32).collect::<Vec<f32>>();
        Ok(ConvStep {
            weight,
            bias: bias.into_iter().map(|b| b as f32).collect(),
            out: out as u32,
            kernel: kernel as u32,
            stride,
            groups,
            act,
        })
    }

    fn se(&mut self, n: &str, se: &SqueezeExcite, x: Value) -> Result<Value, ModelFileError> {
        let s = self.map(x);
        let pooled = self.push(format!("{n}.se.pool"), Step::GlobalMean, vec![x], Dims::Map(Shape::new(s.c, 1, 1)));
        let reduce =
            self.conv(&format!("{n}.se.reduce.weight"), Some(&format!("{n}.se.reduce.bias")), None, 1, 1, se.act)?;
        let r = self.push_conv(format!("{n}.se.reduce"), reduce, pooled);
        let expand =
            self.conv(&format!("{n}.se.expand.weight"), Some(&format!("{n}.se.expand.bias")), None, 1, 1, Act::None)?;
        let e = self.push_conv(format!("{n}.se.expand"), expand, r);
        let gate = self.push(format!("{n}.se.gate"), Step::Gate(se.gate), vec![e], Dims::Map(Shape::new(s.c, 1, 1)));
        Ok(self.push(format!("{n}.se.scale"), Step::Mul, vec![x, gate], Dims::Map(s)))
    }

    fn shortcut(&mut self, n: &str, shortcut: Shortcut, stride: u32, x: Value, y: Value) -> Value {
        let dims = self.graph.dims(y);
        let skip = match shortcut {
            Shortcut::None => return y,
            Shortcut::Identity => x,
            Shortcut::AvgPool if stride == 1 => x,
            Shortcut::AvgPool => self.push(format!("{n}.skip.pool"), Step::AvgPool { stride }, vec![x], dims),
        };
        self.push(format!("{n}.add"), Step::Add, vec![y, skip], dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces::ir::NetBuilder;

    #[test]
    fn bn_is_folded_exactly() {
        let mut b = NetBuilder::new(4);
        b.bn_eps(1e-3).push("stem", Op::conv_bn(2, 1, 1, Act::None));
        let net = b.finish();
        let mut w = Weights::new();
        w.insert("stem.conv.weight", vec![2, 3, 1, 1], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        w.insert("stem.bn.weight", vec![2], vec![2.0, 0.5]).unwrap();
        w.insert("stem.bn.bias", vec![2], vec![0.25, -1.0]).unwrap();
        w.insert("stem.bn.running_mean", vec![2], vec![1.0, -2.0]).unwrap();
        w.insert("stem.bn.running_var", vec![2], vec![3.999, 0.0615]).unwrap();
        let g = Graph::lower(&net, &w).unwrap();
        let Step::Conv(c) = &g.nodes[0].step else { panic!("{:?}", g.nodes[0]) };
        // scale = γ/√(σ²+ε) = 2/2 = 1 and 0.5/0.25 = 2; bias = (0 − μ)·scale + β.
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
        assert!(close(&c.weight, &[1.0, 2.0, 3.0, 8.0, 10.0, 12.0]), "{:?}", c.weight);
        assert!(close(&c.bias, &[-0.75, 3.0]), "{:?}", c.bias);
        assert_eq!(g.output, 1);
    }

    #[test]
    fn mismatched_weights_are_refused_by_name() {
        let mut b = NetBuilder::new(8);
        b.push("stem", Op::conv_bn(4, 3, 2, Act::Relu));
        let net = b.finish();
        let e = Graph::lower(&net, &Weights::new()).unwrap_err().to_string();
        assert!(e.contains("stem.conv.weight"), "{e}");
    }
}
