//! OFA's own supernet checkpoints through the CLI: `hwnas eval --checkpoint X.pth --arch A
//! --weights W` extracts the fixture's mixed sub-network, `hwnas export --weights W` writes it
//! as TFLite and ONNX, and LiteRT and onnxruntime give the logits OFA's code computed (≤ 1e-4,
//! `shared/data/ofa/fixture/reference_logits.json`); `hwnas train --resume-from X.pth` starts
//! from the file's weights; `hwnas search --accuracy X.pth` takes it as a supernet.

use spaces::ir::Weights;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn ok(args: &[&str]) -> String {
    let out = hwnas(args);
    assert!(out.status.success(), "hwnas {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-ofa-ckpt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa/fixture")
}

fn fixture() -> String {
    fixture_dir().join("ofa_mbv3_d234_e346_k357_w1.0_seeded.pth").display().to_string()
}

/// The reference case `name`: its arch JSON and OFA's logits.
fn case(name: &str) -> (serde_json::Value, Vec<f64>) {
    let text = std::fs::read_to_string(fixture_dir().join("reference_logits.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let c = v["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    (c["arch"].clone(), serde_json::from_value(c["logits"].clone()).unwrap())
}

/// make_fixture.py's input, x[0, c, h, w] = sin(0.1c + 0.05h + 0.03w) in f64 rounded to f32, NCHW.
fn input(r: usize) -> Vec<u8> {
    let mut x = Vec::with_capacity(3 * r * r * 4);
    for c in 0..3 {
        for h in 0..r {
            for w in 0..r {
                let v = (0.1 * c as f64 + 0.05 * h as f64 + 0.03 * w as f64).sin() as f32;
                x.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    x
}

#[test]
fn the_mixed_subnetwork_of_the_fixture_gives_ofa_logits_in_litert_and_onnxruntime() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup", python.display());
    let dir = scratch("export");
    let (arch, reference) = case("mixed");
    let r = arch["r"][0].as_u64().unwrap() as usize;
    let arch_path = dir.join("mixed.json");
    std::fs::write(&arch_path, arch.to_string()).unwrap();
    let (a, w) = (arch_path.display().to_string(), dir.join("mixed.safetensors").display().to_string());
    // --calib-batches 0 keeps OFA's running statistics; the data only feeds the accuracy line.
    let out = ok(&[
        "eval",
        "--checkpoint",
        &fixture(),
        "--arch",
        &a,
        "--synthetic",
        "--calib-batches",
        "0",
        "--max-examples",
        "2",
        "--batch",
        "2",
        "--cpu",
        "--weights",
        &w,
    ]);
    assert!(out.contains(&format!("resolution {r}")), "the arch's resolution is the default: {out}");
    let stem = dir.join("mixed").display().to_string();
    for f in ["tflite", "onnx"] {
        ok(&[
            "export",
            "--space",
            "ofa-mbv3-w1.0",
            "--arch",
            &a,
            "--weights",
            &w,
            "--format",
            f,
            "--out",
            &format!("{stem}.{f}"),
        ]);
    }
    std::fs::write(dir.join("input.f32"), input(r)).unwrap();
    let out_json = dir.join("logits.json");
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_runtimes.py"))
        .args([dir.join("input.f32").to_str().unwrap(), &r.to_string(), out_json.to_str().unwrap(), &stem])
        .status()
        .unwrap();
    assert!(status.success(), "the runtimes failed to load or run an export");
    let runtimes: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    for rt in ["tflite", "onnx"] {
        let got: Vec<f64> = serde_json::from_value(runtimes[&stem][rt].clone()).unwrap();
        assert_eq!(got.len(), reference.len());
        let err = got.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err <= 1e-4, "{rt}: logits differ from OFA's by {err:e}");
    }
}

#[test]
fn training_resumes_from_the_ofa_weights_and_search_takes_the_file_as_a_supernet() {
    let dir = scratch("train");
    let (arch, _) = case("smallest");
    let arch_path = dir.join("smallest.json");
    std::fs::write(&arch_path, arch.to_string()).unwrap();
    let a = arch_path.display().to_string();
    let weights = |ckpt: &str, name: &str| {
        let w = dir.join(name).display().to_string();
        ok(&[
            "eval",
            "--checkpoint",
            ckpt,
            "--arch",
            &a,
            "--synthetic",
            "--calib-batches",
            "0",
            "--max-examples",
            "2",
            "--batch",
            "2",
            "--cpu",
            "--resolution",
            "32",
            "--weights",
            &w,
        ]);
        Weights::load(&w).unwrap()
    };
    let run = dir.join("run").display().to_string();
    // Learning rate 0: the step leaves the trainable weights as loaded (BN statistics move).
    ok(&[
        "train",
        "--resume-from",
        &fixture(),
        "--synthetic",
        "--synthetic-size",
        "2",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--lr",
        "0",
        "--resolution",
        "32",
        "--cpu",
        "--out",
        &run,
    ]);
    let (ofa, trained) = (weights(&fixture(), "ofa.safetensors"), weights(&run, "trained.safetensors"));
    assert_eq!(ofa.len(), trained.len());
    for (name, t) in ofa.iter().filter(|(n, _)| !n.contains("running_")) {
        assert_eq!(Some(t), trained.get(name), "{name} is not the OFA checkpoint's");
    }
    // Another width than the file's is refused by name; a directory is not taken for a .pth.
    let fresh = dir.join("fresh").display().to_string();
    let out =
        hwnas(&["train", "--resume-from", &fixture(), "--space", "ofa-mbv3-w1.2", "--synthetic", "--out", &fresh]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("fits `ofa-mbv3-w1.0`"), "{err}");
    let out = hwnas(&["train", "--resume-from", &run, "--synthetic", "--out", &fresh]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is not one"), "{err}");
    // search: the .pth is a supernet checkpoint, which needs evaluation data.
    let out = hwnas(&["search", "--space", "ofa-mbv3-w1.0", "--accuracy", &fixture(), "--out", &run]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is a supernet checkpoint: give --accuracy-data"), "{err}");
}
