//! Profiling over adb: simulated phones (`hwnas-adbd`) behind real adb servers on
//! private ports. A run killed half-way resumes without losing or repeating a
//! record; two servers' phones are profiled in parallel; an unplugged phone and a
//! hung command are reported by name while everything measured is kept.
//! The runtime is the scripted stand-in of profile_support (timing is not the point).

use crate::profile_support::{kill_child_after, layers, runner, tmp, Keys};
use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::adb::AdbTarget;
use latency::profile::{session, Job, ModelId, Protocol, Record, DATASET_FILE};
use latency::target::Target;
use polars::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "HWNAS_PROFILE_TEST_CHILD";

fn opts() -> PhoneOptions {
    PhoneOptions { daemon: Some(env!("CARGO_BIN_EXE_hwnas-adbd").into()), ..PhoneOptions::default() }
}

fn protocol(timeout: Duration) -> Protocol {
    Protocol { cooldown: Duration::from_millis(1), timeout, max_rounds: 2, ..Protocol::counts(1, 3) }
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:02}")).collect()
}

fn profile(dir: &Path, models: &[ModelId], targets: &[Box<dyn Target>], timeout: Duration) -> session::Outcome {
    let rt = runner(dir);
    let p = protocol(timeout);
    let job = Job { runtime: &rt, protocol: &p, models, source: &Keys, out_dir: &dir.join("out") };
    session::run(&job, targets, &|_| {}).unwrap()
}

fn adb(phone: &SimulatedPhone) -> Box<dyn Target> {
    Box::new(AdbTarget::connect(&phone.server(), &phone.serial(), Duration::from_secs(10)).unwrap())
}

fn journal(dir: &Path) -> Vec<Record> {
    session::read_journal(&dir.join("out")).unwrap()
}

fn read_dataset(dir: &Path) -> DataFrame {
    let f = std::fs::File::open(dir.join("out").join(DATASET_FILE)).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

/// Runs in a child process when the parent test sets CHILD_ENV: profiles until killed.
#[test]
fn child_profile_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let s = |k: &str| spec[k].as_str().unwrap().to_string();
    let target: Box<dyn Target> = Box::new(AdbTarget::new(&s("server"), &s("serial")).unwrap());
    let keys: Vec<String> = serde_json::from_value(spec["keys"].clone()).unwrap();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    profile(Path::new(&s("dir")), &layers(&keys), &[target], Duration::from_secs(30));
}

#[test]
fn a_killed_run_resumes_with_no_record_lost_or_repeated() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("adb-kill");
    let names = keys("slow", 12);
    let spec = serde_json::json!({"server": phone.server(), "serial": phone.serial(), "dir": dir, "keys": names});
    let spec = spec.to_string();
    kill_child_after("child_profile_entry", CHILD_ENV, &spec, &dir.join("out"), 4, Duration::from_secs(90));
    let before = journal(&dir);
    assert!((4..12).contains(&before.len()), "killed after {} of 12", before.len());

    let out = profile(
        &dir,
        &layers(&names.iter().map(String::as_str).collect::<Vec<_>>()),
        &[adb(&phone)],
        Duration::from_secs(30),
    );
    assert_eq!(out.resumed, before.len());
    let r = &out.reports[0];
    assert!(r.complete(), "{r:?}");
    assert_eq!((r.skipped, r.measured), (before.len(), 12 - before.len()));

    let after = journal(&dir);
    assert_eq!(after.len(), 12);
    assert_eq!(&after[..before.len()], &before[..], "records of the killed run were rewritten");
    let ids: HashSet<_> = after.iter().map(Record::identity).collect();
    assert_eq!(ids.len(), 12, "duplicate records");
    let measured: HashSet<String> = after.iter().map(|r| r.model.key.clone()).collect();
    assert_eq!(measured, names.iter().cloned().collect());
    assert!(after.iter().all(|r| r.device == phone.serial() && r.device_info.server == phone.server()));

    let df = read_dataset(&dir);
    assert_eq!(df.height(), 12);
    assert_eq!(df.column("key").unwrap().n_unique().unwrap(), 12);
    let lat = df.column("latency_ms").unwrap().f64().unwrap();
    assert!(lat.iter().all(|v| v == Some(150.0)), "{df}");
    pandas_reads(&dir.join("out").join(DATASET_FILE), 12);
}

