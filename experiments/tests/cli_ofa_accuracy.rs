//! `hwnas fit --import ofa-accuracy` then `hwnas export --accuracy`, end to end through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn ofa() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa")
}

#[test]
fn imports_ofa_accuracy_predictor_and_exports_its_prediction() {
    let dir = std::env::temp_dir().join(format!("hwnas-cli-ofa-acc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let acc = dir.join("acc.json");
    let pth = ofa().join("acc_predictor.pth");
    let out =
        hwnas(&["fit", "--import", "ofa-accuracy", "--data", pth.to_str().unwrap(), "--out", acc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("note10_lat@30ms at 224: 0.819671 ") && stdout.contains("at 224: 0.835928 "), "{stdout}");
    assert!(dir.join("acc.safetensors").exists());

    // note10_lat@30ms's arch, from the `arch` column of specialized.csv.
    let csv = std::fs::read_to_string(ofa().join("specialized.csv")).unwrap();
    let row = csv.lines().find(|l| l.starts_with("note10_lat@30ms_")).unwrap();
    let arch = dir.join("note10.json");
    std::fs::write(&arch, row[row.find("\"{").unwrap() + 1..row.rfind("}\"").unwrap() + 1].replace("\"\"", "\""))
        .unwrap();
    let json = dir.join("note10_out.json");
    let (arch_s, acc_s, json_s) = (arch.to_str().unwrap(), acc.to_str().unwrap(), json.to_str().unwrap());
    let export = ["--arch", arch_s, "--format", "json", "--accuracy", acc_s, "--out", json_s];
    let out = hwnas(&[&["export", "--space", "ofa-mbv3-w1.2"][..], &export[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let predicted = doc["predicted_accuracy"].as_f64().unwrap();
    assert!((predicted - 0.819671).abs() < 5e-7, "{predicted}");

    let out = hwnas(&[&["export", "--space", "ofa-mbv3-w1.0"][..], &export[..]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serves `ofa-mbv3-w1.2`, not `ofa-mbv3-w1.0`"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
