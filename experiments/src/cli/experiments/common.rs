//! What the experiments share: running one search job through the library and naming it.

use anyhow::{Context, Result};
use predictors::LatencyPredictor;
use search::config::{AccuracySpec, JobConfig, LatencySpec, StrategyConfig};
use search::job::{Job, Outcome};
use std::path::Path;
use std::sync::Arc;

/// One search job (capacity-proxy accuracy) in `dir`, which is replaced if it holds an older job,
/// so that rerunning an experiment starts afresh. `latency`: (label, saved predictor file).
pub struct SearchSpec<'a> {
    pub space: &'a str,
    pub latency: Vec<(String, &'a Path)>,
    pub target_ms: f64,
    pub strategy: &'a str,
    pub population: usize,
    pub generations: usize,
    pub seed: u64,
    /// Genes held at one choice (`JobConfig::fixed`), as (gene, choice).
    pub fixed: &'a [(&'a str, &'a str)],
}

pub fn search(spec: &SearchSpec, dir: &Path) -> Result<(Job, Outcome)> {
    search_with(spec, AccuracySpec::CapacityProxy, dir)
}

/// [`search`] with the accuracy from `accuracy` (e.g. a predictor file) instead of the proxy.
pub fn search_with(spec: &SearchSpec, accuracy: AccuracySpec, dir: &Path) -> Result<(Job, Outcome)> {
    let latency: Vec<Arc<dyn LatencyPredictor>> =
        spec.latency.iter().map(|(_, p)| predictors::load_predictor(p).map(Arc::from)).collect::<Result<_, _>>()?;
    if dir.join("state.json").exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing the previous job in {}", dir.display()))?;
    }
    let config = JobConfig {
        space: spec.space.to_string(),
        latency: spec
            .latency
            .iter()
            .map(|(label, p)| LatencySpec { label: label.clone(), path: p.display().to_string(), measure: None })
            .collect(),
        max_latency_ms: spec.target_ms,
        accuracy,
        strategy: StrategyConfig::by_name(spec.strategy)?,
        population: spec.population,
        generations: spec.generations,
        seed: spec.seed,
        max_tries: 100_000,
        fixed: spec.fixed.iter().map(|(g, c)| (g.to_string(), c.to_string())).collect(),
    };
    let space = spaces::space(spec.space)?;
    let accuracy = search::objectives::accuracy::load(&config.accuracy, &*space)?;
    let mut job = Job::open(config, latency, accuracy, dir, false)?;
    let outcome = job.run(None, &mut |_| {})?.context("a run without a generation cap completes")?;
    Ok((job, outcome))
}

/// One predictor family fitted on a split of a measured dataset, scored on the held-out rows.
pub struct Fitted {
    pub predictor: Box<dyn LatencyPredictor>,
    pub metrics: predictors::metrics::Metrics,
    pub predicted: Vec<f64>,
    pub measured: Vec<f64>,
    pub train_rows: usize,
}

/// Fits `family` on `size` architectures of `ds` (split by architecture, `seed`) — the same
/// path `hwnas fit` takes. `fallback`: lookup tables' policy for layers no training network had.
pub fn fit_split(
    family: &str,
    ds: &predictors::dataset::Dataset,
    size: predictors::split::TrainSize,
    seed: u64,
    fallback: &str,
) -> Result<Fitted> {
    use predictors::dataset::NetworkRow;
    if ds.networks.len() < 2 {
        anyhow::bail!(
            "{}: {} network rows; fitting and scoring need at least 2 architectures",
            ds.source,
            ds.networks.len()
        );
    }
    let s = predictors::split::split(&ds.networks, size, seed)?;
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    let test: Vec<&NetworkRow> = s.test.iter().map(|&i| &ds.networks[i]).collect();
    let opts = predictors::train::TrainOptions { seed, fallback: Some(fallback.into()), ..Default::default() };
    let predictor = predictors::train::fit(family, ds, &train, &opts)
        .with_context(|| format!("fitting `{family}` on {}", ds.source))?;
    let (metrics, predicted) = predictors::eval::evaluate(predictor.as_ref(), &test)?;
    let measured = test.iter().map(|r| r.value).collect();
    Ok(Fitted { predictor, metrics, predicted, measured, train_rows: train.len() })
}

/// The HW-NAS-Bench FBNet CIFAR-100 measurements: (label, file) for Pixel 3 and Raspberry Pi 4.
pub fn hw_nas_bench(shared: &Path) -> [(&'static str, std::path::PathBuf); 2] {
    let dir = shared.join("data/hw-nas-bench-fbnet");
    [("pixel3", dir.join("fbnet_cifar100_pixel3.csv")), ("raspi4", dir.join("fbnet_cifar100_raspi4.csv"))]
}
