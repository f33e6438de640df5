//! OFA's own supernet checkpoints (mit-han-lab/once-for-all's released
//! `ofa_mbv3_d234_e346_k357_w1.0`, `…_w1.2`, `ofa_proxyless_d234_e346_k357_w1.3`:
//! `torch.save({"state_dict": …})`) mapped onto [`OfaSupernet`]'s variables.
//!
//! OFA stores every tensor at the largest configuration with the hidden channels already in
//! the order its `re_organize_middle_weights` leaves (important ones first), which is the
//! order hwnas's leading-channel views read; the per-block `7to5_matrix`/`5to3_matrix`
//! kernel transforms become `{block}.dw.7to5_matrix`/`5to3_matrix`. Names, by layer:
//!
//! | hwnas | OFA |
//! | --- | --- |
//! | `stem.{conv,bn}.*` | `first_conv.{conv,bn}.*` |
//! | `block0.{dw,project}.*` | `blocks.0.conv.{depth_conv,point_linear}.*` |
//! | `stage{s}.block{p}.expand.*` | `blocks.{i}.conv.inverted_bottleneck.{conv.conv,bn.bn}.*` |
//! | `….dw.*`, `….dw.7to5_matrix` | `….depth_conv.{conv.conv,bn.bn}.*`, `….depth_conv.conv.7to5_matrix` |
//! | `….se.{reduce,expand}.*` | `….depth_conv.se.fc.{reduce,expand}.*` |
//! | `….project.*` | `….point_linear.{conv.conv,bn.bn}.*` |
//! | `final_expand.*`, `feature_mix.*` | `final_expand_layer.*`, `feature_mix_layer.*` |
//! | `classifier.{weight,bias}` | `classifier.linear.{weight,bias}` |
//!
//! `i` runs over the blocks in network order (block0 is 0). Names of older OFA releases
//! (`mobile_inverted_conv`, un-nested `bn.`/`conv.weight`/`linear.`, a DataParallel
//! `module.` prefix) are accepted the way OFA's own `load_state_dict` accepts them.

use super::ofa::OfaSupernet;
use crate::nn::NnError;
use spaces::ir::{Op, Weights};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// One supernet variable: its hwnas (VarStore) name, its OFA name and its shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub hwnas: String,
    pub ofa: String,
    pub shape: Vec<usize>,
}

/// OFA's module path of an hwnas layer, and whether it is an elastic (dynamic) block, whose
/// convs and BNs OFA wraps once more (`conv.conv.weight`, `bn.bn.*`).
fn ofa_prefix(layer: &str, block_index: usize) -> (String, bool) {
    match layer {
        "stem" => ("first_conv".into(), false),
        "final_expand" => ("final_expand_layer".into(), false),
        "feature_mix" => ("feature_mix_layer".into(), false),
        "classifier" => ("classifier.linear".into(), false),
        _ => (format!("blocks.{block_index}.conv"), block_index > 0),
    }
}

/// OFA's name of the tensor `part` (`dw.bn.running_var`) of a layer under `prefix`.
fn ofa_part(part: &str, mbconv: bool, dynamic: bool) -> String {
    let (module, rest) = match part.split_once('.') {
        Some((m, r)) if mbconv => (
            match m {
                "expand" => "inverted_bottleneck.",
                "dw" => "depth_conv.",
                "project" => "point_linear.",
                "se" => "depth_conv.se.fc.",
                other => unreachable!("MBConv part {other}"),
            },
            r,
        ),
        _ => ("", part),
    };
    let rest = match rest.split_once('.') {
        Some(("conv", "weight")) if dynamic => "conv.conv.weight".to_string(),
        Some(("bn", t)) if dynamic => format!("bn.bn.{t}"),
        _ => rest.to_string(),
    };
    format!("{module}{rest}")
}

/// Every variable of `space`'s supernet (as [`OfaSupernet::new`] creates them) with its OFA
/// name and shape, in network order.
pub fn mapping(space: &str) -> Result<Vec<Entry>, NnError> {
    if !spaces::is_family(space, spaces::ofa) {
        return Err(NnError::NotOfa(space.into()));
    }
    let s = spaces::space(space)?;
    let full = s.network_at(&s.extremes().1, 224);
    let mut out = Vec::new();
    let mut block = 0;
    for layer in &full.layers {
        let mbconv = matches!(layer.op, Op::MbConv(_));
        let (prefix, dynamic) = ofa_prefix(&layer.name, block);
        for spec in layer.param_specs() {
            let part = super::super::layers::part_name(&layer.name, &spec.name);
            out.push(Entry {
                hwnas: spec.name.clone(),
                ofa: format!("{prefix}.{}", ofa_part(part, mbconv, dynamic)),
                shape: spec.shape,
            });
        }
        if let Op::MbConv(m) = &layer.op {
            if m.kernel == 7 {
                for (what, n) in [("7to5_matrix", 25), ("5to3_matrix", 9)] {
                    out.push(Entry {
                        hwnas: format!("{}.dw.{what}", layer.name),
                        ofa: format!("{prefix}.depth_conv.conv.{what}"),
                        shape: vec![n, n],
                    });
                }
            }
            block += 1;
        }
    }
    Ok(out)
}

