//! A table built from single-layer rows (`kind = layer`) and calibrated on network rows
//! of the same CSV: the fit recovers the known scale and offset.

use crate::common;
use predictors::dataset::{self, NetworkRow};
use predictors::train::{self, TrainOptions};
use predictors::LatencyPredictor;
use rand::SeedableRng;

#[test]
fn single_layer_table_with_network_calibration() {
    let s = spaces::space("fbnet-cifar100").unwrap();
    let ms = |l: &spaces::ir::Layer| 0.01 + l.macs() as f64 / 1e7;
    let mut csv = String::from("kind,key,space,arch,latency_ms\n");
    for l in s.layer_table(&[32]) {
        csv += &format!("layer,{},,,{}\n", l.key(), ms(&l));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..30 {
        let g = s.sample(&mut rng);
        let net = s.network(&g);
        let sum: f64 = net.layers.iter().filter(|l| l.is_timed()).map(ms).sum();
        let json = s.to_json(&g);
        let ops = json["ops"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect::<Vec<_>>();
        csv += &format!("network,,fbnet-cifar100,{},{}\n", ops.join("-"), 1.1 * sum + 0.5);
    }
    let path = std::env::temp_dir().join(format!("layer-rows-{}.csv", std::process::id()));
    std::fs::write(&path, csv).unwrap();
    let ds = dataset::load(&path, None, "latency_ms").unwrap();
    assert_eq!((ds.layers.len(), ds.networks.len()), (s.layer_table(&[32]).len(), 30));
    let rows: Vec<&NetworkRow> = ds.networks.iter().collect();
    let lut = train::fit_lut(&ds, &rows, &TrainOptions::default()).unwrap();
    let c = lut.calibration();
    assert!((c.scale - 1.1).abs() < 1e-9 && (c.offset_ms - 0.5).abs() < 1e-7, "{c:?}");
    assert!(lut.fit_info().is_none());
    let net = s.network(&s.extremes().1);
    let want = 1.1 * net.layers.iter().filter(|l| l.is_timed()).map(ms).sum::<f64>() + 0.5;
    assert!((lut.predict_ms(&net).unwrap() - want).abs() < 1e-7);
    // A network row without a space (no column value, no default) is an error naming the row.
    std::fs::write(&path, "arch,latency_ms\nk3_e1,1.0\n").unwrap();
    let e = common::chain(&dataset::load(&path, None, "latency_ms").err().unwrap());
    assert!(e.contains("row 1") && e.contains("--space"), "{e}");
    let e = common::chain(&dataset::load(&path, Some("fbnet-cifar100"), "latency_ms").err().unwrap());
    assert!(e.contains("row 1"), "{e}");
}
