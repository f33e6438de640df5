//! Search quality on real data: with a lookup table fitted to HW-NAS-Bench's Pixel 3
//! measurements of FBNet CIFAR-100 networks, OFA-style evolution finds, within its budget,
//! an architecture at least as good as the best of ten times as many random samples.

use crate::search_common::*;

use search::config::StrategyConfig;
use search::history::Record;

fn best_feasible(h: &[Record]) -> f64 {
    h.iter().filter(|r| r.eval.feasible).filter_map(|r| r.eval.objective).fold(f64::NEG_INFINITY, f64::max)
}

fn run(
    strategy: StrategyConfig,
    population: usize,
    generations: usize,
    seed: u64,
    target: f64,
    name: &str,
) -> Vec<Record> {
    let dir = scratch(name);
    let mut job =
        open(config("fbnet-cifar100", strategy, population, generations, seed, target), pixel3_lut(), &dir, false)
            .unwrap();
    job.run(None, &mut |_| {}).unwrap().unwrap();
    let h = job.history().to_vec();
    let _ = std::fs::remove_dir_all(&dir);
    h
}

#[test]
fn evolution_beats_ten_times_as_many_random_samples() {
    // A tight target: below the median latency of uniform samples.
    let lut = pixel3_lut();
    let target = {
        let median = median_latency("fbnet-cifar100", &*lut, 401);
        median * 0.9
    };
    for seed in [1, 2, 3] {
        let evo = run(StrategyConfig::by_name("evolution").unwrap(), 20, 10, seed, target, &format!("q-evo-{seed}"));
        let budget = evo.len();
        // Random search: the same number of generations with ten times the samples each.
        let rnd = run(StrategyConfig::Random, 10 * 20, 10, seed, target, &format!("q-rnd-{seed}"));
        assert_eq!(rnd.len(), 10 * budget);
        let (e, r) = (best_feasible(&evo), best_feasible(&rnd));
        eprintln!("seed {seed}: evolution {e:.5} ({budget} evaluations), random {r:.5} ({})", rnd.len());
        assert!(e >= r, "seed {seed}: evolution {e:.5} with {budget} evaluations < random {r:.5} with {}", rnd.len());
    }
}

#[test]
fn nsga2_front_is_mutually_non_dominated_and_feasible() {
    let lut = pixel3_lut();
    let target = median_latency("fbnet-cifar100", &*lut, 201);
    let dir = scratch("nsga2-front");
    let cfg = config("fbnet-cifar100", StrategyConfig::by_name("nsga2").unwrap(), 24, 8, 4, target);
    let mut job = open(cfg, lut, &dir, false).unwrap();
    let out = job.run(None, &mut |_| {}).unwrap().unwrap();
    assert!(out.front.len() >= 2);
    for a in &out.front {
        assert!(a.eval.feasible);
        for b in &out.front {
            let worse = b.eval.accuracy <= a.eval.accuracy && b.eval.latency_ms[0] >= a.eval.latency_ms[0];
            let strictly = b.eval.accuracy < a.eval.accuracy || b.eval.latency_ms[0] > a.eval.latency_ms[0];
            assert!(!(worse && strictly) || std::ptr::eq(a, b), "front member dominated");
        }
    }
    // The front is sorted by latency, so accuracy must rise along it.
    for w in out.front.windows(2) {
        assert!(w[1].eval.latency_ms[0] >= w[0].eval.latency_ms[0] && w[1].eval.accuracy > w[0].eval.accuracy);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nsga2_optimises_two_devices_at_once() {
    use search::config::LatencySpec;
    let (pixel3, raspi4) = (pixel3_lut(), fitted_lut("raspi4"));
    let target = median_latency("fbnet-cifar100", &*pixel3, 201);
    let mut cfg = config("fbnet-cifar100", StrategyConfig::by_name("nsga2").unwrap(), 24, 6, 8, target);
    cfg.latency = vec![
        LatencySpec { label: "pixel3".into(), path: "memory".into(), measure: None },
        LatencySpec { label: "raspi4".into(), path: "memory".into(), measure: None },
    ];
    let dir = scratch("nsga2-two-devices");
    let acc = proxy("fbnet-cifar100");
    let mut job = search::job::Job::open(cfg, vec![pixel3.clone(), raspi4.clone()], acc, &dir, false).unwrap();
    let out = job.run(None, &mut |_| {}).unwrap().unwrap();
    let s = spaces::space("fbnet-cifar100").unwrap();
    for r in job.history() {
        let net = s.network(&r.eval.genome);
        // Tabulated sums may differ from the predictor's in the last bits (summation order).
        let direct = [pixel3.predict_ms(&net).unwrap(), raspi4.predict_ms(&net).unwrap()];
        for (a, b) in r.eval.latency_ms.iter().zip(direct) {
            assert!((a - b).abs() < 1e-9 * b, "{a} vs {b}");
        }
    }
    // The front is non-dominated in all three objectives (accuracy, Pixel 3, Raspberry Pi 4).
    let obj = |r: &Record| vec![-r.eval.accuracy, r.eval.latency_ms[0], r.eval.latency_ms[1]];
    for a in &out.front {
        for b in &out.front {
            assert!(!search::pareto::dominates(&obj(b), &obj(a)));
        }
    }
    let df = search::history::read_parquet(&dir.join("history.parquet")).unwrap();
    assert!(df.column("latency_ms_raspi4").is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
