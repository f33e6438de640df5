//! The measurement protocol, journal and failure handling on the host, with a
//! scripted stand-in for the runtime whose behaviour each model file selects
//! (good, noisy, malformed, failing, hung), so every path runs in milliseconds.

use crate::profile_support::{layers, runner, tmp, Keys};
use latency::local::LocalTarget;
use latency::profile::job::{DeviceReport, ERRORS_FILE};
use latency::profile::{session, Event, Job, ModelId, Protocol, Record, JOURNAL_FILE};
use latency::target::{DeviceInfo, Output, Target, TargetError};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

fn protocol() -> Protocol {
    Protocol {
        cooldown: Duration::from_millis(1),
        timeout: Duration::from_millis(500),
        max_rounds: 3,
        ..Protocol::counts(1, 6)
    }
}

/// A host target under another name that vanishes after `alive` commands, like an unplugged phone.
struct Phone {
    inner: LocalTarget,
    name: String,
    alive: usize,
    calls: AtomicUsize,
}

impl Phone {
    fn new(dir: &Path, name: &str, alive: usize) -> Phone {
        Phone { inner: LocalTarget::new(dir.join(name)).unwrap(), name: name.into(), alive, calls: AtomicUsize::new(0) }
    }
    fn check(&self) -> Result<(), TargetError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.alive {
            return Err(TargetError::Unreachable { device: self.name.clone(), why: "device offline".into() });
        }
        Ok(())
    }
}

impl Target for Phone {
    fn id(&self) -> String {
        self.name.clone()
    }
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
        self.check()?;
        self.inner.run(argv, timeout)
    }
    fn push(&self, local: &Path, remote: &str) -> Result<(), TargetError> {
        self.check()?;
        self.inner.push(local, remote)
    }
    fn scratch_dir(&self) -> String {
        self.inner.scratch_dir()
    }
    fn info(&self) -> Result<DeviceInfo, TargetError> {
        self.check()?;
        self.inner.info().map(|i| DeviceInfo { serial: self.name.clone(), ..i })
    }
}

fn run(dir: &Path, models: &[ModelId], targets: &[Box<dyn Target>]) -> (session::Outcome, Vec<Event>) {
    let rt = runner(dir);
    let p = protocol();
    let job = Job { runtime: &rt, protocol: &p, models, source: &Keys, out_dir: &dir.join("out") };
    let events = Mutex::new(Vec::new());
    let outcome = session::run(&job, targets, &|e| events.lock().unwrap().push(e)).unwrap();
    (outcome, events.into_inner().unwrap())
}

fn journal(dir: &Path) -> Vec<Record> {
    session::read_journal(&dir.join("out")).unwrap()
}

fn local(dir: &Path) -> Vec<Box<dyn Target>> {
    vec![Box::new(LocalTarget::new(dir.join("scratch")).unwrap())]
}

#[test]
fn measures_rejects_outliers_and_resumes_without_remeasuring() {
    let dir = tmp("resume");
    let models = layers(&["conv-a", "conv-b", "conv-c"]);
    let (out, _) = run(&dir, &models[..2], &local(&dir));
    assert_eq!(out.reports[0].measured, 2);
    assert!(out.problems().is_none(), "{:?}", out.problems());
    let recs = journal(&dir);
    let r = &recs[0];
    assert_eq!(r.samples_us, vec![100.0, 102.0, 101.0, 99.0, 100.0, 250.0]);
    assert_eq!(r.kept, vec![true, true, true, true, true, false]);
    assert_eq!((r.summary.median_us, r.summary.n_rejected, r.rounds), (100.0, 1, 1));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.runtime.runtime, "runner");
    assert_eq!(r.runtime.flags[..3], ["{binary}", "--model", "{model}"]);
    assert_eq!(r.runtime.binary_sha256.len(), 64);
    assert!(r.timed_us > 0.0 && r.wall_us > r.timed_us / 1000.0);

    // A kill mid-write leaves a torn line: it is cut off and the rest resumes.
    let jpath = dir.join("out").join(JOURNAL_FILE);
    let mut bytes = std::fs::read(&jpath).unwrap();
    bytes.extend_from_slice(b"{\"device\":\"local\",\"mod");
    std::fs::write(&jpath, bytes).unwrap();
    let (out, _) = run(&dir, &models, &local(&dir));
    assert_eq!(out.torn_bytes, 22);
    assert_eq!(out.resumed, 2);
    assert_eq!((out.reports[0].skipped, out.reports[0].measured), (2, 1));
    let keys: Vec<String> = journal(&dir).iter().map(|r| r.model.key.clone()).collect();
    assert_eq!(keys, ["conv-a", "conv-b", "conv-c"]);
    // Nothing left to do.
    let (out, _) = run(&dir, &models, &local(&dir));
    assert_eq!((out.reports[0].skipped, out.reports[0].measured), (3, 0));
    assert_eq!(journal(&dir).len(), 3);
}

