//! The `litert` runtime against the real LiteRT (ai-edge-litert in the repository's .venv,
//! from scripts/setup): single-layer models of a space's table in fp32, fp16 and int8 timed in
//! batches on `local`, each record journaled with the runtime's identity (the script and the
//! LiteRT version); a `kill -9` mid-batch loses no finished record and the rerun measures only
//! the rest; the script's stop rule is the runner's; a phone without Python is refused before
//! anything is pushed.

use crate::profile_support::{kill_child_after, tmp};
use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::adb::AdbTarget;
use latency::local::LocalTarget;
use latency::modelfile::precision::{Precision, Quantization};
use latency::profile::models::SpaceModels;
use latency::profile::{session, Job, ModelId, ModelSource, Protocol, Record, SourceError};
use latency::runtime::litert::{self, LitertRuntime};
use latency::runtime::Runtime;
use latency::target::{DeviceInfo, Output, Target, TargetError};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CHILD_ENV: &str = "HWNAS_LITERT_TEST_CHILD";
const SPACE: &str = "fbnet-cifar100";

fn python() -> PathBuf {
    let p = LitertRuntime::default_python();
    assert!(p.exists(), "{} is missing: run scripts/setup", p.display());
    p
}

fn litert() -> LitertRuntime {
    LitertRuntime::new(python()).unwrap()
}

fn protocol(cooldown_ms: u64) -> Protocol {
    Protocol {
        threads: 1,
        cooldown: Duration::from_millis(cooldown_ms),
        timeout: Duration::from_secs(120),
        max_rounds: 2,
        // A shared 2-core machine is noisy; stability is not what these tests check.
        max_cv: 1.0,
        ..Protocol::counts(2, 10)
    }
}

