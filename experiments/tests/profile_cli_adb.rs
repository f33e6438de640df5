//! `hwnas profile` over adb: simulated phones (`hwnas-adbd`, built with the latency
//! crate) behind real adb servers on private ports. The CLI process is killed
//! half-way and rerun; the final dataset must hold every model exactly once.

use crate::adb_support::{hwnas, json_lines, kill, phone, script, start_until, text};
use latency::adb::sim::SimulatedPhone;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn tmp(name: &str) -> PathBuf {
    crate::adb_support::tmp("profile-cli-adb", name)
}

/// Answers like hwnas-runner after 0.2 s, so a run can be killed half-way.
fn runner(dir: &Path) -> PathBuf {
    script(dir, "runner.sh", "#!/bin/sh\nsleep 0.2\necho '{\"samples_us\":[200000,200100,199900]}'\n")
}

fn args(phones: &[&SimulatedPhone], runner: &Path, out: &Path, limit: usize) -> Vec<String> {
    let mut a: Vec<String> = ["profile", "--space", "ofa-mbv3-w1.0", "--table", "--resolutions", "128"]
        .into_iter()
        .map(String::from)
        .collect();
    for p in phones {
        a.extend(["--adb".into(), p.server(), "--device".into(), p.serial()]);
    }
    a.extend(["--limit".into(), limit.to_string(), "--warmup".into(), "0".into(), "--runs".into(), "3".into()]);
    a.extend(["--cooldown-ms".into(), "0".into(), "--runner".into(), runner.display().to_string()]);
    a.extend(["--out".into(), out.display().to_string()]);
    a
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    json_lines(&out.join("journal.jsonl"))
}

/// Rows of the Parquet dataset and their distinct (device, key) pairs, read with pandas.
fn dataset_rows(out: &Path) -> Option<(usize, usize)> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let script = "import sys, pandas as pd\n\
        df = pd.read_parquet(sys.argv[1])\n\
        print(len(df), len(df[['device', 'key']].drop_duplicates()))";
    let o = Command::new(python).args(["-c", script]).arg(out.join("latency.parquet")).output().ok()?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("No module named"), "pandas cannot read the dataset: {err}");
        eprintln!("note: pandas/pyarrow not in .venv (run scripts/setup); skipped the pandas check");
        return None;
    }
    let t = String::from_utf8_lossy(&o.stdout);
    let v: Vec<usize> = t.split_whitespace().map(|n| n.parse().unwrap()).collect();
    Some((v[0], v[1]))
}

#[test]
fn killed_cli_run_resumes_into_a_complete_dataset() {
    let p = phone("Pixel 4");
    let dir = tmp("kill");
    let out = dir.join("out");
    let argv = args(&[&p], &runner(&dir), &out, 10);
    kill(start_until(&argv, || journal(&out).len() >= 3));
    let before = journal(&out).len();
    assert!((3..10).contains(&before), "killed after {before} of 10");

    let o = hwnas(&argv);
    assert!(o.status.success(), "{}", text(&o));
    let expect = format!("{}: measured {}, already done {before}, failed 0", p.serial(), 10 - before);
    assert!(text(&o).contains(&expect), "{}", text(&o));
    let recs = journal(&out);
    assert_eq!(recs.len(), 10);
    let keys: HashSet<&str> = recs.iter().map(|r| r["model"]["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 10, "a model was measured twice");
    if let Some(rows) = dataset_rows(&out) {
        assert_eq!(rows, (10, 10));
    }
}

#[test]
fn two_servers_two_phones_in_parallel() {
    let (a, b) = (phone("Pixel 4"), phone("Galaxy Note10"));
    assert_ne!(a.server(), b.server());
    let dir = tmp("two");
    let out = dir.join("out");
    let start = Instant::now();
    let o = hwnas(&args(&[&a, &b], &runner(&dir), &out, 4));
    assert!(o.status.success(), "{}", text(&o));
    for p in [&a, &b] {
        assert!(text(&o).contains(&format!("{}: measured 4, already done 0, failed 0", p.serial())), "{}", text(&o));
    }
    let recs = journal(&out);
    let t = |serial: String| {
        let ts: Vec<i64> = recs
            .iter()
            .filter(|r| r["device"] == serial.as_str())
            .map(|r| r["timestamp_ms"].as_i64().unwrap())
            .collect();
        (*ts.iter().min().unwrap(), *ts.iter().max().unwrap())
    };
    let ((a0, a1), (b0, b1)) = (t(a.serial()), t(b.serial()));
    assert!(a0 < b1 && b0 < a1, "the queues did not overlap: a {a0}..{a1}, b {b0}..{b1} ({:?})", start.elapsed());
    if let Some(rows) = dataset_rows(&out) {
        assert_eq!(rows, (8, 8));
    }
    // A serial that no server lists is a clear error naming it and every server's answer.
    let mut bad = args(&[&a], &runner(&dir), &dir.join("out2"), 1);
    let i = bad.iter().position(|x| *x == a.serial()).unwrap();
    bad[i] = "no-such-phone".into();
    let o = hwnas(&bad);
    assert!(!o.status.success());
    assert!(text(&o).contains("device no-such-phone not found"), "{}", text(&o));
}

/// Two `hwnas profile` processes aimed at one phone: without `--device-wait-s` the second
/// refuses, naming the first's PID and host; with it, it waits its turn and both finish
/// every model (each run's model files in its own directory on the phone, so neither deletes
/// the other's). A run killed with -9 leaves a lock the next run takes over.
#[test]
fn two_cli_runs_on_one_phone_take_turns() {
    let p = phone("Pixel 4");
    let dir = tmp("one-phone");
    let runner = runner(&dir);
    let (out_a, out_b, out_c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    let a = start_until(&args(&[&p], &runner, &out_a, 6), || !journal(&out_a).is_empty());
    let refused = hwnas(&args(&[&p], &runner, &out_b, 3));
    let t = text(&refused);
    assert!(!refused.status.success(), "{t}");
    assert!(t.contains(&format!("{} is in use", p.serial())) && t.contains(&format!("hwnas PID {}", a.id())), "{t}");
    let mut waiting = args(&[&p], &runner, &out_b, 3);
    waiting.extend(["--device-wait-s".into(), "120".into()]);
    let b = hwnas(&waiting);
    assert!(b.status.success(), "{}", text(&b));
    let a = a.wait_with_output().unwrap();
    assert!(a.status.success(), "{}", text(&a));
    let (ja, jb) = (journal(&out_a), journal(&out_b));
    assert_eq!((ja.len(), jb.len()), (6, 3));
    let last_a = ja.iter().map(|r| r["timestamp_ms"].as_i64().unwrap()).max().unwrap();
    let first_b = jb.iter().map(|r| r["timestamp_ms"].as_i64().unwrap()).min().unwrap();
    assert!(first_b > last_a, "b timed while a held the phone");
    assert!(!p.host_path("/data/local/tmp/hwnas/lock").exists());

    kill(start_until(&args(&[&p], &runner, &out_c, 6), || !journal(&out_c).is_empty()));
    assert!(p.host_path("/data/local/tmp/hwnas/lock").exists(), "the killed run's lock is left behind");
    let o = hwnas(&args(&[&p], &runner, &out_c, 6));
    let t = text(&o);
    assert!(o.status.success() && t.contains("taking over the stale lock"), "{t}");
}
