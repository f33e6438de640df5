//! Per-layer features for learned predictors (nn-Meter's kernel features, on IR layers).

use spaces::ir::{Layer, Op};

/// The predictor a layer belongs to. nn-Meter shares one forest among conv-like and one
/// among depthwise kernels; here an MBConv block (expand → depthwise → project, run as one
/// fused sequence) is its own kind.
pub fn kind(l: &Layer) -> &'static str {
    match &l.op {
        Op::Conv(c) if c.groups > 1 && c.groups == l.input.c => "dwconv",
        Op::Conv(_) => "conv",
        Op::MbConv(_) => "mbconv",
        Op::Identity => "identity",
        Op::GlobalAvgPool => "pool",
        Op::Dropout { .. } => "dropout",
        Op::Linear(_) => "fc",
    }
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
