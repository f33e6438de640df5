//! Predictions per second per family, single thread, on the 5,000 HW-NAS-Bench
//! networks (Pixel 3), against a straightforward lookup table measured in the same run
//! (`std::collections::HashMap<String, f64>` probed with `Layer::key()` per layer).
//!
//! Run: `cargo bench -p predictors --bench predict` (needs `../shared` beside the repo).
//! Two columns per family, nothing precomputed per network in either:
//! - `search loop`: what a search's hot loop calls — the predictor compiled per gene choice
//!   ([`GeneTable`]) pricing each member from its genome, no network built;
//! - `from network`: `predict_ms` on the member's IR network (what a caller holding networks,
//!   such as `hwnas eval-predictor`, pays).

use predictors::dataset::{self, NetworkRow};
use predictors::gene_table::GeneTable;
use predictors::split::{split, TrainSize};
use predictors::train::{self, TrainOptions};
use predictors::LatencyPredictor;
use spaces::ir::Network;
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The obvious implementation: format every layer's key and look it up by string.
struct StringKeyLut(HashMap<String, f64>, f64);

impl StringKeyLut {
    fn predict(&self, net: &Network) -> f64 {
        self.1 + net.layers.iter().filter(|l| l.is_timed()).map(|l| self.0[&l.key()]).sum::<f64>()
    }
}

/// Predictions per second over `items`, looping for at least `budget`.
fn rate<T: ?Sized>(items: &[&T], budget: Duration, mut f: impl FnMut(&T) -> f64) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    let mut acc = 0.0;
    while start.elapsed() < budget {
        for item in items {
            acc += f(item);
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
    let space = spaces::space("fbnet-cifar100").unwrap();
    let layout = space.gene_layout().expect("FBNet is layer-wise");
    let genomes: Vec<&spaces::Genome> = ds.networks.iter().map(|r| &r.genome).collect();
    println!(
        "{:<28} {:>16} {:>10} {:>16} {:>10}",
        "predictor", "search loop /s", "× baseline", "from network /s", "× baseline"
    );
    println!("{:<28} {:>16} {:>10} {:>16.0} {:>10.2}", "string-key lut (baseline)", "", "", base, 1.0);
    let mut families: Vec<(String, Arc<dyn LatencyPredictor>)> = vec![("lut".into(), Arc::new(lut))];
    for f in ["auto", "flops", "flops+memory", "kernel", "mlp"] {
        families.push((f.into(), train::fit(f, &ds, &trainrows, &opts).unwrap().into()));
    }
    for (name, p) in &families {
        let table = match p.per_layer() {
            Some(per_layer) => {
                let t = predictors::additive::LayerTable::compile(per_layer, &space.layer_table_at(32)).unwrap();
                GeneTable::compile(&layout, |_| Some(&t))
            }
            None => GeneTable::compile_embedded(&layout, p.clone()),
        }
        .unwrap_or_else(|| panic!("{name} compiles per gene"));
        // The compiled form answers what the predictor answers, bit for bit.
        for (g, n) in genomes.iter().zip(&nets).take(200) {
            assert_eq!(table.latency_ms(g).to_bits(), p.predict_ms(n).unwrap().to_bits(), "{name}");
        }
        let compiled = rate(&genomes, budget, |g| table.latency_ms(g));
        let direct = rate(&nets, budget, |n| p.predict_ms(n).unwrap());
        println!("{name:<28} {compiled:>16.0} {:>10.2} {direct:>16.0} {:>10.2}", compiled / base, direct / base);
    }
}
