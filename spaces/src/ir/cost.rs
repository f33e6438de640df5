//! MACs and parameters, with the convention of `shared/reference/oracles.md`:
//! MACs of every conv and FC (SE convs on the pooled vector included); params are
//! weights + biases + BN gamma/beta (running statistics excluded).

use super::{Conv, Layer, Linear, MbConv, Network, Op, Shape, SqueezeExcite};

/// MACs and params, each `None` when it overflows u64 (a huge resolution or width).
type Cost = Option<(u64, u64)>;

fn sum(a: Cost, b: Cost) -> Cost {
    let ((m1, p1), (m2, p2)) = (a?, b?);
    Some((m1.checked_add(m2)?, p1.checked_add(p2)?))
}

/// MACs and params of one k x k conv with `groups` from `cin` to `cout` on an output of `hw` pixels.
fn conv(hw: u64, cin: u32, cout: u32, kernel: u32, groups: u32) -> Cost {
    let weights =
        (cout as u64).checked_mul((cin / groups.max(1)) as u64)?.checked_mul(kernel as u64 * kernel as u64)?;
    Some((hw.checked_mul(weights)?, weights))
}

fn bn(channels: u32) -> Cost {
    Some((0, 2 * channels as u64))
}

fn se(channels: u32, se: &SqueezeExcite) -> Cost {
    let reduce = channels as u64 * se.mid as u64;
    let expand = se.mid as u64 * channels as u64;
    Some((
        reduce.checked_add(expand)?,
        reduce.checked_add(se.mid as u64)?.checked_add(expand)?.checked_add(channels as u64)?,
    ))
}

fn pixels(s: Shape) -> u64 {
    s.h as u64 * s.w as u64
}

impl Conv {
    fn cost(&self, input: Shape, output: Shape) -> Cost {
        let mut c = conv(pixels(output), input.c, self.out, self.kernel, self.groups);
        if self.bias {
            c = sum(c, Some((0, self.out as u64)));
        }
        if self.bn {
            c = sum(c, bn(self.out));
        }
        if let Some(s) = &self.se {
            c = sum(c, se(self.out, s));
        }
        c
    }
}

impl MbConv {
    fn cost(&self, input: Shape, output: Shape) -> Cost {
        let mut c = Some((0, 0));
        if self.expand {
            c = sum(c, conv(pixels(input), input.c, self.mid, 1, self.groups));
            c = sum(c, bn(self.mid));
        }
        c = sum(c, conv(pixels(output), self.mid, self.mid, self.kernel, self.mid));
        c = sum(c, bn(self.mid));
        if let Some(s) = &self.se {
            c = sum(c, se(self.mid, s));
        }
        c = sum(c, conv(pixels(output), self.mid, self.out, 1, self.groups));
        sum(c, bn(self.out))
    }
}

impl Linear {
    fn cost(&self, input: Shape) -> Cost {
        let w = input.c as u64 * self.out as u64;
        Some((w, w.checked_add(if self.bias { self.out as u64 } else { 0 })?))
    }
}

impl Layer {
    /// MACs and params, or `None` when either overflows u64.
    pub fn checked_cost(&self) -> Option<(u64, u64)> {
        match &self.op {
            Op::Conv(c) => c.cost(self.input, self.output),
            Op::MbConv(m) => m.cost(self.input, self.output),
            Op::Linear(l) => l.cost(self.input),
            Op::Identity | Op::GlobalAvgPool | Op::Dropout { .. } => Some((0, 0)),
        }
    }
    /// MACs (u64::MAX when they overflow; [`Network::checked_counts`] refuses such networks).
    pub fn macs(&self) -> u64 {
        self.checked_cost().map_or(u64::MAX, |c| c.0)
    }
    /// Params (u64::MAX when they overflow).
    pub fn params(&self) -> u64 {
        self.checked_cost().map_or(u64::MAX, |c| c.1)
    }
    /// Bytes moved at float32 if every tensor goes through memory once: input and
    /// output activations, the expanded intermediate of an MBConv, and the weights.
    /// A feature for kernel-level latency predictors (nn-Meter's "memory traffic").
    pub fn memory_bytes(&self) -> u64 {
        let mid = match &self.op {
            Op::MbConv(m) => {
                let expanded = (m.mid as u64).saturating_mul(pixels(self.input));
                let dw = (m.mid as u64).saturating_mul(pixels(self.output));
                if m.expand {
                    expanded.saturating_add(dw).saturating_mul(2)
                } else {
                    dw.saturating_mul(2)
                }
            }
            _ => 0,
        };
        let total = self.input.elements().saturating_add(self.output.elements()).saturating_add(mid);
        total.saturating_add(self.params()).saturating_mul(4)
    }
}

/// A network whose MAC or parameter count does not fit in 64 bits.
#[derive(Debug, thiserror::Error)]
#[error(
    "the {what} count of layer `{layer}` ({input} -> {output}) overflows 64 bits: the input resolution {resolution} \
     (or a width) is far too large"
)]
pub struct CountOverflow {
    pub layer: String,
    pub what: &'static str,
    pub input: Shape,
    pub output: Shape,
    pub resolution: u32,
}

impl Network {
    /// Total MACs and params with checked arithmetic: an error naming the first layer (or
    /// the total) that overflows u64, instead of a wrapped or saturated count.
    pub fn checked_counts(&self) -> Result<(u64, u64), CountOverflow> {
        let (mut macs, mut params) = (0u64, 0u64);
        for l in &self.layers {
            let overflow = |what| CountOverflow {
                layer: l.name.clone(),
                what,
                input: l.input,
                output: l.output,
                resolution: self.resolution(),
            };
            let (m, p) = l.checked_cost().ok_or_else(|| overflow("MAC or parameter"))?;
            macs = macs.checked_add(m).ok_or_else(|| overflow("total MAC"))?;
            params = params.checked_add(p).ok_or_else(|| overflow("total parameter"))?;
        }
        Ok((macs, params))
    }
}

#[cfg(test)]
mod tests {
    use crate::presets::preset;

    #[test]
    fn counts_that_overflow_u64_are_refused_not_wrapped() {
        let arch = preset("mobilenetv2").unwrap().arch();
        let net = arch.network(Some(224));
        assert_eq!(net.checked_counts().unwrap(), (net.macs(), net.params()));
        let huge = arch.network(Some(100_000_000));
        let err = huge.checked_counts().unwrap_err().to_string();
        assert!(err.contains("overflows 64 bits") && err.contains("100000000"), "{err}");
        // The unchecked totals saturate instead of wrapping to a small, plausible number.
        assert_eq!(huge.macs(), u64::MAX);
    }
}
