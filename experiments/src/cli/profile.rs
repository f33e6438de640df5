//! `hwnas profile`: time a space's layer table or sampled networks on phones
//! (over any number of adb servers) or on the host, resumably, into Parquet.

use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use latency::adb::{AdbTarget, DEFAULT_SERVER};
use latency::local::{LocalTarget, LOCAL_ID};
use latency::profile::models::SpaceModels;
use latency::profile::{session, Event, Job, Protocol};
use latency::runtime::runner::RunnerRuntime;
use latency::runtime::tflite::TfliteRuntime;
use latency::runtime::{RunConfig, Runtime};
use latency::target::Target;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// A device serial as listed by `adb devices`, or `local` for this machine. Repeat for several.
    #[arg(long = "device", required = true)]
    devices: Vec<String>,
    /// adb servers (`HOST:PORT`) to find the devices on. Repeat for several; default 127.0.0.1:5037.
    #[arg(long = "adb")]
    servers: Vec<String>,
    /// The search space (see `hwnas spaces`).
    #[arg(long)]
    space: String,
    /// Time every distinct layer of the space's lookup table, each as a single-layer model.
    #[arg(long, conflicts_with = "networks", required_unless_present = "networks")]
    table: bool,
    /// Resolutions of the table (default: all of the space's).
    #[arg(long, value_delimiter = ',', requires = "table")]
    resolutions: Vec<u32>,
    /// Time N sampled member networks.
    #[arg(long)]
    networks: Option<usize>,
    /// Profile only the first N models (a quick trial of a table or sample).
    #[arg(long)]
    limit: Option<usize>,
    /// Seed of the network sample and of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `tflite` (the stock benchmark_model, --benchmark-model) or `runner` (hwnas-runner).
    #[arg(long, default_value = "runner", value_parser = ["tflite", "runner"])]
    runtime: String,
    /// The TFLite benchmark_model binary built for the devices (Android arm64 for phones).
    #[arg(long)]
    benchmark_model: Option<PathBuf>,
    /// The hwnas-runner binary built for the devices (default: the one next to hwnas).
    #[arg(long)]
    runner: Option<PathBuf>,
    /// benchmark_model's --use_xnnpack, passed explicitly because defaults differ between releases.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    xnnpack: bool,
    /// Extra benchmark_model flag passed verbatim and recorded, e.g. --benchmark-arg=--use_gpu=true. Repeatable.
    #[arg(long = "benchmark-arg", allow_hyphen_values = true)]
    benchmark_args: Vec<String>,
    /// Runtime threads (1 for single-core numbers).
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Hex CPU mask for taskset, e.g. 70 = CPUs 4-6 (the Cortex-A76 cores of a Snapdragon 855).
    #[arg(long)]
    affinity: Option<String>,
    /// Untimed runs before the timed ones, in every round.
    #[arg(long, default_value_t = 10)]
    warmup: u32,
    /// Timed runs per round.
    #[arg(long, default_value_t = 50)]
    runs: u32,
    /// Pause between models.
    #[arg(long, default_value_t = 200)]
    cooldown_ms: u64,
    /// Kill a runtime invocation after this long.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
    /// Repeat rounds until the coefficient of variation of the kept samples is at most this…
    #[arg(long, default_value_t = 0.05)]
    max_cv: f64,
    /// …with at least this many kept samples…
    #[arg(long, default_value_t = 3)]
    min_samples: usize,
    /// …for at most this many rounds (then the record is flagged unstable).
    #[arg(long, default_value_t = 5)]
    max_rounds: u32,
    /// Wait before each model until the pinned cores run at this frequency (kHz).
    #[arg(long)]
    expect_freq_khz: Option<u64>,
    /// Wait before each model until the hottest thermal zone is at most this (°C).
    #[arg(long)]
    max_temp_c: Option<f64>,
    /// Give up waiting for frequency/temperature after this long and flag the record.
    #[arg(long, default_value_t = 60)]
    settle_s: u64,
    /// Output directory: journal.jsonl (resumable), errors.jsonl, latency.parquet.
    #[arg(long)]
    out: PathBuf,
}

fn runtime(a: &Args) -> Result<Box<dyn Runtime>> {
    Ok(match a.runtime.as_str() {
        "tflite" => {
            let bin =
                a.benchmark_model.as_ref().ok_or_else(|| anyhow!("--runtime tflite needs --benchmark-model PATH"))?;
            let mut flags = vec![format!("--use_xnnpack={}", a.xnnpack)];
            flags.extend(a.benchmark_args.iter().cloned());
            Box::new(TfliteRuntime::new(bin, flags)?)
        }
        _ => {
            if !a.benchmark_args.is_empty() {
                bail!("--benchmark-arg applies to --runtime tflite only");
            }
            let bin = match &a.runner {
                Some(p) => p.clone(),
                None => std::env::current_exe()?.with_file_name("hwnas-runner"),
            };
            if !bin.is_file() {
                bail!(
                    "no hwnas-runner at {} (build it with `cargo build -p hwnas-runner`, or pass --runner)",
                    bin.display()
                );
            }
            Box::new(RunnerRuntime::new(bin)?)
        }
    })
}