/// The predictors read the dataset with pandas: check the columns they use.
fn pandas_reads(path: &Path, rows: usize) {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = "import sys, pandas as pd\n\
        df = pd.read_parquet(sys.argv[1])\n\
        assert {'kind','key','space','arch','resolution','latency_ms','samples_ms','device','flagged'} <= set(df.columns)\n\
        assert (df.latency_ms > 0).all() and df.samples_ms.map(len).min() > 0\n\
        print(len(df))";
    let out = Command::new(&python).args(["-c", script]).arg(path).output();
    match out {
        Ok(o) if o.status.success() => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), rows.to_string()),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("note: pandas/pyarrow not in .venv (run scripts/setup); skipped the pandas check")
        }
        Ok(o) => panic!("pandas could not read {}: {}", path.display(), String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("note: no {} ({e}); skipped the pandas check", python.display()),
    }
}

#[test]
fn phones_on_two_adb_servers_are_profiled_in_parallel() {
    let a = SimulatedPhone::start(PhoneOptions { model: "Pixel 4".into(), ..opts() }).unwrap();
    let b = SimulatedPhone::start(PhoneOptions { model: "Galaxy Note10".into(), ..opts() }).unwrap();
    assert_ne!(a.server(), b.server());
    let dir = tmp("adb-two");
    let names = keys("slow", 5);
    let models = layers(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let out = profile(&dir, &models, &[adb(&a), adb(&b)], Duration::from_secs(30));
    assert!(out.problems().is_none(), "{:?}", out.problems());
    let recs = journal(&dir);
    assert_eq!(recs.len(), 10);
    let span = |serial: String| {
        let t: Vec<i64> = recs.iter().filter(|r| r.device == serial).map(|r| r.timestamp_ms).collect();
        (*t.iter().min().unwrap(), *t.iter().max().unwrap(), t.len())
    };
    let ((a0, a1, na), (b0, b1, nb)) = (span(a.serial()), span(b.serial()));
    assert_eq!((na, nb), (5, 5));
    // Each phone finished a model while the other was still working: the queues overlapped.
    assert!(a0 < b1 && b0 < a1, "a {a0}..{a1}, b {b0}..{b1}");
    let models: HashSet<String> = recs.iter().map(|r| r.device_info.model.clone()).collect();
    assert_eq!(models, ["Pixel 4", "Galaxy Note10"].into_iter().map(String::from).collect());
    assert_eq!(read_dataset(&dir).height(), 10);
}

#[test]
fn an_unplugged_phone_is_named_and_its_records_are_kept() {
    // The phone drops off after 14 shell commands: installing takes a few, each model about three.
    let gone = SimulatedPhone::start(PhoneOptions { exit_after_commands: Some(14), ..opts() }).unwrap();
    let fine = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("adb-unplug");
    let names = keys("m", 8);
    let models = layers(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let out = profile(&dir, &models, &[adb(&gone), adb(&fine)], Duration::from_secs(30));
    let lost = out.reports.iter().find(|r| r.device == gone.serial()).unwrap();
    let ok = out.reports.iter().find(|r| r.device == fine.serial()).unwrap();
    assert!(ok.complete() && ok.measured == 8, "{ok:?}");
    assert!(lost.measured >= 1 && lost.measured < 8, "{lost:?}");
    assert!(lost.stopped.as_deref().unwrap_or("").contains("device disappeared"), "{lost:?}");
    let problems = out.problems().unwrap();
    assert!(problems.contains(&format!("{}: measured {} of 8", gone.serial(), lost.measured)), "{problems}");
    let recs = journal(&dir);
    assert_eq!(recs.iter().filter(|r| r.device == gone.serial()).count(), lost.measured);
    assert_eq!(read_dataset(&dir).height(), 8 + lost.measured);
}

#[test]
fn a_hung_command_times_out_and_profiling_goes_on() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("adb-hang");
    let models = layers(&["ok-1", "hang", "garbage", "ok-2"]);
    let start = Instant::now();
    let out = profile(&dir, &models, &[adb(&phone)], Duration::from_secs(2));
    assert!(start.elapsed() < Duration::from_secs(40), "{:?}", start.elapsed());
    let r = &out.reports[0];
    assert_eq!(r.measured, 2, "{r:?}");
    assert!(r.stopped.is_none(), "{r:?}");
    assert_eq!(r.failed.len(), 2);
    assert!(r.failed[0].1.contains("did not finish within 2s"), "{}", r.failed[0].1);
    assert!(r.failed[1].1.contains("Segmentation fault"), "{}", r.failed[1].1);
    assert_eq!(journal(&dir).len(), 2);
}
