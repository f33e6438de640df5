//! hwnas-runner: times a TFLite model with tract, a Rust interpreter, so a phone
//! binary needs no TFLite/bazel build: `cargo build --release --target aarch64-linux-android
//! -p hwnas-runner` with the NDK's clang as linker and C compiler (tract-linalg assembles
//! its NEON kernels with it).
//!
//!     hwnas-runner --model FILE.tflite --warmup N --runs N [--threads T]
//!     hwnas-runner --batch MANIFEST
//!
//! Prints one JSON line (see `hwnas_runner::output`); on a bad argument or file it prints
//! `error: …` to stderr and exits 1. `--batch` times every model of a manifest in this one
//! process and prints one line per model as it finishes (see `hwnas_runner::batch`); a model
//! that fails gets an error line and the batch goes on. Only tract (with tract-linalg's rayon matmul for
//! `--threads`) and serde_json are linked.

use hwnas_runner::args::{Args, USAGE};
use hwnas_runner::batch::{done_line, failed_line, read_manifest, CAPABILITIES, CAPABILITIES_FLAG};
use hwnas_runner::output::Report;
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
    time(args, 1, |_, _| true).map(|(r, _)| r)
}

/// Loads `args.model`, warms it up once, then times rounds of `args.runs` until `enough`
/// (given every sample so far and the rounds done) says stop.
fn time(args: &Args, max_rounds: u32, enough: impl Fn(&[f64], u32) -> bool) -> TractResult<(Report, u32)> {
    let start = Instant::now();
    let model = tract_tflite::tflite()
        .model_for_path(&args.model)
        .with_context(|| format!("cannot read {} as a TFLite model", args.model.display()))?
        .into_optimized()?
        .into_runnable()?;
    let input: TValue = input_for(model.model().input_fact(0)?)?.into();
    let mut state = model.spawn()?;
    let init_us = start.elapsed().as_secs_f64() * 1e6;
    for _ in 0..args.warmup {
        state.run(tvec!(input.clone()))?;
    }
    let mut samples_us = Vec::with_capacity(args.runs);
    let mut rounds = 0;
    while rounds < max_rounds.max(1) {
        for _ in 0..args.runs {
            let t = Instant::now();
            let out = state.run(tvec!(input.clone()))?;
            samples_us.push(t.elapsed().as_secs_f64() * 1e6);
            drop(out);
        }
        rounds += 1;
        if enough(&samples_us, rounds) {
            break;
        }
    }
    Ok((Report::new(args, init_us, samples_us), rounds))
}

/// The device state just before a model, as the host's check reads it: each core's current
/// frequency (kHz) and the hottest thermal zone (°C), where readable.
fn reading() -> serde_json::Map<String, serde_json::Value> {
    let read = |p: String| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<f64>().ok());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = (0..cores).filter(|c| std::path::Path::new(&format!("/sys/devices/system/cpu/cpu{c}")).exists());
    let freqs: Vec<Option<f64>> =
        cpus.map(|c| read(format!("/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq"))).collect();
    let temp = std::fs::read_dir("/sys/class/thermal")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| read(e.path().join("temp").display().to_string()))
        .map(|milli| milli / 1000.0)
        .reduce(f64::max);
    let mut m = serde_json::Map::new();
    if freqs.iter().any(Option::is_some) {
        m.insert("cur_freq_khz".into(), freqs.into_iter().map(|f| f.map(|f| f as u64)).collect::<Vec<_>>().into());
    }
    if let Some(t) = temp {
        m.insert("temperature_c".into(), t.into());
    }
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
        let args = Args { model, warmup: e.warmup, runs: e.runs, threads: e.threads };
        if i > 0 && e.cooldown_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(e.cooldown_ms));
        }
        let reading = reading();
        let line = if e.threads != threads {
            failed_line(i, &e.model, &format!("threads {} in a batch started with {threads}", e.threads))
        } else {
            match time(&args, e.max_rounds, |s, r| e.done(s, r)) {
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
