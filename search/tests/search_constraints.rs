//! Feasibility: what a job reports as feasible meets the target under its predictor, and an
//! unreachable target fails fast with the smallest reachable latency.

use crate::search_common::*;

use predictors::LatencyPredictor;
use search::config::StrategyConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn check_feasibility(space: &str, lat: Arc<dyn LatencyPredictor>, strategy: StrategyConfig, target: f64) {
    let name = format!("feasible-{space}-{}", strategy.name());
    let dir = scratch(&name);
    let mut cfg = config(space, strategy, 12, 4, 3, target);
    cfg.sampling_mut().max_tries = 5_000;
    let mut job = open(cfg, lat.clone(), &dir, false).unwrap();
    let outcome = job.run(None, &mut |_| {}).unwrap().unwrap();
    let s = spaces::space(space).unwrap();
    let history = job.history();
    assert!(!history.is_empty());
    for r in history {
        let direct = lat.predict_ms(&s.network(&r.eval.genome)).unwrap();
        assert!(
            (direct - r.eval.latency_ms[0]).abs() < 1e-9 * direct.max(1.0),
            "{name}: recorded {} vs {direct}",
            r.eval.latency_ms[0]
        );
        assert_eq!(r.eval.feasible, direct <= target, "{name}: feasible flag disagrees with the predictor");
    }
    let best = outcome.best.expect("a feasible architecture");
    assert!(lat.predict_ms(&s.network(&best.eval.genome)).unwrap() <= target);
    for f in &outcome.front {
        assert!(lat.predict_ms(&s.network(&f.eval.genome)).unwrap() <= target);
    }
    // The files a job promises, with the reported architectures feasible there too.
    for f in [
        "config.json",
        "log.txt",
        "state.json",
        "history.parquet",
        "pareto.json",
        "best.json",
        "progress.png",
        "progress.svg",
        "pareto.png",
        "pareto.svg",
    ] {
        assert!(dir.join(f).exists(), "{name}: {f} missing");
    }
    let df = search::history::read_parquet(&dir.join("history.parquet")).unwrap();
    assert_eq!(df.height(), history.len());
    for c in ["generation", "arch", "latency_ms", "accuracy", "objective", "feasible"] {
        assert!(df.column(c).is_ok(), "history.parquet lacks {c}");
    }
    let best_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("best.json")).unwrap()).unwrap();
    assert_eq!(best_json["accuracy_source"]["kind"], "capacity-proxy");
    let arch = spaces::Arch::parse(space, &best_json["best"]["arch"].to_string()).unwrap();
    assert!(lat.predict_ms(&arch.network(None)).unwrap() <= target);
    let pareto: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pareto.json")).unwrap()).unwrap();
    for e in pareto["front"].as_array().unwrap() {
        let arch = spaces::Arch::parse(space, &e["arch"].to_string()).unwrap();
        assert!(lat.predict_ms(&arch.network(None)).unwrap() <= target);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_strategy_reports_only_feasible_architectures_as_feasible() {
    let lut = pixel3_lut();
    let t_fb = median_latency("fbnet-cifar100", &*lut, 201);
    let stand_in: Arc<dyn LatencyPredictor> = Arc::new(MacsLinear { additive: false });
    let t_ofa = median_latency("ofa-mbv3-w1.0", &*stand_in, 201);
    for strategy in all_strategies() {
        check_feasibility("fbnet-cifar100", lut.clone(), strategy.clone(), t_fb);
        check_feasibility("ofa-mbv3-w1.0", stand_in.clone(), strategy, t_ofa);
    }
}

fn smallest_in_message(msg: &str) -> f64 {
    let tail =
        msg.split("smallest latency found is ").nth(1).unwrap_or_else(|| panic!("no smallest latency in: {msg}"));
    tail.split(" ms").next().unwrap().parse().unwrap()
}

#[test]
fn an_infeasible_target_fails_fast_with_the_smallest_reachable_latency() {
    let cases: Vec<(&str, Arc<dyn LatencyPredictor>)> = vec![
        ("fbnet-cifar100", pixel3_lut()),
        ("ofa-mbv3-w1.0", Arc::new(MacsLinear { additive: true })),
        ("mnasnet", Arc::new(MacsLinear { additive: false })),
    ];
    for (space, lat) in cases {
        let s = spaces::space(space).unwrap();
        let smallest_macs = lat.predict_ms(&s.network(&s.extremes().0)).unwrap();
        for strategy in all_strategies() {
            let dir = scratch(&format!("infeasible-{space}-{}", strategy.name()));
            let start = Instant::now();
            let err = open(config(space, strategy, 10, 3, 1, smallest_macs * 0.5), lat.clone(), &dir, false)
                .err()
                .expect("an infeasible target must be an error");
            assert!(start.elapsed() < Duration::from_secs(60), "the infeasibility check must not loop");
            let msg = crate::search_common::chain(&err);
            assert!(msg.contains("infeasible") && msg.contains(space), "{msg}");
            let smallest = smallest_in_message(&msg);
            // The reported minimum is reachable (at most the smallest-MACs member) and above the target.
            assert!(smallest <= smallest_macs + 1e-3 && smallest > smallest_macs * 0.5, "{msg}");
            assert!(!dir.exists(), "nothing is written for an infeasible job");
        }
    }
}

#[test]
fn a_target_just_above_the_minimum_is_searchable() {
    // Few members meet it: rejection sampling runs out and the fastest member seeds the population.
    let lat = pixel3_lut();
    let dir = scratch("tight");
    let probe = open(
        config("fbnet-cifar100", StrategyConfig::by_name("evolution").unwrap(), 8, 2, 1, 1e9),
        lat.clone(),
        &dir,
        false,
    )
    .unwrap();
    drop(probe);
    let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
    let min: f64 =
        log.split("smallest reachable latency ").nth(1).unwrap().split(" ms").next().unwrap().parse().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = config("fbnet-cifar100", StrategyConfig::by_name("evolution").unwrap(), 8, 2, 1, min * 1.001);
    cfg.sampling_mut().max_tries = 200;
    let mut job = open(cfg, lat.clone(), &dir, false).unwrap();
    let outcome = job.run(None, &mut |_| {}).unwrap().unwrap();
    let best = outcome.best.expect("the fastest member is feasible");
    assert!(best.eval.latency_ms[0] <= min * 1.001);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fixed_genes_hold_in_every_evaluated_architecture_of_every_strategy() {
    let lat = pixel3_lut();
    let target = median_latency("fbnet-cifar100", &*lat, 101);
    for strategy in all_strategies() {
        let dir = scratch(&format!("fixed-{}", strategy.name()));
        let mut cfg = config("fbnet-cifar100", strategy.clone(), 8, 3, 5, target);
        cfg.sampling_mut().fixed =
            [("ops[0]", "k5_e6"), ("ops[21]", "skip")].map(|(g, c)| (g.to_string(), c.to_string())).into();
        let mut job = open(cfg, lat.clone(), &dir, false).unwrap();
        job.run(None, &mut |_| {}).unwrap().unwrap();
        let s = spaces::space("fbnet-cifar100").unwrap();
        for r in job.history() {
            let ops = s.to_json(&r.eval.genome)["ops"].clone();
            assert!(ops[0] == "k5_e6" && ops[21] == "skip", "{}: {ops}", strategy.name());
        }
        let saved = std::fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(saved.contains("\"ops[21]\": \"skip\""), "{saved}");
    }
}
