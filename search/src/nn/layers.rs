//! The forward pass of one IR layer, written functionally over a name -> tensor map.
//!
//! Stand-alone models pass their own variables; supernets pass views (sliced channels,
//! transformed kernels, masked superkernels) of shared weights. Both run this one code
//! path, which is why an extracted sub-network reproduces the supernet bit for bit.

use spaces::ir::{Act, Gate, Layer, Op, ParamSpec, Shortcut, SqueezeExcite};
use std::collections::HashMap;
use tch::nn::Path;
use tch::{Kind, Tensor};

/// The tensors of one layer, keyed by their `param_specs()` name minus the `{layer}.` prefix
/// (`expand.conv.weight`, `dw.bn.running_var`, `weight` for a linear layer).
pub type LayerTensors = HashMap<String, Tensor>;

/// Settings every layer needs during a forward pass.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub train: bool,
    pub bn_eps: f64,
    /// PyTorch convention: running = (1 - m)·running + m·batch.
    pub bn_momentum: f64,
}

/// The part of a spec name after the layer name.
pub fn part_name<'a>(layer: &str, spec: &'a str) -> &'a str {
    spec.strip_prefix(layer).and_then(|s| s.strip_prefix('.')).unwrap_or("")
}

/// Creates (or fetches) the variable for `name` under `root`, nesting on '.' because
/// tch forbids dots inside one path component; the VarStore name is then exactly `name`.
pub fn var(root: &Path, name: &str, shape: &[i64], trainable: bool) -> Tensor {
    let (p, last) = nested(root, name);
    init(&p, last, shape, trainable)
}

/// The path of a dotted tensor name and its last component.
pub fn nested<'a, 'n>(root: &Path<'a>, name: &'n str) -> (Path<'a>, &'n str) {
    let (dirs, last) = name.rsplit_once('.').unwrap_or(("", name));
    let p = dirs.split('.').filter(|d| !d.is_empty()).fold(root.clone(), |p, d| p.sub(d));
    (p, last)
}

/// torchvision/OFA initialisation: conv He-normal (fan-out), BN γ = 1 and β = 0,
/// linear N(0, 0.01), biases 0; running statistics start at mean 0, variance 1.
fn init(p: &Path, last: &str, shape: &[i64], trainable: bool) -> Tensor {
    if !trainable {
        return if last == "running_var" { p.ones_no_train(last, shape) } else { p.zeros_no_train(last, shape) };
    }
    match (last, shape.len()) {
        ("bias", _) => p.zeros(last, shape),
        (_, 1) => p.ones(last, shape),
        (_, 4) => {
            let fan_out = (shape[0] * shape[2] * shape[3]) as f64;
            p.randn(last, shape, 0.0, (2.0 / fan_out).sqrt())
        }
        (_, 2) => p.randn(last, shape, 0.0, 0.01),
        _ => p.zeros(last, shape),
    }
}

/// Creates the variables of `layer` under `root`, following its `param_specs()`.
pub fn layer_vars(root: &Path, layer: &Layer) -> LayerTensors {
    specs_vars(root, &layer.name, &layer.param_specs())
}

pub fn specs_vars(root: &Path, layer: &str, specs: &[ParamSpec]) -> LayerTensors {
    specs
        .iter()
        .map(|s| {
            let shape: Vec<i64> = s.shape.iter().map(|&d| d as i64).collect();
            (part_name(layer, &s.name).to_string(), var(root, &s.name, &shape, s.trainable))
        })
        .collect()
}

/// A view of `t` with `shape`: leading channels on the first two dimensions, the centre
/// of the kernel on the spatial ones (how smaller members inherit larger members' weights).
pub fn slice_to(t: &Tensor, shape: &[usize]) -> Tensor {
    let mut v = t.shallow_clone();
    for (d, &n) in shape.iter().enumerate() {
        let (n, have) = (n as i64, v.size()[d]);
        if n < have {
            let start = if d >= 2 { (have - n) / 2 } else { 0 };
            v = v.narrow(d as i64, start, n);
        }
    }
    v
}

fn get<'a>(w: &'a LayerTensors, name: &str) -> &'a Tensor {
    w.get(name).unwrap_or_else(|| panic!("layer tensors lack `{name}`"))
}

