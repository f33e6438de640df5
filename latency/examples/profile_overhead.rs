//! Profiling overhead: how much of a profiling run is spent outside the models'
//! own timed runs (building and pushing model files, device checks, runtime
//! start-up, model loading and warm-up, cleanup, cool-down), with `hwnas profile`'s
//! default protocol unless flags change it.
//!
//!     cargo build --release -p hwnas-runner
//!     cargo run --release -p latency --example profile_overhead -- \
//!         --runner target/release/hwnas-runner [--sim] [--space fbnet-cifar100 --layers 112] [--networks 10]
//!
//! `--sim` adds a simulated phone (hwnas-adbd behind a private adb server), which
//! shows the cost of the adb transport. `--counts W,R` times by counts alone (W warm-up
//! runs, rounds of R runs), as before the time floors; `--no-batch` one model per invocation.

use clap::Parser;
use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::local::LocalTarget;
use latency::profile::models::SpaceModels;
use latency::profile::{session, Job, Protocol, Record};
use latency::runtime::runner::RunnerRuntime;
use latency::runtime::tflite::TfliteRuntime;
use latency::runtime::Runtime;
use latency::target::Target;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// hwnas-runner binary (default: target/<profile>/hwnas-runner beside this example).
    #[arg(long)]
    runner: Option<PathBuf>,
    /// Time with TFLite's benchmark_model instead.
    #[arg(long)]
    benchmark_model: Option<PathBuf>,
    #[arg(long, default_value = "ofa-mbv3-w1.0")]
    space: String,
    /// Table resolution (default: the space's smallest).
    #[arg(long)]
    resolution: Option<u32>,
    /// Layers of the table to time.
    #[arg(long, default_value_t = 24)]
    layers: usize,
    /// Time N sampled networks of the space instead of its table.
    #[arg(long)]
    networks: Option<usize>,
    /// With --networks: per-layer profiles too (`hwnas profile --per-layer`).
    #[arg(long)]
    per_layer: bool,
    /// Counts only: W warm-up runs and rounds of R runs, no time floors or setup ratio.
    #[arg(long, value_delimiter = ',', num_args = 2)]
    counts: Option<Vec<u32>>,
    /// A fixed pause between models (default: the protocol's).
    #[arg(long)]
    cooldown_ms: Option<u64>,
    /// Also profile a simulated phone over adb.
    #[arg(long)]
    sim: bool,
    /// Time one model per runtime invocation, as before batches (for comparison).
    #[arg(long)]
    no_batch: bool,
}