#[test]
fn unstable_samples_are_repeated_then_flagged() {
    let dir = tmp("noisy");
    let (out, _) = run(&dir, &layers(&["noisy"]), &local(&dir));
    assert_eq!(out.reports[0].flagged, 1);
    let r = &journal(&dir)[0];
    assert_eq!(r.rounds, 3);
    assert_eq!(r.samples_us.len(), 15);
    assert!(r.warnings[0].starts_with("unstable: CV"), "{:?}", r.warnings);
}

#[test]
fn malformed_failing_and_hung_runs_are_reported_and_the_rest_is_kept() {
    let dir = tmp("failures");
    let models = layers(&["ok-1", "garbage", "hang", "ok-2", "fail"]);
    let start = std::time::Instant::now();
    let (out, events) = run(&dir, &models, &local(&dir));
    assert!(start.elapsed() < Duration::from_secs(20));
    let r = &out.reports[0];
    assert_eq!(r.measured, 2);
    let errs: Vec<&str> = r.failed.iter().map(|(_, e)| e.as_str()).collect();
    assert!(
        errs[0].contains("hwnas-runner printed output hwnas cannot read") && errs[0].contains("Segmentation fault")
    );
    assert!(errs[1].contains("did not finish within 500ms"), "{}", errs[1]);
    assert!(errs[2].contains("exited with code 3") && errs[2].contains("cannot map tensor"), "{}", errs[2]);
    assert_eq!(std::fs::read_to_string(dir.join("out").join(ERRORS_FILE)).unwrap().lines().count(), 3);
    assert!(events.iter().any(|e| matches!(e, Event::Failed { model, .. } if model == "layer hang")));
    let problems = out.problems().unwrap();
    assert!(problems.contains("local: measured 2 of 5") && problems.contains("kept 2 records"), "{problems}");
    assert_eq!(journal(&dir).len(), 2);
}

#[test]
fn a_device_that_disappears_stops_alone_and_keeps_its_records() {
    let dir = tmp("vanish");
    let models = layers(&["m1", "m2", "m3", "m4", "m5", "m6"]);
    // Install takes 4 commands when not cached (test, mkdir, push, chmod, mv) and a model about 5.
    let targets: Vec<Box<dyn Target>> =
        vec![Box::new(Phone::new(&dir, "pixel-4", 20)), Box::new(Phone::new(&dir, "note-10", usize::MAX))];
    let (out, _) = run(&dir, &models, &targets);
    let by = |id: &str| out.reports.iter().find(|r| r.device == id).cloned().unwrap_or_else(DeviceReport::default);
    let (lost, fine) = (by("pixel-4"), by("note-10"));
    assert_eq!(fine.measured, 6);
    assert!(fine.complete());
    assert!(lost.measured >= 1 && lost.measured < 6, "{lost:?}");
    assert!(lost.stopped.as_deref().unwrap().contains("device disappeared (device offline)"), "{lost:?}");
    let problems = out.problems().unwrap();
    assert!(problems.starts_with(&format!("pixel-4: measured {} of 6", lost.measured)), "{problems}");
    let recs = journal(&dir);
    assert_eq!(recs.iter().filter(|r| r.device == "pixel-4").count(), lost.measured);
    assert_eq!(recs.iter().filter(|r| r.device == "note-10").count(), 6);
}

