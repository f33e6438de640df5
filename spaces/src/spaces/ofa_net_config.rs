//! OFA's `net.config`, the JSON its model zoo (`ofa.model_zoo.ofa_specialized`) builds a
//! specialized network from, both ways: [`to_net_config`] writes a member of an OFA space in
//! the layout of OFA's 50 published networks (`MobileInvertedResidualBlock` /
//! `mobile_inverted_conv` / `MBInvertedConvLayer`), and [`from_net_config`] finds the OFA
//! space and genome a net.config describes by matching it against the spaces' decoded networks.
//! The input size is not in net.config (OFA keeps it in `run.config`, key `image_size`).

use super::ofa::{EXPANDS, KERNELS};
use crate::genome::Genome;
use crate::ir::{Act, Conv, Layer, Network, Op, Shortcut};
use crate::{json, ArchError, SearchSpace};
use serde_json::{json, Map, Value};

/// An OFA space, the network class its net.config names, and the classifier dropout of OFA's
/// published specialized networks of that space (0.1 for w1.0, 0.2 for w1.2, the int 0 for
/// Proxyless; they were fine-tuned with it). Dropout is a training setting the arch JSON does
/// not carry, so export writes this and import ignores it.
struct Flavour {
    space: &'static str,
    class: &'static str,
    dropout: fn() -> Value,
}

const FLAVOURS: [Flavour; 3] = [
    Flavour { space: "ofa-mbv3-w1.0", class: "MobileNetV3", dropout: || json!(0.1) },
    Flavour { space: "ofa-mbv3-w1.2", class: "MobileNetV3", dropout: || json!(0.2) },
    Flavour { space: "ofa-proxyless-w1.3", class: "ProxylessNASNets", dropout: || json!(0) },
];

/// Fields that are training settings, not architecture: ignored on import.
const TRAINING_ONLY: [&str; 2] = ["bn.momentum", "classifier.dropout_rate"];

fn flavour(space: &str) -> Result<&'static Flavour, ArchError> {
    FLAVOURS.iter().find(|f| f.space == space).ok_or_else(|| {
        let names: Vec<&str> = FLAVOURS.iter().map(|f| f.space).collect();
        ArchError::Other(format!("`{space}` is not an OFA space; net.config exists for {}", names.join(", ")))
    })
}

fn act_name(a: Act) -> Value {
    match a {
        Act::None => Value::Null,
        Act::Relu => json!("relu"),
        Act::Relu6 => json!("relu6"),
        Act::HSwish => json!("h_swish"),
    }
}

fn conv_layer(l: &Layer, c: &Conv) -> Value {
    json!({"name": "ConvLayer", "kernel_size": c.kernel, "stride": c.stride, "dilation": 1, "groups": c.groups,
           "bias": c.bias, "has_shuffle": false, "in_channels": l.input.c, "out_channels": c.out, "use_bn": c.bn,
           "act_func": act_name(c.act), "dropout_rate": 0, "ops_order": "weight_bn_act"})
}

/// OFA's net.config of member `g` of the OFA space `space`, exactly as OFA published its
/// specialized networks: the layers come from the decoded network, the (integer) expand
/// ratios from the genome.
pub fn to_net_config(space: &dyn SearchSpace, g: &Genome) -> Result<Value, ArchError> {
    let flavour = flavour(space.name())?;
    let net = space.network(g);
    // Active slots in block order (the encoding writes inactive slots as 0).
    let arch = space.to_json(g);
    let mut expands = arch["e"].as_array().into_iter().flatten().filter_map(Value::as_u64).filter(|&e| e != 0);
    let mut config = Map::new();
    let mut blocks = Vec::new();
    for l in &net.layers {
        match (&l.op, l.name.as_str()) {
            (Op::Conv(c), "stem") => drop(config.insert("first_conv".into(), conv_layer(l, c))),
            (Op::Conv(c), "final_expand") => drop(config.insert("final_expand_layer".into(), conv_layer(l, c))),
            (Op::Conv(c), "feature_mix") => drop(config.insert("feature_mix_layer".into(), conv_layer(l, c))),
            (Op::MbConv(m), _) => {
                // The fixed first block has no expand conv: OFA writes expand_ratio 1, mid_channels null.
                let (expand, mid) = if m.expand {
                    let e = expands
                        .next()
                        .ok_or_else(|| ArchError::Other(format!("{}: more blocks than active slots", l.name)))?;
                    (json!(e), json!(m.mid))
                } else {
                    (json!(1), Value::Null)
                };
                let shortcut = (m.shortcut != Shortcut::None).then(|| {
                    json!({"name": "IdentityLayer", "in_channels": [l.input.c], "out_channels": [m.out],
                           "use_bn": false, "act_func": null, "dropout_rate": 0, "ops_order": "weight_bn_act"})
                });
                blocks.push(
                    json!({"name": "MobileInvertedResidualBlock", "shortcut": shortcut, "mobile_inverted_conv": {
                    "name": "MBInvertedConvLayer", "in_channels": l.input.c, "out_channels": m.out,
                    "kernel_size": m.kernel, "stride": m.stride, "expand_ratio": expand, "mid_channels": mid,
                    "act_func": act_name(m.act), "use_se": m.se.is_some()}}),
                );
            }
            (Op::Linear(f), "classifier") => drop(config.insert(
                "classifier".into(),
                json!({"name": "LinearLayer", "in_features": l.input.c, "out_features": f.out, "bias": f.bias,
                       "use_bn": false, "act_func": act_name(f.act), "dropout_rate": (flavour.dropout)(),
                       "ops_order": "weight_bn_act"}),
            )),
            _ => {}
        }
    }
    config.insert("name".into(), json!(flavour.class));
    config.insert("bn".into(), json!({"momentum": 0.1, "eps": net.bn_eps}));
    config.insert("blocks".into(), Value::Array(blocks));
    Ok(Value::Object(config))
}

