//! End to end on the host with real pieces: model files written from the IR
//! (single layers of a space's table and sampled networks), timed by a real
//! runtime on the `local` target, journaled and exported to Parquet that pandas reads.
//! Runtimes: hwnas-runner (tract), and LiteRT (the `litert` runtime: ai-edge-litert in the
//! repository's .venv).

use crate::runner_binary;

use latency::local::LocalTarget;
use latency::profile::models::SpaceModels;
use latency::profile::{session, Job, Kind, Protocol, DATASET_FILE};
use latency::runtime::litert::LitertRuntime;
use latency::runtime::runner::RunnerRuntime;
use latency::runtime::Runtime;
use latency::target::Target;
use polars::prelude::*;
use std::path::PathBuf;
use std::time::Duration;

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup", p.display());
    p
}

/// `--per-layer` with the real runner: tract's per-node profile of each network is attributed
/// to the network's IR layers (the writer's tensor map), every timed layer gets a row, and a
/// network's rows sum to its latency.
#[test]
fn per_layer_times_inside_networks_are_rows_that_sum_to_the_network() {
    let dir = std::env::temp_dir().join(format!("hwnas-profile-local-{}-per-layer", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("out");
    let rt = RunnerRuntime::new(runner_binary::hwnas_runner()).unwrap();
    let p = Protocol { layer_profile_runs: 3, max_rounds: 1, max_cv: 1.0, ..Protocol::counts(1, 5) };
    let targets: Vec<Box<dyn Target>> = vec![Box::new(LocalTarget::new(dir.join("scratch")).unwrap())];
    let space = spaces::space("fbnet-cifar100").unwrap();
    let nets: Vec<spaces::ir::Network> = {
        let (_, ids) = SpaceModels::networks(spaces::space("fbnet-cifar100").unwrap(), 2, 5).unwrap();
        ids.iter().map(|m| space.network_at(&space.parse(&m.arch).unwrap(), m.resolution)).collect()
    };
    let (source, ids) = SpaceModels::networks(spaces::space("fbnet-cifar100").unwrap(), 2, 5).unwrap();
    let job = Job { runtime: &rt, protocol: &p, models: &ids, source: &source, out_dir: &out };
    let o = session::run(&job, &targets, &|_| {}).unwrap();
    assert!(o.problems().is_none(), "{:?}", o.problems());
    assert!(o.reports[0].phases.profile_us > 0.0, "the profiled runs are accounted for");
    let recs = session::read_journal(&out).unwrap();
    for (r, net) in recs.iter().zip(&nets) {
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let t = r.layer_times.as_ref().expect("per-layer times");
        let timed: Vec<String> = net.layers.iter().filter(|l| l.is_timed()).map(|l| l.key()).collect();
        assert_eq!(t.layers.iter().map(|l| l.key.clone()).collect::<Vec<_>>(), timed);
        // tract's nodes all map to a layer but the input.
        assert!(t.unattributed.iter().all(|n| n == "input"), "{:?}", t.unattributed);
        assert!(t.unattributed_us <= 0.01 * t.profiled_us, "{t:?}");
        // Convolutions take time; identity layers lower to nothing.
        for (l, layer) in t.layers.iter().zip(net.layers.iter().filter(|l| l.is_timed())) {
            match layer.op {
                spaces::ir::Op::Identity => assert_eq!(l.op_us, 0.0, "{}", l.name),
                _ => assert!(l.op_us > 0.0, "{}", l.name),
            }
        }
    }
    let script = r#"
import sys, pandas as pd
df = pd.read_parquet(sys.argv[1])
N, L = df[df.kind == 'network'], df[df.kind == 'layer-in-network']
assert len(N) == 2 and len(L) > 20, (len(N), len(L))
for arch, g in L.groupby('arch'):
    net = N[N.arch == arch].latency_ms.iloc[0]
    assert abs(g.latency_ms.sum() - net) < 1e-9 * net, (g.latency_ms.sum(), net)
    assert abs(g.share.sum() - 1) < 1e-9 and (g.layer_index.diff().dropna() > 0).all()
assert L.samples_ms.map(len).eq(0).all() and L.std_ms.isna().all() and N.share.isna().all()
print('ok')
"#;
    let o = std::process::Command::new(python()).args(["-c", script]).arg(out.join(DATASET_FILE)).output().unwrap();
    assert!(o.status.success(), "pandas: {}", String::from_utf8_lossy(&o.stderr));
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
        cooldown: Duration::ZERO,
        max_rounds: 2,
        // Debug builds on a shared CI machine are noisy; stability is not what this test checks.
        max_cv: 1.0,
        ..Protocol::counts(1, 5)
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
