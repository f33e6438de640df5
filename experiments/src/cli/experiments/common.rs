//! What the experiments share: running one search job through the library and naming it.

use anyhow::{Context, Result};
use predictors::dataset::{Dataset, NetworkRow};
use predictors::split::TrainSize;
use predictors::LatencyPredictor;
use search::config::{AccuracySpec, JobConfig, LatencySpec, StrategyConfig};
use search::job::{Job, Outcome};
use std::path::{Path, PathBuf};
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
    /// Genes held at one choice (`SamplingConfig::fixed`), as (gene, choice).
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
    let latency_specs = spec
        .latency
        .iter()
        .map(|(label, p)| LatencySpec { label: label.clone(), path: p.display().to_string(), measure: None })
        .collect();
    let mut config =
        JobConfig::sampling(spec.space, latency_specs, spec.target_ms, StrategyConfig::by_name(spec.strategy)?);
    config.seed = spec.seed;
    let s = config.sampling_mut();
    s.accuracy = accuracy;
    s.population = spec.population;
    s.generations = spec.generations;
    s.fixed = spec.fixed.iter().map(|(g, c)| (g.to_string(), c.to_string())).collect();
    let space = spaces::space(spec.space)?;
    let accuracy = search::objectives::accuracy::load(&s.accuracy, &*space)?;
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
}

/// The two sides of a measured dataset split by architecture.
pub struct SplitRows<'a> {
    pub train: Vec<&'a NetworkRow>,
    pub test: Vec<&'a NetworkRow>,
}

/// `size` architectures of `ds` train, the others are held out (seeded; every row of one
/// architecture on the same side).
pub fn split_rows(ds: &Dataset, size: TrainSize, seed: u64) -> Result<SplitRows<'_>> {
    if ds.networks.len() < 2 {
        anyhow::bail!(
            "{}: {} network rows; fitting and scoring need at least 2 architectures",
            ds.source,
            ds.networks.len()
        );
    }
    let s = predictors::split::split(&ds.networks, size, seed)?;
    Ok(SplitRows {
        train: s.train.iter().map(|&i| &ds.networks[i]).collect(),
        test: s.test.iter().map(|&i| &ds.networks[i]).collect(),
    })
}

/// Fits `family` on the training rows — the path `hwnas fit` takes. `fallback`: lookup tables'
/// policy for layers no training network had (`None`: the library's default, see
/// [`predictors::train::TrainOptions::fallback`]).
pub fn fit_family(
    family: &str,
    ds: &Dataset,
    train: &[&NetworkRow],
    seed: u64,
    fallback: Option<&str>,
) -> Result<Box<dyn LatencyPredictor>> {
    let opts = predictors::train::TrainOptions { seed, fallback: fallback.map(Into::into), ..Default::default() };
    predictors::train::fit(family, ds, train, &opts).with_context(|| format!("fitting `{family}` on {}", ds.source))
}

/// `predictor` scored on the held-out rows.
pub fn score(predictor: Box<dyn LatencyPredictor>, test: &[&NetworkRow]) -> Result<Fitted> {
    let (metrics, predicted) = predictors::eval::evaluate(predictor.as_ref(), test)?;
    let measured = test.iter().map(|r| r.value).collect();
    Ok(Fitted { predictor, metrics, predicted, measured })
}

/// Fits `family` on `size` architectures of `ds` (split by architecture, `seed`) and scores it
/// on the rest.
pub fn fit_split(family: &str, ds: &Dataset, size: TrainSize, seed: u64, fallback: Option<&str>) -> Result<Fitted> {
    let s = split_rows(ds, size, seed)?;
    score(fit_family(family, ds, &s.train, seed, fallback)?, &s.test)
}

/// The HW-NAS-Bench FBNet CIFAR-100 measurements: (label, file) for Pixel 3 and Raspberry Pi 4.
pub fn hw_nas_bench(shared: &Path) -> [(&'static str, PathBuf); 2] {
    let dir = shared.join("data/hw-nas-bench-fbnet");
    [("pixel3", dir.join("fbnet_cifar100_pixel3.csv")), ("raspi4", dir.join("fbnet_cifar100_raspi4.csv"))]
}

/// One real latency dataset under `shared/data`.
pub struct LatencyData {
    /// Short name: table headings, plot files.
    pub label: String,
    /// Where it comes from, for titles.
    pub what: String,
    pub path: PathBuf,
    /// The search space, where the file has no `space` column.
    pub space: Option<&'static str>,
}

impl LatencyData {
    pub fn load(&self) -> Result<Dataset> {
        Ok(predictors::dataset::load(&self.path, self.space, "latency_ms")?)
    }
}

/// Every real latency dataset in `shared/data` that the architecture can predict (see each
/// folder's README): HW-NAS-Bench's Pixel 3 and Raspberry Pi 4 (additive tables) and HELP's
/// Pixel 2 and Samsung A50 (noisy whole milliseconds), all `fbnet-cifar100`; HELP's
/// OFA-MobileNetV3 w1.2 GPU files at batch 32 and 64, every device in `help-ofa/` (the batch-1
/// files are launch overhead that nothing ranks, so they are left out).
pub fn latency_datasets(shared: &Path) -> Result<Vec<LatencyData>> {
    const FBNET: Option<&str> = Some("fbnet-cifar100");
    let mut out: Vec<LatencyData> = hw_nas_bench(shared)
        .into_iter()
        .map(|(label, path)| LatencyData {
            what: format!("HW-NAS-Bench {label}, hw-nas-bench-fbnet/{}", file_name(&path)),
            label: label.to_string(),
            path,
            space: FBNET,
        })
        .collect();
    let phones = shared.join("data/help-fbnet-phones");
    for phone in ["pixel2", "samsung_a50"] {
        let file = format!("fbnet_cifar100_{phone}.csv");
        out.push(LatencyData {
            label: phone.to_string(),
            what: format!("HELP {phone}, help-fbnet-phones/{file}"),
            path: phones.join(&file),
            space: FBNET,
        });
    }
    let ofa = shared.join("data/help-ofa");
    let mut gpus = Vec::new();
    for entry in std::fs::read_dir(&ofa).with_context(|| format!("listing {}", ofa.display()))? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        // ofa_mbv3_w1.2_{device}_{batch}.csv
        let Some(stem) = file.strip_prefix("ofa_mbv3_w1.2_").and_then(|s| s.strip_suffix(".csv")) else { continue };
        let Some((device, batch)) = stem.rsplit_once('_') else { continue };
        if batch == "32" || batch == "64" {
            gpus.push(LatencyData {
                label: format!("{device}-b{batch}"),
                what: format!("HELP OFA {device} batch {batch}, help-ofa/{file}"),
                path: ofa.join(&file),
                space: None,
            });
        }
    }
    if gpus.is_empty() {
        anyhow::bail!("{} holds no ofa_mbv3_w1.2_*_{{32,64}}.csv", ofa.display());
    }
    gpus.sort_by(|a, b| a.label.cmp(&b.label));
    out.extend(gpus);
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned())
}
