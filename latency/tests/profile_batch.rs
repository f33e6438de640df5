//! Batches: a runtime that takes them times a whole queue in few invocations; every record
//! is journaled as its line arrives (a kill mid-batch loses none and a rerun re-measures
//! none); an identical model file is pushed once; a model whose own reading is outside the
//! protocol's window is flagged though the batch's check was fine.

use crate::profile_support::{batch_runner, invocations, kill_child_after, layers, tmp, Keys};
use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::adb::AdbTarget;
use latency::local::LocalTarget;
use latency::profile::job::LAYER_BATCH;
use latency::profile::{session, Job, ModelId, ModelSource, Protocol, Record, SourceError, JOURNAL_FILE};
use latency::target::{DeviceInfo, Output, Target, TargetError};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "HWNAS_BATCH_TEST_CHILD";

fn protocol() -> Protocol {
    Protocol { cooldown: Duration::ZERO, timeout: Duration::from_secs(30), max_rounds: 2, ..Protocol::counts(1, 3) }
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

fn models(names: &[String]) -> Vec<ModelId> {
    layers(&names.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run(
    dir: &Path,
    models: &[ModelId],
    source: &dyn ModelSource,
    target: Box<dyn Target>,
    p: &Protocol,
) -> session::Outcome {
    let rt = batch_runner(dir);
    let job = Job { runtime: &rt, protocol: p, models, source, out_dir: &dir.join("out") };
    session::run(&job, &[target], &|_| {}).unwrap()
}

fn local(dir: &Path) -> Box<dyn Target> {
    Box::new(LocalTarget::new(dir.join("scratch")).unwrap())
}

/// `local`, counting pushes.
struct Counting(LocalTarget, Arc<AtomicUsize>);
impl Target for Counting {
    fn id(&self) -> String {
        self.0.id()
    }
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
        self.0.run(argv, timeout)
    }
    fn run_lines(&self, argv: &[String], t: Duration, f: &mut dyn FnMut(&str)) -> Result<Output, TargetError> {
        self.0.run_lines(argv, t, f)
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
fn a_batch_of_n_models_gives_n_records_in_few_invocations() {
    let dir = tmp("batch-n");
    let n = LAYER_BATCH + 8;
    let out = run(&dir, &models(&keys("m", n)), &Keys, local(&dir), &protocol());
    let r = &out.reports[0];
    assert!(r.complete() && r.measured == n, "{r:?}");
    let recs = session::read_journal(&dir.join("out")).unwrap();
    assert_eq!(recs.len(), n);
    assert_eq!(recs.iter().map(Record::identity).collect::<HashSet<_>>().len(), n);
    // Two batches, each one runtime invocation; records keep the per-model flags.
    let calls = invocations(&dir);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.starts_with("--batch ")), "{calls:?}");
    assert!(recs.iter().all(|r| r.runtime.flags.join(" ").contains("--model {model} --warmup 1 --runs 3")));
    assert!(recs.iter().all(|r| r.samples_us.len() == 6 && r.summary.n_rejected == 1 && r.rounds == 1));
    // A rerun measures nothing.
    let again = run(&dir, &models(&keys("m", n)), &Keys, local(&dir), &protocol());
    assert_eq!((again.reports[0].measured, again.reports[0].skipped), (0, n));
    assert_eq!(invocations(&dir).len(), 2);
}

/// Files whose content is the key up to `#`: `a#1` and `a#2` are one file.
struct Shared;
impl ModelSource for Shared {
    fn build(&self, m: &ModelId) -> Result<Vec<u8>, SourceError> {
        Ok(m.key.split('#').next().unwrap().as_bytes().to_vec())
    }
}

#[test]
fn an_identical_model_file_is_pushed_once_and_failures_do_not_end_the_batch() {
    let dir = tmp("batch-push");
    let pushes = Arc::new(AtomicUsize::new(0));
    let target = Box::new(Counting(LocalTarget::new(dir.join("scratch")).unwrap(), pushes.clone()));
    let names: Vec<String> = ["a#1", "a#2", "b", "a#3", "fail#1", "c"].map(String::from).to_vec();
    let before = pushes.load(Ordering::SeqCst); // (nothing yet: the binary is pushed during the run)
    let out = run(&dir, &models(&names), &Shared, target, &protocol());
    let r = &out.reports[0];
    assert_eq!((r.measured, r.failed.len()), (5, 1), "{r:?}");
    assert!(r.failed[0].1.contains("cannot map tensor"), "{r:?}");
    // The runtime binary, four distinct model files (a, b, fail, c) and the manifest.
    assert_eq!(pushes.load(Ordering::SeqCst) - before, 1 + 4 + 1);
    let recs = session::read_journal(&dir.join("out")).unwrap();
    let sha = |k: &str| recs.iter().find(|r| r.model.key == k).unwrap().model_sha256.clone();
    assert_eq!(sha("a#1"), sha("a#3"));
    assert_ne!(sha("a#1"), sha("b"));
}

#[test]
fn a_model_whose_own_reading_is_hot_is_flagged() {
    let dir = tmp("batch-hot");
    let root = dir.join("sys");
    std::fs::create_dir_all(root.join("sys/class/thermal/thermal_zone0")).unwrap();
    std::fs::write(root.join("sys/class/thermal/thermal_zone0/temp"), "40000\n").unwrap();
    let target = Box::new(LocalTarget::new(dir.join("scratch")).unwrap().with_sys_root(&root));
    let p = Protocol { max_temp_c: Some(80.0), ..protocol() };
    let out =
        run(&dir, &models(&keys("m", 2).into_iter().chain(["hot".into()]).collect::<Vec<_>>()), &Keys, target, &p);
    assert_eq!(out.reports[0].flagged, 1, "{:?}", out.reports[0]);
    let recs = session::read_journal(&dir.join("out")).unwrap();
    let hot = recs.iter().find(|r| r.model.key == "hot").unwrap();
    assert!(hot.warnings.iter().any(|w| w.contains("temperature 90.0 °C above 80.0 °C")), "{:?}", hot.warnings);
    assert_eq!(hot.device_info.temperature_c, Some(90.0));
    assert!(recs.iter().filter(|r| r.model.key != "hot").all(|r| r.warnings.is_empty()));
}

#[test]
fn the_cool_down_window_follows_the_runs_start_and_a_model_still_hot_is_flagged() {
    let dir = tmp("batch-rise");
    let root = dir.join("sys");
    std::fs::create_dir_all(root.join("sys/class/thermal/thermal_zone0")).unwrap();
    std::fs::write(root.join("sys/class/thermal/thermal_zone0/temp"), "40000\n").unwrap();
    let target = Box::new(LocalTarget::new(dir.join("scratch")).unwrap().with_sys_root(&root));
    // The default protocol's rule: at most 3 °C above the device's first reading (40 °C).
    let p = Protocol { settle_timeout: Duration::from_secs(7), ..protocol() };
    assert_eq!(p.max_temp_rise_c, Some(3.0));
    let out =
        run(&dir, &models(&keys("m", 2).into_iter().chain(["hot".into()]).collect::<Vec<_>>()), &Keys, target, &p);
    assert_eq!(out.reports[0].flagged, 1, "{:?}", out.reports[0]);
    let recs = session::read_journal(&dir.join("out")).unwrap();
    let hot = recs.iter().find(|r| r.model.key == "hot").unwrap();
    let why = "temperature 90.0 °C, more than 3.0 °C above the run's start (40.0 °C) when this model started (batch)";
    assert!(hot.warnings.iter().any(|w| w == why), "{:?}", hot.warnings);
    // The runner was told the window and how long to wait for it (the cool-down is its own).
    let manifest = std::fs::read_to_string(dir.join("last-manifest.jsonl")).unwrap();
    let entry: hwnas_runner::batch::Entry = serde_json::from_str(manifest.lines().next().unwrap()).unwrap();
    let rise = entry.window.rise.unwrap();
    assert_eq!((rise.start_c, rise.rise_c, entry.settle_ms), (40.0, 3.0, 7000));
    assert_eq!((entry.cooldown_ms, entry.min_time_ms, entry.setup_ratio), (0, 0, 0), "the test's counts-only protocol");
}

/// Runs in a child process when the parent test sets CHILD_ENV: profiles until killed.
#[test]
fn child_batch_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let dir = Path::new(spec["dir"].as_str().unwrap());
    let names: Vec<String> = serde_json::from_value(spec["keys"].clone()).unwrap();
    let target: Box<dyn Target> = match spec["server"].as_str() {
        Some(server) => Box::new(AdbTarget::new(server, spec["serial"].as_str().unwrap()).unwrap()),
        None => local(dir),
    };
    run(dir, &models(&names), &Keys, target, &protocol());
}

/// Kills a child profiling `n` slow models in one batch once it journaled 3, then resumes.
fn kill_mid_batch(dir: &Path, n: usize, phone: Option<&SimulatedPhone>, target: impl Fn() -> Box<dyn Target>) {
    let names = keys("slow", n);
    let mut spec = serde_json::json!({"dir": dir, "keys": names});
    if let Some(p) = phone {
        spec["server"] = p.server().into();
        spec["serial"] = p.serial().into();
    }
    kill_child_after("child_batch_entry", CHILD_ENV, &spec.to_string(), &dir.join("out"), 3, Duration::from_secs(90));
    let before = session::read_journal(&dir.join("out")).unwrap();
    assert!((3..n).contains(&before.len()), "killed after {} of {n}", before.len());
    // Every record came from the one batch invocation that was killed.
    assert_eq!(invocations(dir).len(), 1, "{:?}", invocations(dir));
    // The killed run's device lock is stale (its PID is gone) and is taken over.
    let out = run(dir, &models(&names), &Keys, target(), &protocol());
    let r = &out.reports[0];
    assert!(r.complete(), "{r:?}");
    assert_eq!((r.skipped, r.measured), (before.len(), n - before.len()));
    let after = session::read_journal(&dir.join("out")).unwrap();
    assert_eq!(after.len(), n);
    assert_eq!(&after[..before.len()], &before[..], "records of the killed run were rewritten");
    assert_eq!(after.iter().map(Record::identity).collect::<HashSet<_>>().len(), n, "duplicate records");
}

#[test]
fn kill_9_mid_batch_on_local_loses_no_finished_record() {
    let dir = tmp("batch-kill");
    kill_mid_batch(&dir, 12, None, || local(&dir));
}

fn opts() -> PhoneOptions {
    PhoneOptions { daemon: Some(env!("CARGO_BIN_EXE_hwnas-adbd").into()), ..PhoneOptions::default() }
}

#[test]
fn kill_9_mid_batch_on_a_phone_behind_the_real_adb_server_loses_no_finished_record() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("batch-kill-adb");
    kill_mid_batch(&dir, 12, Some(&phone), || Box::new(AdbTarget::new(&phone.server(), &phone.serial()).unwrap()));
}