/// A name as OFA's `load_state_dict` normalises it, so that old and new releases compare equal.
fn canonical(name: &str) -> String {
    let n = name.strip_prefix("module.").unwrap_or(name);
    n.replace(".mobile_inverted_conv.", ".conv.")
        .replace(".bn.bn.", ".bn.")
        .replace(".conv.conv.weight", ".conv.weight")
        .replace(".linear.linear.", ".linear.")
}

/// Whether `path` is a file in torch's serialisation (a legacy pickle, which starts with a
/// pickle PROTO opcode, or a zip container) rather than an hwnas checkpoint directory.
pub fn is_torch_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let ok = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok();
    ok && path.is_file() && (head[0] == 0x80 && (2..=5).contains(&head[1]) || head == *b"PK\x03\x04")
}

/// The float tensors of an OFA-format `.pth` under their OFA names (BN batch counters dropped).
pub fn read_state_dict(path: &Path) -> Result<Weights, NnError> {
    let sd = predictors::torch_file::load_state_dict(path)
        .map_err(|source| NnError::TorchFile { path: path.into(), source })?;
    let mut w = Weights::new();
    for (name, t) in sd {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        w.insert(name.clone(), t.shape.clone(), t.to_f32()).map_err(|source| NnError::CheckpointTensor {
            path: path.into(),
            name,
            source,
        })?;
    }
    Ok(w)
}

/// What an OFA state dict looks like: its family and stem width, and the hwnas space whose
/// supernet it fits exactly, if any.
fn describe(sd: &BTreeMap<String, &spaces::ir::Tensor>) -> String {
    let family = if sd.contains_key("final_expand_layer.conv.weight") {
        "OFA-MobileNetV3"
    } else if sd.contains_key("feature_mix_layer.bn.weight") {
        "OFA-ProxylessNAS"
    } else {
        let first = sd.keys().next().map(String::as_str).unwrap_or("none");
        return format!(
            "a state dict of neither an OFA-MobileNetV3 nor an OFA-ProxylessNAS supernet ({} tensors, the first `{first}`)",
            sd.len()
        );
    };
    let stem = sd.get("first_conv.conv.weight").map(|t| format!(" with a {}-channel first conv", t.shape[0]));
    let fits = ofa_spaces().find(|s| fits(sd, s));
    let fits = fits.map(|s| format!(" (it fits `{s}`)")).unwrap_or_else(|| " (it fits no hwnas space)".into());
    format!("an {family} supernet{}{fits}", stem.unwrap_or_default())
}

fn ofa_spaces() -> impl Iterator<Item = &'static str> {
    spaces::names_of(spaces::ofa)
}

fn fits(sd: &BTreeMap<String, &spaces::ir::Tensor>, space: &str) -> bool {
    let m = mapping(space).expect("an OFA space");
    m.len() == sd.len() && m.iter().all(|e| sd.get(&canonical(&e.ofa)).is_some_and(|t| t.shape == e.shape))
}

