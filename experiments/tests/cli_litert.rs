//! LiteRT and precisions through the binary, on this machine (`--device local`) with the
//! real LiteRT in the repository's .venv: `hwnas profile --runtime litert --precision int8`
//! records int8 layers timed by LiteRT (read back from the Parquet with pandas); precisions a
//! runtime cannot time, and a Python without LiteRT, are refused before anything is pushed;
//! `hwnas search --latency device:local` times int8 members in an int8 job; and the main job
//! (`hwnas search` with no predictor) profiles its table with LiteRT, says so, and caches it
//! under a key naming the runtime.

use latency::runtime::litert::{identity, LitertRuntime};
use latency::runtime::Runtime;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-cli-litert-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// hwnas with the `local` device's scratch directory (lock, pushed runtimes) and the cache in
/// `dir`, so tests running at once do not take turns or share tables.
fn hwnas(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas"))
        .args(args)
        .env("HWNAS_LOCAL_SCRATCH", dir.join("scratch"))
        .env("HWNAS_CACHE", dir.join("cache"))
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = hwnas(dir, args);
    assert!(o.status.success(), "hwnas {}:\n{}", args.join(" "), text(&o));
    text(&o)
}

fn refused(dir: &Path, args: &[&str], want: &[&str]) {
    let o = hwnas(dir, args);
    assert!(!o.status.success(), "hwnas {} succeeded:\n{}", args.join(" "), text(&o));
    for w in want {
        assert!(text(&o).contains(w), "`{w}` not in:\n{}", text(&o));
    }
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn litert() -> LitertRuntime {
    LitertRuntime::new(LitertRuntime::default_python()).expect("LiteRT in .venv (run scripts/setup)")
}

/// Files under `dir`, recursively (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn profile_times_int8_layers_with_litert_into_the_precision_column() {
    let dir = tmp("profile");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    #[rustfmt::skip]
    let args = [
        "profile", "--device", "local", "--space", "fbnet-cifar100", "--table", "--limit", "4",
        "--runtime", "litert", "--precision", "int8", "--warmup", "2", "--runs", "10", "--cooldown-ms", "0",
        "--max-cv", "1", "--out", o,
    ];
    let said = ok(&dir, &args);
    assert!(said.contains("local: measured 4, already done 0, failed 0"), "{said}");
    let recs = json_lines(&out.join("journal.jsonl"));
    assert_eq!(recs.len(), 4);
    let rt = litert();
    for r in &recs {
        assert_eq!(r["model"]["precision"], "int8", "{r}");
        assert_eq!(r["runtime"]["runtime"], "litert");
        assert_eq!(r["runtime"]["binary_sha256"], identity(rt.version()));
        assert_eq!(r["detail"][0]["version"], rt.version());
        assert!(r["summary"]["median_us"].as_f64().unwrap() > 0.0);
    }
    // The Parquet dataset, as pandas reads it.
    let script = "import sys, pandas as pd\n\
        df = pd.read_parquet(sys.argv[1])\n\
        assert len(df) == 4, len(df)\n\
        assert (df.precision == 'int8').all(), df.precision.tolist()\n\
        assert (df.runtime == 'litert').all(), df.runtime.tolist()\n\
        assert (df.latency_ms > 0).all() and (df.kind == 'layer').all()\n\
        assert df.binary_sha256.nunique() == 1\n\
        print('ok', df.latency_ms.min())";
    let py = Command::new(LitertRuntime::default_python())
        .args(["-c", script])
        .arg(out.join("latency.parquet"))
        .output()
        .unwrap();
    assert!(py.status.success(), "pandas: {}", String::from_utf8_lossy(&py.stderr));
    assert!(String::from_utf8_lossy(&py.stdout).starts_with("ok"));
    // A rerun measures nothing.
    let again = ok(&dir, &args);
    assert!(again.contains("local: measured 0, already done 4"), "{again}");
    // --int8-io: int8 input and output tensors, another identity (measured, not reused).
    let io: Vec<&str> = args.iter().copied().chain(["--int8-io"]).collect();
    let said = ok(&dir, &io);
    assert!(said.contains("local: measured 4, already done 0"), "{said}");
    let recs = json_lines(&out.join("journal.jsonl"));
    assert_eq!(recs.len(), 8);
    for r in &recs[4..] {
        assert_eq!((r["model"]["precision"].as_str(), r["model"]["int8_io"].as_bool()), (Some("int8"), Some(true)));
        assert_eq!(r["detail"][0]["input_dtype"], "int8", "{r}");
    }
    assert!(recs[..4].iter().all(|r| r["detail"][0]["input_dtype"] == "float32"));
}

