//! hwnas-runner: times a TFLite model with tract, a Rust interpreter, so a phone
//! binary needs no TFLite/bazel build: `cargo build --release --target aarch64-linux-android
//! -p hwnas-runner` with the NDK's clang as linker and C compiler (tract-linalg assembles
//! its NEON kernels with it).
//!
//!     hwnas-runner --model FILE.tflite --warmup N --runs N [--threads T] [--warmup-ms MS]
//!         [--min-time-ms MS] [--setup-ratio K] [--layer-profile-runs N]
//!     hwnas-runner --batch MANIFEST
//!
//! Prints one JSON line (see `hwnas_runner::output`); on a bad argument or file it prints
//! `error: …` to stderr and exits 1. `--batch` times every model of a manifest in this one
//! process and prints one line per model as it finishes (see `hwnas_runner::batch`); a model
//! that fails gets an error line and the batch goes on. Only tract (with tract-linalg's rayon matmul for
//! `--threads`) and serde_json are linked.

use hwnas_runner::args::{Args, USAGE};
use hwnas_runner::batch::{done_line, failed_line, read_manifest, CAPABILITIES, CAPABILITIES_FLAG};
use hwnas_runner::output::{LayerProfile, Report};
use hwnas_runner::timing::{self, Plan};
use hwnas_runner::window::{Reading, Window};
use std::io::Write;
use std::time::Instant;
use tract_linalg::multithread::{set_default_executor, Executor};
use tract_tflite::internal::*;

/// A deterministic, non-constant input (timing must not depend on the run, and all-zero
/// inputs could take fast paths that real images never do).
fn input_for(fact: &TypedFact) -> TractResult<Tensor> {
    let shape: Vec<usize> = fact.shape.as_concrete().context("the model input has a symbolic shape")?.to_vec();
    if fact.datum_type != f32::datum_type() {
        bail!("the model input is {:?}; hwnas-runner feeds float32 models only", fact.datum_type);
    }
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    Tensor::from_shape(&shape, &data)
}

fn run(args: &Args) -> TractResult<Report> {
    if args.threads > 1 {
        set_default_executor(Executor::multithread(args.threads));
    }
    time(args, &args.plan()).map(|(r, _)| r)
}

/// Loads `args.model`, then warms it up and times it as `plan` says (see
/// `hwnas_runner::timing`); with `args.layer_profile_runs`, profiles its nodes after.
fn time(args: &Args, plan: &Plan) -> TractResult<(Report, u32)> {
    let start = Instant::now();
    let model = tract_tflite::tflite()
        .model_for_path(&args.model)
        .with_context(|| format!("cannot read {} as a TFLite model", args.model.display()))?
        .into_optimized()?
        .into_runnable()?;
    let input: TValue = input_for(model.model().input_fact(0)?)?.into();
    let mut state = model.spawn()?;
    let init_us = start.elapsed().as_secs_f64() * 1e6;
    let clock = Instant::now();
    let timed = timing::time(
        plan,
        init_us,
        || clock.elapsed().as_secs_f64() * 1e6,
        || state.run(tvec!(input.clone())).map(drop),
    )?;
    let rounds = timed.rounds;
    let mut report = Report::timed(args, init_us, timed);
    if args.layer_profile_runs > 0 {
        report.layer_profile = Some(layer_profile(&mut state, &input, args.layer_profile_runs)?);
    }
    Ok((report, rounds))
}

/// Runs the plan `runs` times node by node (tract's own evaluation, each call timed): the
/// mean time of every node per run, in execution order.
fn layer_profile(state: &mut TypedSimpleState, input: &TValue, runs: usize) -> TractResult<LayerProfile> {
    let mut us = vec![0.0f64; state.model().nodes().len()];
    let start = Instant::now();
    for _ in 0..runs {
        state.run_plan_with_eval(tvec!(input.clone()), |ctx, op_state, node, inputs| {
            let t = Instant::now();
            let out = tract_core::plan::eval(ctx, op_state, node, inputs);
            us[node.id] += t.elapsed().as_secs_f64() * 1e6;
            out
        })?;
    }
    let total_us = start.elapsed().as_secs_f64() * 1e6;
    let model = state.model();
    let nodes = model.eval_order()?.into_iter().map(|id| (model.node(id).name.clone(), us[id] / runs as f64)).collect();
    Ok(LayerProfile { runs, total_us, nodes })
}

