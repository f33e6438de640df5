//! Per-layer times inside whole networks (`hwnas profile --networks N --per-layer`): a
//! runtime's per-op profile of a network (hwnas-runner: tract's plan timed node by node;
//! `benchmark_model --enable_op_profiling=true`: its `Run Order` table) attributed to the IR
//! layers of the generated model through the model writer's tensor → layer map
//! ([`crate::modelfile::tflite::network_model_mapped`]). OFA built its Note10 lookup table
//! the same way: per-op timing of whole sub-networks, averaged per key.

use crate::modelfile::tflite::TensorLayers;
use serde::{Deserialize, Serialize};
use spaces::ir::Network;
use std::collections::HashMap;

/// The IR layers of one generated network and which of them each tensor belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerMap {
    /// (name, lookup key) of each layer a lookup table prices, by index into the network's layers.
    layers: Vec<Option<(String, String)>>,
    tensors: HashMap<String, usize>,
}

impl LayerMap {
    /// The map of `net`'s model file, from the writer's `tensors`.
    pub fn new(net: &Network, tensors: TensorLayers) -> LayerMap {
        let layers = net.layers.iter().map(|l| l.is_timed().then(|| (l.name.clone(), l.key()))).collect();
        LayerMap { layers, tensors: tensors.into_iter().collect() }
    }

    /// The layer of an op a runtime names `op`: the layer of its output tensor. Runtimes name
    /// ops after that tensor, and tract names the nodes it derives from one op (packing,
    /// fused epilogues) by appending `.suffix`; so the longest dotted prefix that is a tensor.
    pub fn layer_of(&self, op: &str) -> Option<usize> {
        let mut name = op;
        loop {
            if let Some(&l) = self.tensors.get(name) {
                return Some(l);
            }
            name = &name[..name.rfind('.')?];
        }
    }

    /// Sums per-op times (`(op name, µs per run)`) per layer. Every layer a table prices is
    /// listed, in network order; one whose ops ran in no time, or that has none (an identity
    /// layer lowers to nothing), is listed with 0.
    pub fn attribute(&self, ops: &[(String, f64)]) -> LayerTimes {
        let mut us = vec![0.0; self.layers.len()];
        let (mut profiled_us, mut unattributed_us, mut unattributed) = (0.0, 0.0, Vec::new());
        for (op, t) in ops {
            profiled_us += t;
            match self.layer_of(op).filter(|l| self.layers[*l].is_some()) {
                Some(l) => us[l] += t,
                None => {
                    unattributed_us += t;
                    unattributed.push(op.clone());
                }
            }
        }
        let layers = self
            .layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let (name, key) = l.clone()?;
                Some(LayerTime { index: i as u32, name, key, op_us: us[i] })
            })
            .collect();
        LayerTimes { layers, profiled_us, unattributed_us, unattributed }
    }
}

/// One layer's time inside a network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTime {
    /// Index into the network's layers.
    pub index: u32,
    pub name: String,
    /// Its lookup-table key.
    pub key: String,
    /// Its ops' time, µs per run (mean over the profiled runs).
    pub op_us: f64,
}

/// A network's per-op profile, per layer (journaled with the network's record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTimes {
    /// Every layer a table prices, in network order.
    pub layers: Vec<LayerTime>,
    /// All ops' time, µs per run: the profile's sum (not wall clock).
    pub profiled_us: f64,
    /// Time of ops that belong to no layer (the runtime's own nodes, a delegate that took
    /// over many ops), and their names.
    pub unattributed_us: f64,
    pub unattributed: Vec<String>,
}

/// Runs that time each op of a network after its timed runs (`hwnas profile --per-layer`):
/// per-op means over 20 runs are steady to a few percent for the networks the spaces make,
/// and they are outside the timed runs (counted as overhead).
pub const LAYER_PROFILE_RUNS: u32 = 20;

/// An unattributed share above this flags the record: its layer shares would be guesses.
pub const MAX_UNATTRIBUTED: f64 = 0.05;

impl LayerTimes {
    pub fn attributed_us(&self) -> f64 {
        self.layers.iter().map(|l| l.op_us).sum()
    }

    /// Layer `l`'s share of the network's attributed op time.
    pub fn share(&self, l: &LayerTime) -> f64 {
        let total = self.attributed_us();
        if total > 0.0 {
            l.op_us / total
        } else {
            0.0
        }
    }

