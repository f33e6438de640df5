//! hwnas-runner times models written from the IR and prints one JSON line (its bad-input
//! cases are tested in its own crate, latency/runner).

use crate::runner_binary;

use latency::modelfile::tflite;
use spaces::ir::Weights;
use std::path::PathBuf;
use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(runner_binary::hwnas_runner()).args(args).output().expect("hwnas-runner starts")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-runner-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn times_a_written_model_and_prints_one_json_line() {
    let dir = scratch("ok");
    let net = spaces::presets::PRESETS.iter().find(|p| p.name == "mobilenetv3-large").unwrap().arch().network(Some(64));
    let model = dir.join("mbv3.tflite");
    std::fs::write(&model, tflite::network_model(&net, &Weights::random(&net, 0)).unwrap()).unwrap();
    let path = model.to_str().unwrap();
    for threads in ["1", "2"] {
        let out = runner(&["--model", path, "--warmup", "2", "--runs", "3", "--threads", threads]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(v["runtime"], "hwnas-runner");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["model"], path);
        assert_eq!(v["warmup"], 2);
        assert_eq!(v["threads"], threads.parse::<u64>().unwrap());
        assert!(v["init_us"].as_f64().unwrap() > 0.0);
        let samples: Vec<f64> = v["samples_us"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
        assert_eq!(samples.len(), 3);
        assert!(samples.iter().all(|&s| s > 0.0), "{samples:?}");
    }
    // A single-layer model with no operators at all (an identity layer) also runs.
    let fbnet = spaces::space("fbnet").unwrap();
    let identity = fbnet.layer_table(&[224]).into_iter().find(|l| l.key().starts_with("identity")).unwrap();
    let model = dir.join("identity.tflite");
    std::fs::write(&model, tflite::layer_model(&identity, 0)).unwrap();
    let out = runner(&["--model", model.to_str().unwrap(), "--warmup", "0", "--runs", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Time floors: a 20 ms window of a sub-microsecond model is timed in groups of runs.
    let out = runner(&["--model", model.to_str().unwrap(), "--warmup", "2", "--runs", "5", "--min-time-ms", "20"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = v["samples_us"].as_array().unwrap();
    let per = v["runs_per_sample"].as_u64().unwrap() as f64;
    let timed: f64 = samples.iter().map(|s| s.as_f64().unwrap()).sum::<f64>() * per;
    assert!(
        timed >= 20_000.0 && samples.len() >= 5 && samples.len() <= 8 * 2000,
        "{} samples of {per} runs",
        samples.len()
    );
    assert!(per > 1.0, "an identity layer runs in well under 10 µs");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layer_profiles_time_every_node_of_the_plan_after_the_timed_runs() {
    let dir = scratch("profile");
    let net = spaces::presets::PRESETS.iter().find(|p| p.name == "fbnet-a").unwrap().arch().network(Some(64));
    let (bytes, tensors) = tflite::network_model_mapped(&net, &Weights::random(&net, 0), &Default::default()).unwrap();
    let model = dir.join("fbnet-a.tflite");
    std::fs::write(&model, bytes).unwrap();
    let out =
        runner(&["--model", model.to_str().unwrap(), "--warmup", "1", "--runs", "3", "--layer-profile-runs", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["samples_us"].as_array().unwrap().len(), 3, "profiled runs are not samples");
    let p: hwnas_runner::output::LayerProfile = serde_json::from_value(v["layer_profile"].clone()).unwrap();
    assert_eq!(p.runs, 2);
    let map = latency::profile::LayerMap::new(&net, tensors);
    let t = map.attribute(&p.nodes);
    assert!(t.unattributed.iter().all(|n| n == "input"), "{:?}", t.unattributed);
    // The ops' sum is the time of a run, give or take the runner's bookkeeping between nodes.
    let median = {
        let mut s: Vec<f64> = v["samples_us"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        s.sort_by(f64::total_cmp);
        s[1]
    };
    assert!(t.profiled_us > 0.3 * median && t.profiled_us < 3.0 * median, "{} vs {median}", t.profiled_us);
    assert!(p.total_us >= 2.0 * t.profiled_us * 0.9, "two profiled runs took {} µs", p.total_us);
    std::fs::remove_dir_all(&dir).unwrap();
}
