//! OFA's default evolutionary search (population 100, 500 generations, parent ratio 0.25,
//! mutation ratio 0.5, mutate probability 0.1) on ofa-mbv3-w1.0 with a lookup-table latency
//! predictor and an OFA-shaped MLP accuracy predictor (3 × 400 hidden), timed against a
//! straightforward single-threaded implementation of the same algorithm in the same run.
//!
//! Run: `cargo bench -p search --bench ofa_evolution` (release profile). Optional
//! arguments: `-- GENERATIONS BASELINE_GENERATIONS` (defaults 500 and 50).
//!
//! What is real and what is a stand-in (no OFA-MobileNetV3 w1.0 measurements or ImageNet
//! accuracies ship with the repository):
//! - latency: a `predictors::lut::LutPredictor` over every layer of the space at the five
//!   resolutions the space has (128–224 in steps of 4), entries = 0.02 ms + 0.1 ms per MMAC + 2 ms per GB moved;
//! - accuracy: `predictors::accuracy::MlpAccuracyPredictor` with OFA's shape, trained briefly
//!   on the capacity proxy of 1,000 random members: its cost is an accuracy MLP's, its values are not accuracies.

use predictors::accuracy::MlpAccuracyPredictor;
use predictors::lut::{Coverage, Entry, LutPredictor};
use predictors::mlp::MlpConfig;
use predictors::{AccuracyPredictor, LatencyPredictor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use search::config::EvolutionConfig;
use search::evaluate::Evaluator;
use search::objectives::accuracy::PredictedAccuracy;
use search::objectives::{AccuracySource, CapacityProxy, LatencyObjective};
use search::rng::generation_rng;
use search::strategies::{Ctx, Evolution, Strategy};
use spaces::{Genome, SearchSpace};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const SPACE: &str = "ofa-mbv3-w1.0";
const POPULATION: usize = 100;

fn stand_in_lut(space: &dyn SearchSpace) -> LutPredictor {
    let resolutions = space.resolutions();
    let entries = space
        .layer_table(&resolutions)
        .iter()
        .map(|l| Entry {
            key: l.key(),
            ms: 0.02 + 0.1 * l.macs() as f64 / 1e6 + 2.0 * l.memory_bytes() as f64 / 1e9,
            macs: Some(l.macs()),
            memory_bytes: Some(l.memory_bytes()),
        })
        .collect();
    let coverage = vec![Coverage { space: SPACE.into(), resolutions }];
    LutPredictor::from_entries("bench stand-in: 0.02 ms + 0.1 ms/MMAC + 2 ms/GB", entries, coverage).expect("lut")
}

fn ofa_shaped_mlp(space: &dyn SearchSpace) -> MlpAccuracyPredictor {
    let proxy = CapacityProxy::new(space);
    let mut rng = StdRng::seed_from_u64(0);
    let archs: Vec<Genome> = (0..1000).map(|_| space.sample(&mut rng)).collect();
    let y: Vec<f64> = archs.iter().map(|g| proxy.score(&space.network(g))).collect();
    let refs: Vec<&Genome> = archs.iter().collect();
    let cfg = MlpConfig { hidden: vec![400, 400, 400], epochs: 30, lr: 1e-3, weight_decay: 1e-4, seed: 0 };
    MlpAccuracyPredictor::fit("bench: capacity proxy of 1000 random members", space, &refs, &y, &cfg).expect("mlp")
}

struct RunStats {
    seconds: f64,
    evaluated: usize,
    /// Accuracy-predictor queries (the library caches members it has seen; the baseline does not).
    accuracy_calls: usize,
    best: f64,
}

/// The library's evolution: batched, parallel latency and accuracy, per-generation generators.
fn library_run(ev: &Evaluator, generations: usize, target: f64) -> RunStats {
    let fastest = search::min_latency::min_latency(ev, 0).expect("min latency");
    assert!(fastest.latency_ms <= target);
    let mut strategy = Evolution::new(EvolutionConfig::default());
    let mut log = |_: String| {};
    let start = Instant::now();
    let mut evaluated = 0;
    let mut best = f64::NEG_INFINITY;
    for g in 0..=generations {
        let mut rng = generation_rng(0, g as u64);
        let mut ctx = Ctx { ev, population: POPULATION, max_tries: 100_000, fastest: &fastest.genome, log: &mut log };
        let evals = strategy.step(g, &mut rng, &mut ctx).expect("step");
        evaluated += evals.len();
        best = evals.iter().filter(|e| e.feasible).map(|e| e.accuracy).fold(best, f64::max);
    }
    let accuracy_calls = ev.accuracy_calls();
    RunStats { seconds: start.elapsed().as_secs_f64(), evaluated, accuracy_calls, best }
}

/// The same algorithm written the obvious way: one candidate at a time on one thread,
/// latency by summing a string-keyed table over `Layer::key()`, accuracy per candidate,
/// rejection loops that resample until feasible (capped).
fn baseline_run(
    space: &dyn SearchSpace,
    lut: &HashMap<String, f64>,
    acc: &dyn AccuracyPredictor,
    generations: usize,
    target: f64,
) -> RunStats {
    let cfg = EvolutionConfig::default();
    let latency =
        |g: &Genome| -> f64 { space.network(g).layers.iter().filter(|l| l.is_timed()).map(|l| lut[&l.key()]).sum() };
    let mut rng = StdRng::seed_from_u64(0);
    let start = Instant::now();
    let mut evaluated = 0;
    let feasible = |rng: &mut StdRng, make: &mut dyn FnMut(&mut StdRng) -> Genome| -> Option<Genome> {
        (0..100_000).map(|_| make(rng)).find(|g| latency(g) <= target)
    };
    let mut population: Vec<(f64, Genome)> = Vec::new();
    while population.len() < POPULATION {
        let g = feasible(&mut rng, &mut |r| space.sample(r)).expect("feasible member");
        population.push((acc.predict(space, &g).unwrap(), g));
        evaluated += 1;
    }
    let n_parents = (cfg.parent_ratio * POPULATION as f64).round() as usize;
    let n_mut = (cfg.mutation_ratio * POPULATION as f64).round() as usize;
    for _ in 0..generations {
        population.sort_by(|a, b| b.0.total_cmp(&a.0));
        population.truncate(n_parents);
        let parents: Vec<Genome> = population.iter().map(|p| p.1.clone()).collect();
        for i in 0..POPULATION {
            let child = if i < n_mut {
                feasible(&mut rng, &mut |r| space.mutate(&parents[r.random_range(0..n_parents)], cfg.mutate_prob, r))
            } else {
                feasible(&mut rng, &mut |r| {
                    let (a, b) = (&parents[r.random_range(0..n_parents)], &parents[r.random_range(0..n_parents)]);
                    space.crossover(a, b, r)
                })
            };
            let child = child.expect("feasible child");
            population.push((acc.predict(space, &child).unwrap(), child));
            evaluated += 1;
        }
    }
    let best = population.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    RunStats { seconds: start.elapsed().as_secs_f64(), evaluated, accuracy_calls: evaluated, best }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let generations = args.first().copied().unwrap_or(500);
    let baseline_generations = args.get(1).copied().unwrap_or(50);
    let space = spaces::space(SPACE).unwrap();
    let lut = Arc::new(stand_in_lut(&*space));
    let by_key: HashMap<String, f64> = lut.entries().iter().map(|e| (e.key.clone(), e.ms)).collect();
    let t0 = Instant::now();
    let mlp = Arc::new(ofa_shaped_mlp(&*space));
    eprintln!("setup: MLP trained in {:.1} s", t0.elapsed().as_secs_f64());

    // The target: the median latency of random members (about half the space meets it).
    let mut rng = StdRng::seed_from_u64(1);
    let mut lat: Vec<f64> =
        (0..501).map(|_| lut.predict_ms(&space.network(&space.sample(&mut rng))).unwrap()).collect();
    lat.sort_by(f64::total_cmp);
    let target = lat[250];

    let make_ev = |accuracy: Arc<dyn AccuracySource>| {
        let latency = vec![LatencyObjective::new("stand-in", lut.clone(), &*space)];
        Evaluator::new(spaces::space(SPACE).unwrap(), latency, accuracy, target)
    };
    let with_mlp = make_ev(Arc::new(PredictedAccuracy::new(mlp.clone(), "bench MLP")));
    let with_proxy = make_ev(Arc::new(CapacityProxy::new(&*space)));

    let threads = rayon::current_num_threads();
    println!("OFA evolution on {SPACE}: population {POPULATION}, {generations} generations, target {target:.2} ms, {threads} threads");
    let lib = library_run(&with_mlp, generations, target);
    println!(
        "library, LUT + MLP:            {:7.3} s  {:6} evaluations  {:9.0} eval/s  best {:.4}  ({} MLP queries)",
        lib.seconds,
        lib.evaluated,
        lib.evaluated as f64 / lib.seconds,
        lib.best,
        lib.accuracy_calls
    );
    let eng = library_run(&with_proxy, generations, target);
    println!(
        "library, LUT + capacity proxy: {:7.3} s  {:6} evaluations  {:9.0} eval/s  (engine + latency only)",
        eng.seconds,
        eng.evaluated,
        eng.evaluated as f64 / eng.seconds
    );
    let base = baseline_run(&*space, &by_key, &*mlp, baseline_generations, target);
    println!(
        "baseline (1 thread, {baseline_generations} gens): {:7.3} s  {:6} evaluations  {:9.0} eval/s  best {:.4}",
        base.seconds,
        base.evaluated,
        base.evaluated as f64 / base.seconds,
        base.best
    );
    println!(
        "speed-up in evaluations per second (library / baseline, both with the MLP): {:.2}x",
        (lib.evaluated as f64 / lib.seconds) / (base.evaluated as f64 / base.seconds)
    );
}
