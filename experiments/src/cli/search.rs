//! `hwnas search`: runs a search job (see `search::job`) from flags or a JSON config file.

use ::search::config::{AccuracySpec, JobConfig, JobSettings, LatencySpec, StrategyConfig, StrategyKind, StrategySpec};
use ::search::job::{GenerationReport, Job, JobError};
use ::search::objectives::LatencySource;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use latency::profile::{DeviceSpec, LiveMeter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The space to search (see `hwnas spaces`).
    #[arg(long)]
    space: Option<String>,
    /// Latency predictor file (`hwnas fit … --out FILE`), or `device:SERIAL` to time every
    /// candidate on that device (`device:local` for this machine; found on the --adb servers,
    /// timed as the measurement flags say, journaled in OUT/measurements/LABEL). Repeat for
    /// several devices (NSGA-II optimises all, the first carries the target). `LABEL=…` names
    /// its history column. Without one, this machine's CPU is profiled into a lookup table on
    /// first use (cached).
    #[arg(long)]
    latency: Vec<String>,
    /// Latency target in ms under the first predictor.
    #[arg(long, value_name = "MS", value_parser = super::numeric::positive_f64)]
    max_latency_ms: Option<f64>,
    /// evolution (OFA), regularized (aging evolution), nsga2, random, rl (MnasNet-style), or the
    /// differentiable fbnet (FBNet DNAS) and singlepath (Single-Path NAS) [default: evolution].
    #[arg(long)]
    strategy: Option<StrategyKind>,
    /// rl only: MnasNet's soft (α = β = −0.07, default) or hard (α = 0, β = −1) latency constraint.
    #[arg(long, value_enum)]
    reward: Option<RewardArg>,
    /// Accuracy source: a predictor file (.json), a supernet checkpoint directory (`hwnas train`)
    /// or an OFA supernet checkpoint (`.pth`).
    /// Without it the job uses the training-free capacity proxy and says so.
    #[arg(long)]
    accuracy: Option<PathBuf>,
    /// Supernet evaluation data: cifar10:DIR, cifar100:DIR, imagefolder:DIR or synthetic:N:CLASSES.
    #[arg(long)]
    accuracy_data: Option<String>,
    /// Supernet evaluation: validation examples per candidate (all when unset).
    #[arg(long, value_parser = super::numeric::at_least_one)]
    eval_examples: Option<usize>,
    /// Population (per generation for random and rl) [default: 100, OFA's].
    #[arg(long, value_parser = super::numeric::at_least_two)]
    population: Option<usize>,
    /// Generations after the initial population [default: 500, OFA's].
    #[arg(long)]
    generations: Option<usize>,
    /// Seed of every random choice; the same seed gives the same history [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Cap on proposals per generation when sampling feasible candidates.
    #[arg(long, value_parser = super::numeric::at_least_one)]
    max_tries: Option<usize>,
    /// Stop (exit non-zero, saying why) after this many generations in a row without a
    /// feasible member; 0: never [default: 20].
    #[arg(long)]
    max_infeasible_generations: Option<usize>,
    /// Hold a gene at one choice, e.g. `--fix r=128` (OFA at one resolution) or `--fix ks=7`
    /// (every `ks[i]`); gene names and choices as `hwnas spaces --json` lists them. Repeatable.
    #[arg(long = "fix", value_name = "GENE=CHOICE")]
    fix: Vec<String>,
    /// The precision the searched models are deployed in: fp32, fp16 or int8 [default: fp32].
    /// Latency predictors must have been fitted on measurements of it (`hwnas fit --precision`).
    #[arg(long)]
    precision: Option<latency::modelfile::Precision>,
    /// Price the models with latency predictors fitted on another precision anyway (the
    /// job's log says so).
    #[arg(long)]
    allow_precision_mismatch: bool,
    /// A job config (JSON, the format of a job's config.json); flags override its fields, and
    /// the library's defaults fill the fields neither gives.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The job directory.
    #[arg(long)]
    out: PathBuf,
    /// Continue the job checkpointed in --out (its config.json is the base configuration).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    dnas: super::search_dnas::DnasArgs,
    #[command(flatten)]
    measure: super::measure_args::MeasureArgs,
}

/// `device:SERIAL` latency arguments name a device to measure on.
const DEVICE_PREFIX: &str = "device:";

