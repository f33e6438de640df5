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

#[test]
fn a_batch_answers_every_model_with_one_line_and_goes_on_after_a_failure() {
    use hwnas_runner::batch::{read_line, write_manifest, Entry, Outcome, CAPABILITIES};
    let dir = std::env::temp_dir().join(format!("hwnas-runner-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.tflite");
    std::fs::write(&garbage, b"this is not a flatbuffer").unwrap();
    let entry = |m: &str| Entry {
        model: m.into(),
        warmup: 1,
        runs: 2,
        threads: 1,
        max_rounds: 2,
        cv_bound: 0.05,
        min_samples: 3,
        cooldown_ms: 0,
        warmup_ms: 0,
        min_time_ms: 0,
        setup_ratio: 0,
        layer_profile_runs: 0,
        window: Default::default(),
        settle_ms: 0,
    };
    let models = [garbage.display().to_string(), dir.join("missing.tflite").display().to_string()];
    let entries: Vec<Entry> = models.iter().chain(&models).map(|m| entry(m)).collect();
    let manifest = dir.join("manifest.jsonl");
    std::fs::write(&manifest, write_manifest(&entries)).unwrap();
    let out = runner(&["--batch", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().filter_map(read_line).map(Result::unwrap).collect();
    assert_eq!(lines.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 1, 2, 3], "{stdout}");
    for (i, o) in &lines {
        let Outcome::Failed(e) = o else { panic!("{o:?}") };
        assert!(e.contains(if i % 2 == 0 { "garbage.tflite" } else { "missing.tflite" }), "{e}");
    }
    // A bad manifest is an error of the whole batch; --capabilities says batches are taken.
    std::fs::write(&manifest, "{\"model\": 3}\n").unwrap();
    let out = runner(&["--batch", manifest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: manifest line 1:"));
    assert_eq!(String::from_utf8(runner(&["--capabilities"]).stdout).unwrap().trim(), CAPABILITIES);
    std::fs::remove_dir_all(&dir).unwrap();
}