    /// Why these times should not be trusted, if they should not.
    pub fn warning(&self) -> Option<String> {
        if self.profiled_us <= 0.0 || self.attributed_us() <= 0.0 {
            return Some("per-layer: the op profile attributes no time to any layer".into());
        }
        let part = self.unattributed_us / self.profiled_us;
        (part > MAX_UNATTRIBUTED).then(|| {
            let names: Vec<&str> = self.unattributed.iter().take(3).map(String::as_str).collect();
            format!(
                "per-layer: {:.1} % of the op time belongs to no layer ({}{}); a delegate that fuses \
                 many ops hides the layers (e.g. benchmark_model --use_xnnpack=true)",
                100.0 * part,
                names.join(", "),
                if self.unattributed.len() > 3 { ", …" } else { "" }
            )
        })
    }
}

/// The mean of several profiles' per-op times (one per round that has one), by op name in
/// first-seen order.
pub fn mean_ops(profiles: &[Vec<(String, f64)>]) -> Vec<(String, f64)> {
    let mut order: Vec<String> = Vec::new();
    let mut sums: HashMap<String, f64> = HashMap::new();
    for p in profiles {
        for (name, t) in p {
            if !sums.contains_key(name) {
                order.push(name.clone());
            }
            *sums.entry(name.clone()).or_default() += t;
        }
    }
    let n = profiles.len().max(1) as f64;
    order.into_iter().map(|name| (name.clone(), sums[&name] / n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces::ir::{Layer, Op, Shape};

    fn net() -> Network {
        let s = Shape::new(8, 4, 4);
        let layer = |name: &str, op: Op| Layer { name: name.into(), op, input: s, output: s };
        Network {
            input: s,
            layers: vec![
                layer("a", Op::Identity),
                layer("b", Op::GlobalAvgPool),
                layer("b.1", Op::Identity),
                layer("c", Op::Dropout { p: 0.2 }),
            ],
            bn_eps: 1e-5,
        }
    }

    fn map() -> LayerMap {
        let tensors = [("b", 1), ("b.axes", 1), ("b.1", 2), ("logits", 2)];
        LayerMap::new(&net(), tensors.iter().map(|(n, l)| (n.to_string(), *l)).collect())
    }

    #[test]
    fn ops_go_to_the_layer_of_their_longest_tensor_prefix() {
        let m = map();
        assert_eq!(m.layer_of("b"), Some(1));
        assert_eq!(m.layer_of("b.pack"), Some(1), "a node tract derived from op b");
        assert_eq!(m.layer_of("b.1.matmul.pack"), Some(2), "b.1 is a tensor of its own");
        assert_eq!(m.layer_of("logits"), Some(2));
        assert_eq!(m.layer_of("input"), None);
        assert_eq!(m.layer_of("bx"), None);
    }

    #[test]
    fn every_timed_layer_is_listed_and_shares_sum_to_one() {
        let ops = [("input", 0.5), ("b", 3.0), ("b.pack", 1.0), ("b.1.x", 2.0), ("logits", 2.0)];
        let t = map().attribute(&ops.map(|(n, u)| (n.to_string(), u)));
        let keys: Vec<u32> = t.layers.iter().map(|l| l.index).collect();
        assert_eq!(keys, vec![0, 1, 2], "identity listed, dropout not");
        assert_eq!(t.layers.iter().map(|l| l.op_us).collect::<Vec<_>>(), vec![0.0, 4.0, 4.0]);
        assert_eq!((t.profiled_us, t.unattributed_us, t.unattributed.clone()), (8.5, 0.5, vec!["input".to_string()]));
        assert_eq!(t.layers.iter().map(|l| t.share(l)).sum::<f64>(), 1.0);
        // 0.5 of 8.5 µs (5.9 %) belongs to no layer: flagged.
        assert!(t.warning().unwrap().contains("5.9 % of the op time belongs to no layer (input)"));
        let none = map().attribute(&[("Delegate/XNNPACK".to_string(), 9.0)]);
        assert!(none.warning().unwrap().contains("no time to any layer"));
        let fine = map().attribute(&[("b".to_string(), 9.0), ("input".to_string(), 0.1)]);
        assert_eq!(fine.warning(), None);
    }

    #[test]
    fn rounds_are_averaged_by_op() {
        let a = vec![("x".to_string(), 1.0), ("y".to_string(), 3.0)];
        let b = vec![("x".to_string(), 3.0), ("y".to_string(), 5.0)];
        assert_eq!(mean_ops(&[a, b]), vec![("x".to_string(), 2.0), ("y".to_string(), 4.0)]);
    }
}