#[test]
fn a_second_run_on_the_same_directory_is_refused_and_duplicates_are_rejected() {
    let dir = tmp("lock");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let f = std::fs::File::create(out.join(session::LOCK_FILE)).unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let rt = runner(&dir);
    let p = protocol();
    let models = layers(&["a"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &out };
    let e = session::run(&job, &local(&dir), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("another hwnas process is writing"), "{e}");
    drop(f);
    let twice: Vec<Box<dyn Target>> = vec![Box::new(Phone::new(&dir, "x", 9)), Box::new(Phone::new(&dir, "x", 9))];
    assert!(session::run(&job, &twice, &|_| {}).unwrap_err().to_string().contains("`x` is selected twice"));
}

/// Prints what a stock benchmark_model prints, after checking the flags the protocol relies on.
const BENCHMARK_MODEL: &str = r#"#!/bin/sh
for want in --num_threads=1 --warmup_runs=2 --warmup_min_secs=0 --num_runs=4 --min_secs=0 --use_xnnpack=false; do
  case " $* " in *" $want "*) ;; *) echo "missing $want in: $*" >&2; exit 1 ;; esac
done
echo "STARTING!"
echo "INFO: Initialized TensorFlow Lite runtime."
echo "Running benchmark for at least 2 iterations and at least 0 seconds but terminate if exceeding 150 seconds."
echo "count=2 first=1405 curr=1210 min=1210 max=1405 avg=1307.5 std=97"
echo ""
echo "Running benchmark for at least 4 iterations and at least 0 seconds but terminate if exceeding 150 seconds."
echo "count=4 first=1190 curr=1201 min=1180 max=1201 avg=1192.5 std=8 p5=1180 median=1194 p95=1201"
echo ""
echo "Inference timings in us: Init: 5120, First inference: 1405, Warmup (avg): 1307.5, Inference (avg): 1192.5"
"#;

#[test]
fn tflite_benchmark_model_pinned_with_taskset() {
    use latency::runtime::tflite::TfliteRuntime;
    let dir = tmp("tflite");
    let bm = dir.join("benchmark_model");
    std::fs::write(&bm, BENCHMARK_MODEL).unwrap();
    std::process::Command::new("chmod").arg("755").arg(&bm).status().unwrap();
    let rt = TfliteRuntime::new(&bm, vec!["--use_xnnpack=false".into()]).unwrap();
    let p = Protocol { affinity: Some("1".into()), warmup: 2, runs: 4, ..protocol() };
    let models = layers(&["a"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &dir.join("out") };
    let out = session::run(&job, &local(&dir), &|_| {}).unwrap();
    assert!(out.problems().is_none(), "{:?}", out.problems());
    let r = &journal(&dir)[0];
    // One sample per invocation (benchmark_model prints no per-run times): three rounds to judge stability.
    assert_eq!(r.samples_us, vec![1192.5; 3]);
    assert_eq!(r.rounds, 3);
    assert_eq!(r.timed_us, 3.0 * 4.0 * 1192.5);
    assert_eq!(r.detail[0]["init_us"], 5120.0);
    assert_eq!(r.runtime.flags[..4], ["taskset", "1", "{binary}", "--graph={model}"]);
    assert!(r.runtime.flags.contains(&"--use_xnnpack=false".to_string()));
}

/// A host whose temperature reads `temps[i]` on the i-th check (the last one afterwards; NaN = unreadable).
struct Hot {
    inner: LocalTarget,
    temps: Vec<f64>,
    calls: AtomicUsize,
}

impl Target for Hot {
    fn id(&self) -> String {
        "hot".into()
    }
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
        self.inner.run(argv, timeout)
    }
    fn push(&self, local: &Path, remote: &str) -> Result<(), TargetError> {
        self.inner.push(local, remote)
    }
    fn scratch_dir(&self) -> String {
        self.inner.scratch_dir()
    }
    fn info(&self) -> Result<DeviceInfo, TargetError> {
        let i = self.calls.fetch_add(1, Ordering::SeqCst).min(self.temps.len() - 1);
        // NaN stands for a phone without a readable thermal zone.
        let t = Some(self.temps[i]).filter(|t| !t.is_nan());
        Ok(DeviceInfo { temperature_c: t, ..self.inner.info()? })
    }
}

