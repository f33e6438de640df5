//! Objectives: the compiled per-layer latency table agrees bit for bit with its predictor
//! (and is built only for predictors that offer their per-layer form); the capacity proxy
//! spans [0, 1] over a space; configs reject unknown fields.

use crate::search_common::*;

use predictors::{LatencyPredictor, PredictError};
use rand::SeedableRng;
use search::config::JobConfig;
use search::objectives::{CapacityProxy, LatencyObjective};
use spaces::ir::Network;
use std::sync::Arc;

/// Calls itself a lookup table but is not additive (the bottleneck layer decides): the family
/// name does not matter, only whether the predictor offers its per-layer form.
struct MaxLayer;
impl LatencyPredictor for MaxLayer {
    fn family(&self) -> &str {
        "lut"
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        Ok(net.layers.iter().map(|l| l.macs() as f64 * 1e-6).fold(0.0, f64::max))
    }
    fn save(&self, path: &std::path::Path) -> Result<(), predictors::DocumentError> {
        Err(crate::search_common::in_memory_only(path, "memory only"))
    }
}

fn agree(space: &str, p: Arc<dyn LatencyPredictor>, tabulated: bool) {
    let s = spaces::space(space).unwrap();
    let obj = LatencyObjective::new("dev", p.clone(), &*s);
    assert_eq!(obj.is_tabulated(), tabulated, "{space}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..300 {
        let g = s.sample(&mut rng);
        let net = s.network(&g);
        let (a, b) = (obj.latency_ms(&*s, &g, &net).unwrap(), p.predict_ms(&net).unwrap());
        if tabulated {
            assert_eq!(a.to_bits(), b.to_bits(), "{space}: table {a} vs predictor {b}");
        } else {
            assert_eq!(a, b, "{space}");
        }
    }
}

#[test]
fn the_layer_table_reproduces_its_predictor() {
    // The fitted HW-NAS-Bench table has a calibration offset (its intercept): affine, tabulated.
    agree("fbnet-cifar100", pixel3_lut(), true);
    agree("ofa-mbv3-w1.0", Arc::new(MacsLinear { additive: true }), true);
    agree("fbnet", Arc::new(MacsLinear { additive: true }), true);
    agree("mnasnet", Arc::new(MacsLinear { additive: false }), false);
    agree("ofa-mbv3-w1.0", Arc::new(MaxLayer), false);
}

#[test]
fn the_capacity_proxy_spans_the_unit_interval() {
    for name in spaces::SPACE_NAMES {
        let s = spaces::space(name).unwrap();
        let proxy = CapacityProxy::new(&*s);
        let (lo, hi) = s.extremes();
        assert!(proxy.score(&s.network(&lo)) < 1e-9, "{name}");
        assert!((proxy.score(&s.network(&hi)) - 1.0).abs() < 1e-9, "{name}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let v = proxy.score(&s.network(&s.sample(&mut rng)));
            assert!((0.0..=1.0).contains(&v), "{name}: {v}");
        }
    }
}

#[test]
fn configs_round_trip_and_reject_unknown_fields() {
    let cfg = config("ofa-mbv3-w1.0", search::config::StrategyConfig::by_name("rl").unwrap(), 10, 2, 0, 20.0);
    let text = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<JobConfig>(&text).unwrap(), cfg);
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["strategy"]["learning_rte"] = 0.1.into();
    let err = serde_json::from_value::<JobConfig>(v).unwrap_err().to_string();
    assert!(err.contains("learning_rte"), "{err}");
    assert!(search::config::StrategyConfig::by_name("annealing").is_err());
}

#[test]
fn an_accuracy_predictor_file_drives_a_job() {
    use predictors::accuracy::MlpAccuracyPredictor;
    use predictors::mlp::MlpConfig;
    use predictors::AccuracyPredictor;
    let name = "fbnet-cifar100";
    let s = spaces::space(name).unwrap();
    let proxy = CapacityProxy::new(&*s);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let archs: Vec<spaces::Genome> = (0..200).map(|_| s.sample(&mut rng)).collect();
    let y: Vec<f64> = archs.iter().map(|g| proxy.score(&s.network(g))).collect();
    let refs: Vec<&spaces::Genome> = archs.iter().collect();
    let cfg = MlpConfig { hidden: vec![32], epochs: 200, lr: 1e-2, weight_decay: 0.0, seed: 0 };
    let mlp = MlpAccuracyPredictor::fit("test", &*s, &refs, &y, &cfg).unwrap();
    let dir = scratch("acc-predictor");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("acc.json");
    mlp.save(&file).unwrap();

    let spec = search::config::AccuracySpec::Predictor { path: file.display().to_string() };
    let source = search::objectives::accuracy::load(&spec, &*s).unwrap();
    assert_eq!(search::objectives::AccuracySource::kind(&*source), "predictor");
    let lat = pixel3_lut();
    let mut config = config(name, search::config::StrategyConfig::by_name("evolution").unwrap(), 8, 2, 0, 1e9);
    config.sampling_mut().accuracy = spec;
    let mut job = search::job::Job::open(config, vec![lat], source, &dir.join("job"), false).unwrap();
    let out = job.run(None, &mut |_| {}).unwrap().unwrap();
    assert_eq!(out.accuracy_kind, "predictor");
    let best = out.best.unwrap();
    assert_eq!(best.eval.accuracy, mlp.predict(&*s, &best.eval.genome).unwrap());
    // A predictor trained on another space is refused.
    let other = spaces::space("ofa-mbv3-w1.0").unwrap();
    let src = search::objectives::accuracy::load(
        &search::config::AccuracySpec::Predictor { path: file.display().to_string() },
        &*other,
    )
    .unwrap();
    let g = other.sample(&mut rng);
    assert!(search::objectives::AccuracySource::accuracy(&*src, &*other, &g, &other.network(&g)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