/// Finds each serial on the given adb servers (`local` is this machine).
fn targets(a: &Args) -> Result<Vec<Box<dyn Target>>> {
    let servers = if a.servers.is_empty() { vec![DEFAULT_SERVER.to_string()] } else { a.servers.clone() };
    let mut out: Vec<Box<dyn Target>> = Vec::new();
    for serial in &a.devices {
        if serial == LOCAL_ID {
            out.push(Box::new(LocalTarget::new(LocalTarget::default_scratch())?));
            continue;
        }
        let mut why = Vec::new();
        let found = servers.iter().find_map(|s| match AdbTarget::connect(s, serial, Duration::from_secs(10)) {
            Ok(t) => Some(t),
            Err(e) => {
                why.push(e.to_string());
                None
            }
        });
        match found {
            Some(t) => out.push(Box::new(t)),
            None => bail!("device {serial} not found:\n  {}", why.join("\n  ")),
        }
    }
    Ok(out)
}

pub fn run(a: Args) -> Result<()> {
    let protocol = Protocol {
        run: RunConfig { threads: a.threads, warmup: a.warmup, runs: a.runs, affinity: a.affinity.clone() },
        cooldown: Duration::from_millis(a.cooldown_ms),
        timeout: Duration::from_secs(a.timeout_s),
        cv_bound: a.max_cv,
        min_samples: a.min_samples,
        max_rounds: a.max_rounds,
        expected_freq_khz: a.expect_freq_khz,
        max_temp_c: a.max_temp_c,
        settle_timeout: Duration::from_secs(a.settle_s),
        settle_poll: Duration::from_secs(2).min(Duration::from_secs(a.settle_s.max(1))),
    };
    protocol.validate().map_err(|e| anyhow!(e))?;
    let space = spaces::space(&a.space)?;
    let (source, models) = match a.networks {
        Some(n) => SpaceModels::networks(space, n, a.seed),
        None => SpaceModels::table(space, &a.resolutions, a.seed),
    }
    .map_err(|e| anyhow!(e))?;
    let models = &models[..a.limit.unwrap_or(models.len()).min(models.len())];
    let runtime = runtime(&a)?;
    let targets = targets(&a)?;
    let job = Job { runtime: runtime.as_ref(), protocol: &protocol, models, source: &source, out_dir: &a.out };

    let bar = ProgressBar::new((models.len() * targets.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} models, ETA {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    // indicatif drops println when the bar is hidden (output not a terminal); logs still need the lines.
    let say = |line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
    // Per device: models still queued, so a stopped device's remainder leaves the bar.
    let left: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let on_event = |e: Event| match e {
        Event::Started { device, todo, done } => {
            left.lock().unwrap().insert(device.clone(), todo);
            bar.inc(done as u64);
            say(format!("{device}: {todo} models to measure, {done} already in the journal"));
        }
        Event::Measured { device, model, median_ms, warnings } => {
            *left.lock().unwrap().entry(device.clone()).or_default() -= 1;
            bar.inc(1);
            bar.set_message(format!("{device}: {median_ms:.3} ms"));
            if !warnings.is_empty() {
                say(format!("{device}: {model}: flagged: {}", warnings.join("; ")));
            }
        }
        Event::Failed { device, model, error } => {
            *left.lock().unwrap().entry(device.clone()).or_default() -= 1;
            bar.inc(1);
            say(format!("{device}: {model}: {error}"));
        }
        Event::Stopped { device, why } => {
            bar.inc(left.lock().unwrap().remove(&device).unwrap_or(models.len()) as u64);
            say(format!("{device}: stopped: {why}"));
        }
    };
    let outcome = session::run(&job, &targets, &on_event).map_err(|e| anyhow!(e))?;
    bar.finish_and_clear();
    for r in &outcome.reports {
        let overhead = if r.wall_us > 0.0 { 100.0 * (1.0 - r.timed_us / r.wall_us) } else { 0.0 };
        println!(
            "{}: measured {}, already done {}, failed {}, flagged {}; {:.1} s, {overhead:.1} % outside timed runs",
            r.device,
            r.measured,
            r.skipped,
            r.failed.len(),
            r.flagged,
            r.wall_us / 1e6
        );
    }
    if outcome.torn_bytes > 0 {
        println!("journal: cut off a torn last line ({} bytes) left by an interrupted run", outcome.torn_bytes);
    }
    println!("{} records -> {}", outcome.records, outcome.dataset.display());
    match outcome.problems() {
        Some(p) => bail!(p),
        None => Ok(()),
    }
}
