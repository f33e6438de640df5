//! `hwnas export` end to end: every preset's TFLite runs in LiteRT and its ONNX in
//! onnxruntime (checker passing) with the same logits as the tch module built from the
//! same weights (≤ 1e-4), TorchScript reloads with identical logits, and exports are
//! byte-deterministic.

use search::nn::model::Model;
use search::nn::tch::nn::{ModuleT, VarStore};
use search::nn::tch::{Device, Kind, Tensor};
use search::nn::torchscript;
use spaces::ir::Weights;
use spaces::presets::PRESETS;
use std::path::{Path, PathBuf};
use std::process::Command;

const RES: i64 = 224;

fn hwnas(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs");
    assert!(out.status.success(), "hwnas {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-export-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fixed, non-trivial input in NCHW.
fn input() -> Vec<f32> {
    (0..3 * RES * RES).map(|i| ((i as f32) * 0.013).sin() * 1.5).collect()
}

fn tch_logits(preset: &str, x: &Tensor) -> Vec<f32> {
    let net = spaces::presets::preset(preset).unwrap().arch().network(None);
    let vs = VarStore::new(Device::Cpu);
    let model = Model::from_weights(&vs.root(), &net, &Weights::random(&net, 0)).unwrap();
    let _g = search::nn::tch::no_grad_guard();
    Vec::<f32>::try_from(model.forward_t(x, false).reshape([-1])).unwrap()
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y).abs()).fold(0.0, f64::max)
}

