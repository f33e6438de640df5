//! The Single-Path NAS Pixel 1 runtime model reproduces the published numbers.

use crate::common;
use predictors::spnas::SinglePathPredictor;
use predictors::{load_predictor, LatencyPredictor};
use spaces::{presets, Genome};

fn model() -> SinglePathPredictor {
    SinglePathPredictor::import(&common::shared().join("data/single-path-pixel1-lut.json")).unwrap()
}

fn ms(p: &dyn LatencyPredictor, ops: [u8; 20]) -> f64 {
    let s = spaces::space("singlepath").unwrap();
    p.predict_ms(&s.network(&Genome(ops.to_vec()))).unwrap()
}

#[test]
fn published_network_and_homogeneous_networks() {
    let p = model();
    let net = presets::preset("spnasnet").unwrap().arch().network(None);
    let r = p.predict_ms(&net).unwrap();
    assert!((r - 80.593).abs() < 0.01, "spnasnet {r}");
    assert!((ms(&p, [3; 20]) - 131.458).abs() < 0.01, "all k5e6");
    assert!((ms(&p, [0; 20]) - 65.636).abs() < 0.01, "all k3e3");
    let s = spaces::space("singlepath").unwrap();
    let smallest = ms(&p, s.extremes().0 .0.try_into().unwrap());
    assert!((smallest - 30.790).abs() < 0.01, "smallest {smallest}");
}

#[test]
fn round_trips_through_the_file() {
    let p = model();
    let path = std::env::temp_dir().join(format!("spnas-{}.json", std::process::id()));
    p.save(&path).unwrap();
    let back = load_predictor(&path).unwrap();
    assert_eq!(back.family(), "spnas");
    assert_eq!(ms(back.as_ref(), [1; 20]), ms(&p, [1; 20]));
}

#[test]
fn refuses_networks_outside_the_table() {
    let p = model();
    let fb = spaces::space("fbnet-cifar100").unwrap();
    // All k3_e1: an MBConv with expansion 1, which the Pixel 1 table does not have.
    let mut net = fb.network(&Genome(vec![0; 22]));
    net.layers[1].name = "layer1".into();
    assert!(p.predict_ms(&net).is_err());
}