/// The device state just before a model, as the host's check reads it: each core's current
/// frequency (kHz) and the hottest thermal zone (°C), where readable.
fn reading() -> Reading {
    let read = |p: String| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<f64>().ok());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = (0..cores).filter(|c| std::path::Path::new(&format!("/sys/devices/system/cpu/cpu{c}")).exists());
    let cur_freq_khz = cpus
        .map(|c| read(format!("/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq")).map(|f| f as u64))
        .collect();
    let temperature_c = std::fs::read_dir("/sys/class/thermal")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| read(e.path().join("temp").display().to_string()))
        .map(|milli| milli / 1000.0)
        .reduce(f64::max);
    Reading { cur_freq_khz, temperature_c }
}

/// How often a model waiting for its window reads the device again.
const POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// The cool-down before a model ([`hwnas_runner::window::wait_for`] on sysfs): the reading
/// the model starts with and how long it waited (µs).
fn cool_down(window: &Window, settle_ms: u64) -> (Reading, f64) {
    let limit = std::time::Duration::from_millis(settle_ms);
    let (r, waited) = hwnas_runner::window::wait_for(window, limit, POLL, reading, std::thread::sleep);
    (r, waited.as_secs_f64() * 1e6)
}

fn reading_fields(r: &Reading, waited_us: f64) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if r.cur_freq_khz.iter().any(Option::is_some) {
        m.insert("cur_freq_khz".into(), r.cur_freq_khz.clone().into());
    }
    if let Some(t) = r.temperature_c {
        m.insert("temperature_c".into(), t.into());
    }
    m.insert("cooldown_us".into(), waited_us.into());
    m
}

/// Times every model of the manifest at `path`, printing (and flushing) each model's line as it finishes.
fn batch(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the manifest {path}: {e}"))?;
    let entries = read_manifest(&text)?;
    let threads = entries[0].threads;
    if threads > 1 {
        set_default_executor(Executor::multithread(threads));
    }
    let mut out = std::io::stdout().lock();
    for (i, e) in entries.iter().enumerate() {
        // A relative model path is relative to the manifest's directory.
        let model = std::path::Path::new(path).parent().unwrap_or(std::path::Path::new(".")).join(&e.model);
        let args = Args {
            model,
            warmup: e.warmup,
            runs: e.runs,
            threads: e.threads,
            warmup_ms: e.warmup_ms,
            min_time_ms: e.min_time_ms,
            setup_ratio: e.setup_ratio,
            layer_profile_runs: e.layer_profile_runs,
        };
        let paused = i > 0 && e.cooldown_ms > 0;
        if paused {
            std::thread::sleep(std::time::Duration::from_millis(e.cooldown_ms));
        }
        let (r, waited_us) = cool_down(&e.window, e.settle_ms);
        let fixed_us = if paused { e.cooldown_ms as f64 * 1e3 } else { 0.0 };
        let reading = reading_fields(&r, fixed_us + waited_us);
        // The warm-up by time follows idle time only (the batch's start, a cool-down): between
        // back-to-back models the core is already busy and warm, and a count suffices.
        let idle = i == 0 || paused || waited_us > 0.0;
        let plan = Plan { warmup_ms: if idle { e.warmup_ms } else { 0 }, ..e.plan() };
        let line = if e.threads != threads {
            failed_line(i, &e.model, &format!("threads {} in a batch started with {threads}", e.threads))
        } else {
            // A model that makes tract panic fails alone; the batch goes on.
            let timed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| time(&args, &plan)));
            match timed.unwrap_or_else(|p| Err(format_err!("tract panicked: {}", panic_text(&p)))) {
                Ok((report, rounds)) => {
                    let mut v: serde_json::Value = serde_json::from_str(&done_line(i, &report, rounds)).expect("JSON");
                    v.as_object_mut().expect("an object").extend(reading);
                    v.to_string()
                }
                Err(err) => failed_line(i, &e.model, &brief(&err)),
            }
        };
        writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| format!("cannot write the output: {e}"))?;
    }
    Ok(())
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default()
}

/// The outermost context and the root cause; the links between them in tract's
/// chain are Debug dumps of whole flatbuffer operators.
fn brief(e: &TractError) -> String {
    let (outer, root) = (e.to_string(), e.root_cause().to_string().trim_end().to_string());
    if outer == root {
        outer
    } else {
        format!("{outer}: {root}")
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let usage = |e: String| if e == USAGE { e } else { format!("{e}\n{USAGE}") };
    match argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [flag] if flag == CAPABILITIES_FLAG => return println!("{CAPABILITIES}"),
        ["--batch", manifest] => {
            if let Err(e) = batch(manifest) {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
            return;
        }
        _ => {}
    }
    let result = Args::parse(&argv).map_err(usage).and_then(|a| run(&a).map_err(|e| brief(&e)));
    match result {
        Ok(report) => println!("{}", report.to_line()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