pub fn act(x: &Tensor, a: Act) -> Tensor {
    match a {
        Act::None => x.shallow_clone(),
        Act::Relu => x.relu(),
        Act::Relu6 => x.clamp(0.0, 6.0),
        Act::HSwish => x.hardswish(),
    }
}

/// k x k conv with PyTorch's symmetric padding k//2 (kernel size read from the weight).
fn conv(x: &Tensor, w: &LayerTensors, prefix: &str, stride: u32, groups: i64) -> Tensor {
    let weight = get(w, &format!("{prefix}conv.weight"));
    let k = weight.size()[2];
    let s = stride as i64;
    x.conv2d(weight, w.get(&format!("{prefix}conv.bias")), [s, s], [k / 2, k / 2], [1, 1], groups)
}

fn bn(x: &Tensor, w: &LayerTensors, prefix: &str, ctx: &Ctx) -> Tensor {
    let t = |n: &str| get(w, &format!("{prefix}bn.{n}"));
    x.batch_norm(
        Some(t("weight")),
        Some(t("bias")),
        Some(t("running_mean")),
        Some(t("running_var")),
        ctx.train,
        ctx.bn_momentum,
        ctx.bn_eps,
        true,
    )
}

/// Squeeze-and-excitation: pool -> 1x1 conv -> act -> 1x1 conv -> gate -> channel scale.
fn squeeze_excite(x: &Tensor, w: &LayerTensors, se: &SqueezeExcite) -> Tensor {
    let s = x.mean_dim(&[2i64, 3][..], true, Kind::Float);
    let s = s.conv2d(get(w, "se.reduce.weight"), Some(get(w, "se.reduce.bias")), [1, 1], [0, 0], [1, 1], 1);
    let s = act(&s, se.act);
    let s = s.conv2d(get(w, "se.expand.weight"), Some(get(w, "se.expand.bias")), [1, 1], [0, 0], [1, 1], 1);
    let gate = match se.gate {
        Gate::Sigmoid => s.sigmoid(),
        Gate::HSigmoid => s.hardsigmoid(),
    };
    x * gate
}

fn shortcut(input: &Tensor, out: Tensor, kind: Shortcut, stride: u32) -> Tensor {
    match kind {
        Shortcut::None => out,
        Shortcut::AvgPool if stride > 1 => {
            let s = stride as i64;
            // ceil_mode matches the IR's "same" output size ceil(H / s) on odd inputs.
            out + input.avg_pool2d([s, s], [s, s], [0, 0], true, false, None::<i64>)
        }
        Shortcut::Identity | Shortcut::AvgPool => out + input,
    }
}

/// The forward pass of `layer` on `x` with weights `w`.
pub fn forward(layer: &Layer, w: &LayerTensors, x: &Tensor, ctx: &Ctx) -> Tensor {
    match &layer.op {
        Op::Conv(c) => {
            let mut y = conv(x, w, "", c.stride, c.groups as i64);
            if c.bn {
                y = bn(&y, w, "", ctx);
            }
            y = act(&y, c.act);
            if let Some(se) = &c.se {
                y = squeeze_excite(&y, w, se);
            }
            shortcut(x, y, c.shortcut, c.stride)
        }
        Op::MbConv(m) => {
            let mut y = x.shallow_clone();
            if m.expand {
                y = act(&bn(&conv(&y, w, "expand.", 1, m.groups as i64), w, "expand.", ctx), m.act);
                if m.shuffle {
                    y = y.channel_shuffle(m.groups as i64);
                }
            }
            let mid = get(w, "dw.conv.weight").size()[0];
            y = act(&bn(&conv(&y, w, "dw.", m.stride, mid), w, "dw.", ctx), m.act);
            if let Some(se) = &m.se {
                y = squeeze_excite(&y, w, se);
            }
            y = bn(&conv(&y, w, "project.", 1, m.groups as i64), w, "project.", ctx);
            shortcut(x, y, m.shortcut, m.stride)
        }
        Op::Identity => x.shallow_clone(),
        Op::GlobalAvgPool => x.mean_dim(&[2i64, 3][..], true, Kind::Float),
        Op::Dropout { p } => x.dropout(*p as f64, ctx.train),
        Op::Linear(l) => act(&x.flatten(1, -1).linear(get(w, "weight"), w.get("bias")), l.act),
    }
}
