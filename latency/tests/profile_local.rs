//! End to end on the host with real pieces: model files written from the IR
//! (single layers of a space's table and sampled networks), timed by a real
//! runtime on the `local` target, journaled and exported to Parquet that pandas reads.
//! Runtimes: hwnas-runner (tract), and LiteRT (the `litert` runtime: ai-edge-litert in the
//! repository's .venv).

mod runner_binary;

use latency::local::LocalTarget;
use latency::profile::models::SpaceModels;
use latency::profile::{session, Job, Kind, Protocol, DATASET_FILE};
use latency::runtime::litert::LitertRuntime;
use latency::runtime::runner::RunnerRuntime;
use latency::runtime::{RunConfig, Runtime};
use latency::target::Target;
use polars::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup", p.display());
    p
}

#[test]
fn hwnas_runner_times_layers_and_networks_into_parquet() {
    let dir = std::env::temp_dir().join(format!("hwnas-profile-local-{}-runner", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = RunnerRuntime::new(runner_binary::hwnas_runner()).unwrap();
    layers_and_networks_of_a_space_into_parquet(&dir, &rt);
}

#[test]
fn litert_times_layers_and_networks_into_parquet() {
    let dir = std::env::temp_dir().join(format!("hwnas-profile-local-{}-litert", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = LitertRuntime::new(LitertRuntime::default_python()).unwrap();
    layers_and_networks_of_a_space_into_parquet(&dir, &rt);
}

fn layers_and_networks_of_a_space_into_parquet(dir: &std::path::Path, rt: &dyn Runtime) {
    let out = dir.join("out");
    let p = Protocol {
        run: RunConfig { threads: 1, warmup: 1, runs: 5, affinity: None },
        cooldown: Duration::ZERO,
        max_rounds: 2,
        // Debug builds on a shared CI machine are noisy; stability is not what this test checks.
        cv_bound: 1.0,
        ..Protocol::default()
    };
    let targets: Vec<Box<dyn Target>> = vec![Box::new(LocalTarget::new(dir.join("scratch")).unwrap())];

    let space = || spaces::space("fbnet-cifar100").unwrap();
    let (layers, mut layer_ids) = SpaceModels::table(space(), &[], 0).unwrap();
    layer_ids.truncate(4);
    let job = Job { runtime: rt, protocol: &p, models: &layer_ids, source: &layers, out_dir: &out };
    let o = session::run(&job, &targets, &|_| {}).unwrap();
    assert!(o.problems().is_none(), "{:?}", o.problems());

    let (nets, net_ids) = SpaceModels::networks(space(), 2, 3).unwrap();
    let job = Job { models: &net_ids, source: &nets, ..job };
    let o = session::run(&job, &targets, &|_| {}).unwrap();
    assert!(o.problems().is_none(), "{:?}", o.problems());
    assert_eq!(o.records, 6);

    let recs = session::read_journal(&out).unwrap();
    assert_eq!(recs.iter().filter(|r| r.model.kind == Kind::Layer).count(), 4);
    for r in &recs {
        assert!(r.samples_us.len() >= 5 && r.samples_us.iter().all(|&s| s > 0.0), "{:?}", r.samples_us);
        assert!(r.summary.median_us > 0.0);
        assert_eq!(r.runtime.runtime, rt.name());
        assert!(r.model_bytes > 0);
    }
    // A whole network takes longer than any one of its layers.
    let max_layer =
        recs.iter().filter(|r| r.model.kind == Kind::Layer).map(|r| r.summary.median_us).fold(0.0, f64::max);
    let min_net =
        recs.iter().filter(|r| r.model.kind == Kind::Network).map(|r| r.summary.median_us).fold(f64::MAX, f64::min);
    assert!(min_net > max_layer, "network {min_net} µs vs layer {max_layer} µs");

    let df = ParquetReader::new(std::fs::File::open(out.join(DATASET_FILE)).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 6);
    let python = python();
    let script = "import sys, json, pandas as pd\n\
        df = pd.read_parquet(sys.argv[1])\n\
        L, N = df[df.kind == 'layer'], df[df.kind == 'network']\n\
        assert len(L) == 4 and len(N) == 2 and (L.arch == '').all() and (N.key == '').all()\n\
        assert (N.space == 'fbnet-cifar100').all() and all(isinstance(json.loads(a), dict) for a in N.arch)\n\
        assert (df.latency_ms > 0).all() and (df.resolution == 32).all()\n\
        print('ok')";
    match std::process::Command::new(&python).args(["-c", script]).arg(out.join(DATASET_FILE)).output() {
        Ok(o) if o.status.success() => assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok"),
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("note: pandas/pyarrow not in .venv (run scripts/setup); skipped the pandas check")
        }
        Ok(o) => panic!("pandas: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => eprintln!("note: no {} ({e}); skipped the pandas check", python.display()),
    }
}
