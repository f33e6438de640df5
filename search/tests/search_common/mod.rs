//! Shared fixtures of the search tests: stand-in and fitted latency predictors, configs
//! and scratch job directories.
#![allow(dead_code)]

use predictors::additive::{Calibration, PerLayer};
use predictors::{LatencyPredictor, PredictError};
use search::config::{AccuracySpec, JobConfig, LatencySpec, SamplingConfig, SearchConfig, StrategyConfig};
use search::job::{Job, JobError};
use search::objectives::{AccuracySource, CapacityProxy};
use spaces::ir::Network;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A stand-in latency model, linear in MACs per layer plus a per-layer overhead and a
/// constant. `additive` decides whether it says so ([`LatencyPredictor::per_layer`]), and
/// so whether the search compiles it into a per-layer table or calls it for every network.
pub struct MacsLinear {
    pub additive: bool,
}

impl MacsLinear {
    fn layer(l: &spaces::ir::Layer) -> f64 {
        0.02 + l.macs() as f64 * 4e-6
    }
}

impl LatencyPredictor for MacsLinear {
    fn family(&self) -> &str {
        if self.additive {
            "macs-linear-additive"
        } else {
            "macs-linear"
        }
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        Ok(0.3 + net.layers.iter().filter(|l| l.is_timed()).map(Self::layer).sum::<f64>())
    }
    fn save(&self, path: &Path) -> Result<(), predictors::DocumentError> {
        Err(in_memory_only(path, "the MACs-linear stand-in lives in memory only"))
    }
    fn per_layer(&self) -> Option<&dyn PerLayer> {
        self.additive.then_some(self as &dyn PerLayer)
    }
}

impl PerLayer for MacsLinear {
    fn layer_ms(&self, l: &spaces::ir::Layer) -> Result<f64, PredictError> {
        Ok(Self::layer(l))
    }
    fn calibration(&self) -> Calibration {
        Calibration { scale: 1.0, offset_ms: 0.3 }
    }
}

pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// A lookup table fitted (per-layer-key NNLS, `predictors::lut::fit_networks`) to the
/// HW-NAS-Bench FBNet CIFAR-100 measurements of one device (`pixel3`, `raspi4`).
pub fn fitted_lut(device: &str) -> Arc<dyn LatencyPredictor> {
    Arc::new(fitted_lut_table(device))
}

/// [`fitted_lut`] as the table itself (to change its calibration).
pub fn fitted_lut_table(device: &str) -> predictors::lut::LutPredictor {
    let path = shared_data().join(format!("hw-nas-bench-fbnet/fbnet_cifar100_{device}.csv"));
    let ds = predictors::dataset::load(&path, Some("fbnet-cifar100"), "latency_ms").expect("HW-NAS-Bench dataset");
    let nets: Vec<&Network> = ds.networks.iter().map(|r| &r.network).collect();
    let ms: Vec<f64> = ds.networks.iter().map(|r| r.value).collect();
    predictors::lut::fit_networks(path.display().to_string(), &nets, &ms, ds.coverage(), Default::default())
        .expect("fit")
}

/// The Pixel 3 table, fitted once per test binary.
pub fn pixel3_lut() -> Arc<dyn LatencyPredictor> {
    static LUT: OnceLock<Arc<dyn LatencyPredictor>> = OnceLock::new();
    LUT.get_or_init(|| fitted_lut("pixel3")).clone()
}

pub fn config(
    space: &str,
    strategy: StrategyConfig,
    population: usize,
    generations: usize,
    seed: u64,
    target: f64,
) -> JobConfig {
    JobConfig {
        space: space.into(),
        latency: vec![LatencySpec { label: "dev".into(), path: "memory".into(), measure: None }],
        max_latency_ms: target,
        seed,
        precision: Default::default(),
        allow_precision_mismatch: false,
        search: SearchConfig::Sampling(SamplingConfig {
            strategy,
            accuracy: AccuracySpec::CapacityProxy,
            population,
            generations,
            max_tries: 20_000,
            fixed: Default::default(),
            max_infeasible_generations: search::config::MAX_INFEASIBLE_GENERATIONS,
        }),
    }
}

pub fn proxy(space: &str) -> Arc<dyn AccuracySource> {
    Arc::new(CapacityProxy::new(&*spaces::space(space).unwrap()))
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-search-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn open(config: JobConfig, lat: Arc<dyn LatencyPredictor>, dir: &Path, resume: bool) -> Result<Job, JobError> {
    let acc = proxy(&config.space);
    Job::open(config, vec![lat], acc, dir, resume)
}

/// The error of saving a test's in-memory predictor.
pub fn in_memory_only(path: &Path, why: &str) -> predictors::DocumentError {
    let source = std::io::Error::new(std::io::ErrorKind::Unsupported, why);
    predictors::DocumentError::Write { path: path.into(), source }
}

/// An error with its sources, `: `-separated: what the `hwnas` binary prints (anyhow's `{:#}`).
pub fn chain(e: &dyn std::error::Error) -> String {
    latency::error::Chain(e).to_string()
}

/// Median predicted latency of `n` uniform samples: a target that about half the space meets.
pub fn median_latency(space: &str, lat: &dyn LatencyPredictor, n: usize) -> f64 {
    use rand::SeedableRng;
    let s = spaces::space(space).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut v: Vec<f64> = (0..n).map(|_| lat.predict_ms(&s.network(&s.sample(&mut rng))).unwrap()).collect();
    v.sort_by(f64::total_cmp);
    v[n / 2]
}

pub fn all_strategies() -> Vec<StrategyConfig> {
    ["random", "evolution", "regularized", "nsga2", "rl"].iter().map(|s| StrategyConfig::by_name(s).unwrap()).collect()
}

/// Held by every test that seeds or draws from libtorch's global random generator, or sets
/// its global thread count: in the one test binary they would otherwise interleave, and
/// bit-for-bit comparisons (resume, extraction) would see another test's draws.
pub fn tch_lock() -> std::sync::MutexGuard<'static, ()> {
    static TCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TCH.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