#[test]
fn every_preset_agrees_across_tch_litert_onnxruntime_and_torchscript() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup", python.display());
    let dir = scratch("presets");
    let x = input();
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("input.f32"), bytes).unwrap();
    let xt = Tensor::from_slice(&x).reshape([1, 3, RES, RES]).to_kind(Kind::Float);

    let mut stems = Vec::new();
    for p in PRESETS {
        let stem = dir.join(p.name).display().to_string();
        for f in ["tflite", "onnx", "torchscript"] {
            hwnas(&["export", "--preset", p.name, "--format", f, "--out", &format!("{stem}.{f}")]);
        }
        stems.push(stem);
    }
    let out_json = dir.join("logits.json");
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_runtimes.py"))
        .args([dir.join("input.f32").to_str().unwrap(), &RES.to_string(), out_json.to_str().unwrap()])
        .args(&stems)
        .status()
        .unwrap();
    assert!(status.success(), "the runtimes failed to load or run an export");
    let runtimes: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();

    for (p, stem) in PRESETS.iter().zip(&stems) {
        let reference = tch_logits(p.name, &xt);
        assert!(reference.iter().all(|v| v.is_finite()) && reference.iter().any(|v| v.abs() > 1e-3), "{}", p.name);
        for rt in ["tflite", "onnx"] {
            let got: Vec<f64> = serde_json::from_value(runtimes[stem][rt].clone()).unwrap();
            let err = max_abs(&reference, &got);
            assert!(err <= 1e-4, "{}: {rt} logits differ from tch by {err:e}", p.name);
        }
        let ts = torchscript::load(Path::new(&format!("{stem}.torchscript")), Device::Cpu).unwrap();
        let reloaded = Vec::<f32>::try_from(ts.forward_ts(&[&xt]).unwrap().reshape([-1])).unwrap();
        assert_eq!(reloaded, reference, "{}: TorchScript reload differs", p.name);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn exports_are_deterministic_and_refuse_non_members() {
    let dir = scratch("determinism");
    for f in ["json", "tflite", "onnx", "torchscript"] {
        let path = dir.join(format!("m.{f}"));
        let p = path.to_str().unwrap();
        hwnas(&["export", "--preset", "mnasnet-b1", "--format", f, "--out", p]);
        let first = std::fs::read(&path).unwrap();
        hwnas(&["export", "--preset", "mnasnet-b1", "--format", f, "--out", p]);
        assert_eq!(std::fs::read(&path).unwrap(), first, "{f} export is not deterministic");
    }
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"ops": ["k3_e3"]}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hwnas"))
        .args(["export", "--space", "singlepath", "--arch", bad.to_str().unwrap(), "--format", "tflite", "--out"])
        .arg(dir.join("bad.tflite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("field `ops`: expected 20 entries"));
    assert!(!dir.join("bad.tflite").exists(), "nothing is written for an invalid architecture");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn json_export_carries_counts_latency_and_the_ofa_listing() {
    let dir = scratch("json");
    let arch = dir.join("a.json");
    std::fs::write(&arch, format!(r#"{{"ks": {:?}, "e": {:?}, "d": [4,4,4,4,4], "r": [192]}}"#, [7; 20], [6; 20]))
        .unwrap();
    let out = dir.join("out.json");
    hwnas(&[
        "export",
        "--space",
        "ofa-mbv3-w1.0",
        "--arch",
        arch.to_str().unwrap(),
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        (v["macs"].as_u64(), v["params"].as_u64(), v["resolution"].as_u64()),
        (Some(417_292_160), Some(7_664_760), Some(192))
    );
    let cfg = &v["ofa_net_config"];
    assert_eq!(cfg["blocks"].as_array().unwrap().len(), 21, "first block + 20 elastic blocks");
    // The layout of OFA's published networks (what its model zoo loads).
    assert_eq!(cfg["blocks"][1]["name"], "MobileInvertedResidualBlock");
    assert_eq!(cfg["blocks"][1]["mobile_inverted_conv"]["name"], "MBInvertedConvLayer");
    assert_eq!(cfg["blocks"][1]["mobile_inverted_conv"]["kernel_size"], 7);
    assert_eq!(cfg["blocks"][1]["mobile_inverted_conv"]["expand_ratio"], serde_json::json!(6));
    assert_eq!(cfg["feature_mix_layer"]["use_bn"], false);
    assert_eq!(cfg["classifier"]["dropout_rate"], serde_json::json!(0.1));
    let (space, g) = spaces::spaces::ofa_net_config::from_net_config(cfg, 192).unwrap();
    assert_eq!(space, "ofa-mbv3-w1.0");
    assert_eq!(spaces::space(space).unwrap().to_json(&g), v["arch"], "the listing imports back to the arch");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--precision`: an fbnet-cifar100 member (32x32, fast to calibrate in a debug build) in
/// fp16 and int8 runs in LiteRT and onnxruntime close to its fp32 file; calibration data
/// from a training dataset changes the int8 file; `--int8-io` gives int8 inputs.
#[test]
fn precision_exports_run_in_the_runtimes_close_to_fp32() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup", python.display());
    let dir = scratch("precision");
    let csv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv");
    let first = std::fs::read_to_string(csv).unwrap().lines().nth(1).unwrap().to_string();
    let ops: Vec<&str> = first.split_once(',').unwrap().0.split('-').collect();
    let arch = dir.join("arch.json");
    std::fs::write(&arch, serde_json::json!({ "ops": ops }).to_string()).unwrap();
    let export = |name: &str, extra: &[&str]| -> PathBuf {
        let out = dir.join(name);
        let args = ["export", "--space", "fbnet-cifar100", "--arch", arch.to_str().unwrap(), "--out"];
        hwnas(&[&args[..], &[out.to_str().unwrap()], extra].concat());
        out
    };
    let fp32 = [export("fp32.tflite", &["--format", "tflite"]), export("fp32.onnx", &["--format", "onnx"])];
    let int8 = export("int8.tflite", &["--format", "tflite", "--precision", "int8"]);
    let data = export(
        "int8-data-io.tflite",
        &["--format", "tflite", "--precision", "int8", "--int8-io", "--calibration-data", "synthetic:16:10"],
    );
    let fp16 = export("fp16.tflite", &["--format", "tflite", "--precision", "fp16"]);
    let onnx8 = export("int8.onnx", &["--format", "onnx", "--precision", "int8"]);
    assert_ne!(std::fs::read(&int8).unwrap(), std::fs::read(&data).unwrap(), "calibration data is used");
    let out_json = dir.join("precision.json");
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_precision.py"))
        .args(["32", out_json.to_str().unwrap()])
        .args([&fp32[0], &fp32[1], &int8, &data, &fp16, &onnx8])
        .status()
        .unwrap();
    assert!(status.success(), "the runtimes failed to load or run a precision export");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    let get = |p: &Path, k: &str| r[p.to_str().unwrap()][k].clone();
    for (p, min) in [(&int8, 0.99), (&onnx8, 0.99), (&fp16, 0.9999), (&data, 0.95)] {
        let cos = get(p, "cosine").as_f64().unwrap();
        assert!(cos >= min, "{}: cosine {cos} to fp32 (at least {min})", p.display());
    }
    assert_eq!(get(&data, "input_dtype"), "int8");
    assert_eq!(get(&int8, "input_dtype"), "float32");
    std::fs::remove_dir_all(&dir).ok();
}