/// [`from_net_config`] on the text of a net.config file.
pub fn parse_net_config(text: &str, resolution: u32) -> Result<(&'static str, Genome), ArchError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ArchError::Json(e.to_string()))?;
    from_net_config(&v, resolution)
}

/// The OFA space (by name) and member that OFA's net.config `v` describes, at input size
/// `resolution`. The space is the one whose decoded networks have the same stem, final-expand
/// and feature-mix widths; the blocks are then split into that space's stages by width, and
/// the genome's decoded network must reproduce every field of `v` (training-only
/// `bn.momentum` and `classifier.dropout_rate` aside). Errors name the first block or field
/// that no OFA space can express. A resolution outside the space's range is refused after the
/// blocks are known to fit, so the caller can choose a supported one.
pub fn from_net_config(v: &Value, resolution: u32) -> Result<(&'static str, Genome), ArchError> {
    let v = published_layout(v);
    let top = v.as_object().ok_or_else(|| ArchError::Other("net.config must be a JSON object".into()))?;
    let blocks = top.get("blocks").ok_or_else(|| ArchError::field("blocks", "missing"))?;
    let blocks = blocks.as_array().ok_or_else(|| ArchError::field("blocks", "expected an array"))?;
    let head = Head::of_config(top)?;

    let mut candidates = Vec::new();
    let mut found = None;
    for f in &FLAVOURS {
        let space = crate::space(f.space)?;
        let skeleton = Skeleton::of(&*space);
        if skeleton.head == head {
            found = Some((f, space, skeleton));
            break;
        }
        candidates.push(format!("{} {}", f.space, skeleton.head));
    }
    let Some((flavour, space, skeleton)) = found else {
        return Err(ArchError::Other(format!(
            "width does not match any OFA space: net.config has {head}; {}",
            candidates.join("; ")
        )));
    };
    let name = flavour.space;

    // Per block (after the fixed first one): width, kernel and expand ratio in the space's choices.
    let block0 = blocks.first().ok_or_else(|| ArchError::field("blocks", "empty"))?;
    mb_conv(block0, 0)?;
    let mut parsed = Vec::new();
    for (i, b) in blocks.iter().enumerate().skip(1) {
        let c = mb_conv(b, i)?;
        let at = |k: &str| format!("blocks[{i}].mobile_inverted_conv.{k}");
        let get = |k: &str| c.get(k).ok_or_else(|| ArchError::field(at(k), "missing"));
        let out = json::uint(get("out_channels")?, &at("out_channels"))?;
        let kernel = json::uint(get("kernel_size")?, &at("kernel_size"))?;
        if !KERNELS.contains(&(kernel as u32)) {
            return Err(ArchError::field(
                format!("blocks[{i}]"),
                format!("kernel_size {kernel} is not one of {}", list(&KERNELS)),
            ));
        }
        let e = json::number(get("expand_ratio")?, &at("expand_ratio"))?;
        let Some(&expand) = EXPANDS.iter().find(|&&x| x as f64 == e) else {
            return Err(ArchError::field(
                format!("blocks[{i}]"),
                format!("expand_ratio {e} is not one of {}", list(&EXPANDS)),
            ));
        };
        parsed.push((i, out as u32, kernel as u32, expand));
    }

    // Stages: runs of equal width, matched to the space's stages in order.
    let runs: Vec<&[(usize, u32, u32, u32)]> = parsed.chunk_by(|a, b| a.1 == b.1).collect();
    let (mut ks, mut es, mut ds) = (Vec::new(), Vec::new(), Vec::new());
    for (si, stage) in skeleton.stages.iter().enumerate() {
        let Some(run) = runs.get(si) else {
            return Err(ArchError::Other(format!(
                "net.config has {} stages after block 0, {name} has {}",
                runs.len(),
                skeleton.stages.len()
            )));
        };
        let (first, last) = (run[0].0, run[run.len() - 1].0);
        if run[0].1 != stage.out {
            return Err(ArchError::field(
                format!("blocks[{first}]"),
                format!("out_channels {}, but stage {} of {name} has width {}", run[0].1, si + 1, stage.out),
            ));
        }
        let bound = if run.len() > stage.max {
            format!("at most {}", stage.max)
        } else if run.len() < stage.min {
            format!("at least {}", stage.min)
        } else {
            String::new()
        };
        if !bound.is_empty() {
            return Err(ArchError::Other(format!(
                "stage {} (blocks {first}-{last}) has {} blocks, {name} allows {bound}",
                si + 1,
                run.len()
            )));
        }
        // Inactive slots: any valid choice (ignored, canonicalised to 0).
        for p in 0..stage.max {
            ks.push(run.get(p).map_or(KERNELS[0], |b| b.2));
            es.push(run.get(p).map_or(EXPANDS[0], |b| b.3));
        }
        ds.push(run.len());
    }
    if let Some(extra) = runs.get(skeleton.stages.len()) {
        return Err(ArchError::field(
            format!("blocks[{}]", extra[0].0),
            format!("out_channels {} after the last stage of {name}", extra[0].1),
        ));
    }

    let supported = space.resolutions();
    if !supported.contains(&resolution) {
        return Err(ArchError::Other(format!(
            "resolution {resolution} is not one of {name}'s input sizes ({}); the blocks fit, so import them at a supported resolution",
            range(&supported)
        )));
    }
    let g = space.from_json(&json!({"ks": ks, "e": es, "d": ds, "r": [resolution]}))?;
    let want = to_net_config(&*space, &g)?;
    match first_difference(&v, &want, "") {
        Some((path, problem)) => {
            Err(ArchError::field(&path, format!("{problem} ({name} has {})", lookup(&want, &path))))
        }
        None => Ok((name, g)),
    }
}

