//! Bad measurement files end in an error naming the row or column (issue 13): impossible
//! latencies, repeated architectures, architectures of another space, missing columns, and
//! too few architectures to cross-validate. Built from real HW-NAS-Bench rows.

use crate::common;
use predictors::dataset::{self, NetworkRow};
use predictors::train::{self, TrainOptions};

/// The header and the first `n` rows of HW-NAS-Bench's Pixel 3 file.
fn real_rows(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(common::hwnas_bench("pixel3")).unwrap();
    text.lines().take(n + 1).map(str::to_string).collect()
}

/// A fresh directory of this test process for the files a test writes.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-bad-data-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_err(name: &str, lines: &[String], space: Option<&str>) -> String {
    let dir = scratch("load");
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let e = match dataset::load(&path, space, "latency_ms") {
        Ok(ds) => panic!("{name}: loaded {} rows", ds.networks.len()),
        Err(e) => common::chain(&e),
    };
    std::fs::remove_file(&path).unwrap();
    e
}

fn with_latency(line: &str, v: &str) -> String {
    let (arch, _) = line.rsplit_once(',').unwrap();
    format!("{arch},{v}")
}

#[test]
fn impossible_latencies_are_refused_by_row() {
    for (v, what) in [("-3.5", "is -3.5"), ("0", "is 0"), ("1e308", "is 1e308"), ("NaN", "is NaN"), ("", "empty")] {
        let mut lines = real_rows(6);
        lines[4] = with_latency(&lines[4], v);
        let e = load_err("latency.csv", &lines, Some("fbnet-cifar100"));
        assert!(e.contains("row 4") && e.contains(what), "{v}: {e}");
    }
}

#[test]
fn a_repeated_architecture_names_both_rows() {
    let mut lines = real_rows(6);
    lines.push(with_latency(&lines[2], "17.0"));
    let e = load_err("repeat.csv", &lines, Some("fbnet-cifar100"));
    assert!(e.contains("rows 2 and 7 measure the same architecture"), "{e}");
}

#[test]
fn architectures_of_another_space_and_missing_columns_are_named() {
    let lines = real_rows(3);
    let e = load_err("space.csv", &lines, Some("singlepath"));
    assert!(e.contains("row 1: arch `k5_e6-skip"), "{e}");
    let e = load_err("nospace.csv", &lines, None);
    assert!(e.contains("row 1: no `space` column or cell, and no --space given"), "{e}");
    let renamed: Vec<String> = std::iter::once("arch,latency".to_string()).chain(lines[1..].iter().cloned()).collect();
    let e = load_err("nolatency.csv", &renamed, Some("fbnet-cifar100"));
    assert!(e.contains("no `latency_ms` column (columns: arch, latency)"), "{e}");
    let renamed: Vec<String> =
        std::iter::once("architecture,latency_ms".to_string()).chain(lines[1..].iter().cloned()).collect();
    let e = load_err("noarch.csv", &renamed, Some("fbnet-cifar100"));
    assert!(e.contains("no `arch` column for the network rows (columns: architecture, latency_ms)"), "{e}");
}

#[test]
fn too_few_architectures_for_the_folds_are_refused() {
    let dir = scratch("few");
    let path = dir.join("few.csv");
    std::fs::write(&path, real_rows(3).join("\n") + "\n").unwrap();
    let ds = dataset::load(&path, Some("fbnet-cifar100"), "latency_ms").unwrap();
    let train: Vec<&NetworkRow> = ds.networks.iter().collect();
    let e = train::fit_auto(&ds, &train, &TrainOptions::default()).err().unwrap().to_string();
    assert!(e.contains("needs at least 4 architectures; got 3"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `space` cell that contradicts the space given is refused, naming the row (HELP's OFA
/// file read as w1.0, whose members its `{ks, e, d, r}` arches also parse as).
#[test]
fn a_space_column_that_contradicts_the_given_space_is_refused() {
    let text = std::fs::read_to_string(common::shared().join("data/help-ofa/ofa_mbv3_w1.2_titan_rtx_64.csv")).unwrap();
    let lines: Vec<String> = text.lines().take(4).map(str::to_string).collect();
    let e = load_err("ofa.csv", &lines, Some("ofa-mbv3-w1.0"));
    assert!(e.contains("row 1: `space` is `ofa-mbv3-w1.2` but the space given is `ofa-mbv3-w1.0`"), "{e}");
}

/// Predictors fitted on one space refuse to serve another (an MLP of FBNet tokens priced
/// every `singlepath` network at −61.6 ms), also after a save and load; Single-Path NAS's
/// Pixel 1 model serves `singlepath` only.
#[test]
fn predictors_refuse_spaces_they_were_not_fitted_on() {
    let dir = scratch("serve");
    let path = dir.join("pixel3.csv");
    std::fs::write(&path, real_rows(60).join("\n") + "\n").unwrap();
    let ds = dataset::load(&path, Some("fbnet-cifar100"), "latency_ms").unwrap();
    let train: Vec<&NetworkRow> = ds.networks.iter().collect();
    for family in ["auto", "lut", "kernel", "mlp", "flops", "flops+memory"] {
        let p = train::fit(family, &ds, &train, &TrainOptions::default()).unwrap();
        let saved = dir.join(format!("{}.json", family.replace('+', "-")));
        p.save(&saved).unwrap();
        let loaded = predictors::load_predictor(&saved).unwrap();
        for q in [p.as_ref(), loaded.as_ref()] {
            predictors::check_serves(q, "fbnet-cifar100").unwrap();
            let e = predictors::check_serves(q, "singlepath").unwrap_err().to_string();
            assert!(e.contains("fitted on `fbnet-cifar100`, not on `singlepath`"), "{family}: {e}");
        }
    }
    let spnas =
        predictors::spnas::SinglePathPredictor::import(&common::shared().join("data/single-path-pixel1-lut.json"))
            .unwrap();
    assert!(predictors::check_serves(&spnas, "fbnet-cifar100").is_err());
    predictors::check_serves(&spnas, "singlepath").unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A `version` that is not the number 1 says what it must be (it said "unsupported
/// version "1" (this build reads 1)").
#[test]
fn a_version_string_is_named_as_the_problem() {
    let dir = scratch("version");
    let path = dir.join("p.json");
    std::fs::write(&path, r#"{"format": "hwnas-predictor", "version": "1", "family": "flops"}"#).unwrap();
    let e = common::chain(&predictors::load_predictor(&path).err().unwrap());
    assert!(e.contains("`version` must be the number 1, not \"1\""), "{e}");
    std::fs::write(&path, r#"{"format": "hwnas-predictor", "version": 2, "family": "flops"}"#).unwrap();
    let e = common::chain(&predictors::load_predictor(&path).err().unwrap());
    assert!(e.contains("predictor version 2; this build reads version 1 only"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