#[test]
fn what_a_runtime_cannot_time_is_refused_before_anything_is_pushed() {
    let dir = tmp("refused");
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let base = ["profile", "--device", "local", "--space", "fbnet-cifar100", "--table", "--limit", "2"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).chain(["--out", o]).collect()
    };
    // hwnas-runner (the default) times fp32 only.
    for p in ["int8", "fp16"] {
        refused(
            &dir,
            &with(&["--precision", p]),
            &[
                &format!("runtime runner cannot time {p} models (it times fp32)"),
                "nothing was pushed",
                "--runtime litert",
            ],
        );
    }
    assert!(!out.join("journal.jsonl").exists());
    assert!(
        files(&dir.join("scratch")).iter().all(|f| !f.starts_with(dir.join("scratch/bin"))),
        "a runtime was pushed"
    );
    refused(&dir, &with(&["--precision", "fp16", "--int8-io"]), &["--int8-io applies to --precision int8 only"]);
    refused(
        &dir,
        &with(&["--runtime", "litert", "--litert-python", "/nonexistent/python"]),
        &["no Python at /nonexistent/python", "scripts/setup"],
    );
    refused(
        &dir,
        &with(&["--runtime", "runner", "--litert-python", "/usr/bin/python3"]),
        &["--litert-python applies to --runtime litert only"],
    );
    refused(&dir, &with(&["--runtime", "tract"]), &["invalid value 'tract'", "runner", "tflite", "litert"]);
    // LiteRT's Python API has no per-op times: --per-layer is refused before anything runs.
    #[rustfmt::skip]
    refused(&dir, &[
        "profile", "--device", "local", "--space", "fbnet-cifar100", "--networks", "2", "--per-layer",
        "--runtime", "litert", "--out", o,
    ], &["runtime litert reports no per-op times", "--per-layer", "nothing was pushed"]);
    assert!(!out.join("journal.jsonl").exists());
    // A measured search of an int8 job with the runner: refused naming both, nothing measured.
    let job = dir.join("job");
    #[rustfmt::skip]
    refused(&dir, &[
        "search", "--space", "fbnet-cifar100", "--max-latency-ms", "10", "--latency", "device:local",
        "--precision", "int8", "--out", job.to_str().unwrap(),
    ], &["latency `local`", "runtime runner cannot time int8 models"]);
    assert!(!job.join("measurements/local/journal.jsonl").exists());
}

#[test]
fn a_measured_int8_search_times_int8_members_with_litert() {
    let dir = tmp("search");
    let job = dir.join("job");
    // Two free layers (the rest pinned to skip) keep the debug build's int8 calibration short.
    let fixes: Vec<String> = (0..20).map(|i| format!("ops[{i}]=skip")).collect();
    #[rustfmt::skip]
    let mut args = vec![
        "search", "--space", "fbnet-cifar100", "--max-latency-ms", "100", "--population", "2",
        "--generations", "1", "--latency", "device:local", "--runtime", "litert", "--precision", "int8",
        "--warmup", "1", "--runs", "5", "--cooldown-ms", "0", "--max-cv", "1", "--out", job.to_str().unwrap(),
    ];
    for f in &fixes {
        args.extend(["--fix", f]);
    }
    let said = ok(&dir, &args);
    assert!(said.contains("latency (local):"), "{said}");
    let recs = json_lines(&job.join("measurements/local/journal.jsonl"));
    assert!(!recs.is_empty());
    for r in &recs {
        assert_eq!((r["model"]["kind"].as_str(), r["model"]["precision"].as_str()), (Some("network"), Some("int8")));
        assert_eq!(r["runtime"]["runtime"], "litert");
        assert!(r["summary"]["median_us"].as_f64().unwrap() > 0.0);
    }
    // The history's latencies are the journal's medians.
    let medians: Vec<f64> = recs.iter().map(|r| r["summary"]["median_us"].as_f64().unwrap() / 1e3).collect();
    for row in json_lines(&job.join("history.jsonl")) {
        let ms = row["latency_ms"][0].as_f64().unwrap();
        assert!(medians.iter().any(|m| (m - ms).abs() < 1e-9), "{ms} ms is no journaled median: {medians:?}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["precision"], "int8");
    assert_eq!(config["latency"][0]["measure"]["runtime"]["kind"], "litert");
}

#[test]
fn the_main_job_profiles_its_table_with_litert_and_says_so() {
    let dir = tmp("main-job");
    let args = |out: &Path| -> Vec<String> {
        ["search", "--space", "fbnet-cifar100", "--max-latency-ms", "50", "--population", "4", "--generations", "1"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--out".into(), out.display().to_string()])
            .collect()
    };
    let first = dir.join("first");
    let a = args(&first);
    let said = ok(&dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
    let rt = litert();
    let describe = format!("LiteRT {} (XNNPACK)", rt.version());
    assert!(
        said.contains(&format!("profiling this machine's CPU with {describe} first: 112 distinct layers")),
        "{said}"
    );
    assert!(said.contains(&format!("fp32 lookup table of 112 entries, timed by {describe}")), "{said}");
    // The cache key names the precision, the runtime and its identity.
    let table = dir.join(format!("cache/local-fbnet-cifar100-fp32-litert-{}", &rt.binary_sha256()[..12]));
    let recs = json_lines(&table.join("journal.jsonl"));
    assert_eq!(recs.len(), 112);
    assert!(recs.iter().all(|r| r["runtime"]["runtime"] == "litert" && r["model"]["precision"] == "fp32"));
    let lut: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(table.join("lut.json")).unwrap()).unwrap();
    assert_eq!(lut["precision"], "fp32");
    // The next job reuses it, naming what timed it.
    let second = dir.join("second");
    let a = args(&second);
    let said = ok(&dir, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        said.contains(&format!("the cached fp32 lookup table of this machine's CPU, timed by {describe}")),
        "{said}"
    );
    assert!(!said.contains("profiling"), "{said}");
}