/// OFA's later releases write the same network as `ResidualBlock` { `conv`: `MBConvLayer`
/// with `groups: null` } and give ConvLayers `use_se`; OFA reads both layouts, and so does
/// import, by rewriting the later one to the published one.
fn published_layout(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(blocks) = v.get_mut("blocks").and_then(Value::as_array_mut) {
        for b in blocks.iter_mut().filter_map(Value::as_object_mut) {
            if b.get("name") == Some(&json!("ResidualBlock")) {
                b.insert("name".into(), json!("MobileInvertedResidualBlock"));
            }
            if !b.contains_key("mobile_inverted_conv") {
                if let Some(conv) = b.remove("conv") {
                    b.insert("mobile_inverted_conv".into(), conv);
                }
            }
            if let Some(c) = b.get_mut("mobile_inverted_conv").and_then(Value::as_object_mut) {
                if c.get("name") == Some(&json!("MBConvLayer")) {
                    c.insert("name".into(), json!("MBInvertedConvLayer"));
                }
                if c.get("groups") == Some(&Value::Null) {
                    c.remove("groups");
                }
            }
        }
    }
    for key in ["first_conv", "final_expand_layer", "feature_mix_layer"] {
        if let Some(c) = v.get_mut(key).and_then(Value::as_object_mut) {
            if c.get("use_se") == Some(&json!(false)) {
                c.remove("use_se");
            }
        }
    }
    v
}

fn mb_conv(b: &Value, i: usize) -> Result<&Map<String, Value>, ArchError> {
    b.get("mobile_inverted_conv").and_then(Value::as_object).ok_or_else(|| {
        ArchError::field(format!("blocks[{i}]"), "no `mobile_inverted_conv` object (an MBInvertedConvLayer)")
    })
}

