//! `auto` on real measurements (issue 13): never worse than counting MACs and bytes on the
//! noisy HELP phones, exact on the additive HW-NAS-Bench tables, near-perfect on OFA GPUs at
//! batch 64, and honest about HELP's batch-1 GPU files; held-out rows only.

use crate::common;
use predictors::dataset::{self, Dataset, NetworkRow};
use predictors::flops::{FlopsPredictor, Variant};
use predictors::metrics::Metrics;
use predictors::split::{split, TrainSize};
use predictors::train::{self, TrainOptions};
use predictors::{eval, LatencyPredictor};

fn load(rel: &str, space: Option<&str>) -> Dataset {
    dataset::load(&common::shared().join("data").join(rel), space, "latency_ms").unwrap()
}

/// Held-out metrics of auto and of flops+memory, fitted on `n` architectures (test: 2,000 others).
fn auto_vs_flops(ds: &Dataset, n: usize, seed: u64) -> (Metrics, Metrics, predictors::auto::Selection) {
    let s = split(&ds.networks, TrainSize::Count(n), seed).unwrap();
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    let test: Vec<&NetworkRow> = s.test.iter().take(2000).map(|&i| &ds.networks[i]).collect();
    let opts = TrainOptions { seed, ..Default::default() };
    let (p, sel) = train::fit_auto(ds, &train, &opts).unwrap();
    let nets: Vec<_> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    let f = FlopsPredictor::fit(Variant::MacsMemory, &nets, &y).unwrap();
    (eval::evaluate(p.as_ref(), &test).unwrap().0, eval::evaluate(&f, &test).unwrap().0, sel)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn help_phones_auto_is_never_worse_than_macs_and_bytes() {
    for file in ["fbnet_cifar100_pixel2.csv", "fbnet_cifar100_samsung_a50.csv"] {
        let ds = load(&format!("help-fbnet-phones/{file}"), Some("fbnet-cifar100"));
        for n in [10, 50, 200] {
            let runs: Vec<_> = (0..3).map(|seed| auto_vs_flops(&ds, n, seed)).collect();
            let a = mean(&runs.iter().map(|r| r.0.spearman).collect::<Vec<_>>());
            let f = mean(&runs.iter().map(|r| r.1.spearman).collect::<Vec<_>>());
            assert!(a >= f - 0.01, "{file}, {n} networks: auto ρ {a:.3} vs flops+memory {f:.3}");
        }
    }
}

#[test]
fn hw_nas_bench_stays_exact_and_ofa_gpus_are_ranked() {
    let ds = load("hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv", Some("fbnet-cifar100"));
    let (m, _, sel) = auto_vs_flops(&ds, 200, 0);
    assert_eq!(sel.chosen.family(), "lut", "{:?}", sel.chosen);
    assert!(m.within_10pct >= 0.999 && m.kendall_tau >= 0.99, "{m:?}");
    let ds = load("help-ofa/ofa_mbv3_w1.2_titan_rtx_64.csv", None);
    let (m, f, _) = auto_vs_flops(&ds, 20, 0);
    assert!(m.spearman >= 0.99 && m.spearman >= f.spearman - 0.01, "auto {m:?} flops {f:?}");
}

#[test]
fn batch_one_gpu_data_are_called_unpredictable_from_few_networks() {
    let ds = load("help-ofa/ofa_mbv3_w1.2_2080ti_1.csv", None);
    let (_, _, sel) = auto_vs_flops(&ds, 20, 0);
    assert!(!sel.predictable, "CV scores {:?}", sel.chosen_scores());
}

#[test]
fn a_table_calibrated_on_one_network_keeps_scale_one() {
    let ds = load("hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv", Some("fbnet-cifar100"));
    let nets: Vec<_> = ds.networks.iter().take(50).map(|r| &r.network).collect();
    let y: Vec<f64> = ds.networks.iter().take(50).map(|r| r.value).collect();
    let mut lut = predictors::lut::fit_networks("t", &nets, &y, ds.coverage(), Default::default()).unwrap();
    let c = predictors::lut::calibrate(&mut lut, &nets[..1], &[y[0] + 1.0]).unwrap();
    assert_eq!(c.scale, 1.0);
    assert!((lut.predict_ms(nets[0]).unwrap() - (y[0] + 1.0)).abs() < 1e-6);
    assert!(lut.predict_ms(nets[1]).unwrap().is_finite());
}
