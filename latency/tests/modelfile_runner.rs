//! hwnas-runner times models written from the IR and prints one JSON line (its bad-input
//! cases are tested in its own crate, latency/runner).

mod runner_binary;

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
    std::fs::remove_dir_all(&dir).unwrap();
}
