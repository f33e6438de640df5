//! `hwnas fit --from` end to end through the binary, and bad data refused with nothing written:
//! HW-NAS-Bench's Pixel 3 table adapted to the Raspberry Pi 4 from 10 of its networks.

use std::path::PathBuf;
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn data(device: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../shared/data/hw-nas-bench-fbnet/fbnet_cifar100_{device}.csv"));
    p.to_str().unwrap().to_string()
}

#[test]
fn a_pixel3_table_adapted_to_ten_raspberry_pi_networks() {
    let dir = std::env::temp_dir().join(format!("hwnas-fit-from-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (src, dst) = (dir.join("pixel3.json"), dir.join("raspi4.json"));
    let (src_s, dst_s) = (src.to_str().unwrap(), dst.to_str().unwrap());
    let space = ["--space", "fbnet-cifar100"];
    let out = hwnas(
        &[
            &["fit", "--data", &data("pixel3"), "--predictor", "lut", "--train-count", "300", "--out", src_s],
            &space[..],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let args = ["fit", "--data", &data("raspi4"), "--train-count", "10", "--from", src_s, "--out", dst_s, "--json"];
    let out = hwnas(&[&args[..], &space[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rho = report["held_out"]["auto"]["spearman"].as_f64().unwrap();
    assert!(rho > 0.94, "held-out Spearman {rho}");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&dst).unwrap()).unwrap();
    let candidates = saved["selection"]["scores"].as_array().unwrap();
    assert!(candidates.iter().any(|c| c["candidate"]["source"] == "scaled"), "{}", saved["selection"]);
    // The adapted table predicts on its own, without the source file.
    std::fs::remove_file(&src).unwrap();
    let out =
        hwnas(&[&["eval-predictor", "--predictor", dst_s, "--data", &data("raspi4"), "--json"], &space[..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // --from is auto's; a missing source names its path.
    let out = hwnas(&[&["fit", "--data", &data("raspi4"), "--predictor", "lut", "--from", src_s], &space[..]].concat());
    assert!(String::from_utf8_lossy(&out.stderr).contains("adapts a predictor with `auto`'s selection"));
    let out = hwnas(&[&["fit", "--data", &data("raspi4"), "--from", src_s], &space[..]].concat());
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(src_s));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_rows_are_refused_and_nothing_is_written() {
    let dir = std::env::temp_dir().join(format!("hwnas-fit-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(data("pixel3")).unwrap();
    let mut lines: Vec<String> = text.lines().take(30).map(str::to_string).collect();
    let (arch, _) = lines[12].rsplit_once(',').unwrap();
    lines[12] = format!("{arch},-2.5");
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, lines.join("\n")).unwrap();
    let out_path = dir.join("out.json");
    let out = hwnas(&[
        "fit",
        "--data",
        csv.to_str().unwrap(),
        "--space",
        "fbnet-cifar100",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("row 12: `latency_ms` is -2.5"), "{e}");
    assert!(!out_path.exists(), "a predictor was written from bad data");
    std::fs::remove_dir_all(&dir).unwrap();
}
