//! The binary as hwnas runs it: bad files and arguments exit 1 with `error: …` on stderr
//! and nothing on stdout (so hwnas never mistakes a failure for a measurement). Timing real
//! models is tested in `latency` (tests/modelfile_runner.rs), which writes them.

use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas-runner")).args(args).output().expect("hwnas-runner starts")
}

#[test]
fn bad_files_and_arguments_exit_1_with_a_message() {
    let dir = std::env::temp_dir().join(format!("hwnas-runner-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.tflite");
    std::fs::write(&garbage, b"this is not a flatbuffer").unwrap();
    let missing = dir.join("missing.tflite");
    let cases: [(Vec<&str>, &str); 6] = [
        (
            vec!["--model", garbage.to_str().unwrap(), "--warmup", "1", "--runs", "1"],
            "garbage.tflite as a TFLite model",
        ),
        (vec!["--model", missing.to_str().unwrap(), "--warmup", "1", "--runs", "1"], "missing.tflite"),
        (vec!["--warmup", "1", "--runs", "1"], "--model is required\nusage: hwnas-runner"),
        (vec!["--model", "m", "--warmup", "x", "--runs", "1"], "--warmup needs a whole number, got `x`"),
        (vec!["--model", "m", "--warmup", "1", "--runs", "0"], "--runs must be at least 1"),
        (vec!["--model", "m", "--warmup", "1", "--runs", "1", "--fast"], "unknown argument `--fast`"),
    ];
    for (args, expected) in cases {
        let out = runner(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