/// A runtime that does not take batches (every other answer delegated).
struct OneByOne(Box<dyn Runtime>);
impl Runtime for OneByOne {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn binary_sha256(&self) -> &str {
        self.0.binary_sha256()
    }
    fn install(&self, t: &dyn Target) -> Result<String, latency::runtime::RuntimeError> {
        self.0.install(t)
    }
    fn argv(&self, binary: &str, model: &str, cfg: &Protocol) -> Vec<String> {
        self.0.argv(binary, model, cfg)
    }
    fn parse(&self, out: &latency::target::Output) -> Result<latency::runtime::Round, latency::runtime::RuntimeError> {
        self.0.parse(out)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let runtime: Box<dyn Runtime> = match &a.benchmark_model {
        Some(bm) => Box::new(TfliteRuntime::new(bm, vec!["--use_xnnpack=true".into()])?),
        None => {
            let exe = std::env::current_exe()?;
            let default = exe.parent().and_then(|d| d.parent()).map(|d| d.join("hwnas-runner")).unwrap_or_default();
            let bin = a.runner.clone().unwrap_or(default);
            Box::new(RunnerRuntime::new(&bin).map_err(|e| format!("{e} (build it: cargo build -p hwnas-runner)"))?)
        }
    };
    let runtime: Box<dyn Runtime> = if a.no_batch { Box::new(OneByOne(runtime)) } else { runtime };
    let space = spaces::space(&a.space)?;
    let r = a.resolution.unwrap_or_else(|| *space.resolutions().iter().min().expect("a resolution"));
    let (source, models) = match a.networks {
        Some(n) => SpaceModels::networks(space, n, 0)?,
        None => {
            let (source, mut models) = SpaceModels::table(space, &[r], 0)?;
            models.truncate(a.layers);
            (source, models)
        }
    };
    let mut protocol = match &a.counts {
        Some(c) => Protocol::counts(c[0], c[1]),
        None => Protocol::default(),
    };
    if let Some(ms) = a.cooldown_ms {
        protocol.cooldown = Duration::from_millis(ms);
    }
    if a.per_layer {
        protocol.layer_profile_runs = latency::profile::layers::LAYER_PROFILE_RUNS;
    }
    let work = std::env::temp_dir().join(format!("hwnas-overhead-{}", std::process::id()));
    let mut targets: Vec<(String, Box<dyn Target>)> =
        vec![("local".into(), Box::new(LocalTarget::new(work.join("scratch"))?))];
    let phone = if a.sim { Some(SimulatedPhone::start(PhoneOptions::default())?) } else { None };
    if let Some(p) = &phone {
        targets.push(("adb (simulated phone)".into(), Box::new(p.target()?)));
    }
    println!(
        "{} {} of {}{}, runtime {}{}; warm-up ≥ {} runs (≥ {} ms after idle), rounds ≥ {} samples, ≥ {} ms and ≥ {}× \
         the model's load; fixed cool-down {} ms\n",
        models.len(),
        if a.networks.is_some() { "networks" } else { "layers" },
        a.space,
        if a.networks.is_some() { String::new() } else { format!(" at {r}") },
        runtime.name(),
        if a.no_batch { " (one model per invocation)" } else { " (batches)" },
        protocol.warmup,
        protocol.warmup_ms,
        protocol.runs,
        protocol.min_time_ms,
        protocol.setup_ratio,
        protocol.cooldown.as_millis()
    );
    println!(
        "{:<24} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>9}",
        "target",
        "total s",
        "build",
        "checks",
        "push",
        "loading",
        "warm-up",
        "other",
        "profile",
        "cooldown",
        "timed",
        "overhead"
    );
    for (i, (name, target)) in targets.into_iter().enumerate() {
        let out_dir = work.join(format!("out-{i}"));
        let job =
            Job { runtime: runtime.as_ref(), protocol: &protocol, models: &models, source: &source, out_dir: &out_dir };
        let outcome = session::run(&job, &[target], &|_| {})?;
        if let Some(p) = outcome.problems() {
            return Err(p.into());
        }
        let recs = session::read_journal(&out_dir)?;
        let sum = |f: &dyn Fn(&Record) -> f64| recs.iter().map(f).sum::<f64>() / 1e6;
        let timed = sum(&|r| r.timed_us);
        let report = &outcome.reports[0];
        let p = &report.phases;
        // Total: everything the device's queue took, model building included.
        let total = report.wall_us / 1e6;
        let s = |us: f64| us / 1e6;
        let cooldown = s(p.cooldown_us + report.cooldown_us);
        // Other: inside the runtime's invocations but not loading, warm-up, profiles,
        // cool-down or timed runs (start-up, device readings, gaps between runs, output).
        let other = s(p.rounds_us - p.setup_us - p.warmup_us - p.profile_us - p.cooldown_us) - timed + s(p.cleanup_us);
        println!(
            "{:<24} {:>8.2} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>8.2} {:>7.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1}%",
            name,
            total,
            s(p.build_us),
            s(p.settle_us),
            s(p.push_us),
            s(p.setup_us),
            s(p.warmup_us),
            other,
            s(p.profile_us),
            cooldown,
            timed,
            100.0 * (total - timed) / total
        );
        if let Some(o) = report.overhead() {
            println!("{:<24} {o}", "");
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "\noverhead = share of the total outside the models' own timed runs; loading = the runtime parsing, \
         optimising and planning each model; other = runtime start-up, device readings, gaps between timed runs, \
         output; the total also holds journaling and what no column names"
    );
    Ok(())
}
