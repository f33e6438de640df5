//! The `litert` runtime against the real LiteRT (ai-edge-litert in the repository's .venv,
//! from scripts/setup): single-layer models of a space's table in fp32, fp16 and int8 timed in
//! batches on `local`, each record journaled with the runtime's identity (the script and the
//! LiteRT version); a `kill -9` mid-batch loses no finished record and the rerun measures only
//! the rest; the script's stop rule is the runner's; a phone without Python is refused before
//! anything is pushed.

mod profile_support;

use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::adb::AdbTarget;
use latency::local::LocalTarget;
use latency::modelfile::precision::{Precision, Quantization};
use latency::profile::models::SpaceModels;
use latency::profile::{session, Job, ModelId, ModelSource, Protocol, Record, JOURNAL_FILE};
use latency::runtime::litert::{self, LitertRuntime};
use latency::runtime::{RunConfig, Runtime};
use latency::target::{DeviceInfo, Output, Target, TargetError};
use profile_support::tmp;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        run: RunConfig { threads: 1, warmup: 2, runs: 10, affinity: None },
        cooldown: Duration::from_millis(cooldown_ms),
        timeout: Duration::from_secs(120),
        max_rounds: 2,
        // A shared 2-core machine is noisy; stability is not what these tests check.
        cv_bound: 1.0,
        ..Protocol::default()
    }
}

/// The first `n` layers of the space's table in every precision (int8 with int8 input and
/// output for the third of them), one source serving all.
struct AllPrecisions(Vec<SpaceModels>);
impl ModelSource for AllPrecisions {
    fn build(&self, m: &ModelId) -> Result<Vec<u8>, String> {
        let mut last = String::new();
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
        assert_eq!(rec.runtime.flags.join(" "), "{binary} --model {model} --warmup 2 --runs 10 --threads 1");
        assert!(rec.samples_us.len() >= 10 && rec.samples_us.iter().all(|&s| s > 0.0), "{:?}", rec.samples_us);
        assert!(rec.summary.median_us > 0.0 && rec.summary.median_us < 1e5, "{:?}", rec.summary);
        let d = &rec.detail[0];
        assert_eq!((d["runtime"].as_str(), d["version"].as_str()), (Some("litert"), Some(version.as_str())), "{d}");
        // XNNPACK took the graph (the kernels a phone's CPU runs), in every precision.
        assert!(d["xnnpack_partitions"].as_u64() >= Some(1), "{}: {d}", rec.model.label());
        assert!(d["rounds"].as_u64() >= Some(1) && d["init_us"].as_f64() > Some(0.0), "{d}");
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
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_litert_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let jpath = dir.join("out").join(JOURNAL_FILE);
    let lines = || std::fs::read_to_string(&jpath).map_or(0, |t| t.matches('\n').count());
    let start = Instant::now();
    while lines() < 3 {
        assert!(start.elapsed() < Duration::from_secs(300), "the child measured {} models in 300 s", lines());
        assert!(child.try_wait().unwrap().is_none(), "the child exited before it was killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
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

/// A target that counts pushes.
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
