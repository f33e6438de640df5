//! Every family fitted on the same 200 HW-NAS-Bench architectures, scored on the other
//! 4,800, and round-tripped through its file: floors well below what each reaches, so a
//! regression (not noise) fails.

use crate::common;
use predictors::compare::markdown_table;
use predictors::dataset::{self, NetworkRow};
use predictors::split::{split, TrainSize};
use predictors::train::{self, TrainOptions, FAMILIES};
use predictors::{eval, load_predictor};

#[test]
fn all_families_on_pixel3_200_of_5000() {
    let ds = dataset::load(&common::hwnas_bench("pixel3"), Some("fbnet-cifar100"), "latency_ms").unwrap();
    let s = split(&ds.networks, TrainSize::Count(200), 1).unwrap();
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    let test: Vec<&NetworkRow> = s.test.iter().map(|&i| &ds.networks[i]).collect();
    let dir = std::env::temp_dir().join(format!("hwnas-families-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows = Vec::new();
    for family in FAMILIES {
        let p = train::fit(family, &ds, &train, &TrainOptions::default()).unwrap();
        let (m, pred) = eval::evaluate(p.as_ref(), &test).unwrap();
        // Round trip: the loaded file predicts exactly what the fitted predictor did.
        let path = dir.join(format!("{}.json", family.replace('+', "-")));
        p.save(&path).unwrap();
        let back = load_predictor(&path).unwrap();
        let (_, again) = eval::evaluate(back.as_ref(), &test[..50]).unwrap();
        assert_eq!(&again[..], &pred[..50], "{family} changed through its file");
        rows.push((family.to_string(), m));
    }
    println!("{}", markdown_table("Pixel 3, 200 train / 4800 test", &rows));
    let get = |f: &str| rows.iter().find(|(n, _)| n == f).unwrap().1;
    assert!(get("lut").within_10pct >= 0.99 && get("lut").kendall_tau >= 0.95);
    // Measured (seed 1): kernel 100 % / τ 0.92, mlp 100 % / τ 0.99, flops 93 % / ρ 0.95.
    assert!(get("kernel").within_10pct >= 0.97 && get("kernel").kendall_tau >= 0.85, "{:?}", get("kernel"));
    assert!(get("mlp").within_10pct >= 0.97 && get("mlp").kendall_tau >= 0.9, "{:?}", get("mlp"));
    assert!(get("flops").spearman >= 0.9, "{:?}", get("flops"));
    // The additive table beats the MACs baseline by a wide margin on additive data.
    assert!(get("lut").rmse_ms < 0.2 * get("flops").rmse_ms);
}