/// The widths that tell the OFA spaces apart.
#[derive(PartialEq)]
struct Head {
    first_conv: u64,
    final_expand: Option<u64>,
    feature_mix: u64,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let fe = self.final_expand.map_or("none".into(), |c| c.to_string());
        write!(f, "first_conv {}, final_expand_layer {fe}, feature_mix_layer {}", self.first_conv, self.feature_mix)
    }
}

impl Head {
    fn of_config(top: &Map<String, Value>) -> Result<Head, ArchError> {
        let width = |layer: &str| -> Result<Option<u64>, ArchError> {
            let Some(l) = top.get(layer) else { return Ok(None) };
            let field = format!("{layer}.out_channels");
            let c = l.get("out_channels").ok_or_else(|| ArchError::field(&field, "missing"))?;
            json::uint(c, &field).map(Some)
        };
        Ok(Head {
            first_conv: width("first_conv")?.ok_or_else(|| ArchError::field("first_conv", "missing"))?,
            final_expand: width("final_expand_layer")?,
            feature_mix: width("feature_mix_layer")?.ok_or_else(|| ArchError::field("feature_mix_layer", "missing"))?,
        })
    }

    fn of_network(net: &Network) -> Head {
        let width = |name: &str| net.layers.iter().find(|l| l.name == name).map(|l| l.output.c as u64);
        Head {
            first_conv: width("stem").unwrap_or(0),
            final_expand: width("final_expand"),
            feature_mix: width("feature_mix").unwrap_or(0),
        }
    }
}

struct StageShape {
    out: u32,
    min: usize,
    max: usize,
}

/// A space's macro structure, read off its smallest and largest decoded networks.
struct Skeleton {
    head: Head,
    stages: Vec<StageShape>,
}

impl Skeleton {
    fn of(space: &dyn SearchSpace) -> Skeleton {
        let (small, large) = space.extremes();
        let r = space.resolutions()[0];
        // Runs of equal width among the MBConv blocks after the fixed first one.
        let runs = |g: &Genome| -> Vec<(u32, usize)> {
            let net = space.network_at(g, r);
            let outs: Vec<u32> = net
                .layers
                .iter()
                .filter_map(|l| match l.op {
                    Op::MbConv(m) => Some(m.out),
                    _ => None,
                })
                .skip(1)
                .collect();
            outs.chunk_by(|a, b| a == b).map(|run| (run[0], run.len())).collect()
        };
        let stages = runs(&small)
            .into_iter()
            .zip(runs(&large))
            .map(|((out, min), (_, max))| StageShape { out, min, max })
            .collect();
        Skeleton { head: Head::of_network(&space.network_at(&large, r)), stages }
    }
}

/// The first place where `got` differs from `want`: (JSON path, what is wrong). Numbers
/// compare by value (3 == 3.0); training-only fields are skipped.
fn first_difference(got: &Value, want: &Value, path: &str) -> Option<(String, String)> {
    let at = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let p = at(k);
                if TRAINING_ONLY.contains(&p.as_str()) {
                    continue;
                }
                match g.get(k) {
                    None => return Some((p, "missing".into())),
                    Some(gv) => {
                        if let Some(d) = first_difference(gv, wv, &p) {
                            return Some(d);
                        }
                    }
                }
            }
            g.keys().find(|k| !w.contains_key(*k)).map(|k| (at(k), "not a field of OFA's net.config here".into()))
        }
        (Value::Array(g), Value::Array(w)) => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                if let Some(d) = first_difference(gv, wv, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (g.len() != w.len()).then(|| (path.to_string(), format!("{} entries", g.len())))
        }
        (Value::Number(g), Value::Number(w)) if g.as_f64() == w.as_f64() => None,
        _ if got == want => None,
        _ => Some((path.to_string(), format!("is {got}"))),
    }
}

/// The value at a path written by [`first_difference`], for the error message.
fn lookup(v: &Value, path: &str) -> String {
    let mut cur = Some(v);
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.and_then(|c| c.get(key));
        if let Some(i) = index {
            cur = cur.and_then(|c| c.get(i));
        }
    }
    match cur {
        Some(Value::Array(a)) => format!("{} entries", a.len()),
        Some(x) => x.to_string(),
        None => "no such field".into(),
    }
}

fn list(choices: &[u32]) -> String {
    choices.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

fn range(r: &[u32]) -> String {
    match r {
        [a, b, .., z] => format!("{a}-{z} step {}", b - a),
        _ => list(r),
    }
}
