//! Precision is part of a predictor's identity (issue 16): datasets read a `precision`
//! column (absent: fp32), a fit on rows of mixed precisions is refused unless one is
//! selected, the fitted file records its precision, files without one read as fp32, and
//! `check_precision` refuses a job of another precision naming both.

use crate::common;
use predictors::dataset::{self, Dataset, NetworkRow};
use predictors::train::{self, TrainOptions};
use predictors::{check_precision, load_predictor, Precision};
use std::path::PathBuf;

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-precision-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first `n` HW-NAS-Bench Pixel 3 rows, each twice: as measured (`fp32`, or an empty
/// cell) and at 0.6x as `int8`.
fn mixed(n: usize) -> String {
    let text = std::fs::read_to_string(common::hwnas_bench("pixel3")).unwrap();
    let mut out = String::from("arch,latency_ms,precision\n");
    for (i, line) in text.lines().skip(1).take(n).enumerate() {
        let (arch, ms) = line.rsplit_once(',').unwrap();
        let ms: f64 = ms.parse().unwrap();
        let fp32 = if i % 2 == 0 { "fp32" } else { "" };
        out += &format!("{arch},{ms},{fp32}\n{arch},{},int8\n", ms * 0.6);
    }
    out
}

fn load(text: &str, tag: &str) -> Dataset {
    let path = scratch(tag).join("m.csv");
    std::fs::write(&path, text).unwrap();
    dataset::load(&path, Some("fbnet-cifar100"), "latency_ms").unwrap()
}

fn rows(ds: &Dataset) -> Vec<&NetworkRow> {
    ds.networks.iter().collect()
}

#[test]
fn a_mixed_dataset_is_refused_until_one_precision_is_selected() {
    let mut ds = load(&mixed(40), "mixed");
    assert_eq!(ds.precisions(), [Precision::Fp32, Precision::Int8], "an empty cell is fp32");
    assert_eq!(ds.networks.len(), 80, "one architecture in two precisions is not a repeat");
    for family in ["auto", "lut", "flops"] {
        let e = common::chain(&train::fit(family, &ds, &rows(&ds), &TrainOptions::default()).err().unwrap());
        assert!(e.contains("mixes precisions fp32, int8") && e.contains("--precision"), "{family}: {e}");
    }
    let e = common::chain(&ds.select_precision(Precision::Fp16).unwrap_err());
    assert!(e.contains("no rows in precision fp16") && e.contains("fp32, int8"), "{e}");
    ds.select_precision(Precision::Int8).unwrap();
    assert_eq!(ds.networks.len(), 40);
    let p = train::fit("auto", &ds, &rows(&ds), &TrainOptions::default()).unwrap();
    assert_eq!(p.precision(), Precision::Int8);

    // Saved and loaded, it keeps its precision; an int8 predictor refuses fp32 jobs.
    let path = scratch("mixed").join("int8.json");
    p.save(&path).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["precision"], "int8");
    let back = load_predictor(&path).unwrap();
    assert_eq!(back.precision(), Precision::Int8);
    assert_eq!(back.predict_ms(&ds.networks[0].network).unwrap(), p.predict_ms(&ds.networks[0].network).unwrap());
    check_precision(back.as_ref(), Precision::Int8).unwrap();
    let e = check_precision(back.as_ref(), Precision::Fp32).unwrap_err().to_string();
    assert!(
        e.contains("fitted on int8") && e.contains("deploys fp32") && e.contains("--allow-precision-mismatch"),
        "{e}"
    );
}

#[test]
fn files_without_a_precision_read_as_fp32_and_bad_values_are_named() {
    // The HW-NAS-Bench CSV has no precision column.
    let ds = dataset::load(&common::hwnas_bench("pixel3"), Some("fbnet-cifar100"), "latency_ms").unwrap();
    assert_eq!(ds.precision().unwrap(), Precision::Fp32);
    let few: Vec<&NetworkRow> = ds.networks.iter().take(200).collect();
    for family in ["lut", "flops", "kernel"] {
        let p = train::fit(family, &ds, &few, &TrainOptions::default()).unwrap();
        let path = scratch("old").join(format!("{family}.json"));
        p.save(&path).unwrap();
        // A file of an older build: no `precision` field.
        let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["precision"], "fp32", "{family}: fitted files record their precision");
        doc.as_object_mut().unwrap().remove("precision");
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
        let old = load_predictor(&path).unwrap();
        assert_eq!(old.precision(), Precision::Fp32, "{family}");
        check_precision(old.as_ref(), Precision::Fp32).unwrap();
        let e = check_precision(old.as_ref(), Precision::Int8).unwrap_err().to_string();
        assert!(e.contains("fitted on fp32") && e.contains("deploys int8"), "{e}");
        doc["precision"] = "int4".into();
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
        let e = common::chain(&load_predictor(&path).err().unwrap());
        assert!(e.contains("`precision`") && e.contains("int4"), "{e}");
    }
    let path = scratch("bad").join("bad.csv");
    let text = mixed(3).replacen(",int8", ",int4", 1);
    std::fs::write(&path, text).unwrap();
    let e = common::chain(&dataset::load(&path, Some("fbnet-cifar100"), "latency_ms").err().unwrap());
    assert!(e.contains("row 2") && e.contains("int4"), "{e}");
}
