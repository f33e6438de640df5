//! `hwnas search`: runs a search job (see `search::job`) from flags or a JSON config file.

use ::search::config::{AccuracySpec, JobConfig, LatencySpec, StrategyConfig};
use ::search::job::{GenerationReport, Job};
use ::search::objectives::supernet::SupernetEval;
use ::search::objectives::LatencySource;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use latency::profile::{DeviceSpec, LiveMeter};
use serde_json::{json, Map, Value};
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
    strategy: Option<String>,
    /// rl only: MnasNet's soft (α = β = −0.07, default) or hard (α = 0, β = −1) latency constraint.
    #[arg(long)]
    reward: Option<String>,
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
    /// A job config (JSON, the format of a job's config.json); flags override its fields.
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

/// A job config file; the input fingerprints a job's config.json keeps beside the
/// configuration (`inputs`) are the job's to check, not settings.
fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
    ::search::inputs::strip(&mut v);
    Ok(v)
}

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
                .map_err(anyhow::Error::msg)
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

/// Default proposal cap of jobs that time candidates on a device: rejection sampling with
/// the predictor default (100 000) could keep a phone busy for days.
const MEASURED_TRIES_PER_MEMBER: usize = 10;

fn accuracy_spec(a: &Args, path: &Path) -> Result<AccuracySpec> {
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.into()).display().to_string();
    if path.is_dir() || ::search::nn::supernet::ofa_checkpoint::is_torch_file(path) {
        let data = a.accuracy_data.clone().with_context(|| {
            format!("--accuracy {p} is a supernet checkpoint: give --accuracy-data (e.g. cifar10:DIR) to evaluate on")
        })?;
        let eval = SupernetEval { data, calib_batches: 10, batch: 64, max_examples: a.eval_examples };
        return Ok(AccuracySpec::Supernet { path: p, eval });
    }
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "json" => Ok(AccuracySpec::Predictor { path: p }),
        other => bail!(
            "--accuracy {p}: expected a predictor .json, a supernet checkpoint directory or an OFA supernet .pth, got `.{other}`"
        ),
    }
}

/// Config file (or the saved config when resuming), then flags, then defaults.
fn resolve(a: &Args) -> Result<JobConfig> {
    let saved = a.out.join("config.json");
    let base = match (&a.config, a.resume && saved.exists()) {
        (Some(p), _) => read_json(p)?,
        (None, true) => read_json(&saved)?,
        (None, false) => json!({}),
    };
    let Value::Object(mut m) = base else { bail!("a job config must be a JSON object") };
    let mut set = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    if let Some(s) = &a.space {
        set("space", json!(s));
    }
    if !a.latency.is_empty() {
        let specs = a.latency.iter().map(|l| latency_spec(l, a)).collect::<Result<Vec<_>>>()?;
        super::numeric::unique_labels("--latency", specs.iter().zip(&a.latency).map(|(s, a)| (&*s.label, &**a)))?;
        set("latency", serde_json::to_value(specs)?);
    }
    if let Some(t) = a.max_latency_ms {
        set("max_latency_ms", json!(t));
    }
    if let Some(s) = &a.strategy {
        set("strategy", serde_json::to_value(StrategyConfig::by_name(s)?)?);
    }
    if let Some(p) = &a.accuracy {
        set("accuracy", serde_json::to_value(accuracy_spec(a, p)?)?);
    }
    for (k, v) in [
        ("population", a.population),
        ("generations", a.generations),
        ("max_tries", a.max_tries),
        ("max_infeasible_generations", a.max_infeasible_generations),
    ] {
        if let Some(v) = v {
            set(k, json!(v));
        }
    }
    if let Some(s) = a.seed {
        set("seed", json!(s));
    }
    if let Some(p) = a.precision {
        set("precision", json!(p));
    }
    if a.allow_precision_mismatch {
        set("allow_precision_mismatch", json!(true));
    }
    if !a.fix.is_empty() {
        let mut fixed = Map::new();
        for f in &a.fix {
            let (gene, choice) =
                f.split_once('=').with_context(|| format!("--fix {f}: expected GENE=CHOICE, e.g. r=128"))?;
            fixed.insert(gene.into(), json!(choice));
        }
        set("fixed", Value::Object(fixed));
    }
    // No predictor anywhere: this machine's CPU, profiled once into a cached lookup table.
    if !m.contains_key("latency") {
        if let Some(Value::String(space)) = m.get("space") {
            // In the job's precision, so the table prices the models it deploys.
            let precision: latency::modelfile::Precision = match m.get("precision") {
                Some(p) => serde_json::from_value(p.clone()).context("`precision`")?,
                None => Default::default(),
            };
            let lut = super::local_lut::cached_local_lut(space, precision)?;
            let spec = latency_spec(&format!("local={}", lut.display()), a)?;
            m.insert("latency".into(), serde_json::to_value(vec![spec])?);
        }
    }
    let defaults: Map<String, Value> = serde_json::from_value(json!({
        "strategy": StrategyConfig::by_name("evolution")?,
        "accuracy": AccuracySpec::CapacityProxy,
        "population": 100,
        "generations": 500,
        "seed": 0,
    }))?;
    for (k, v) in defaults {
        m.entry(k).or_insert(v);
    }
    let measured =
        m.get("latency").and_then(Value::as_array).is_some_and(|l| l.iter().any(|s| s.get("measure").is_some()));
    if measured && !m.contains_key("max_tries") {
        let population = m.get("population").and_then(Value::as_u64).unwrap_or(100) as usize;
        m.insert("max_tries".into(), json!(MEASURED_TRIES_PER_MEMBER * population));
    }
    if let Some(r) = &a.reward {
        let reward = match r.as_str() {
            "soft" => ::search::objectives::Reward::SOFT,
            "hard" => ::search::objectives::Reward::HARD,
            _ => bail!("--reward must be soft or hard, got `{r}`"),
        };
        match m.get_mut("strategy") {
            Some(Value::Object(st)) if st.get("kind") == Some(&json!("rl")) => {
                st.insert("reward".into(), serde_json::to_value(reward)?);
            }
            _ => bail!("--reward applies to --strategy rl only"),
        }
    }
    for required in ["space", "latency", "max_latency_ms"] {
        if !m.contains_key(required) {
            bail!("missing `{required}`: give --{} or put it in --config", required.replace('_', "-"));
        }
    }
    serde_json::from_value(Value::Object(m)).context("invalid search configuration")
}

