//! The one naming scheme for a network's tensors, shared by the tch modules,
//! checkpoints and the TFLite/ONNX writers: `{layer name}.{part}.{tensor}`.
//!
//! - Conv: `conv.weight` [out, in/groups, k, k], `conv.bias`, `bn.{weight,bias,running_mean,running_var}`
//! - MBConv: `expand.conv.weight`, `expand.bn.*`, `dw.conv.weight` [mid, 1, k, k], `dw.bn.*`,
//!   `project.conv.weight`, `project.bn.*`
//! - SE (either block): `se.reduce.{weight,bias}` [mid_se, c, 1, 1], `se.expand.{weight,bias}` [c, mid_se, 1, 1]
//! - Linear: `weight` [out, in], `bias`

use super::{Layer, Op, SqueezeExcite};

/// One tensor of a layer: its full name, shape, and whether it is trained
/// (BN running statistics are buffers and do not count as parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub trainable: bool,
}

struct Specs<'a> {
    layer: &'a str,
    out: Vec<ParamSpec>,
}

impl Specs<'_> {
    fn add(&mut self, part: &str, shape: Vec<usize>, trainable: bool) {
        let name = if part.is_empty() { self.layer.to_string() } else { format!("{}.{part}", self.layer) };
        self.out.push(ParamSpec { name, shape, trainable });
    }
    fn conv(&mut self, prefix: &str, out: u32, inp_per_group: u32, k: u32, bias: bool) {
        let (o, i, k) = (out as usize, inp_per_group as usize, k as usize);
        self.add(&format!("{prefix}conv.weight"), vec![o, i, k, k], true);
        if bias {
            self.add(&format!("{prefix}conv.bias"), vec![o], true);
        }
    }
    fn bn(&mut self, prefix: &str, c: u32) {
        for (t, trainable) in [("weight", true), ("bias", true), ("running_mean", false), ("running_var", false)] {
            self.add(&format!("{prefix}bn.{t}"), vec![c as usize], trainable);
        }
    }
    fn se(&mut self, c: u32, se: &SqueezeExcite) {
        let (c, m) = (c as usize, se.mid as usize);
        self.add("se.reduce.weight", vec![m, c, 1, 1], true);
        self.add("se.reduce.bias", vec![m], true);
        self.add("se.expand.weight", vec![c, m, 1, 1], true);
        self.add("se.expand.bias", vec![c], true);
    }
}

impl Layer {
    /// Every tensor of this layer, in a fixed order.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let mut s = Specs { layer: &self.name, out: Vec::new() };
        let cin = self.input.c;
        match &self.op {
            Op::Conv(c) => {
                s.conv("", c.out, cin / c.groups, c.kernel, c.bias);
                if c.bn {
                    s.bn("", c.out);
                }
                if let Some(se) = &c.se {
                    s.se(c.out, se);
                }
            }
            Op::MbConv(m) => {
                if m.expand {
                    s.conv("expand.", m.mid, cin / m.groups, 1, false);
                    s.bn("expand.", m.mid);
                }
                s.conv("dw.", m.mid, 1, m.kernel, false);
                s.bn("dw.", m.mid);
                if let Some(se) = &m.se {
                    s.se(m.mid, se);
                }
                s.conv("project.", m.out, m.mid / m.groups, 1, false);
                s.bn("project.", m.out);
            }
            Op::Linear(l) => {
                s.add("weight", vec![l.out as usize, cin as usize], true);
                if l.bias {
                    s.add("bias", vec![l.out as usize], true);
                }
            }
            Op::Identity | Op::GlobalAvgPool | Op::Dropout { .. } => {}
        }
        s.out
    }
}

#[cfg(test)]
mod tests {
    use crate::presets::PRESETS;

    #[test]
    fn trainable_tensors_add_up_to_the_parameter_count() {
        for p in PRESETS {
            let net = p.arch().network(None);
            for l in &net.layers {
                let n: usize =
                    l.param_specs().iter().filter(|t| t.trainable).map(|t| t.shape.iter().product::<usize>()).sum();
                assert_eq!(n as u64, l.params(), "{} {}", p.name, l.name);
            }
        }
    }
}
