//! The OFA-style accuracy MLP learns a known function of the genes and survives its file.

use predictors::accuracy::{AccuracyPredictor, MlpAccuracyPredictor};
use predictors::metrics::Metrics;
use predictors::mlp::MlpConfig;
use rand::SeedableRng;
use spaces::Genome;

/// A made-up accuracy: additive per (position, op) plus one pairwise interaction.
fn accuracy(g: &Genome) -> f64 {
    let additive: f64 = g.0.iter().enumerate().map(|(i, &o)| ((i * 7 + o as usize * 13) % 11) as f64 * 0.1).sum();
    let interaction = if g.0[0] == g.0[1] { 0.5 } else { 0.0 };
    60.0 + additive + interaction
}

#[test]
fn learns_gene_effects_and_round_trips() {
    let s = spaces::space("fbnet-cifar100").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let archs: Vec<Genome> = (0..800).map(|_| s.sample(&mut rng)).collect();
    let (train, test) = archs.split_at(500);
    let y: Vec<f64> = train.iter().map(accuracy).collect();
    let refs: Vec<&Genome> = train.iter().collect();
    let p = MlpAccuracyPredictor::fit("synthetic", s.as_ref(), &refs, &y, &MlpConfig::default()).unwrap();
    let pred: Vec<f64> = test.iter().map(|g| p.predict(s.as_ref(), g).unwrap()).collect();
    let truth: Vec<f64> = test.iter().map(accuracy).collect();
    let m = Metrics::compute(&pred, &truth);
    assert!(m.spearman >= 0.95 && m.rmse_ms < 0.5, "{m:?}");
    let path = std::env::temp_dir().join(format!("acc-{}.json", std::process::id()));
    p.save(&path).unwrap();
    let back = MlpAccuracyPredictor::load(&path).unwrap();
    assert_eq!(back.predict(s.as_ref(), &test[0]).unwrap(), pred[0]);
    let other = spaces::space("singlepath").unwrap();
    assert!(back.predict(other.as_ref(), &other.extremes().0).is_err());
}

/// The Rust forward (one-hot row sums, transposed dense layers) against libtorch's, on an
/// OFA-shaped network (3 × 400) over random ofa-mbv3-w1.0 members; the batch call must give
/// every member exactly its single prediction.
#[test]
fn rust_forward_matches_tch_forward() {
    let s = spaces::space("ofa-mbv3-w1.0").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let archs: Vec<Genome> = (0..300).map(|_| s.sample(&mut rng)).collect();
    let (train, test) = archs.split_at(200);
    let y: Vec<f64> = train.iter().map(accuracy).collect();
    let refs: Vec<&Genome> = train.iter().collect();
    let cfg = MlpConfig { hidden: vec![400, 400, 400], epochs: 20, lr: 1e-3, weight_decay: 1e-4, seed: 1 };
    let p = MlpAccuracyPredictor::fit("synthetic", s.as_ref(), &refs, &y, &cfg).unwrap();
    let gs: Vec<&Genome> = test.iter().collect();
    let reference = p.predict_batch_tch(s.as_ref(), &gs).unwrap();
    let fast = p.predict_batch(s.as_ref(), &gs).unwrap();
    assert_eq!(fast.len(), gs.len());
    let spread = reference.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
        - reference.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(spread > 1e-3, "the network must not be constant ({spread})");
    for ((g, a), b) in gs.iter().zip(&fast).zip(&reference) {
        assert!((a - b).abs() <= 1e-5, "rust {a} vs tch {b}");
        assert_eq!(p.predict(s.as_ref(), g).unwrap(), *a);
    }
    let halves = [p.predict_batch(s.as_ref(), &gs[..37]).unwrap(), p.predict_batch(s.as_ref(), &gs[37..]).unwrap()];
    assert_eq!(halves.concat(), fast);
}
