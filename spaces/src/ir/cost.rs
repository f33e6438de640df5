//! MACs and parameters, with the convention of `shared/reference/oracles.md`:
//! MACs of every conv and FC (SE convs on the pooled vector included); params are
//! weights + biases + BN gamma/beta (running statistics excluded).

use super::{Conv, Layer, Linear, MbConv, Op, Shape, SqueezeExcite};

/// MACs and params of one k x k conv with `groups` from `cin` to `cout` on an output of `hw` pixels.
fn conv(hw: u64, cin: u32, cout: u32, kernel: u32, groups: u32) -> (u64, u64) {
    let weights = cout as u64 * (cin / groups) as u64 * (kernel * kernel) as u64;
    (hw * weights, weights)
}

fn bn(channels: u32) -> u64 {
    2 * channels as u64
}

fn se(channels: u32, se: &SqueezeExcite) -> (u64, u64) {
    let reduce = channels as u64 * se.mid as u64;
    let expand = se.mid as u64 * channels as u64;
    (reduce + expand, reduce + se.mid as u64 + expand + channels as u64)
}

fn pixels(s: Shape) -> u64 {
    s.h as u64 * s.w as u64
}

impl Conv {
    fn cost(&self, input: Shape, output: Shape) -> (u64, u64) {
        let (mut macs, mut params) = conv(pixels(output), input.c, self.out, self.kernel, self.groups);
        params += if self.bias { self.out as u64 } else { 0 } + if self.bn { bn(self.out) } else { 0 };
        if let Some(s) = &self.se {
            let (m, p) = se(self.out, s);
            macs += m;
            params += p;
        }
        (macs, params)
    }
}

impl MbConv {
    fn cost(&self, input: Shape, output: Shape) -> (u64, u64) {
        let (mut macs, mut params) = (0, 0);
        let mut add = |(m, p): (u64, u64)| {
            macs += m;
            params += p;
        };
        if self.expand {
            add(conv(pixels(input), input.c, self.mid, 1, self.groups));
            add((0, bn(self.mid)));
        }
        add(conv(pixels(output), self.mid, self.mid, self.kernel, self.mid));
        add((0, bn(self.mid)));
        if let Some(s) = &self.se {
            add(se(self.mid, s));
        }
        add(conv(pixels(output), self.mid, self.out, 1, self.groups));
        add((0, bn(self.out)));
        (macs, params)
    }
}

impl Linear {
    fn cost(&self, input: Shape) -> (u64, u64) {
        let w = input.c as u64 * self.out as u64;
        (w, w + if self.bias { self.out as u64 } else { 0 })
    }
}

impl Layer {
    fn cost(&self) -> (u64, u64) {
        match &self.op {
            Op::Conv(c) => c.cost(self.input, self.output),
            Op::MbConv(m) => m.cost(self.input, self.output),
            Op::Linear(l) => l.cost(self.input),
            Op::Identity | Op::GlobalAvgPool | Op::Dropout { .. } => (0, 0),
        }
    }
    pub fn macs(&self) -> u64 {
        self.cost().0
    }
    pub fn params(&self) -> u64 {
        self.cost().1
    }
    /// Bytes moved at float32 if every tensor goes through memory once: input and
    /// output activations, the expanded intermediate of an MBConv, and the weights.
    /// A feature for kernel-level latency predictors (nn-Meter's "memory traffic").
    pub fn memory_bytes(&self) -> u64 {
        let mid = match &self.op {
            Op::MbConv(m) => {
                let expanded = m.mid as u64 * pixels(self.input);
                let dw = m.mid as u64 * pixels(self.output);
                if m.expand {
                    2 * expanded + 2 * dw
                } else {
                    2 * dw
                }
            }
            _ => 0,
        };
        4 * (self.input.elements() + self.output.elements() + mid + self.params())
    }
}
