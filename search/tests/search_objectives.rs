//! Objectives: the per-layer latency table agrees with its predictor (and is refused for
//! predictors that are not affine in their layers); the capacity proxy spans [0, 1] over a
//! space; configs reject unknown fields.

mod search_common;
use search_common::*;

use predictors::{LatencyPredictor, PredictError};
use rand::SeedableRng;
use search::config::JobConfig;
use search::objectives::{CapacityProxy, LatencyObjective};
use spaces::ir::Network;
use std::sync::Arc;

/// Claims to be a lookup table but is not additive: the bottleneck layer decides.
struct MaxLayer;
impl LatencyPredictor for MaxLayer {
    fn family(&self) -> &str {
        "lut"
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        Ok(net.layers.iter().map(|l| l.macs() as f64 * 1e-6).fold(0.0, f64::max))
    }
    fn save(&self, _path: &std::path::Path) -> anyhow::Result<()> {
        anyhow::bail!("memory only")
    }
}

fn agree(space: &str, p: Arc<dyn LatencyPredictor>, tabulated: bool) {
    let s = spaces::space(space).unwrap();
    let obj = LatencyObjective::new("dev", p.clone(), &*s);
    assert_eq!(obj.is_tabulated(), tabulated, "{space}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..300 {
        let net = s.network(&s.sample(&mut rng));
        let (a, b) = (obj.latency_ms(&net).unwrap(), p.predict_ms(&net).unwrap());
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{space}: table {a} vs predictor {b}");
    }
}

#[test]
fn the_layer_table_reproduces_its_predictor() {
    // The fitted HW-NAS-Bench table has a calibration offset (its intercept): affine, tabulated.
    agree("fbnet-cifar100", pixel3_lut(), true);
    agree("ofa-mbv3-w1.0", Arc::new(MacsLinear { family: "lut" }), true);
    agree("mnasnet", Arc::new(MacsLinear { family: "flops" }), false);
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