#[test]
fn waits_for_the_device_to_cool_and_flags_it_if_it_does_not() {
    let dir = tmp("thermal");
    let rt = runner(&dir);
    let p = Protocol {
        max_temp_c: Some(40.0),
        settle_timeout: Duration::from_millis(300),
        settle_poll: Some(Duration::from_millis(10)),
        ..protocol()
    };
    let models = layers(&["a", "b"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &dir.join("out") };
    // Cools down after two readings: first model waits and is clean; then it stays cool.
    let cooling: Vec<Box<dyn Target>> = vec![Box::new(Hot {
        inner: LocalTarget::new(dir.join("s1")).unwrap(),
        temps: vec![48.0, 45.0, 39.5],
        calls: AtomicUsize::new(0),
    })];
    session::run(&job, &cooling, &|_| {}).unwrap();
    let recs = journal(&dir);
    assert!(recs.iter().all(|r| r.warnings.is_empty()), "{:?}", recs[0].warnings);
    assert_eq!(recs[0].device_info.temperature_c, Some(39.5));

    let dir = tmp("thermal-hot");
    let job = Job { out_dir: &dir.join("out"), ..job };
    let hot: Vec<Box<dyn Target>> = vec![Box::new(Hot {
        inner: LocalTarget::new(dir.join("s2")).unwrap(),
        temps: vec![52.0],
        calls: AtomicUsize::new(0),
    })];
    let out = session::run(&job, &hot, &|_| {}).unwrap();
    assert_eq!(out.reports[0].flagged, 2);
    let w = &journal(&dir)[0].warnings;
    assert!(w[0].starts_with("temperature 52.0 °C above 40.0 °C after waiting"), "{w:?}");
}

#[test]
fn an_unreadable_sensor_flags_without_waiting() {
    let dir = tmp("no-sensor");
    let rt = runner(&dir);
    let p = Protocol { max_temp_c: Some(40.0), settle_timeout: Duration::from_secs(60), ..protocol() };
    let models = layers(&["a"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &dir.join("out") };
    let blind: Vec<Box<dyn Target>> = vec![Box::new(Hot {
        inner: LocalTarget::new(dir.join("s")).unwrap(),
        temps: vec![f64::NAN],
        calls: AtomicUsize::new(0),
    })];
    let start = std::time::Instant::now();
    session::run(&job, &blind, &|_| {}).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "waited {:?} for a sensor that cannot be read", start.elapsed());
    assert_eq!(journal(&dir)[0].warnings, ["temperature unreadable (limit 40.0 °C)"]);
}

#[test]
fn a_corrupt_journal_line_is_an_error_not_a_silent_restart() {
    let dir = tmp("corrupt");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join(JOURNAL_FILE), "{\"device\": \"local\"}\n").unwrap();
    let rt = runner(&dir);
    let p = protocol();
    let models = layers(&["a"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &out };
    let e = session::run(&job, &local(&dir), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("journal.jsonl line 1 is not a measurement record") && e.contains("--repair"), "{e}");
}

/// A bad line amid good records: refused with advice to repair; the repair keeps every good
/// record (nothing re-measured) and moves only the bad line aside.
#[test]
fn repair_keeps_the_good_records_and_moves_only_the_bad_line() {
    let dir = tmp("repair");
    let out = dir.join("out");
    let rt = runner(&dir);
    let p = protocol();
    let models = layers(&["a", "b", "c"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &out };
    session::run(&job, &local(&dir), &|_| {}).unwrap();
    let text = std::fs::read_to_string(out.join(JOURNAL_FILE)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let broken = format!("{}\n{{\"half a record\n{}\n{}\n", lines[0], lines[1], lines[2]);
    std::fs::write(out.join(JOURNAL_FILE), &broken).unwrap();
    let e = session::run(&job, &local(&dir), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("line 2 is not a measurement record") && e.contains("3 records are fine"), "{e}");
    assert!(!e.contains("move the file away"), "{e}");

    let opts = session::Options { repair: true, ..Default::default() };
    let o = session::run_with(&job, &local(&dir), &opts, &|_| {}).unwrap();
    assert_eq!(o.repaired, Some((1, out.join("journal.bad.jsonl"))));
    assert_eq!((o.resumed, o.reports[0].measured, o.records), (3, 0, 3));
    assert_eq!(std::fs::read_to_string(out.join("journal.bad.jsonl")).unwrap(), "{\"half a record\n");
    assert_eq!(std::fs::read_to_string(out.join(JOURNAL_FILE)).unwrap(), text);
}

fn parquet_rows(out: &Path) -> usize {
    let f = std::fs::File::open(out.join(latency::profile::DATASET_FILE)).unwrap();
    use polars::prelude::SerReader;
    polars::prelude::ParquetReader::new(f).finish().unwrap().height()
}

/// A duplicated record line is one record (and one dataset row); a complete last record
/// without its newline is kept, not re-measured.
#[test]
fn duplicates_are_one_row_and_an_unterminated_last_record_is_kept() {
    let dir = tmp("dup");
    let out = dir.join("out");
    let rt = runner(&dir);
    let p = protocol();
    let models = layers(&["a", "b", "c"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &out };
    session::run(&job, &local(&dir), &|_| {}).unwrap();
    let text = std::fs::read_to_string(out.join(JOURNAL_FILE)).unwrap();
    let first = text.lines().next().unwrap().to_string();
    std::fs::write(out.join(JOURNAL_FILE), format!("{text}{first}\n")).unwrap();
    let o = session::run(&job, &local(&dir), &|_| {}).unwrap();
    assert_eq!((o.duplicates, o.records, o.reports[0].measured), (1, 3, 0));
    assert_eq!(parquet_rows(&out), 3);

    std::fs::write(out.join(JOURNAL_FILE), text.trim_end()).unwrap();
    let o = session::run(&job, &local(&dir), &|_| {}).unwrap();
    assert!(o.unterminated && o.torn_bytes == 0);
    assert_eq!((o.resumed, o.reports[0].measured, o.records), (3, 0, 3));
    assert_eq!(std::fs::read_to_string(out.join(JOURNAL_FILE)).unwrap(), text);
}

/// Rerunning an output directory with other flags: the other run's records stay in the
/// journal but not in this run's dataset, and the outcome counts them.
#[test]
fn records_of_other_flags_are_kept_but_not_mixed_into_the_dataset() {
    let dir = tmp("flags");
    let out = dir.join("out");
    let rt = runner(&dir);
    let p = protocol();
    let models = layers(&["a", "b"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &out };
    session::run(&job, &local(&dir), &|_| {}).unwrap();
    let p4 = Protocol { threads: 4, ..p.clone() };
    let more = layers(&["a", "b", "c"]);
    let job4 = Job { protocol: &p4, models: &more, ..job };
    let o = session::run(&job4, &local(&dir), &|_| {}).unwrap();
    assert_eq!((o.reports[0].measured, o.records, o.other_settings), (3, 3, 2));
    assert_eq!(journal(&dir).len(), 5);
    assert_eq!(parquet_rows(&out), 3);
    let o = session::run(&job, &local(&dir), &|_| {}).unwrap();
    assert_eq!((o.reports[0].measured, o.records, o.other_settings), (0, 2, 3));
    assert_eq!(parquet_rows(&out), 2);
}
