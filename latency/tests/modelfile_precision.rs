//! fp16 and int8 model files checked in the real runtimes (issue 16): every preset
//! network and one single-layer model per structural variant of every space's
//! table, in TFLite (ai-edge-litert) and ONNX (onnxruntime), must load and run, carry
//! the weight dtypes and per-channel quantization they claim (read back from the
//! file), and agree with the fp32 model: fp16 closely, int8 with cosine ≥ 0.99 on
//! inputs from the calibration distribution. One Python process per test
//! (precision_check.py) checks all models, to keep CI time down.

use latency::modelfile::{onnx, tflite, Calibration, Precision, Quantization};
use serde_json::json;
use spaces::ir::{Op, Weights};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs precision_check.py in the repository's venv (created by scripts/setup).
fn check(mode: &str, dir: &Path) {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup to create the venv with ai-edge-litert, onnx and onnxruntime",
        python.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/precision_check.py");
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

/// Calibration samples for a preset: few, since a debug build evaluates the float
/// network in Rust (release builds use the default 16).
const NETWORK_SAMPLES: usize = 2;

/// Calibration samples for a single-layer model in this test (the writers' default
/// for layers is `tflite::LAYER_SAMPLES`).
const LAYER_SAMPLES: usize = 2;

fn int8(samples: usize, int8_io: bool) -> Quantization {
    Quantization { precision: Precision::Int8, int8_io, calibration: Calibration::Synthetic { seed: 7, samples } }
}

#[test]
fn presets_in_fp16_and_int8_run_and_agree_with_fp32() {
    let dir = scratch("precision-presets");
    let mut manifest = Vec::new();
    // Presets at 160 px keep the debug-build calibration to seconds per network.
    let resolution = 160;
    for p in spaces::presets::PRESETS {
        let t = Instant::now();
        let net = p.arch().network(Some(resolution));
        let w = Weights::random(&net, 0);
        let name = format!("{}@{resolution}", p.name);
        let mut entry = json!({"name": name, "input": [1, 3, resolution, resolution], "kind": "network"});
        let variants = [
            ("fp32", Quantization::of(Precision::Fp32)),
            ("fp16", Quantization::of(Precision::Fp16)),
            ("int8", int8(NETWORK_SAMPLES, false)),
        ];
        for (tag, q) in &variants {
            let file = format!("{name}.{tag}.tflite");
            std::fs::write(dir.join(&file), tflite::network_model_as(&net, &w, q).unwrap()).unwrap();
            entry[format!("tflite_{tag}")] = json!(file);
            let file = format!("{name}.{tag}.onnx");
            std::fs::write(dir.join(&file), onnx::network_model_as(&net, &w, q).unwrap()).unwrap();
            entry[format!("onnx_{tag}")] = json!(file);
        }
        if p.name == "mobilenetv2" {
            let file = format!("{name}.int8io.tflite");
            std::fs::write(dir.join(&file), tflite::network_model_as(&net, &w, &int8(NETWORK_SAMPLES, true)).unwrap())
                .unwrap();
            entry["tflite_int8io"] = json!(file);
        }
        println!("{name}: written in {:.1} s", t.elapsed().as_secs_f64());
        manifest.push(entry);
    }
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    check("models", &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The structural variant of a layer (op, kernel, stride, expansion, groups, SE,
/// shortcut): layers of one variant differ only in widths, so one per variant is
/// checked, as modelfile_runtimes.rs does for MnasNet.
fn variant(op: &Op) -> String {
    match op {
        Op::Conv(c) => {
            let se = c.se.map(|s| (s.gate, s.act));
            format!("conv-k{}-s{}-g{}-se{se:?}-{:?}-{:?}", c.kernel, c.stride, c.groups > 1, c.act, c.shortcut)
        }
        Op::MbConv(m) => {
            let se = m.se.map(|s| (s.gate, s.act));
            let (g, sh) = (m.groups > 1, m.shuffle);
            format!(
                "mbconv-k{}-s{}-x{}-g{g}-sh{sh}-se{se:?}-{:?}-{:?}",
                m.kernel, m.stride, m.expand, m.act, m.shortcut
            )
        }
        Op::Linear(l) => format!("linear-{:?}", l.act),
        other => format!("{other:?}"),
    }
}

#[test]
fn one_layer_per_variant_of_every_space_in_fp16_and_int8() {
    let dir = scratch("precision-layers");
    let mut manifest = Vec::new();
    let t = Instant::now();
    for space in spaces::SPACE_NAMES {
        let space = spaces::space(space).unwrap();
        // 64 px (32 for CIFAR) keeps the debug-build calibration of 176 layers to seconds.
        let resolution = if space.name() == "fbnet-cifar100" { 32 } else { 64 };
        let table = space.layer_table(&[resolution]);
        let mut seen = std::collections::BTreeSet::new();
        let layers: Vec<_> =
            table.into_iter().filter(|l| l.is_timed()).filter(|l| seen.insert(variant(&l.op))).collect();
        println!("{}: {} variants at {resolution}", space.name(), layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let stem = format!("{}-{resolution}-{i}", space.name());
            let mut entry = json!({"name": layer.key(), "kind": "layer",
                "input": [1, layer.input.c, layer.input.h, layer.input.w]});
            let variants = [
                ("fp32", Quantization::of(Precision::Fp32)),
                ("fp16", Quantization::of(Precision::Fp16)),
                ("int8", int8(LAYER_SAMPLES, false)),
            ];
            for (tag, q) in &variants {
                let file = format!("{stem}.{tag}.tflite");
                let bytes = tflite::layer_model_as(layer, i as u64, q).unwrap();
                std::fs::write(dir.join(&file), bytes).unwrap();
                entry[format!("tflite_{tag}")] = json!(file);
                let file = format!("{stem}.{tag}.onnx");
                std::fs::write(dir.join(&file), onnx::layer_model_as(layer, i as u64, q).unwrap()).unwrap();
                entry[format!("onnx_{tag}")] = json!(file);
            }
            manifest.push(entry);
        }
    }
    println!("{} layers' models written in {:.1} s", manifest.len(), t.elapsed().as_secs_f64());
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    check("models", &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fp32_through_the_new_entry_points_is_todays_file() {
    let p = spaces::presets::PRESETS.iter().find(|p| p.name == "mobilenetv3-large").unwrap();
    let net = p.arch().network(Some(64));
    let w = Weights::random(&net, 1);
    let q = Quantization::of(Precision::Fp32);
    assert_eq!(tflite::network_model_as(&net, &w, &q).unwrap(), tflite::network_model(&net, &w).unwrap());
    assert_eq!(onnx::network_model_as(&net, &w, &q).unwrap(), onnx::network_model(&net, &w).unwrap());
    let layer = &net.layers[1];
    assert_eq!(tflite::layer_model_as(layer, 3, &q).unwrap(), tflite::layer_model(layer, 3));
}

#[test]
fn wrong_calibration_inputs_are_refused_naming_both_lengths() {
    let p = spaces::presets::PRESETS.iter().find(|p| p.name == "mobilenetv2").unwrap();
    let net = p.arch().network(Some(32));
    let w = Weights::random(&net, 0);
    let q = Quantization {
        precision: Precision::Int8,
        int8_io: false,
        calibration: Calibration::Inputs(vec![vec![0.0; 3 * 32 * 32], vec![0.0; 100]]),
    };
    for e in [tflite::network_model_as(&net, &w, &q).unwrap_err(), onnx::network_model_as(&net, &w, &q).unwrap_err()] {
        let e = e.to_string();
        assert!(e.contains("100") && e.contains(&(3 * 32 * 32).to_string()), "{e}");
    }
    // fp16 and fp32 need no calibration, so the same settings are fine there.
    let fp16 = Quantization { precision: Precision::Fp16, ..q };
    assert!(tflite::network_model_as(&net, &w, &fp16).is_ok());
}

#[test]
fn int8_files_depend_on_the_calibration() {
    let p = spaces::presets::PRESETS.iter().find(|p| p.name == "fbnet-a").unwrap();
    let net = p.arch().network(Some(32));
    let w = Weights::random(&net, 0);
    let a = tflite::network_model_as(&net, &w, &int8(2, false)).unwrap();
    assert_eq!(a, tflite::network_model_as(&net, &w, &int8(2, false)).unwrap(), "deterministic");
    let other = Quantization { calibration: Calibration::Synthetic { seed: 8, samples: 2 }, ..int8(2, false) };
    assert_ne!(a, tflite::network_model_as(&net, &w, &other).unwrap());
    let given = Calibration::Inputs(vec![vec![0.5; 3 * 32 * 32]]);
    let b = tflite::network_model_as(&net, &w, &Quantization { calibration: given, ..int8(2, false) }).unwrap();
    assert_ne!(a, b);
}

/// The calibration cost the issue bounds: MobileNetV2 at 224 on the default 16
/// samples. Ignored (a debug build takes about a minute); run it in release:
/// `cargo test --release -p latency --test integration calibrating_mobilenetv2 -- --ignored --nocapture`.
#[test]
#[ignore]
fn calibrating_mobilenetv2_at_224_on_16_samples() {
    use latency::modelfile::{calibrate, graph::Graph};
    let p = spaces::presets::PRESETS.iter().find(|p| p.name == "mobilenetv2").unwrap();
    let net = p.arch().network(Some(224));
    let g = Graph::lower(&net, &Weights::random(&net, 0)).unwrap();
    let inputs = calibrate::inputs(&g, &Calibration::default()).unwrap();
    let t = Instant::now();
    let r = calibrate::ranges(&g, &inputs);
    println!("calibrated {} values on {} samples in {:.2} s", r.values.len(), inputs.len(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let bytes = tflite::network_model_as(&net, &Weights::random(&net, 0), &Quantization::of(Precision::Int8)).unwrap();
    println!("int8 TFLite ({} bytes) written in {:.2} s", bytes.len(), t.elapsed().as_secs_f64());
}
