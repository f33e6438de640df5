//! `fit --from` (issue 13, item 3): a predictor for a new device from a few of its networks
//! and a lookup table of another device, against fitting from scratch on the same networks;
//! held-out rows only. Source: HW-NAS-Bench's Pixel 3 table.

use crate::common;
use predictors::dataset::{self, Dataset, NetworkRow};
use predictors::split::{split, TrainSize};
use predictors::train::{self, TrainOptions};
use predictors::{eval, LatencyPredictor};

fn load(rel: &str) -> Dataset {
    dataset::load(&common::shared().join("data").join(rel), Some("fbnet-cifar100"), "latency_ms").unwrap()
}

fn pixel3_table() -> Box<dyn LatencyPredictor> {
    let ds = load("hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv");
    let s = split(&ds.networks, TrainSize::Count(1000), 0).unwrap();
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    Box::new(train::fit_lut(&ds, &train, &TrainOptions::default()).unwrap())
}

/// Mean held-out Spearman over seeds 0–2 of (scratch, transfer) from `n` target networks.
fn scratch_vs_transfer(target: &Dataset, source: &dyn LatencyPredictor, n: usize) -> (f64, f64) {
    let (mut scratch, mut transfer) = (0.0, 0.0);
    for seed in 0..3 {
        let s = split(&target.networks, TrainSize::Count(n), seed).unwrap();
        let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &target.networks[i]).collect();
        let test: Vec<&NetworkRow> = s.test.iter().take(2000).map(|&i| &target.networks[i]).collect();
        let opts = TrainOptions { seed, ..Default::default() };
        let (p, _) = train::fit_auto(target, &train, &opts).unwrap();
        let (t, _) = train::fit_transfer(target, &train, source, &opts).unwrap();
        scratch += eval::evaluate(p.as_ref(), &test).unwrap().0.spearman / 3.0;
        transfer += eval::evaluate(t.as_ref(), &test).unwrap().0.spearman / 3.0;
    }
    (scratch, transfer)
}

#[test]
fn transfer_from_pixel3_beats_scratch_on_the_raspberry_pi_and_never_loses_on_help_phones() {
    let source = pixel3_table();
    let raspi4 = load("hw-nas-bench-fbnet/fbnet_cifar100_raspi4.csv");
    let (scratch, transfer) = scratch_vs_transfer(&raspi4, source.as_ref(), 10);
    assert!(transfer > scratch, "raspi4 from 10 networks: transfer ρ {transfer:.4} vs scratch {scratch:.4}");
    // HELP's phones rank worse by the Pixel 3's latencies (ρ 0.73 / 0.83) than by MACs:
    // scratch stays a candidate, so the source cannot make the fit worse.
    for file in ["fbnet_cifar100_pixel2.csv", "fbnet_cifar100_samsung_a50.csv"] {
        let target = load(&format!("help-fbnet-phones/{file}"));
        let (scratch, transfer) = scratch_vs_transfer(&target, source.as_ref(), 10);
        assert!(transfer >= scratch - 0.01, "{file}: transfer ρ {transfer:.4} vs scratch {scratch:.4}");
    }
}

#[test]
fn transferred_tables_price_every_layer_and_sources_without_layers_are_refused() {
    let source = pixel3_table();
    let raspi4 = load("hw-nas-bench-fbnet/fbnet_cifar100_raspi4.csv");
    let s = split(&raspi4.networks, TrainSize::Count(10), 0).unwrap();
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &raspi4.networks[i]).collect();
    let (t, sel) = train::fit_transfer(&raspi4, &train, source.as_ref(), &TrainOptions::default()).unwrap();
    assert!(sel.scores.iter().any(|c| c.candidate.describe().starts_with("source scaled")));
    // Every member of the space is priced, at a positive latency.
    for r in &raspi4.networks {
        assert!(t.predict_ms(&r.network).unwrap() > 0.0);
    }
    let nets: Vec<_> = train.iter().map(|r| &r.network).collect();
    let y: Vec<f64> = train.iter().map(|r| r.value).collect();
    // The MACs baseline is a per-layer sum: a source like any table.
    let flops = predictors::flops::FlopsPredictor::fit(predictors::flops::Variant::Macs, &nets, &y).unwrap();
    train::fit_transfer(&raspi4, &train, &flops, &TrainOptions::default()).unwrap();
    let cfg = predictors::mlp::MlpConfig { epochs: 20, ..Default::default() };
    let mlp = predictors::latency_mlp::MlpPredictor::fit("test", &nets, &y, &cfg).unwrap();
    let e = train::fit_transfer(&raspi4, &train, &mlp, &TrainOptions::default()).err().unwrap().to_string();
    assert!(e.contains("--from needs a predictor with per-layer costs"), "{e}");
}
