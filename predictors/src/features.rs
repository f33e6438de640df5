//! Per-layer features for learned predictors (nn-Meter's kernel features, on IR layers),
//! and the physical quantities every fitted family extrapolates from.

use serde::{Deserialize, Serialize};
use spaces::ir::{Layer, Op};

/// The predictor a layer belongs to. nn-Meter shares one forest among conv-like and one
/// among depthwise kernels; here an MBConv block (expand → depthwise → project, run as one
/// fused sequence) is its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Conv,
    DwConv,
    MbConv,
    Identity,
    Pool,
    Dropout,
    Fc,
}

impl LayerKind {
    pub fn of(l: &Layer) -> Self {
        match &l.op {
            Op::Conv(c) if c.groups > 1 && c.groups == l.input.c => LayerKind::DwConv,
            Op::Conv(_) => LayerKind::Conv,
            Op::MbConv(_) => LayerKind::MbConv,
            Op::Identity => LayerKind::Identity,
            Op::GlobalAvgPool => LayerKind::Pool,
            Op::Dropout { .. } => LayerKind::Dropout,
            Op::Linear(_) => LayerKind::Fc,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::DwConv => "dwconv",
            LayerKind::MbConv => "mbconv",
            LayerKind::Identity => "identity",
            LayerKind::Pool => "pool",
            LayerKind::Dropout => "dropout",
            LayerKind::Fc => "fc",
        }
    }
}

/// Names of the columns [`physical`] returns, in order.
pub const PHYSICAL_NAMES: [&str; 5] = ["count", "dense_mmacs", "depthwise_mmacs", "activation_mb", "weight_mb"];

/// What a layer costs physically: 1 (a per-layer launch cost), MACs of dense (pointwise,
/// full and FC) and of depthwise convolutions in millions (compute-bound and memory-bound
/// work run at very different rates on phones), activation bytes in and out (with an
/// MBConv's expanded intermediate) and weight bytes in MB, at float32.
pub fn physical(l: &Layer) -> [f64; 5] {
    let pixels = |s: spaces::ir::Shape| s.h as f64 * s.w as f64;
    let depthwise = match &l.op {
        Op::MbConv(m) => pixels(l.output) * m.mid as f64 * (m.kernel * m.kernel) as f64,
        Op::Conv(c) if c.groups > 1 && c.groups == l.input.c => {
            pixels(l.output) * c.out as f64 * (c.kernel * c.kernel) as f64
        }
        _ => 0.0,
    };
    let macs = l.macs() as f64;
    let weight_bytes = 4.0 * l.params() as f64;
    let activation_bytes = l.memory_bytes() as f64 - weight_bytes;
    [1.0, (macs - depthwise) / 1e6, depthwise / 1e6, activation_bytes / 1e6, weight_bytes / 1e6]
}

/// Names of the columns [`features`] returns, in order.
pub const FEATURE_NAMES: [&str; 14] = [
    "h", "w", "cin", "cout", "kernel", "stride", "groups", "mid", "expand", "se", "shortcut", "mmacs", "mparams", "mb",
];

/// H, W (input), Cin, Cout, kernel, stride, groups, mid width, expand conv?, SE width,
/// residual?, MACs/1e6, params/1e6, memory traffic in MB.
pub fn features(l: &Layer) -> [f64; 14] {
    let (kernel, stride, groups, mid, expand, se, shortcut) = match &l.op {
        Op::Conv(c) => (
            c.kernel,
            c.stride,
            c.groups,
            0,
            0,
            c.se.map_or(0, |s| s.mid),
            (c.shortcut != spaces::ir::Shortcut::None) as u32,
        ),
        Op::MbConv(m) => (
            m.kernel,
            m.stride,
            m.groups,
            m.mid,
            m.expand as u32,
            m.se.map_or(0, |s| s.mid),
            (m.shortcut != spaces::ir::Shortcut::None) as u32,
        ),
        _ => (0, 1, 1, 0, 0, 0, 0),
    };
    [
        l.input.h as f64,
        l.input.w as f64,
        l.input.c as f64,
        l.output.c as f64,
        kernel as f64,
        stride as f64,
        groups as f64,
        mid as f64,
        expand as f64,
        se as f64,
        shortcut as f64,
        l.macs() as f64 / 1e6,
        l.params() as f64 / 1e6,
        l.memory_bytes() as f64 / 1e6,
    ]
}
