//! OFA's default evolutionary search (population 100, 500 generations, parent ratio 0.25,
//! mutation ratio 0.5, mutate probability 0.1) with a lookup-table latency predictor and an
//! OFA-shaped accuracy MLP (128 → 3 × 400 → 1), timed against a straightforward
//! single-threaded implementation of the same algorithm in the same run.
//!
//! Run: `cargo bench -p search --bench ofa_evolution` (release profile). Optional
//! arguments: `-- GENERATIONS BASELINE_GENERATIONS` (defaults 500 and 50).
//!
//! With `../shared/data/ofa` present, everything is OFA's own: ofa-mbv3-w1.2, the Note10
//! lookup tables (`ofa-yaml` import; the search proposes their resolutions 160–224 only),
//! OFA's trained accuracy predictor (`acc_predictor.pth`, family `ofa-accuracy`) and the
//! tutorial's 25 ms target. Without it, stand-ins of the same cost: ofa-mbv3-w1.0, a table
//! of 0.02 ms + 0.1 ms/MMAC + 2 ms/GB over every layer, an MLP of OFA's shape trained briefly
//! on the capacity proxy (its values are not accuracies), the median latency as target.

use predictors::accuracy::MlpAccuracyPredictor;
use predictors::lut::{Coverage, Entry, LutPredictor};
use predictors::mlp::MlpConfig;
use predictors::ofa_accuracy::OfaAccuracyPredictor;
use predictors::{AccuracyPredictor, LatencyPredictor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use search::config::EvolutionConfig;
use search::evaluate::Evaluator;
use search::objectives::accuracy::PredictedAccuracy;
use search::objectives::{AccuracySource, CapacityProxy, LatencyObjective, ObjectiveError};
use search::rng::generation_rng;
use search::strategies::{Ctx, Evolution, Strategy};
use spaces::{Genome, SearchSpace};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const POPULATION: usize = 100;

/// What the benchmark searches with.
struct Setup {
    what: String,
    /// The job's space (for the Note10 tables: restricted to their resolutions).
    space: fn() -> Box<dyn SearchSpace>,
    latency: Arc<dyn LatencyPredictor>,
    accuracy: Arc<dyn AccuracyPredictor>,
    target: f64,
    /// The baseline's string-keyed table: (resolution, `Layer::key()`) → ms.
    by_key: HashMap<(u32, String), f64>,
}

const NOTE10: [u32; 5] = [160, 176, 192, 208, 224];

fn note10_space() -> Box<dyn SearchSpace> {
    search::pinned::restrict_resolutions(spaces::space("ofa-mbv3-w1.2").unwrap(), &NOTE10, "Note10").unwrap()
}

fn stand_in_space() -> Box<dyn SearchSpace> {
    spaces::space("ofa-mbv3-w1.0").unwrap()
}

/// OFA's tutorial setting on its own data, when `../shared` is present.
fn ofa_setup() -> Option<Setup> {
    let ofa = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa");
    if !ofa.join("acc_predictor.pth").exists() {
        return None;
    }
    let lut = predictors::ofa_yaml::import(&ofa.join("note10"), "ofa-mbv3-w1.2", None).expect("Note10 tables");
    let acc = OfaAccuracyPredictor::import(&ofa.join("acc_predictor.pth"), "ofa-mbv3-w1.2").expect("OFA predictor");
    let mut by_key = HashMap::new();
    for r in lut.resolutions() {
        for e in lut.table(r).unwrap().entries() {
            by_key.insert((r, e.key.clone()), e.ms);
        }
    }
    Some(Setup {
        what: "ofa-mbv3-w1.2, OFA's Note10 tables and accuracy predictor".into(),
        space: note10_space,
        latency: Arc::new(lut),
        accuracy: Arc::new(acc),
        target: 25.0,
        by_key,
    })
}

fn stand_in_setup() -> Setup {
    let space = stand_in_space();
    let lut = stand_in_lut(&*space);
    let mut by_key = HashMap::new();
    for r in space.resolutions() {
        for e in lut.entries() {
            by_key.insert((r, e.key.clone()), e.ms);
        }
    }
    let t0 = Instant::now();
    let mlp = ofa_shaped_mlp(&*space);
    eprintln!("setup: stand-in MLP trained in {:.1} s", t0.elapsed().as_secs_f64());
    // The target: the median latency of random members (about half the space meets it).
    let mut rng = StdRng::seed_from_u64(1);
    let mut lat: Vec<f64> =
        (0..501).map(|_| lut.predict_ms(&space.network(&space.sample(&mut rng))).unwrap()).collect();
    lat.sort_by(f64::total_cmp);
    Setup {
        what: "ofa-mbv3-w1.0, stand-in table and MLP (no ../shared)".into(),
        space: stand_in_space,
        latency: Arc::new(lut),
        accuracy: Arc::new(mlp),
        target: lat[250],
        by_key,
    }
}

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
    let coverage = vec![Coverage { space: space.name().into(), resolutions }];
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

/// An accuracy that costs nothing (the mean gene index, read from the genome): the run with it
/// times the search engine and the latency table alone.
struct GeneMean;

fn gene_mean(g: &Genome) -> f64 {
    g.0.iter().map(|&c| c as f64).sum::<f64>() / g.0.len() as f64
}

impl AccuracySource for GeneMean {
    fn kind(&self) -> &str {
        "gene-mean"
    }
    fn describe(&self) -> String {
        "mean gene index (a cost-free stand-in)".into()
    }
    fn accuracy(
        &self,
        _space: &dyn SearchSpace,
        g: &Genome,
        _net: &spaces::ir::Network,
    ) -> Result<f64, ObjectiveError> {
        Ok(gene_mean(g))
    }
    fn genome_batch(&self, _space: &dyn SearchSpace, gs: &[&Genome]) -> Option<Result<Vec<f64>, ObjectiveError>> {
        Some(Ok(gs.iter().map(|g| gene_mean(g)).collect()))
    }
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
/// latency by building the network and summing a string-keyed table over `Layer::key()`,
/// accuracy per candidate, rejection loops that resample until feasible (capped).
fn baseline_run(
    space: &dyn SearchSpace,
    lut: &HashMap<(u32, String), f64>,
    acc: &dyn AccuracyPredictor,
    generations: usize,
    target: f64,
) -> RunStats {
    let cfg = EvolutionConfig::default();
    let latency = |g: &Genome| -> f64 {
        let net = space.network(g);
        let r = net.resolution();
        net.layers.iter().filter(|l| l.is_timed()).map(|l| lut[&(r, l.key())]).sum()
    };
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
            // Each child's parents are drawn once and its proposals retried on them (OFA).
            let a = &parents[rng.random_range(0..n_parents)];
            let child = if i < n_mut {
                feasible(&mut rng, &mut |r| space.mutate_with(a, cfg.mutate_prob, cfg.resolution_mutate_prob, r))
            } else {
                let b = &parents[rng.random_range(0..n_parents)];
                feasible(&mut rng, &mut |r| space.crossover(a, b, r))
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
    let setup = ofa_setup().unwrap_or_else(stand_in_setup);
    let target = setup.target;
    let make_ev = |accuracy: Arc<dyn AccuracySource>| {
        let space = (setup.space)();
        let latency = vec![LatencyObjective::new("note10", setup.latency.clone(), &*space)];
        assert!(latency[0].is_gene_tabulated(), "the table compiles per gene");
        Evaluator::new(space, latency, accuracy, target)
    };
    let with_mlp = make_ev(Arc::new(PredictedAccuracy::new(setup.accuracy.clone(), "bench")));
    let with_free = make_ev(Arc::new(GeneMean));

    let threads = rayon::current_num_threads();
    println!(
        "OFA evolution on {}: population {POPULATION}, {generations} generations, target {target:.2} ms, {threads} threads",
        setup.what
    );
    let lib = library_run(&with_mlp, generations, target);
    println!(
        "library, LUT + MLP:            {:7.3} s  {:6} evaluations  {:9.0} eval/s  best {:.4}  ({} MLP queries)",
        lib.seconds,
        lib.evaluated,
        lib.evaluated as f64 / lib.seconds,
        lib.best,
        lib.accuracy_calls
    );
    let eng = library_run(&with_free, generations, target);
    println!(
        "library, LUT + free accuracy:  {:7.3} s  {:6} evaluations  {:9.0} eval/s  (search engine and latency table only)",
        eng.seconds,
        eng.evaluated,
        eng.evaluated as f64 / eng.seconds
    );
    let space = (setup.space)();
    let base = baseline_run(&*space, &setup.by_key, &*setup.accuracy, baseline_generations, target);
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