/// The first `n` layers of the space's table in every precision (int8 with int8 input and
/// output for the third of them), one source serving all.
struct AllPrecisions(Vec<SpaceModels>);
impl ModelSource for AllPrecisions {
    fn build(&self, m: &ModelId) -> Result<Vec<u8>, SourceError> {
        let mut last = SourceError::from("no source");
        for s in &self.0 {
            match s.build(m) {
                Ok(b) => return Ok(b),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn quantizations() -> Vec<Quantization> {
    vec![
        Quantization::of(Precision::Fp32),
        Quantization::of(Precision::Fp16),
        Quantization::of(Precision::Int8),
        Quantization { int8_io: true, ..Quantization::of(Precision::Int8) },
    ]
}

fn models(n: usize) -> (AllPrecisions, Vec<ModelId>) {
    let mut sources = Vec::new();
    let mut ids = Vec::new();
    for q in quantizations() {
        let (s, mut m) = SpaceModels::table(spaces::space(SPACE).unwrap(), &[], 0).unwrap();
        m.truncate(n);
        let (s, m) = s.with_quantization(q, m);
        sources.push(s);
        ids.extend(m);
    }
    (AllPrecisions(sources), ids)
}

fn local(dir: &Path) -> Box<dyn Target> {
    Box::new(LocalTarget::new(dir.join("scratch")).unwrap())
}

fn run(dir: &Path, n: usize, cooldown_ms: u64) -> session::Outcome {
    let rt = litert();
    let p = protocol(cooldown_ms);
    let (source, ids) = models(n);
    let job = Job { runtime: &rt, protocol: &p, models: &ids, source: &source, out_dir: &dir.join("out") };
    session::run(&job, &[local(dir)], &|_| {}).unwrap()
}

#[test]
fn layers_in_fp32_fp16_and_int8_are_timed_in_a_batch_and_journaled_with_the_runtimes_identity() {
    let dir = tmp("litert-batch");
    let out = run(&dir, 3, 0);
    let r = &out.reports[0];
    assert!(r.complete() && r.measured == 12, "{r:?}");
    let recs = session::read_journal(&dir.join("out")).unwrap();
    assert_eq!(recs.len(), 12);
    let rt = litert();
    let version = rt.version().to_string();
    assert_eq!(rt.binary_sha256(), litert::identity(&version));
    for rec in &recs {
        assert_eq!(rec.runtime.runtime, "litert");
        assert_eq!(rec.runtime.binary_sha256, litert::identity(&version));
        assert_eq!(
            rec.runtime.flags.join(" "),
            "{binary} --model {model} --warmup 2 --runs 10 --threads 1 --warmup-ms 0 --min-time-ms 0 --setup-ratio 0 \
             --layer-profile-runs 0"
        );
        assert!(rec.samples_us.len() >= 10 && rec.samples_us.iter().all(|&s| s > 0.0), "{:?}", rec.samples_us);
        assert!(rec.summary.median_us > 0.0 && rec.summary.median_us < 1e5, "{:?}", rec.summary);
        let d = &rec.detail[0];
        assert_eq!((d["runtime"].as_str(), d["version"].as_str()), (Some("litert"), Some(version.as_str())), "{d}");
        // XNNPACK took the graph (the kernels a phone's CPU runs), in every precision.
        assert!(d["xnnpack_partitions"].as_u64() >= Some(1), "{}: {d}", rec.model.label());
        assert!(d["rounds"].as_u64() >= Some(1) && d["init_us"].as_f64() > Some(0.0), "{d}");
        // The runner's protocol fields: how the samples were taken, and the cool-down waited.
        assert!(d["runs_per_sample"].as_u64() >= Some(1) && d["warmup_runs"].as_u64() >= Some(2), "{d}");
        assert!(d["cooldown_us"].as_f64() >= Some(0.0) && d["window_us"].as_f64().is_some(), "{d}");
        let want = if rec.model.int8_io { "int8" } else { "float32" };
        assert_eq!(d["input_dtype"], want, "{}", rec.model.label());
    }
    let precisions: Vec<(Precision, bool)> = recs.iter().map(|r| (r.model.precision, r.model.int8_io)).collect();
    for q in quantizations() {
        assert_eq!(precisions.iter().filter(|p| **p == (q.precision, q.int8_io)).count(), 3, "{precisions:?}");
    }
    // The same layer in three precisions: three files, three identities.
    let key = &recs[0].model.key;
    let shas: HashSet<&str> = recs.iter().filter(|r| &r.model.key == key).map(|r| r.model_sha256.as_str()).collect();
    assert_eq!(shas.len(), 4);
    // A rerun measures nothing.
    let again = run(&dir, 3, 0);
    assert_eq!((again.reports[0].measured, again.reports[0].skipped), (0, 12));
}

/// Runs in a child process when the parent test sets CHILD_ENV: profiles until killed.
#[test]
fn child_litert_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    run(Path::new(&dir), 4, 400);
}

#[test]
fn kill_9_mid_batch_loses_no_finished_record_and_the_rerun_measures_the_rest() {
    let dir = tmp("litert-kill");
    let n = 16; // 4 layers in 4 precisions, 0.4 s cool-down between models
    let spec = dir.display().to_string();
    kill_child_after("child_litert_entry", CHILD_ENV, &spec, &dir.join("out"), 3, Duration::from_secs(300));
    let before = session::read_journal(&dir.join("out")).unwrap();
    assert!((3..n).contains(&before.len()), "killed after {} of {n}", before.len());
    let out = run(&dir, 4, 0);
    let r = &out.reports[0];
    assert!(r.complete(), "{r:?}");
    assert_eq!((r.skipped, r.measured), (before.len(), n - before.len()));
    let after = session::read_journal(&dir.join("out")).unwrap();
    assert_eq!(after.len(), n);
    assert_eq!(&after[..before.len()], &before[..], "records of the killed run were rewritten");
    assert_eq!(after.iter().map(Record::identity).collect::<HashSet<_>>().len(), n, "duplicate records");
}

/// Whether the script's stop rule and outlier rejection agree with hwnas_runner's on the same
/// samples (the script reimplements them in Python).
#[test]
fn the_scripts_stop_rule_is_the_runners() {
    use hwnas_runner::batch::Entry;
    let dir = tmp("litert-rule");
    let script = dir.join(litert::SCRIPT_NAME);
    std::fs::write(&script, litert::SCRIPT).unwrap();
    // Deterministic sample sets: tight, noisy, with spikes, constant, tiny.
    let mut sets: Vec<Vec<f64>> = vec![vec![100.0, 100.5, 99.5], vec![100.0, 150.0, 200.0], vec![5.0; 6], vec![7.0]];
    let mut x: u64 = 12345;
    for k in 0..40 {
        let n = 3 + k % 17;
        let spread = [0.001, 0.01, 0.04, 0.06, 0.2][k % 5];
        let set = (0..n)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                let spike = if i % 7 == 3 { 3.0 } else { 1.0 };
                (50.0 + 10.0 * k as f64) * (1.0 + spread * (u - 0.5)) * spike
            })
            .collect();
        sets.push(set);
    }
    let entry = Entry {
        model: "m".into(),
        warmup: 0,
        runs: 1,
        threads: 1,
        max_rounds: 3,
        cv_bound: 0.05,
        min_samples: 3,
        cooldown_ms: 0,
        warmup_ms: 0,
        min_time_ms: 0,
        setup_ratio: 0,
        layer_profile_runs: 0,
        window: Default::default(),
        settle_ms: 0,
    };
    let code = format!(
        "import importlib.util, json, sys\n\
         spec = importlib.util.spec_from_file_location('h', {script:?})\n\
         h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)\n\
         e = json.loads(sys.argv[1]); sets = json.loads(sys.argv[2])\n\
         print(json.dumps([[h.keep_mask(s), h.done(e, s, 1), h.done(e, s, 3)] for s in sets]))",
        script = script.display().to_string()
    );
    let out = Command::new(python())
        .args(["-c", &code, &serde_json::to_string(&entry).unwrap(), &serde_json::to_string(&sets).unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<(Vec<bool>, bool, bool)> = serde_json::from_slice(&out.stdout).unwrap();
    let mut stops = 0;
    for (s, (mask, done1, done3)) in sets.iter().zip(got) {
        assert_eq!(mask, hwnas_runner::stats::keep_mask(s), "{s:?}");
        assert_eq!(done1, entry.done(s, 1), "{s:?}");
        assert!(done3, "the round limit stops");
        stops += done1 as usize;
    }
    assert!(stops > 5 && stops < sets.len() - 5, "both outcomes exercised: {stops} of {}", sets.len());
}

/// The script's `h` module loaded from the compiled-in source, running `body` (Python) with
/// `args` as JSON in `a`; its printed JSON.
fn script_eval(body: &str, args: &serde_json::Value) -> serde_json::Value {
    let dir = tmp("script-eval");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hwnas_litert.py");
    std::fs::write(&script, litert::SCRIPT).unwrap();
    let code = format!(
        "import importlib.util, json, sys\n\
         spec = importlib.util.spec_from_file_location('h', {script:?})\n\
         h = importlib.util.module_from_spec(spec); spec.loader.exec_module(h)\n\
         a = json.loads(sys.argv[1])\n{body}",
        script = script.display().to_string()
    );
    let out = Command::new(python()).args(["-c", &code, &args.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The script times as `hwnas_runner::timing::time` does: on a simulated clock (each run
/// advances it by the next of a cycle of costs) both give the same warm-up, grouping, window,
/// samples and rounds, for counts alone, time floors, the setup ratio, tiny runs and unstable ones.
#[test]
fn the_scripts_timing_rule_is_the_runners() {
    use hwnas_runner::timing::{time, Plan};
    let base = Plan {
        warmup: 2,
        warmup_ms: 0,
        runs: 5,
        min_time_ms: 0,
        setup_ratio: 0,
        max_rounds: 3,
        cv_bound: 0.05,
        min_samples: 3,
    };
    let cases: Vec<(Plan, f64, Vec<f64>)> = vec![
        (base.clone(), 1000.0, vec![100.0]),
        (Plan { warmup_ms: 1, min_time_ms: 3, ..base.clone() }, 0.0, vec![100.0]),
        (Plan { setup_ratio: 10, ..base.clone() }, 400.0, vec![50.0]),
        (Plan { min_time_ms: 100, ..base.clone() }, 0.0, vec![0.2]),
        (base.clone(), 0.0, vec![500.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
        (base.clone(), 0.0, vec![100.0, 300.0, 150.0, 90.0, 260.0]),
    ];
    let mut args = Vec::new();
    let mut want = Vec::new();
    for (plan, setup_us, costs) in &cases {
        let clock = std::cell::Cell::new(0.0);
        let n = std::cell::Cell::new(0usize);
        let t = time(
            plan,
            *setup_us,
            || clock.get(),
            || -> Result<(), ()> {
                clock.set(clock.get() + costs[n.get() % costs.len()]);
                n.set(n.get() + 1);
                Ok(())
            },
        )
        .unwrap();
        want.push(serde_json::json!([t.samples_us, t.rounds, t.runs_per_sample, t.warmup_runs, t.window_us]));
        let e = serde_json::json!({"warmup": plan.warmup, "runs": plan.runs, "threads": 1, "max_rounds": plan.max_rounds,
            "cv_bound": plan.cv_bound, "min_samples": plan.min_samples});
        args.push(serde_json::json!({"plan": {"warmup": plan.warmup, "warmup_ms": plan.warmup_ms, "runs": plan.runs,
            "min_time_ms": plan.min_time_ms, "setup_ratio": plan.setup_ratio}, "entry": e, "setup_us": setup_us, "costs": costs}));
    }
    let got = script_eval(
        "out = []\n\
         for c in a:\n\
         \x20   clock = [0.0]; n = [0]\n\
         \x20   def run(c=c):\n\
         \x20       clock[0] += c['costs'][n[0] % len(c['costs'])]; n[0] += 1\n\
         \x20   plan = dict(c['plan'], done=lambda s, r, e=c['entry']: h.done(e, s, r))\n\
         \x20   s, r, t = h.time_runs(plan, c['setup_us'], lambda: clock[0], run)\n\
         \x20   out.append([s, r, t['runs_per_sample'], t['warmup_runs'], t['window_us']])\n\
         print(json.dumps(out))",
        &serde_json::Value::Array(args),
    );
    for (i, (g, w)) in got.as_array().unwrap().iter().zip(&want).enumerate() {
        let (gs, ws) = (g[0].as_array().unwrap(), w[0].as_array().unwrap());
        assert_eq!(gs.len(), ws.len(), "case {i}: sample counts");
        // Equal up to serde_json's float parsing (not correctly rounded without `float_roundtrip`).
        let same = |a: &serde_json::Value, b: &serde_json::Value| {
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1e-12 * b.as_f64().unwrap().abs()
        };
        if let Some(k) = gs.iter().zip(ws).position(|(a, b)| !same(a, b)) {
            panic!("case {i}: sample {k} is {} in the script, {} in the runner", gs[k], ws[k]);
        }
        let tail = |v: &serde_json::Value| v.as_array().unwrap()[1..].to_vec();
        assert_eq!(tail(g), tail(w), "case {i}: rounds, runs per sample, warm-up runs, window");
    }
}

/// The script's cool-down decides as `hwnas_runner::window::Window::check`: the same
/// readings wait or not, and the same ones cannot be checked.
#[test]
fn the_scripts_window_is_the_runners() {
    use hwnas_runner::window::{Reading, Rise, Window};
    let windows = [
        Window { expect_freq_khz: Some(2_000_000), cpus: vec![1], ..Default::default() },
        Window { expect_freq_khz: Some(2_000_000), ..Default::default() },
        Window { max_temp_c: Some(45.0), ..Default::default() },
        Window { rise: Some(Rise { start_c: 38.0, rise_c: 3.0 }), ..Default::default() },
        Window { max_temp_c: Some(45.0), rise: Some(Rise { start_c: 38.0, rise_c: 3.0 }), ..Default::default() },
    ];
    let readings = [
        Reading { cur_freq_khz: vec![Some(2_000_000), Some(1_500_000)], temperature_c: Some(40.0) },
        Reading { cur_freq_khz: vec![Some(2_000_000), Some(2_000_000)], temperature_c: Some(42.0) },
        Reading { cur_freq_khz: vec![None, Some(2_000_000)], temperature_c: Some(46.0) },
        Reading { cur_freq_khz: vec![], temperature_c: None },
    ];
    let (mut args, mut want) = (Vec::new(), Vec::new());
    for w in &windows {
        for r in &readings {
            let (wait, unreadable) = w.check(r);
            want.push((!wait.is_empty(), unreadable.len()));
            let mut reading = serde_json::Map::new();
            reading.insert("cur_freq_khz".into(), serde_json::json!(r.cur_freq_khz));
            if let Some(t) = r.temperature_c {
                reading.insert("temperature_c".into(), t.into());
            }
            args.push(serde_json::json!([w, reading]));
        }
    }
    let got = script_eval(
        "print(json.dumps([[bool(w), len(u)] for w, u in (h.check_window(x, r) for x, r in a)]))",
        &serde_json::Value::Array(args),
    );
    let got: Vec<(bool, usize)> = serde_json::from_value(got).unwrap();
    assert_eq!(got, want);
    assert!(want.iter().any(|w| w.0) && want.iter().any(|w| !w.0 && w.1 == 0), "both outcomes exercised");
}

/// A target that counts pushes./// A target that counts pushes.
struct Counting(AdbTarget, Arc<AtomicUsize>);
impl Target for Counting {
    fn id(&self) -> String {
        self.0.id()
    }
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
        self.0.run(argv, timeout)
    }
    fn push(&self, local: &Path, remote: &str) -> Result<(), TargetError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.push(local, remote)
    }
    fn scratch_dir(&self) -> String {
        self.0.scratch_dir()
    }
    fn info(&self) -> Result<DeviceInfo, TargetError> {
        self.0.info()
    }
}

#[test]
fn a_phone_without_python_and_litert_is_refused_before_anything_is_pushed() {
    let opts = PhoneOptions { daemon: Some(env!("CARGO_BIN_EXE_hwnas-adbd").into()), ..PhoneOptions::default() };
    let phone = SimulatedPhone::start(opts).unwrap();
    let dir = tmp("litert-phone");
    let pushes = Arc::new(AtomicUsize::new(0));
    let target = Counting(AdbTarget::new(&phone.server(), &phone.serial()).unwrap(), pushes.clone());
    let rt = litert();
    let p = protocol(0);
    let (source, ids) = models(1);
    let job = Job { runtime: &rt, protocol: &p, models: &ids, source: &source, out_dir: &dir.join("out") };
    let out = session::run(&job, &[Box::new(target)], &|_| {}).unwrap();
    let r = &out.reports[0];
    assert_eq!(r.measured, 0, "{r:?}");
    let why = r.stopped.clone().unwrap_or_default();
    for want in ["cannot install litert", "python3", "cannot import ai_edge_litert", "--runtime tflite"] {
        assert!(why.contains(want), "`{want}` not in: {why}");
    }
    assert_eq!(pushes.load(Ordering::SeqCst), 0, "something was pushed");
    assert!(session::read_journal(&dir.join("out")).unwrap().is_empty());
}
