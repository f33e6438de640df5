//! Profiling overhead: how much of a profiling run is spent outside the models'
//! own timed runs (building and pushing model files, device checks, runtime
//! start-up, model loading and warm-up, cleanup, cool-down).
//!
//!     cargo build --release -p hwnas-runner
//!     cargo run --release -p latency --example profile_overhead -- \
//!         --runner target/release/hwnas-runner [--sim] [--layers 24] [--runs 20]
//!
//! `--sim` adds a simulated phone (hwnas-adbd behind a private adb server), which
//! shows the cost of the adb transport.

use clap::Parser;
use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::local::LocalTarget;
use latency::profile::models::SpaceModels;
use latency::profile::{session, Job, Protocol, Record};
use latency::runtime::runner::RunnerRuntime;
use latency::runtime::tflite::TfliteRuntime;
use latency::runtime::{RunConfig, Runtime};
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
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    #[arg(long, default_value_t = 20)]
    runs: u32,
    #[arg(long, default_value_t = 0)]
    cooldown_ms: u64,
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
    fn argv(&self, binary: &str, model: &str, cfg: &RunConfig) -> Vec<String> {
        self.0.argv(binary, model, cfg)
    }
    fn parse(&self, out: &latency::target::Output) -> Result<latency::runtime::Round, latency::runtime::RuntimeError> {
        self.0.parse(out)
    }
}

fn main() -> Result<(), String> {
    let a = Args::parse();
    let runtime: Box<dyn Runtime> = match &a.benchmark_model {
        Some(bm) => Box::new(TfliteRuntime::new(bm, vec!["--use_xnnpack=true".into()]).map_err(|e| e.to_string())?),
        None => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let default = exe.parent().and_then(|d| d.parent()).map(|d| d.join("hwnas-runner")).unwrap_or_default();
            let bin = a.runner.clone().unwrap_or(default);
            Box::new(RunnerRuntime::new(&bin).map_err(|e| format!("{e} (build it: cargo build -p hwnas-runner)"))?)
        }
    };
    let runtime: Box<dyn Runtime> = if a.no_batch { Box::new(OneByOne(runtime)) } else { runtime };
    let space = spaces::space(&a.space).map_err(|e| e.to_string())?;
    let r = a.resolution.unwrap_or_else(|| *space.resolutions().iter().min().expect("a resolution"));
    let (source, mut models) = SpaceModels::table(space, &[r], 0)?;
    models.truncate(a.layers);
    let protocol = Protocol {
        run: RunConfig { threads: 1, warmup: a.warmup, runs: a.runs, affinity: None },
        cooldown: Duration::from_millis(a.cooldown_ms),
        ..Protocol::default()
    };
    let work = std::env::temp_dir().join(format!("hwnas-overhead-{}", std::process::id()));
    let mut targets: Vec<(String, Box<dyn Target>)> =
        vec![("local".into(), Box::new(LocalTarget::new(work.join("scratch")).map_err(|e| e.to_string())?))];
    let phone = if a.sim { Some(SimulatedPhone::start(PhoneOptions::default())?) } else { None };
    if let Some(p) = &phone {
        targets.push(("adb (simulated phone)".into(), Box::new(p.target().map_err(|e| e.to_string())?)));
    }
    println!(
        "{} layers of {} at {r}, runtime {}{}, {} warm-up + {} timed runs per round, cool-down {} ms\n",
        models.len(),
        a.space,
        runtime.name(),
        if a.no_batch { " (one model per invocation)" } else { " (batches)" },
        a.warmup,
        a.runs,
        a.cooldown_ms
    );
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>9} {:>10}",
        "target", "total s", "build", "checks", "push", "rt start", "timed", "cleanup", "cooldown", "overhead"
    );
    for (i, (name, target)) in targets.into_iter().enumerate() {
        let out_dir = work.join(format!("out-{i}"));
        let job =
            Job { runtime: runtime.as_ref(), protocol: &protocol, models: &models, source: &source, out_dir: &out_dir };
        let outcome = session::run(&job, &[target], &|_| {})?;
        if let Some(p) = outcome.problems() {
            return Err(p);
        }
        let recs = session::read_journal(&out_dir)?;
        let sum = |f: &dyn Fn(&Record) -> f64| recs.iter().map(f).sum::<f64>() / 1e6;
        let build = sum(&|r| r.phases.build_us);
        let timed = sum(&|r| r.timed_us);
        let cooldown = outcome.reports[0].cooldown_us / 1e6;
        // Total: everything the device's queue took, model building included.
        let total = outcome.reports[0].wall_us / 1e6;
        println!(
            "{:<24} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.2} {:>8.2} {:>8.2} {:>9.2} {:>9.1}%",
            name,
            total,
            build,
            sum(&|r| r.phases.settle_us),
            sum(&|r| r.phases.push_us),
            sum(&|r| r.phases.rounds_us - r.timed_us),
            timed,
            sum(&|r| r.phases.cleanup_us),
            cooldown,
            100.0 * (total - timed) / total
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    println!("\noverhead = share of the total outside the models' own timed runs; rt start = runtime start-up, model loading and warm-up");
    Ok(())
}
