//! Issue 17 through the binary: two processes on one job directory, a changed input on
//! `--resume`, and bad numbers and duplicate labels refused with a message naming the
//! option — never a panic (exit code 101), never a file written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-reliability-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A lookup table fitted on HW-NAS-Bench's Pixel 3 measurements, once per test binary.
fn pixel3_lut() -> &'static Path {
    static LUT: OnceLock<PathBuf> = OnceLock::new();
    LUT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hwnas-reliability-lut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("pixel3.json");
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv");
        let o = hwnas(&[
            "fit",
            "--data",
            s(&data),
            "--space",
            "fbnet-cifar100",
            "--predictor",
            "lut",
            "--train-count",
            "300",
            "--out",
            s(&out),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    })
}

fn search_args<'a>(out: &'a Path, generations: &'a str) -> Vec<&'a str> {
    vec![
        "search",
        "--space",
        "fbnet-cifar100",
        "--latency",
        s(pixel3_lut()),
        "--max-latency-ms",
        "1000",
        "--strategy",
        "random",
        "--population",
        "4",
        "--generations",
        generations,
        "--out",
        s(out),
    ]
}

/// Refused (exit 1 or clap's 2, not a panic's 101) with every `needles` in stderr.
#[track_caller]
fn refused(o: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let code = o.status.code();
    assert!(matches!(code, Some(1) | Some(2)), "exit {code:?}: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// (generation, rows) of each block of history.jsonl, in file order.
fn generations(dir: &Path) -> Vec<(u64, usize)> {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
    let mut blocks: Vec<(u64, usize)> = Vec::new();
    for l in text.lines() {
        // A line torn by a kill is not a generation's row.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else { continue };
        let g = v["generation"].as_u64().unwrap();
        match blocks.last_mut() {
            Some((last, n)) if *last == g => *n += 1,
            _ => blocks.push((g, 1)),
        }
    }
    blocks
}

fn committed(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["next_generation"].as_u64())
        .unwrap_or(0)
}

/// Each generation once, in order, with the whole population (4), the last possibly cut
/// short by the kill.
#[track_caller]
fn assert_whole(dir: &Path) {
    let blocks = generations(dir);
    let gens: Vec<u64> = blocks.iter().map(|b| b.0).collect();
    assert_eq!(gens, (0..gens.len() as u64).collect::<Vec<_>>(), "one block per generation, none missing");
    for (g, n) in &blocks[..blocks.len() - 1] {
        assert_eq!(*n, 4, "generation {g} has {n} rows");
    }
}

fn spawn_search(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

#[track_caller]
fn wait_for_generation(dir: &Path, g: u64) {
    let t0 = Instant::now();
    while committed(dir) < g {
        assert!(t0.elapsed() < Duration::from_secs(180), "the search does not reach generation {g}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_search_on_one_out_is_refused_naming_the_owner_and_a_killed_one_resumes_cleanly() {
    let dir = scratch("two");
    let out = dir.join("job");
    let args = search_args(&out, "100000");
    let mut first = spawn_search(&args);
    wait_for_generation(&out, 3);
    let second = hwnas(&[args.clone(), vec!["--resume"]].concat());
    let err = refused(&second, &[s(&out), &format!("PID {}", first.id()), "in use"]);
    assert!(err.contains("another hwnas search job"), "{err}");
    // A second new job is refused too (before it could truncate the history).
    refused(&hwnas(&args), &[s(&out)]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_whole(&out);

    // The killed run's lock is taken over by --resume, which says so, and the history stays whole.
    let at = committed(&out);
    let mut resumed = spawn_search(&[args.clone(), vec!["--resume"]].concat());
    wait_for_generation(&out, at + 3);
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    assert_whole(&out);
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    assert!(log.contains("ended without releasing"), "the takeover is logged: {log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_changed_latency_file_is_refused_on_resume_naming_it() {
    let dir = scratch("changed");
    let lut = dir.join("lut.json");
    std::fs::copy(pixel3_lut(), &lut).unwrap();
    let out = dir.join("job");
    let mut args = search_args(&out, "2");
    args[4] = s(&lut);
    let o = hwnas(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let before = config["inputs"][0]["sha256"].as_str().unwrap().to_string();
    let mut text = std::fs::read_to_string(&lut).unwrap();
    text.push('\n');
    std::fs::write(&lut, text).unwrap();
    let o = hwnas(&[args.clone(), vec!["--resume"]].concat());
    refused(&o, &["changed since the job started", s(&std::fs::canonicalize(&lut).unwrap()), &before[..12]]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_locked_train_or_dnas_directory_is_refused_naming_the_owner() {
    let dir = scratch("train-lock");
    let held = search::lock::lock_dir(&dir, "test").unwrap();
    let o = hwnas(&["train", "--synthetic", "--space", "fbnet-cifar100", "--epochs", "1", "--out", s(&dir)]);
    refused(&o, &[s(&dir), &format!("PID {}", std::process::id()), "another hwnas train job"]);
    let o = hwnas(&[
        "search",
        "--strategy",
        "fbnet",
        "--space",
        "fbnet-cifar100",
        "--latency",
        s(pixel3_lut()),
        "--max-latency-ms",
        "1000",
        "--accuracy-data",
        "synthetic:64:10",
        "--batch",
        "8",
        "--epochs",
        "2",
        "--warmup-epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        s(&dir),
    ]);
    refused(&o, &[s(&dir), &format!("PID {}", std::process::id())]);
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_numbers_and_duplicate_labels_are_refused_naming_the_option() {
    let dir = scratch("numbers");
    let out = dir.join("out");
    let o = s(&out);
    let train = ["train", "--synthetic", "--space", "fbnet-cifar100", "--out", o];
    let lut = s(pixel3_lut());
    let search = ["search", "--space", "fbnet-cifar100", "--latency", lut, "--out", o];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        ([&train[..], &["--batch", "0"]].concat(), "--batch"),
        ([&train[..], &["--resolution", "0"]].concat(), "--resolution"),
        ([&train[..], &["--epochs", "0"]].concat(), "--epochs"),
        ([&train[..], &["--lr", "nan"]].concat(), "--lr"),
        ([&train[..], &["--lr=-0.1"]].concat(), "--lr"),
        ([&train[..], &["--batch", "100000"]].concat(), "--batch"),
        (vec!["eval", "--checkpoint", o, "--synthetic", "--batch", "0"], "--batch"),
        (vec!["bench-train", "--batch", "0"], "--batch"),
        (vec!["bench-train", "--resolution", "0"], "--resolution"),
        (vec!["arch", "stats", "--preset", "mobilenetv2", "--resolution", "30000000"], "--resolution"),
        ([&search[..], &["--max-latency-ms", "nan"]].concat(), "--max-latency-ms"),
        ([&search[..], &["--max-latency-ms", "inf"]].concat(), "--max-latency-ms"),
        ([&search[..], &["--max-latency-ms=-3"]].concat(), "--max-latency-ms"),
        ([&search[..], &["--max-latency-ms", "10", "--population", "0"]].concat(), "--population"),
        ([&search[..], &["--max-latency-ms", "10", "--max-tries", "0"]].concat(), "--max-tries"),
        ([&search[..], &["--max-latency-ms", "10", "--strategy", "fbnet", "--batch", "0"]].concat(), "--batch"),
        (
            vec!["search", "--space", "fbnet-cifar100", "--latency", "x=a.json", "--latency", "x=b.json"]
                .into_iter()
                .chain(["--max-latency-ms", "10", "--out", o])
                .collect(),
            "`x`",
        ),
    ];
    for (args, needle) in &cases {
        let r = hwnas(args);
        let err = refused(&r, &[needle]);
        assert!(!err.contains("invalid type: null"), "{args:?}: {err}");
    }
    for format in ["torchscript", "tflite", "onnx", "json"] {
        let file = dir.join(format!("model.{format}"));
        let args = ["export", "--preset", "mobilenetv2", "--format", format, "--resolution", "0", "--out", s(&file)];
        refused(&hwnas(&args), &["--resolution"]);
        assert!(!file.exists(), "{format}: nothing is written");
    }
    let file = dir.join("model.json");
    let args = ["export", "--preset", "mobilenetv2", "--format", "json", "--out", s(&file)];
    let dup = ["--latency", &format!("x={lut}"), "--latency", &format!("x={lut}")].map(|a| a.to_string());
    let all: Vec<&str> = args.iter().copied().chain(dup.iter().map(|a| a.as_str())).collect();
    refused(&hwnas(&all), &["`x`", "--latency"]);
    assert!(!file.exists());
    // An --out that cannot be created names its path.
    let bad = "/proc/hwnas-no-such-dir/job";
    refused(&hwnas(&search_args(Path::new(bad), "1")), &[bad]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without --latency a search profiles this machine's CPU into a cached table (minutes on first
/// use); a job whose other settings are refused is refused before that: the cache is never
/// created and nothing is written.
#[test]
fn a_search_with_bad_settings_is_refused_before_this_machine_is_profiled() {
    let dir = scratch("no-profile");
    let (cache, out) = (dir.join("cache"), dir.join("job"));
    let cases: [(&[&str], &[&str]); 3] = [
        (&["--strategy", "fbnet", "--max-latency-ms", "10"], &["missing `data`", "--accuracy-data"]),
        (&["--strategy", "fbnet", "--accuracy-data", "synthetic:8:10"], &["--max-latency-ms"]),
        (&["--max-latency-ms", "10", "--epochs", "3"], &["`epochs` (--epochs)", "evolution"]),
    ];
    for (extra, needles) in cases {
        let o = Command::new(env!("CARGO_BIN_EXE_hwnas"))
            .args(["search", "--space", "fbnet-cifar100", "--out", s(&out)])
            .args(extra)
            .env("HWNAS_CACHE", &cache)
            .env("HWNAS_LOCAL_SCRATCH", dir.join("scratch"))
            .output()
            .unwrap();
        refused(&o, needles);
        assert!(!cache.exists(), "{extra:?}: this machine was profiled for a refused job");
        assert!(!out.exists(), "{extra:?}: nothing is written for a refused job");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_resume_refuses_changed_training_data_naming_it() {
    let dir = scratch("train-data");
    let data = dir.join("cifar");
    std::fs::create_dir_all(&data).unwrap();
    // 16 CIFAR-100 records: coarse and fine label bytes, then 32x32x3 pixels.
    let record = |i: u8| [&[0u8, i % 100][..], &[i.wrapping_mul(37); 3072][..]].concat();
    let bytes: Vec<u8> = (0..16).flat_map(record).collect();
    std::fs::write(data.join("train.bin"), &bytes).unwrap();
    let out = dir.join("ckpt");
    let args = [
        "train",
        "--data",
        s(&data),
        "--dataset",
        "cifar100",
        "--space",
        "fbnet-cifar100",
        "--batch",
        "4",
        "--epochs",
        "1",
        "--cpu",
        "--out",
        s(&out),
    ];
    let o = hwnas(&[&args[..], &["--max-steps", "1"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut changed = bytes.clone();
    changed[100] ^= 1;
    std::fs::write(data.join("train.bin"), &changed).unwrap();
    let o = hwnas(&[&args[..], &["--max-steps", "2", "--resume"]].concat());
    refused(&o, &["changed since the job started", s(&data), "training data"]);
    std::fs::write(data.join("train.bin"), &bytes).unwrap();
    let o = hwnas(&[&args[..], &["--max-steps", "2", "--resume"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--config`: flags override the file's fields and the library's defaults fill the rest; an
/// unknown field, a setting of the other kind of search and a changed setting on resume are
/// refused naming them.
#[test]
fn a_config_file_is_overridden_by_flags_and_bad_fields_are_named() {
    let dir = scratch("config-file");
    let file = dir.join("job.json");
    let write = |extra: &str| {
        let lut = serde_json::to_string(s(pixel3_lut())).unwrap();
        std::fs::write(
            &file,
            format!(
                r#"{{"space": "fbnet-cifar100", "latency": [{{"label": "pixel3", "path": {lut}}}],
                    "max_latency_ms": 1000, "strategy": {{"kind": "random"}}, "population": 4,
                    "generations": 5{extra}}}"#
            ),
        )
        .unwrap();
    };
    write("");
    let out = dir.join("job");
    let o = hwnas(&["search", "--config", s(&file), "--generations", "1", "--seed", "3", "--out", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!((saved["generations"].as_u64(), saved["population"].as_u64()), (Some(1), Some(4)), "{saved}");
    assert_eq!((saved["seed"].as_u64(), &saved["strategy"]["kind"]), (Some(3), &"random".into()), "{saved}");
    assert_eq!(saved["max_tries"], 100_000, "the library's default: {saved}");
    assert_eq!(generations(&out), vec![(0, 4), (1, 4)]);
    // The saved config resumes the job; changing a setting on resume is named.
    refused(&hwnas(&["search", "--out", s(&out), "--resume", "--seed", "4"]), &["seed (3 saved, 4 given)"]);
    write(r#", "populaton": 8"#);
    refused(&hwnas(&["search", "--config", s(&file), "--out", s(&dir.join("typo"))]), &["populaton"]);
    write("");
    refused(
        &hwnas(&["search", "--config", s(&file), "--epochs", "3", "--out", s(&dir.join("epochs"))]),
        &["`epochs` (--epochs)", "random"],
    );
    assert!(!dir.join("typo").exists() && !dir.join("epochs").exists(), "nothing is written for a refused job");
    let _ = std::fs::remove_dir_all(&dir);
}