/// The checkpoint's tensors under hwnas's names, checked against `space`'s supernet: every
/// tensor present with its shape, nothing left over. `source` names the file in errors.
pub fn to_supernet_weights(source: &str, state_dict: &Weights, space: &str) -> Result<Weights, NnError> {
    let entries = mapping(space)?;
    let file = || source.to_string();
    let mut sd: BTreeMap<String, &spaces::ir::Tensor> = BTreeMap::new();
    for (name, t) in state_dict.iter() {
        if sd.insert(canonical(name), t).is_some() {
            return Err(NnError::TensorTwice { file: file(), name: name.to_string() });
        }
    }
    // The wrong family or width first: then every tensor differs, and one sentence says why.
    let stem = entries.iter().find(|e| e.hwnas == "stem.conv.weight").expect("a stem");
    let head = entries.iter().rev().find(|e| e.hwnas.ends_with("conv.weight")).expect("a head conv");
    let same = |e: &Entry| sd.get(&canonical(&e.ofa)).is_some_and(|t| t.shape == e.shape);
    if !fits(&sd, space) && (!same(stem) || !same(head)) {
        return Err(NnError::OtherSupernet { file: file(), what: describe(&sd), space: space.into() });
    }
    let missing: Vec<String> =
        entries.iter().filter(|e| !sd.contains_key(&canonical(&e.ofa))).map(|e| e.ofa.clone()).collect();
    if !missing.is_empty() {
        return Err(NnError::MissingTensors { file: file(), total: entries.len(), space: space.into(), missing });
    }
    let mut out = Weights::new();
    for e in &entries {
        let t = sd[&canonical(&e.ofa)];
        if t.shape != e.shape {
            return Err(NnError::TensorShape {
                file: file(),
                found: format!("{} has shape {:?}", e.ofa, t.shape),
                space: space.into(),
                expected: format!("{} is {:?}", e.hwnas, e.shape),
            });
        }
        out.insert(e.hwnas.clone(), t.shape.clone(), t.data.clone())?;
    }
    let known: BTreeSet<String> = entries.iter().map(|e| canonical(&e.ofa)).collect();
    let extra: Vec<String> =
        state_dict.iter().map(|(n, _)| n).filter(|n| !known.contains(&canonical(n))).map(String::from).collect();
    if !extra.is_empty() {
        return Err(NnError::ExtraTensors { file: file(), space: space.into(), extra });
    }
    Ok(out)
}

/// An OFA checkpoint mapped onto one space's supernet.
pub struct OfaCheckpoint {
    pub space: String,
    /// Every supernet variable, under hwnas's names.
    pub weights: Weights,
}

impl OfaCheckpoint {
    /// Reads the `.pth` at `path` for `space`'s supernet, or, when `space` is `None`, for the
    /// OFA space it fits.
    pub fn read(path: &Path, space: Option<&str>) -> Result<OfaCheckpoint, NnError> {
        let sd = read_state_dict(path)?;
        let source = path.display().to_string();
        let space = match space {
            Some(s) => s.to_string(),
            None => {
                let by_name: BTreeMap<String, &spaces::ir::Tensor> =
                    sd.iter().map(|(n, t)| (canonical(n), t)).collect();
                match ofa_spaces().find(|s| fits(&by_name, s)) {
                    Some(s) => s.to_string(),
                    None => {
                        return Err(NnError::NoFittingSpace {
                            file: source,
                            what: describe(&by_name),
                            spaces: ofa_spaces().collect::<Vec<_>>().join(", "),
                        })
                    }
                }
            }
        };
        let weights = to_supernet_weights(&source, &sd, &space)?;
        Ok(OfaCheckpoint { space, weights })
    }

    /// Overwrites the supernet variables in `vs` (made by [`OfaSupernet::new`] for this space).
    pub fn copy_into(&self, vs: &VarStore) -> Result<(), NnError> {
        let vars = vs.variables();
        if vars.len() != self.weights.len() {
            return Err(NnError::VariableCount {
                found: vars.len(),
                space: self.space.clone(),
                expected: self.weights.len(),
            });
        }
        tch::no_grad(|| {
            for (name, w) in self.weights.iter() {
                let mut v = vars.get(name).ok_or_else(|| NnError::MissingVariable(name.to_string()))?.shallow_clone();
                let shape: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
                v.copy_(&Tensor::from_slice(&w.data).view(shape.as_slice()));
            }
            Ok(())
        })
    }

    /// The supernet with these weights, in a fresh VarStore on `device`.
    pub fn supernet(&self, device: Device) -> Result<(VarStore, OfaSupernet), NnError> {
        let vs = VarStore::new(device);
        let sn = OfaSupernet::new(&vs.root(), &self.space)?;
        self.copy_into(&vs)?;
        Ok((vs, sn))
    }
}

/// The supernet variables in `vs` as an OFA state dict (OFA's current names; no BN batch
/// counters): the inverse of [`to_supernet_weights`].
pub fn to_state_dict(space: &str, vs: &VarStore) -> Result<Weights, NnError> {
    let vars = vs.variables();
    let mut w = Weights::new();
    for e in mapping(space)? {
        let t = vars.get(&e.hwnas).ok_or_else(|| NnError::MissingVariable(e.hwnas.clone()))?;
        let data = Vec::<f32>::try_from(&t.detach().to_device(Device::Cpu).contiguous().view([-1]))?;
        w.insert(e.ofa, e.shape, data)?;
    }
    Ok(w)
}
