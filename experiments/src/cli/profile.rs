//! `hwnas profile`: time a space's layer table or sampled networks on phones
//! (over any number of adb servers) or on the host, resumably, into Parquet.

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use latency::modelfile::precision::{Precision, Quantization};
use latency::profile::models::SpaceModels;
use latency::profile::{connect, session, Event, Job, Protocol, RuntimeSpec};
use latency::target::Target;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(clap::Args)]
pub struct Args {
    /// A device serial as listed by `adb devices`, or `local` for this machine. Repeat for several.
    #[arg(long = "device", required_unless_present = "repair")]
    devices: Vec<String>,
    /// The search space (see `hwnas spaces`).
    #[arg(long, required_unless_present = "repair")]
    space: Option<String>,
    /// Time every distinct layer of the space's lookup table, each as a single-layer model.
    #[arg(long, conflicts_with = "networks", required_unless_present_any = ["networks", "repair"])]
    table: bool,
    /// Resolutions of the table (default: all of the space's).
    #[arg(long, value_delimiter = ',', requires = "table")]
    resolutions: Vec<u32>,
    /// Time N sampled member networks.
    #[arg(long)]
    networks: Option<usize>,
    /// With --networks: also time each layer inside each network (the runtime's per-op
    /// profile mapped to the IR layers): `layer-in-network` rows, for an OFA-style table.
    #[arg(long)]
    per_layer: bool,
    /// Profile only the first N models (a quick trial of a table or sample).
    #[arg(long)]
    limit: Option<usize>,
    /// Seed of the network sample and of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Precision every generated model is written in (layers and --networks): fp32, fp16 or int8.
    /// Part of each record's identity and the dataset's `precision` column.
    #[arg(long, default_value = "fp32")]
    precision: latency::modelfile::precision::Precision,
    /// With --precision int8: int8 input and output tensors too (else float with QUANTIZE/DEQUANTIZE).
    #[arg(long)]
    int8_io: bool,
    #[command(flatten)]
    measure: super::measure_args::MeasureArgs,
    /// Output directory: journal.jsonl (resumable), errors.jsonl, latency.parquet.
    #[arg(long)]
    out: PathBuf,
    /// Move unreadable journal lines to journal.bad.jsonl and keep every good record (instead of
    /// refusing to start). Alone (`--repair --out DIR`) it only repairs the journal.
    #[arg(long)]
    repair: bool,
    /// Wait this long for a device another hwnas run is timing on (default: refuse at once,
    /// naming that run).
    #[arg(long, default_value_t = 0)]
    device_wait_s: u64,
}

/// `--repair --out DIR` alone: repair the journal, measure nothing.
fn repair_only(out: &std::path::Path) -> Result<()> {
    let loaded = session::repair(out)?;
    match &loaded.repaired {
        Some((n, side)) => println!("journal: moved {n} unreadable lines to {}", side.display()),
        None => println!("journal: no unreadable lines"),
    }
    println!(
        "journal: {} records kept in {} (run profile again to refresh the dataset)",
        loaded.records.len(),
        out.join(latency::profile::JOURNAL_FILE).display()
    );
    Ok(())
}

/// What a profiling run times: a space's layer table, or sampled networks.
pub enum Models {
    Table { resolutions: Vec<u32> },
    Networks { n: usize, per_layer: bool },
}

/// A profiling run: what to time, in which precision, where and how. `hwnas profile` makes
/// one from its flags; the main job and the experiments that profile this machine make one
/// from the library's defaults ([`Request::local_table`]) instead of re-parsing a command line.
pub struct Request {
    pub space: String,
    pub models: Models,
    /// Seed of the network sample and of the random weights.
    pub seed: u64,
    /// Only the first N models.
    pub limit: Option<usize>,
    pub quantization: Quantization,
    pub runtime: RuntimeSpec,
    pub protocol: Protocol,
    /// Device serials (`local`: this machine) and the adb servers to find them on.
    pub devices: Vec<String>,
    pub servers: Vec<String>,
    pub out: PathBuf,
    pub options: session::Options,
}