pub fn run(a: Args) -> Result<()> {
    if super::search_dnas::is_dnas(a.strategy.as_deref(), &a.out, a.resume) {
        if a.latency.iter().any(|l| l.contains(DEVICE_PREFIX)) {
            bail!("differentiable searches need a latency lookup table (their latency term is Σ p·LUT), not device:");
        }
        if let Some(p) = a.precision.filter(|p| *p != latency::modelfile::Precision::Fp32) {
            bail!("differentiable searches (fbnet, singlepath) train and derive fp32 networks; --precision {p} does not apply");
        }
        super::search_dnas::check_precision(&a.latency, a.allow_precision_mismatch)?;
        let data = a.accuracy_data.as_deref();
        return super::search_dnas::run(
            &a.dnas,
            a.space.as_deref(),
            a.strategy.as_deref(),
            &a.latency,
            a.max_latency_ms,
            data,
            a.seed,
            &a.out,
            a.resume,
        );
    }
    let config = resolve(&a)?;
    let space = spaces::space(&config.space)?;
    let latency = config.latency.iter().map(|l| latency_source(l, config.precision)).collect::<Result<Vec<_>>>()?;
    if config.allow_precision_mismatch {
        for (spec, source) in config.latency.iter().zip(&latency) {
            if let LatencySource::Predictor(p) = source {
                if p.precision() != config.precision {
                    eprintln!(
                        "warning: latency predictor `{}` was fitted on {} measurements; this job deploys {} models \
                         (--allow-precision-mismatch)",
                        spec.label,
                        p.precision(),
                        config.precision
                    );
                }
            }
        }
    }
    let accuracy = ::search::objectives::accuracy::load(&config.accuracy, &*space)?;
    let mut job = Job::open(config, latency, accuracy, &a.out, a.resume)?;
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
            if e.is::<::search::job::Unreachable>() {
                return e;
            }
            let kept = if journals.is_empty() {
                String::new()
            } else {
                format!("; measurements taken so far are kept in {}", journals.join(", "))
            };
            e.context(format!(
                "search stopped at generation {}{kept}; rerun with --resume to continue",
                job.next_generation()
            ))
        })?
        .expect("a run without a generation cap completes");
    bar.finish_and_clear();
    let space = spaces::space(&job.config.space)?;
    println!("job directory: {}", outcome.dir.display());
    println!("evaluated: {} architectures ({} strategy)", outcome.evaluated, job.config.strategy.name());
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
