//! A layer's identity without its name, hashed from its integer fields: the same
//! identity as `Layer::key()` (which also omits the name) but with no string built,
//! so a table probe costs one small hash instead of a formatted allocation.

use spaces::ir::{Layer, Op, Shape};
use std::hash::{Hash, Hasher};

#[derive(Clone, Copy, Debug)]
pub struct LayerSig {
    input: Shape,
    output: Shape,
    op: Op,
}

impl LayerSig {
    pub fn of(l: &Layer) -> Self {
        LayerSig { input: l.input, output: l.output, op: l.op }
    }
}

impl PartialEq for LayerSig {
    fn eq(&self, o: &Self) -> bool {
        self.input == o.input
            && self.output == o.output
            && match (&self.op, &o.op) {
                // Compare dropout rates bitwise so that equality is reflexive (Eq).
                (Op::Dropout { p }, Op::Dropout { p: q }) => p.to_bits() == q.to_bits(),
                (a, b) => a == b,
            }
    }
}
impl Eq for LayerSig {}

impl Hash for LayerSig {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.input.hash(h);
        self.output.hash(h);
        match &self.op {
            Op::Conv(c) => (0u8, c).hash(h),
            Op::MbConv(m) => (1u8, m).hash(h),
            Op::Identity => 2u8.hash(h),
            Op::GlobalAvgPool => 3u8.hash(h),
            Op::Dropout { p } => (4u8, p.to_bits()).hash(h),
            Op::Linear(l) => (5u8, l).hash(h),
        }
    }
}