/// `[LABEL=]FILE` (labelled by the file's stem) or `[LABEL=]device:SERIAL` (labelled by the
/// serial, journaled in OUT/measurements/LABEL). Paths are made absolute so that the saved
/// config still finds them when the job is resumed from another directory.
fn latency_spec(arg: &str, a: &Args) -> Result<LatencySpec> {
    let (label, what) = match arg.split_once('=') {
        Some((label, what)) if !label.is_empty() && !label.contains('/') => (Some(label.to_string()), what),
        _ => (None, arg),
    };
    let absolute =
        |p: &Path| std::fs::canonicalize(p).map_or_else(|_| p.display().to_string(), |p| p.display().to_string());
    if let Some(serial) = what.strip_prefix(DEVICE_PREFIX) {
        if serial.is_empty() {
            bail!("--latency {arg}: name the device, e.g. device:SERIAL (see `hwnas devices`) or device:local");
        }
        let label = label.unwrap_or_else(|| serial.replace(['/', ':'], "_"));
        std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
        let journal = Path::new(&absolute(&a.out)).join("measurements").join(&label).display().to_string();
        let device = DeviceSpec {
            device: serial.into(),
            adb: a.measure.servers.clone(),
            runtime: a.measure.runtime()?,
            protocol: a.measure.protocol(),
        };
        return Ok(LatencySpec { label, path: journal, measure: Some(device) });
    }
    let label =
        label.unwrap_or_else(|| Path::new(what).file_stem().and_then(|s| s.to_str()).unwrap_or("latency").into());
    Ok(LatencySpec { label, path: absolute(Path::new(what)), measure: None })
}

/// A predictor file, or for measured objectives the device (connected, runtime installed,
/// journal opened), timing members written in the job's `precision`.
fn latency_source(spec: &LatencySpec, precision: latency::modelfile::Precision) -> Result<LatencySource> {
    match &spec.measure {
        Some(device) => {
            let meter = LiveMeter::open(device, Path::new(&spec.path), precision)
                .with_context(|| format!("latency `{}`: cannot measure on device {}", spec.label, device.device))?;
            Ok(LatencySource::Device(Arc::new(meter)))
        }
        None => Ok(LatencySource::Predictor(
            predictors::load_predictor(Path::new(&spec.path))
                .map(Arc::from)
                .with_context(|| format!("cannot load latency predictor {}", spec.path))?,
        )),
    }
}

/// The settings the flags give (each flag overrides the config file's field).
fn flags(a: &Args) -> Result<JobSettings> {
    let latency = match a.latency.is_empty() {
        true => None,
        false => {
            let specs = a.latency.iter().map(|l| latency_spec(l, a)).collect::<Result<Vec<_>>>()?;
            super::numeric::unique_labels("--latency", specs.iter().zip(&a.latency).map(|(s, a)| (&*s.label, &**a)))?;
            Some(specs)
        }
    };
    let accuracy = match &a.accuracy {
        Some(p) => Some(AccuracySpec::for_file(p, a.accuracy_data.as_deref(), a.eval_examples)?),
        None => None,
    };
    let fixed = match a.fix.is_empty() {
        true => None,
        false => Some(
            a.fix
                .iter()
                .map(|f| {
                    let (gene, choice) =
                        f.split_once('=').with_context(|| format!("--fix {f}: expected GENE=CHOICE, e.g. r=128"))?;
                    Ok((gene.to_string(), choice.to_string()))
                })
                .collect::<Result<_>>()?,
        ),
    };
    Ok(JobSettings {
        space: a.space.clone(),
        latency,
        max_latency_ms: a.max_latency_ms,
        strategy: a.strategy.map(StrategySpec::defaults),
        // With --accuracy the data is what its supernet is evaluated on; without it, what a
        // differentiable search trains on.
        data: if a.accuracy.is_none() { a.accuracy_data.clone() } else { None },
        accuracy,
        population: a.population,
        generations: a.generations,
        seed: a.seed,
        max_tries: a.max_tries,
        fixed,
        max_infeasible_generations: a.max_infeasible_generations,
        precision: a.precision,
        allow_precision_mismatch: a.allow_precision_mismatch.then_some(true),
        ..a.dnas.schedule()
    })
}

/// The job's settings: the config file (or, resuming, the saved config), overridden by the
/// flags.
fn settings(a: &Args) -> Result<JobSettings> {
    let saved = a.out.join("config.json");
    let base = match (&a.config, a.resume && saved.exists()) {
        (Some(p), _) => JobSettings::read(p)?,
        (None, true) => JobSettings::read(&saved)?,
        (None, false) => JobSettings::default(),
    };
    let mut s = base.overlay(flags(a)?);
    if let Some(reward) = a.reward {
        match s.strategy_mut() {
            StrategySpec::Sampling(StrategyConfig::Rl(rl)) => rl.reward = reward.into(),
            _ => bail!("--reward applies to --strategy rl only"),
        }
    }
    a.dnas.set_method_parameters(s.strategy_mut())?;
    Ok(s)
}

/// The label of this machine's lookup table when no latency predictor is given.
const LOCAL: &str = "local";

