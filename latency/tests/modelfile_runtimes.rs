//! Model files checked in the real runtimes: every preset's TFLite (ai-edge-litert)
//! and ONNX (onnx.checker + onnxruntime) must agree with each other and with a
//! numpy forward pass of the IR; every distinct layer of several spaces must give a
//! single-layer TFLite that LiteRT loads and runs. One Python process per test
//! checks all models (modelfile_check.py), to keep CI time down.

use latency::modelfile::graph::Dims;
use latency::modelfile::{onnx, tflite};
use serde_json::json;
use spaces::ir::{Conv, MbConv, Network, Op, Shortcut, Weights};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs modelfile_check.py in the repository's venv (created by scripts/setup).
fn check(mode: &str, dir: &Path) {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup to create the venv with ai-edge-litert, onnx and onnxruntime",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modelfile_check.py");
    let out = Command::new(&python).arg(&script).arg(mode).arg(dir).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{mode} check failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A MnasNet-space network with every op kind and pooled skips. Block 1 at 1.25x
/// width (32) feeds block 2 at 32 with stride 2, so block 2's first layer gets the
/// avg-pool shortcut; at 220 px its input is 55x55, so the ceil-mode pool and the
/// stride-2 convs also meet an odd size (where TFLite SAME needs no explicit PAD).
fn mnasnet_with_pooled_skips() -> Network {
    let space = spaces::space("mnasnet").unwrap();
    // Per block: op, kernel, se, skip (2 = pool), filters (1 = 1.0x, 2 = 1.25x), layers (1 = N).
    let genes: Vec<u8> = (0..7u8)
        .flat_map(|i| [i % 4, i % 2, if i == 4 { 1 } else { i % 2 }, 2, if i == 1 { 2 } else { 1 }, 1])
        .collect();
    let genome = spaces::Genome(genes);
    space.check(&genome).unwrap();
    let net = space.network_at(&genome, 220);
    assert!(net.layers.iter().any(|l| matches!(l.op, Op::Conv(c) if c.se.is_some())));
    assert!(net.layers.iter().any(|l| matches!(
        l.op,
        Op::Conv(Conv { shortcut: Shortcut::AvgPool, .. }) | Op::MbConv(MbConv { shortcut: Shortcut::AvgPool, .. })
    )));
    net
}

#[test]
fn networks_agree_across_litert_onnxruntime_and_numpy() {
    let dir = scratch("modelfile-presets");
    let mut manifest = Vec::new();
    let presets = spaces::presets::PRESETS.iter().map(|p| (p.name.to_string(), p.arch().network(None)));
    // Odd feature-map sizes (200 px: 100, 50, 25, 13, 7) for SE/h-swish and group convs.
    let odd = ["mobilenetv3-large", "fbnet-a"].map(|name| {
        let p = spaces::presets::PRESETS.iter().find(|p| p.name == name).unwrap();
        (format!("{name}@200"), p.arch().network(Some(200)))
    });
    let extra = [("mnasnet-space-pooled-skips@220".to_string(), mnasnet_with_pooled_skips())];
    for (name, net) in presets.chain(odd).chain(extra) {
        let weights = Weights::random(&net, 0);
        let files = [
            ("tflite", tflite::network_model(&net, &weights).unwrap()),
            ("onnx", onnx::network_model(&net, &weights).unwrap()),
            ("json", serde_json::to_vec(&net).unwrap()),
            ("safetensors", weights.to_safetensors()),
        ];
        for (ext, bytes) in &files {
            std::fs::write(dir.join(format!("{name}.{ext}")), bytes).unwrap();
        }
        manifest.push(json!({
            "name": name,
            "tflite": format!("{name}.tflite"),
            "onnx": format!("{name}.onnx"),
            "network": format!("{name}.json"),
            "weights": format!("{name}.safetensors"),
        }));
    }
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    check("networks", &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Shape of a value as LiteRT reports it.
fn nhwc(d: Dims) -> Vec<u32> {
    match d {
        Dims::Map(s) => vec![1, s.h, s.w, s.c],
        Dims::Vector(c) => vec![1, c],
    }
}

/// The layers of one structural variant differ only in widths; MnasNet's table has
/// 1446 layers (1 GB of weights, minutes in a debug build), so it is checked one
/// layer per variant: op, kernel, stride, expansion, SE and shortcut kind.
fn variant(op: &Op) -> String {
    match op {
        Op::Conv(c) => format!("conv-k{}-s{}-g{}-se{}-{:?}", c.kernel, c.stride, c.groups, c.se.is_some(), c.shortcut),
        Op::MbConv(m) => format!(
            "mbconv-k{}-s{}-x{}-g{}-se{}-{:?}",
            m.kernel,
            m.stride,
            m.expand,
            m.groups,
            m.se.is_some(),
            m.shortcut
        ),
        other => format!("{other:?}"),
    }
}

#[test]
fn every_distinct_layer_of_several_spaces_runs_in_litert() {
    let dir = scratch("modelfile-layers");
    let mut manifest = Vec::new();
    let mut mnasnet_variants = std::collections::BTreeSet::new();
    for (space, resolution) in [("fbnet", 224), ("ofa-mbv3-w1.0", 160), ("fbnet-cifar100", 32), ("mnasnet", 224)] {
        let space = spaces::space(space).unwrap();
        let table = space.layer_table(&[resolution]);
        let all = table.len();
        let layers: Vec<_> = table
            .into_iter()
            .filter(|l| l.is_timed())
            .filter(|l| space.name() != "mnasnet" || mnasnet_variants.insert(variant(&l.op)))
            .collect();
        println!("{}: {} of {all} distinct layers at {resolution}", space.name(), layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let file = format!("{}-{resolution}-{i}.tflite", space.name());
            std::fs::write(dir.join(&file), tflite::layer_model(layer, i as u64)).unwrap();
            let output =
                if matches!(layer.op, Op::Linear(_)) { Dims::Vector(layer.output.c) } else { Dims::Map(layer.output) };
            manifest.push(json!({
                "tflite": file,
                "key": layer.key(),
                "input": nhwc(Dims::Map(layer.input)),
                "output": nhwc(output),
            }));
        }
    }
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    check("layers", &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}
