//! `hwnas profile` as a user runs it, on the host (`--device local`), with a
//! scripted stand-in for hwnas-runner (`--runner`) so the test does not depend
//! on how fast a debug build runs models: argument handling, real model files
//! from the space, the journal/resume cycle, the Parquet output and failures.

use crate::runner_binary;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-profile-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Answers like hwnas-runner, after checking it was handed a TFLite flatbuffer
/// (file identifier `TFL3` at byte 4). `$RUNNER_BROKEN` makes it print garbage instead.
const RUNNER: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do case "$1" in --model) model="$2"; shift ;; esac; shift; done
[ "$(dd if="$model" bs=1 skip=4 count=4 2>/dev/null)" = TFL3 ] || { echo "not a tflite file: $model" >&2; exit 2; }
[ -n "$RUNNER_BROKEN" ] && { echo "Illegal instruction"; exit 0; }
echo '{"samples_us":[510,500,505,495,2000]}'
"#;

fn runner(dir: &Path) -> PathBuf {
    let p = dir.join("runner.sh");
    std::fs::write(&p, RUNNER).unwrap();
    Command::new("chmod").arg("755").arg(&p).status().unwrap();
    p
}

fn hwnas(args: &[&str]) -> Output {
    hwnas_env(args, &[])
}

/// Runs hwnas with the `local` device's scratch directory (and lock) beside `--out`, so tests
/// running at once do not take turns on one host lock; `env` may set another.
fn hwnas_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hwnas"));
    c.args(args).env_remove("RUNNER_BROKEN");
    if let Some(out) = args.iter().position(|a| *a == "--out").and_then(|i| args.get(i + 1)) {
        c.env("HWNAS_LOCAL_SCRATCH", format!("{out}.local-scratch"));
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn journal_lines(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn table_subset_resumes_and_writes_parquet() {
    let dir = tmp("table");
    let out = dir.join("out");
    let runner = runner(&dir);
    let base = [
        "profile",
        "--device",
        "local",
        "--space",
        "ofa-mbv3-w1.0",
        "--table",
        "--resolutions",
        "128",
        "--warmup",
        "1",
        "--runs",
        "5",
        "--cooldown-ms",
        "0",
    ];
    let run = |limit: &str| {
        let mut args = base.to_vec();
        args.extend(["--limit", limit, "--runner", runner.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        hwnas(&args)
    };
    let o = run("4");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("local: measured 4, already done 0, failed 0, flagged 0"), "{}", text(&o));
    let o = run("6");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("local: measured 2, already done 4"), "{}", text(&o));
    assert!(text(&o).contains("6 records -> "), "{}", text(&o));
    let recs = journal_lines(&out);
    assert_eq!(recs.len(), 6);
    let r = &recs[0];
    assert_eq!(r["model"]["kind"], "layer");
    assert_eq!(
        r["model"]["key"],
        "conv-input:128x128x3-output:64x64x16-kernel:3-stride:2-groups:1-bias:0-bn:1-act:hswish-se:0-shortcut:none"
    );
    // The 2000 µs outlier is rejected; the median of the rest is 502.5 µs.
    assert_eq!(r["summary"]["median_us"], 502.5);
    assert_eq!(r["summary"]["n_rejected"], 1);
    assert!(out.join("latency.parquet").is_file());
}

#[test]
fn sampled_networks_are_reproducible_by_seed() {
    let dir = tmp("networks");
    let runner = runner(&dir);
    let out = dir.join("out");
    let go = |n: &str| {
        let o = hwnas(&[
            "profile",
            "--device",
            "local",
            "--space",
            "fbnet-cifar100",
            "--networks",
            n,
            "--seed",
            "7",
            "--warmup",
            "0",
            "--runs",
            "5",
            "--cooldown-ms",
            "0",
            "--runner",
            runner.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    assert!(go("2").contains("local: measured 2, already done 0"));
    // The same seed samples the same networks, so the rerun finds them all in the journal.
    assert!(go("2").contains("local: measured 0, already done 2"));
    let recs = journal_lines(&out);
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(r["model"]["kind"], "network");
        assert_eq!(r["model"]["resolution"], 32);
        spaces::space("fbnet-cifar100").unwrap().parse(r["model"]["arch"].as_str().unwrap()).unwrap();
    }
}

/// `--per-layer` with the real hwnas-runner: layer-in-network rows, and `hwnas fit --predictor
/// lut` builds OFA's table from those of its training networks and scores the rest.
#[test]
fn per_layer_rows_from_networks_make_a_lookup_table() {
    let dir = tmp("per-layer");
    let out = dir.join("out");
    let runner = runner_binary::hwnas_runner();
    let refused =
        hwnas(&["profile", "--device", "local", "--space", "fbnet-cifar100", "--table", "--per-layer", "--out", "x"]);
    assert!(!refused.status.success() && text(&refused).contains("--networks"), "{}", text(&refused));
    // Counts only (a debug build of tract is slow): 1 warm-up run, 5 timed, 20 profiled; a
    // shared machine's noise is not what this test checks.
    let o = hwnas(&[
        "profile",
        "--device",
        "local",
        "--space",
        "fbnet-cifar100",
        "--networks",
        "4",
        "--per-layer",
        "--warmup",
        "1",
        "--warmup-ms",
        "0",
        "--runs",
        "5",
        "--max-cv",
        "1",
        "--min-time-ms",
        "0",
        "--setup-ratio",
        "0",
        "--max-rounds",
        "1",
        "--runner",
        runner.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("local: measured 4, already done 0, failed 0, flagged 0"), "{}", text(&o));
    assert!(text(&o).contains("layer profiles"), "{}", text(&o));
    let recs = journal_lines(&out);
    assert!(recs.iter().all(|r| r["layer_times"]["layers"].as_array().is_some_and(|l| l.len() > 20)));
    assert!(recs.iter().all(|r| r["runtime"]["flags"].as_array().unwrap().iter().any(|f| f == "--layer-profile-runs")));
    let lut = dir.join("lut.json");
    let data = out.join("latency.parquet");
    let fit = hwnas(&[
        "fit",
        "--data",
        data.to_str().unwrap(),
        "--predictor",
        "lut",
        "--train-count",
        "3",
        "--fallback",
        "cost-model",
        "--out",
        lut.to_str().unwrap(),
    ]);
    assert!(fit.status.success(), "{}", text(&fit));
    assert!(text(&fit).contains("train 3 rows / test 1 rows"), "{}", text(&fit));
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&lut).unwrap()).unwrap();
    let entries = doc["entries"].as_array().or(doc["table"]["entries"].as_array()).map_or(0, Vec::len);
    assert!(entries > 20, "{doc}");
}

#[test]
fn bad_requests_and_broken_runtimes_are_clear_errors() {
    let dir = tmp("errors");
    let runner = runner(&dir);
    let out = dir.join("out");
    let o =
        hwnas(&["profile", "--device", "local", "--space", "mnasnet", "--table", "--runtime", "tflite", "--out", "x"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--runtime tflite needs --benchmark-model PATH"), "{}", text(&o));
    let o = hwnas(&["profile", "--device", "local", "--space", "nope", "--table", "--out", "x"]);
    assert!(!o.status.success() && text(&o).contains("nope"), "{}", text(&o));
    let o = hwnas(&[
        "profile",
        "--device",
        "local",
        "--space",
        "mnasnet",
        "--table",
        "--affinity",
        "xyz",
        "--runner",
        runner.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && text(&o).contains("`xyz` is not a hex CPU mask"), "{}", text(&o));

    // The runtime prints garbage: three models fail in a row, the device stops, the error quotes it.
    let o = hwnas_env(
        &[
            "profile",
            "--device",
            "local",
            "--space",
            "mnasnet",
            "--table",
            "--runner",
            runner.to_str().unwrap(),
            "--cooldown-ms",
            "0",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("RUNNER_BROKEN", "1")],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("Illegal instruction"), "{t}");
    assert!(t.contains("local: measured 0 of"), "{t}");
    assert!(t.contains("stopped: 3 models failed in a row"), "{t}");
    assert_eq!(std::fs::read_to_string(out.join("errors.jsonl")).unwrap().lines().count(), 3);
}

/// A stand-in for the stock benchmark_model: insists on the flags hwnas must pass, prints its format.
const BENCHMARK_MODEL: &str = r#"#!/bin/sh
for want in --num_threads=1 --warmup_runs=2 --warmup_min_secs=0 --num_runs=8 --min_secs=0 --use_xnnpack=false --use_gpu=false; do
  case " $* " in *" $want "*) ;; *) echo "missing $want in: $*" >&2; exit 1 ;; esac
done
echo "INFO: STARTING!"
echo "INFO: count=2 first=900 curr=850 min=850 max=900 avg=875 std=25"
echo "INFO: count=8 first=850 curr=840 min=835 max=851 avg=842.25 std=5 p5=835 median=842 p95=851"
echo "INFO: Inference timings in us: Init: 2100, First inference: 900, Warmup (avg): 875, Inference (avg): 842.25"
"#;

#[test]
fn tflite_runtime_with_affinity_and_extra_flags() {
    let dir = tmp("tflite");
    let bm = dir.join("benchmark_model");
    std::fs::write(&bm, BENCHMARK_MODEL).unwrap();
    Command::new("chmod").arg("755").arg(&bm).status().unwrap();
    let out = dir.join("out");
    let o = hwnas(&[
        "profile",
        "--device",
        "local",
        "--space",
        "singlepath",
        "--table",
        "--limit",
        "2",
        "--runtime",
        "tflite",
        "--benchmark-model",
        bm.to_str().unwrap(),
        "--xnnpack",
        "false",
        "--benchmark-arg=--use_gpu=false",
        "--affinity",
        "1",
        "--warmup",
        "2",
        "--warmup-ms",
        "0",
        "--min-time-ms",
        "0",
        "--runs",
        "8",
        "--cooldown-ms",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let recs = journal_lines(&out);
    assert_eq!(recs.len(), 2);
    let flags: Vec<&str> =
        recs[0]["runtime"]["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(flags[..3], ["taskset", "1", "{binary}"]);
    assert_eq!(flags.last(), Some(&"--use_gpu=false"));
    assert_eq!(recs[0]["samples_us"], serde_json::json!([842.25, 842.25, 842.25]));
    let o = hwnas(&[
        "profile",
        "--device",
        "local",
        "--space",
        "singlepath",
        "--table",
        "--benchmark-arg=--use_gpu=true",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text(&o).contains("--benchmark-arg applies to --runtime tflite only"), "{}", text(&o));
}

fn table_args<'a>(runner: &'a str, out: &'a str, limit: &'a str) -> Vec<&'a str> {
    vec![
        "profile",
        "--device",
        "local",
        "--space",
        "ofa-mbv3-w1.0",
        "--table",
        "--resolutions",
        "128",
        "--limit",
        limit,
        "--warmup",
        "1",
        "--runs",
        "5",
        "--cooldown-ms",
        "0",
        "--runner",
        runner,
        "--out",
        out,
    ]
}

/// Journal edges through the CLI: a bad line in the middle is refused with advice to
/// `--repair`, which keeps every good record; duplicated lines are one record and one row;
/// records of other flags are kept in the journal but left out of the dataset, with a warning.
#[test]
fn journal_repair_duplicates_and_other_flags() {
    let dir = tmp("journal");
    let (runner, out) = (runner(&dir), dir.join("out"));
    let (r, o) = (runner.to_str().unwrap(), out.to_str().unwrap());
    let first = hwnas(&table_args(r, o, "4"));
    assert!(first.status.success(), "{}", text(&first));
    let jpath = out.join("journal.jsonl");
    let good = std::fs::read_to_string(&jpath).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // A duplicated line and a garbled one in the middle.
    std::fs::write(&jpath, format!("{}\n{}\n{}\n{{\"torn\n{}\n{}\n", lines[0], lines[1], lines[1], lines[2], lines[3]))
        .unwrap();
    let refused = hwnas(&table_args(r, o, "4"));
    let t = text(&refused);
    assert!(!refused.status.success(), "{t}");
    assert!(t.contains("line 4 is not a measurement record") && t.contains("--repair"), "{t}");
    assert!(!t.contains("move the file away"), "{t}");

    let mut repair = table_args(r, o, "4");
    repair.push("--repair");
    let repaired = hwnas(&repair);
    let t = text(&repaired);
    assert!(repaired.status.success(), "{t}");
    assert!(t.contains("moved 1 unreadable lines to") && t.contains("journal.bad.jsonl"), "{t}");
    assert!(t.contains("local: measured 0, already done 4"), "nothing re-measured: {t}");
    assert!(t.contains("dropped 1 duplicated record lines") && t.contains("4 records -> "), "{t}");
    assert_eq!(std::fs::read_to_string(out.join("journal.bad.jsonl")).unwrap(), "{\"torn\n");

    // `--repair --out DIR` alone repairs without profiling.
    std::fs::write(&jpath, format!("{good}garbage\n")).unwrap();
    let alone = hwnas(&["profile", "--repair", "--out", o]);
    assert!(alone.status.success() && text(&alone).contains("moved 1 unreadable lines"), "{}", text(&alone));

    // Other flags: measured into the journal, kept out of this run's dataset, and said so.
    let mut threads2 = table_args(r, o, "2");
    threads2.extend(["--threads", "2"]);
    let other = hwnas(&threads2);
    let t = text(&other);
    assert!(other.status.success(), "{t}");
    assert!(t.contains("local: measured 2, already done 0"), "{t}");
    assert!(t.contains("warning: 4 journaled records were taken with other runtime settings"), "{t}");
    assert!(t.contains("2 records -> "), "{t}");
    assert_eq!(journal_lines(&out).len(), 6);
}

#[test]
fn bad_numbers_and_addresses_are_refused_naming_the_option() {
    for (flag, value, want) in [
        ("--timeout-s", "0", "--timeout-s"),
        ("--runs", "0", "--runs"),
        ("--threads", "0", "--threads"),
        ("--max-cv", "nan", "--max-cv"),
        ("--max-temp-c", "inf", "--max-temp-c"),
        ("--adb", "127.0.0.1:99999", "port 99999 is not a valid TCP port"),
    ] {
        let o = hwnas(&["profile", "--device", "local", "--space", "mnasnet", "--table", flag, value, "--out", "x"]);
        let t = text(&o);
        assert!(!o.status.success() && t.contains(want) && t.contains(value), "{flag} {value}: {t}");
        assert!(!t.contains("cannot resolve") && !t.contains("measured"), "{flag} {value}: {t}");
    }
    let o = hwnas(&["devices", "--adb", "127.0.0.1:99999"]);
    assert!(text(&o).contains("port 99999 is not a valid TCP port"), "{}", text(&o));
}

/// Two runs on `local` at once (one host scratch directory): the second refuses naming the
/// first's PID; after the first is killed with -9, the next run takes the stale lock over.
#[test]
fn the_local_device_is_locked_against_a_second_run() {
    let dir = tmp("local-lock");
    let slow = dir.join("slow-runner.sh");
    std::fs::write(&slow, format!("#!/bin/sh\nsleep 0.3\n{}", RUNNER.lines().skip(1).collect::<Vec<_>>().join("\n")))
        .unwrap();
    Command::new("chmod").arg("755").arg(&slow).status().unwrap();
    let scratch = dir.join("shared-scratch");
    let env = [("HWNAS_LOCAL_SCRATCH", scratch.to_str().unwrap())];
    let (out_a, out_b) = (dir.join("a"), dir.join("b"));
    let a_args = table_args(slow.to_str().unwrap(), out_a.to_str().unwrap(), "40");
    let mut first = Command::new(env!("CARGO_BIN_EXE_hwnas"))
        .args(&a_args)
        .env("HWNAS_LOCAL_SCRATCH", &scratch)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::fs::read_to_string(out_a.join("journal.jsonl")).map_or(0, |t| t.lines().count()) < 1 {
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "the first run measured nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let b_args = table_args(slow.to_str().unwrap(), out_b.to_str().unwrap(), "2");
    let second = hwnas_env(&b_args, &env);
    let t = text(&second);
    assert!(!second.status.success(), "{t}");
    assert!(t.contains("local is in use") && t.contains(&format!("hwnas PID {}", first.id())), "{t}");
    assert!(t.contains("--device-wait-s"), "{t}");
    first.kill().unwrap();
    first.wait().unwrap();
    let third = hwnas_env(&b_args, &env);
    let t = text(&third);
    assert!(third.status.success(), "{t}");
    assert!(t.contains("taking over the stale lock") && t.contains("local: measured 2"), "{t}");
}