/// The job the settings describe; without a latency predictor anywhere (singlepath excepted:
/// it prices with the Pixel 1 model), this machine's CPU profiled once into a cached lookup
/// table. Every other setting is checked first, with the table's entry standing in, so a
/// refused job does not wait for the profiling (minutes on first use).
fn job_config(a: &Args) -> Result<JobConfig> {
    let mut s = settings(a)?;
    let local = s.latency.is_none() && s.strategy_kind() != StrategyKind::Singlepath && s.space.is_some();
    if !local {
        return Ok(s.resolve()?);
    }
    s.latency = Some(vec![LatencySpec { label: LOCAL.into(), path: String::new(), measure: None }]);
    let mut config = s.resolve()?;
    // In the job's precision, so the table prices the models it deploys.
    let lut = super::local_lut::cached_local_lut(&config.space, None, config.precision)?.path;
    config.latency = vec![latency_spec(&format!("{LOCAL}={}", lut.display()), a)?];
    Ok(config)
}

/// MnasNet's two latency constraints.
#[derive(Clone, Copy, clap::ValueEnum)]
enum RewardArg {
    /// α = β = −0.07
    Soft,
    /// α = 0, β = −1
    Hard,
}

impl From<RewardArg> for ::search::objectives::Reward {
    fn from(r: RewardArg) -> Self {
        match r {
            RewardArg::Soft => ::search::objectives::Reward::SOFT,
            RewardArg::Hard => ::search::objectives::Reward::HARD,
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let config = job_config(&a)?;
    if config.dnas_config().is_some() {
        return super::search_dnas::run(config, &a.dnas, &a.out, a.resume);
    }
    run_sampling(config, &a)
}

fn run_sampling(config: JobConfig, a: &Args) -> Result<()> {
    let space = spaces::space(&config.space)?;
    let latency = config.latency.iter().map(|l| latency_source(l, config.precision)).collect::<Result<Vec<_>>>()?;
    let settings = config.sampling_config().context("a sampling job")?;
    let accuracy = ::search::objectives::accuracy::load(&settings.accuracy, &*space)?;
    let mut job = Job::open(config, latency, accuracy, &a.out, a.resume)?;
    for w in &job.warnings {
        eprintln!("warning: {w}");
    }
    let bar = ProgressBar::new(job.total_generations() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} generations {elapsed_precise} (eta {eta}) {msg}")
            .expect("valid template"),
    );
    bar.set_position(job.next_generation() as u64);
    let journals: Vec<String> =
        job.config.latency.iter().filter(|l| l.measure.is_some()).map(|l| l.path.clone()).collect();
    let outcome = job
        .run(None, &mut |r: &GenerationReport| {
            bar.set_position(r.generation as u64 + 1);
            if let Some(b) = r.best {
                bar.set_message(format!("{} evaluated, best objective {b:.4}", r.evaluated));
            }
        })
        .map_err(|e| {
            // An unreachable target is the whole story; resuming would stop the same way.
            if matches!(e, JobError::Unreachable(_)) {
                return anyhow::Error::new(e);
            }
            let kept = if journals.is_empty() {
                String::new()
            } else {
                format!("; measurements taken so far are kept in {}", journals.join(", "))
            };
            anyhow::Error::new(e).context(format!(
                "search stopped at generation {}{kept}; rerun with --resume to continue",
                job.next_generation()
            ))
        })?
        .expect("a run without a generation cap completes");
    bar.finish_and_clear();
    let space = spaces::space(&job.config.space)?;
    println!("job directory: {}", outcome.dir.display());
    println!("evaluated: {} architectures ({} strategy)", outcome.evaluated, job.config.strategy_name());
    println!("smallest reachable latency: {:.3} ms", outcome.fastest.latency_ms);
    println!("accuracy objective: {} — {}", outcome.accuracy_kind, outcome.accuracy_description);
    match &outcome.best {
        None => bail!("no evaluated architecture met the {} ms target", job.config.max_latency_ms),
        Some(b) => {
            println!("best architecture: {}", space.to_json(&b.eval.genome));
            for (i, (spec, ms)) in job.config.latency.iter().zip(&b.eval.latency_ms).enumerate() {
                let target = if i == 0 { format!(" (target {} ms)", job.config.max_latency_ms) } else { String::new() };
                println!("  latency ({}): {ms:.4} ms{target}", spec.label);
            }
            println!("  {}: {:.5}", outcome.accuracy_kind, b.eval.accuracy);
            if let Some(o) = b.eval.objective.filter(|&o| o != b.eval.accuracy) {
                println!("  objective (MnasNet reward): {o:.5}");
            }
            println!("  found in generation {}; Pareto front: {} architectures", b.generation, outcome.front.len());
        }
    }
    Ok(())
}