#[test]
fn a_phone_unplugged_mid_batch_keeps_the_records_that_arrived() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("batch-unplug");
    let target: Box<dyn Target> = Box::new(AdbTarget::new(&phone.server(), &phone.serial()).unwrap());
    let jpath = dir.join("out").join(JOURNAL_FILE);
    let names = keys("slow", 12);
    let d = dir.clone();
    let profiling = std::thread::spawn(move || run(&d, &models(&names), &Keys, target, &protocol()));
    let start = Instant::now();
    while std::fs::read_to_string(&jpath).map_or(0, |t| t.matches('\n').count()) < 3 {
        assert!(start.elapsed() < Duration::from_secs(90));
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(phone); // the daemon goes away mid-batch
    let out = profiling.join().unwrap();
    let r = &out.reports[0];
    assert!(r.measured >= 3 && r.measured < 12, "{r:?}");
    assert!(r.stopped.as_deref().unwrap_or("").contains("device disappeared"), "{r:?}");
    assert_eq!(session::read_journal(&dir.join("out")).unwrap().len(), r.measured);
}

#[test]
fn the_real_runner_times_a_batch_on_a_simulated_phone() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("batch-real-adb");
    let rt = latency::runtime::runner::RunnerRuntime::new(crate::runner_binary::hwnas_runner()).unwrap();
    let (source, mut ids) =
        latency::profile::models::SpaceModels::table(spaces::space("fbnet-cifar100").unwrap(), &[], 0).unwrap();
    ids.truncate(3);
    let p = Protocol { max_cv: 1.0, ..protocol() };
    let job = Job { runtime: &rt, protocol: &p, models: &ids, source: &source, out_dir: &dir.join("out") };
    let target: Box<dyn Target> = Box::new(AdbTarget::new(&phone.server(), &phone.serial()).unwrap());
    let out = session::run(&job, &[target], &|_| {}).unwrap();
    assert!(out.problems().is_none(), "{:?}", out.problems());
    let recs = session::read_journal(&dir.join("out")).unwrap();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.detail[0]["rounds"].as_u64().is_some()), "{:?}", recs[0].detail);
}

struct Unbuildable;
impl ModelSource for Unbuildable {
    fn build(&self, m: &ModelId) -> Result<Vec<u8>, SourceError> {
        Err(format!("no file for {}", m.key).into())
    }
}

#[test]
fn a_batch_whose_files_cannot_be_built_stops_naming_the_last_error() {
    let dir = tmp("batch-unbuildable");
    let rt = batch_runner(&dir);
    let p = protocol();
    let models = models(&keys("m", 5));
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Unbuildable, out_dir: &dir.join("out") };
    let stopped = std::sync::Mutex::new(Vec::new());
    let out = session::run(&job, &[local(&dir)], &|e| {
        if let latency::profile::Event::Stopped { why, .. } = e {
            stopped.lock().unwrap().push(why)
        }
    })
    .unwrap();
    let r = &out.reports[0];
    assert_eq!((r.measured, r.failed.len()), (0, 5), "{r:?}");
    let why = r.stopped.clone().unwrap();
    assert!(
        why.starts_with("5 models failed in a row; the last: cannot build the model file: no file for m-04"),
        "{why}"
    );
    assert_eq!(*stopped.lock().unwrap(), [why]);
    assert!(invocations(&dir).is_empty(), "nothing to time, so no batch ran");
}