impl Request {
    /// This machine's CPU timing `space`'s layer table at `resolutions` in `precision` with
    /// `runtime`, under the default protocol, into `out`.
    pub fn local_table(
        space: &str,
        resolutions: Vec<u32>,
        precision: Precision,
        runtime: RuntimeSpec,
        out: PathBuf,
    ) -> Request {
        Request {
            space: space.into(),
            models: Models::Table { resolutions },
            seed: 0,
            limit: None,
            // An int8 layer inside an int8 network neither quantizes its input nor dequantizes
            // its output (the network does, once, at its ends), so int8 layers are timed with int8 I/O.
            quantization: Quantization { int8_io: precision == Precision::Int8, ..Quantization::of(precision) },
            runtime,
            protocol: Protocol::default(),
            devices: vec![latency::local::LOCAL_ID.into()],
            servers: Vec::new(),
            out,
            options: session::Options::default(),
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let Some(space) = a.space.clone().filter(|_| !a.devices.is_empty()) else {
        return repair_only(&a.out);
    };
    let models = match (a.networks, a.per_layer) {
        (Some(n), per_layer) => Models::Networks { n, per_layer },
        (None, true) => {
            bail!("--per-layer times layers inside networks: it needs --networks N (a --table times each layer alone)")
        }
        (None, false) => Models::Table { resolutions: a.resolutions.clone() },
    };
    if a.int8_io && a.precision != Precision::Int8 {
        bail!("--int8-io applies to --precision int8 only");
    }
    profile(&Request {
        space,
        models,
        seed: a.seed,
        limit: a.limit,
        quantization: Quantization { int8_io: a.int8_io, ..Quantization::of(a.precision) },
        runtime: a.measure.runtime()?,
        protocol: a.measure.protocol(),
        devices: a.devices.clone(),
        servers: a.measure.servers.clone(),
        out: a.out.clone(),
        options: session::Options { repair: a.repair, device_wait: std::time::Duration::from_secs(a.device_wait_s) },
    })
}

/// Runs `req` with a progress bar, then prints each device's summary and the journal's notes.
pub fn profile(req: &Request) -> Result<()> {
    let mut protocol = req.protocol.clone();
    if let Models::Networks { per_layer: true, .. } = req.models {
        protocol.layer_profile_runs = latency::profile::layers::LAYER_PROFILE_RUNS;
    }
    protocol.validate()?;
    let space = spaces::space(&req.space)?;
    let (source, models) = match &req.models {
        Models::Networks { n, .. } => SpaceModels::networks(space, *n, req.seed),
        Models::Table { resolutions } => SpaceModels::table(space, resolutions, req.seed),
    }?;
    let (source, models) = source.with_quantization(req.quantization.clone(), models);
    let models = &models[..req.limit.unwrap_or(models.len()).min(models.len())];
    let runtime = req.runtime.build()?;
    let targets: Vec<Box<dyn Target>> =
        req.devices.iter().map(|serial| Ok(connect(serial, &req.servers)?)).collect::<Result<_>>()?;
    let job = Job { runtime: runtime.as_ref(), protocol: &protocol, models, source: &source, out_dir: &req.out };

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
    let outcome = session::run_with(&job, &targets, &req.options, &on_event)?;
    bar.finish_and_clear();
    for r in &outcome.reports {
        let overhead = r.overhead().map_or("0.0 % outside timed runs".into(), |o| o.to_string());
        println!(
            "{}: measured {}, already done {}, failed {}, flagged {}; {:.1} s, {overhead}",
            r.device,
            r.measured,
            r.skipped,
            r.failed.len(),
            r.flagged,
            r.wall_us / 1e6
        );
    }
    if let Some((n, side)) = &outcome.repaired {
        println!("journal: moved {n} unreadable lines to {} and kept every readable record", side.display());
    }
    if outcome.torn_bytes > 0 {
        println!("journal: cut off a torn last line ({} bytes) left by an interrupted run", outcome.torn_bytes);
    }
    if outcome.unterminated {
        println!("journal: kept a complete last record that lacked its newline");
    }
    if outcome.duplicates > 0 {
        println!("journal: dropped {} duplicated record lines (each measurement counts once)", outcome.duplicates);
    }
    if outcome.other_settings > 0 {
        println!(
            "warning: {} journaled records were taken with other runtime settings (runtime, flags or binary) than \
             this run; they stay in {} but are left out of {} (use one --out per setting)",
            outcome.other_settings,
            outcome.journal.display(),
            outcome.dataset.display()
        );
    }
    println!("{} records -> {}", outcome.records, outcome.dataset.display());
    match outcome.problems() {
        Some(p) => bail!(p),
        None => Ok(()),
    }
}
