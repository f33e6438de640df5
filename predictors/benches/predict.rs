//! Predictions per second per family, single thread, on the 5,000 HW-NAS-Bench
//! networks (Pixel 3), against a straightforward lookup table measured in the same run
//! (`std::collections::HashMap<String, f64>` probed with `Layer::key()` per layer).
//!
//! Run: `cargo bench -p predictors --bench predict` (needs `../shared` beside the repo).
//! Every family predicts from the `Network` each time; nothing is precomputed per network.

use predictors::dataset::{self, NetworkRow};
use predictors::split::{split, TrainSize};
use predictors::train::{self, TrainOptions};
use predictors::LatencyPredictor;
use spaces::ir::Network;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

/// The obvious implementation: format every layer's key and look it up by string.
struct StringKeyLut(HashMap<String, f64>, f64);

impl StringKeyLut {
    fn predict(&self, net: &Network) -> f64 {
        self.1 + net.layers.iter().filter(|l| l.is_timed()).map(|l| self.0[&l.key()]).sum::<f64>()
    }
}

/// Predictions per second over `nets`, looping for at least `budget`.
fn rate(nets: &[&Network], budget: Duration, mut f: impl FnMut(&Network) -> f64) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    let mut acc = 0.0;
    while start.elapsed() < budget {
        for net in nets {
            acc += f(net);
            n += 1;
        }
    }
    black_box(acc);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv");
    let ds = dataset::load(&data, Some("fbnet-cifar100"), "latency_ms").expect("HW-NAS-Bench Pixel 3 CSV");
    let s = split(&ds.networks, TrainSize::Count(200), 0).unwrap();
    let trainrows: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    let nets: Vec<&Network> = ds.networks.iter().map(|r| &r.network).collect();
    let opts = TrainOptions::default();
    let lut = train::fit_lut(&ds, &trainrows, &opts).unwrap();
    let baseline =
        StringKeyLut(lut.entries().iter().map(|e| (e.key.clone(), e.ms)).collect(), lut.calibration().offset_ms);
    // Both must agree before their speeds mean anything.
    for n in &nets[..100] {
        assert!((baseline.predict(n) - lut.predict_ms(n).unwrap()).abs() < 1e-9);
    }
    let budget = Duration::from_secs(2);
    let base = rate(&nets, budget, |n| baseline.predict(n));
    println!("{:<28} {:>14} {:>10}", "predictor", "predictions/s", "× baseline");
    println!("{:<28} {:>14.0} {:>10.2}", "string-key lut (baseline)", base, 1.0);
    let mut families: Vec<(String, Box<dyn LatencyPredictor>)> = vec![("lut".into(), Box::new(lut))];
    for f in ["auto", "flops", "flops+memory", "kernel", "mlp"] {
        families.push((f.into(), train::fit(f, &ds, &trainrows, &opts).unwrap()));
    }
    for (name, p) in &families {
        let r = rate(&nets, budget, |n| p.predict_ms(n).unwrap());
        println!("{name:<28} {r:>14.0} {:>10.2}", r / base);
    }
}
