//! `hwnas experiments` end to end through the binary, on the real Single-Path NAS Pixel 1 table.

use std::path::PathBuf;
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

#[test]
fn list_names_every_experiment() {
    let out = hwnas(&["experiments", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["spnas-latency", "fbnet-fronts", "predictor-study", "ofa-specialization", "ofa-tutorial"]);
}

#[test]
fn unknown_experiment_and_missing_data_are_clear_errors() {
    let out = hwnas(&["experiments", "run", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown experiment `nope` (known: spnas-latency"));
    let out = hwnas(&["experiments", "run", "spnas-latency", "--shared", "/nonexistent"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent has no data/ directory"));
}

/// A number in the row of the printed table whose first cell starts with `row`, column `col`.
fn cell(table: &str, row: &str, col: usize) -> String {
    let line = table.lines().find(|l| l.starts_with(&format!("| {row}"))).unwrap_or_else(|| panic!("no row {row}"));
    line.split('|').map(str::trim).nth(col + 1).unwrap().to_string()
}

#[test]
fn spnas_latency_reproduces_the_pixel1_numbers_and_searches_under_80_ms() {
    let dir = std::env::temp_dir().join(format!("hwnas-exp-spnas-{}", std::process::id()));
    let shared = shared();
    let args =
        ["experiments", "run", "spnas-latency", "--shared", shared.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    let out = hwnas(&[&args[..], &["--population", "8", "--generations", "2"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(cell(&table, "spnasnet", 2), "80.593");
    assert_eq!(cell(&table, "spnasnet", 3), "79");
    assert_eq!(cell(&table, "all k5_e6", 2), "131.458");
    assert_eq!(cell(&table, "all k3_e3", 2), "65.636");
    assert_eq!(cell(&table, "smallest", 2), "30.790");
    assert_eq!(cell(&table, "evaluated architectures", 1), "24");
    let best: f64 = cell(&table, "best latency", 1).trim_end_matches(" ms").parse().unwrap();
    assert!(best <= 80.0 && best > 30.79, "best latency {best}");
    assert_eq!(std::fs::read_to_string(dir.join("table.md")).unwrap(), table);
    for f in ["spnas-pixel1.json", "search/best.json", "search/pareto.png", "search/pareto.svg"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fbnet_fronts_places_the_presets_on_the_measured_tables() {
    let dir = std::env::temp_dir().join(format!("hwnas-exp-fbnet-{}", std::process::id()));
    let shared = shared();
    let args =
        ["experiments", "run", "fbnet-fronts", "--shared", shared.to_str().unwrap(), "--out", dir.to_str().unwrap()];
    let out = hwnas(&[&args[..], &["--population", "8", "--generations", "2"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| pixel3") || l.starts_with("| raspi4"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 10, "{table}");
    // Medians of the 5,000 measured latencies; the table fitted on 200 recovers the rest exactly.
    assert!(rows.iter().all(|r| r[2] == if r[1] == "pixel3" { "17.711" } else { "33.600" } && r[3] == "0.00"));
    let preset = |dev: &str, name: &str| rows.iter().find(|r| r[1] == dev && r[4].starts_with(name)).unwrap().clone();
    assert_eq!(&preset("pixel3", "fbnet-a")[7..9], ["0.7953", "19.290"]);
    assert_eq!(&preset("raspi4", "fbnet-c")[7..9], ["0.9254", "52.702"]);
    for strategy in ["evolution", "nsga2"] {
        let r = preset("pixel3", strategy);
        assert_eq!(r[5], "24");
        assert!(r[8].parse::<f64>().unwrap() <= 17.711);
    }
    for f in ["pixel3-fronts.png", "pixel3-fronts.svg", "raspi4-fronts.png", "raspi4-nsga2/history.parquet"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
