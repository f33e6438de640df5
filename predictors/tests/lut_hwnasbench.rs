//! The lookup table fitted to 200 HW-NAS-Bench architectures must predict the other
//! 4,800 (the data are exactly additive per layer, see the dataset README).

use crate::common;
use predictors::dataset::{self, NetworkRow};
use predictors::lut::{self, FitOptions};
use predictors::split::{split, TrainSize};
use predictors::{eval, LatencyPredictor};

fn fit_and_score(device: &str) -> predictors::metrics::Metrics {
    let ds = dataset::load(&common::hwnas_bench(device), Some("fbnet-cifar100"), "latency_ms").unwrap();
    assert_eq!(ds.networks.len(), 5000);
    let s = split(&ds.networks, TrainSize::Count(200), 0).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (200, 4800));
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    let test: Vec<&NetworkRow> = s.test.iter().map(|&i| &ds.networks[i]).collect();
    let nets: Vec<_> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    let p = lut::fit_networks("test", &nets, &y, ds.coverage(), FitOptions::default()).unwrap();
    let info = p.fit_info().unwrap();
    assert!(info.train_max_abs_residual_ms < 1e-4, "{device}: train residual {}", info.train_max_abs_residual_ms);
    let (m, _) = eval::evaluate(&p, &test).unwrap();
    assert_eq!(p.family(), "lut");
    m
}

#[test]
fn pixel3_lut_from_200_predicts_4800() {
    let m = fit_and_score("pixel3");
    assert!(m.within_10pct >= 0.99, "{m:?}");
    assert!(m.kendall_tau >= 0.95, "{m:?}");
}

#[test]
fn raspi4_lut_from_200_predicts_4800() {
    let m = fit_and_score("raspi4");
    assert!(m.within_10pct >= 0.99, "{m:?}");
    assert!(m.kendall_tau >= 0.95, "{m:?}");
}
