use super::{Act, Conv, Layer, Linear, MbConv, Network, Op, Shape, Shortcut};

/// Appends layers while tracking the current feature-map shape, so that every
/// layer's input and output shapes are derived in one place.
pub struct NetBuilder {
    input: Shape,
    current: Shape,
    layers: Vec<Layer>,
    bn_eps: f64,
}

impl NetBuilder {
    /// A network on a `resolution` x `resolution` RGB image.
    pub fn new(resolution: u32) -> Self {
        let input = Shape::new(3, resolution, resolution);
        NetBuilder { input, current: input, layers: Vec::new(), bn_eps: 1e-5 }
    }

    /// Sets the BN epsilon (default 1e-5, PyTorch's).
    pub fn bn_eps(&mut self, eps: f64) -> &mut Self {
        self.bn_eps = eps;
        self
    }

    pub fn current(&self) -> Shape {
        self.current
    }

    /// Appends `op` on the current shape. Panics on a shortcut the shapes cannot
    /// carry: spaces decide shortcuts from shapes, so that is a bug, not bad input.
    pub fn push(&mut self, name: impl Into<String>, op: Op) -> &mut Self {
        let input = self.current;
        let output = op.output_shape(input);
        let name = name.into();
        if let Some(shortcut) = op.shortcut() {
            let ok = match shortcut {
                Shortcut::None => true,
                Shortcut::Identity => input == output,
                Shortcut::AvgPool => input.c == output.c,
            };
            assert!(ok, "layer {name}: {shortcut:?} shortcut from {input} to {output}");
        }
        self.layers.push(Layer { name, input, output, op });
        self.current = output;
        self
    }

    /// Starts from an arbitrary feature map (to enumerate the layers of one block).
    pub fn at(input: Shape) -> Self {
        NetBuilder { input, current: input, layers: Vec::new(), bn_eps: 1e-5 }
    }

    /// Optional dropout, then the classifier with bias (after pooling).
    pub fn classifier(&mut self, dropout: f32, classes: u32) -> &mut Self {
        if dropout > 0.0 {
            self.push("dropout", Op::Dropout { p: dropout });
        }
        self.push("classifier", Op::Linear(Linear { out: classes, bias: true, act: Act::None }))
    }

    pub fn finish(self) -> Network {
        Network { input: self.input, layers: self.layers, bn_eps: self.bn_eps }
    }
}

impl Op {
    pub fn output_shape(&self, input: Shape) -> Shape {
        match self {
            Op::Conv(c) => input.strided(c.out, c.stride),
            Op::MbConv(m) => input.strided(m.out, m.stride),
            Op::Identity | Op::Dropout { .. } => input,
            Op::GlobalAvgPool => Shape::new(input.c, 1, 1),
            Op::Linear(l) => Shape::new(l.out, 1, 1),
        }
    }

    pub fn shortcut(&self) -> Option<Shortcut> {
        match self {
            Op::Conv(c) => Some(c.shortcut),
            Op::MbConv(m) => Some(m.shortcut),
            _ => None,
        }
    }

    /// Conv + BN + activation, no bias, no SE, no residual: stems, heads, 1x1 projections.
    pub fn conv_bn(out: u32, kernel: u32, stride: u32, act: Act) -> Op {
        Op::Conv(Conv {
            out,
            kernel,
            stride,
            groups: 1,
            bias: false,
            bn: true,
            act,
            se: None,
            shortcut: Shortcut::None,
        })
    }
}

impl MbConv {
    /// The residual an inverted residual gets by the usual rule: identity iff stride 1,
    /// equal widths and the layer is not marked `noskip`.
    pub fn residual_rule(input: Shape, out: u32, stride: u32, allowed: bool) -> Shortcut {
        if allowed && stride == 1 && input.c == out {
            Shortcut::Identity
        } else {
            Shortcut::None
        }
    }
}
