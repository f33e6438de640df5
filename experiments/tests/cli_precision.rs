//! Issue 16 through the binary: precision is part of identity. `hwnas fit` refuses rows of
//! mixed precisions unless `--precision` selects one, and records it in the predictor file;
//! `hwnas search` refuses to price a job's models with a predictor of another precision
//! (naming both) unless `--allow-precision-mismatch`; jobs and predictor files of older
//! builds (no `precision`) read as fp32 and resume; `hwnas export` refuses precisions and
//! calibration data that do not apply, naming them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

#[track_caller]
fn ok(args: &[&str]) -> String {
    let o = hwnas(args);
    assert!(o.status.success(), "hwnas {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

/// Refused (exit 1 or clap's 2, not a panic) with every `needles` in stderr.
#[track_caller]
fn refused(args: &[&str], needles: &[&str]) -> String {
    let o = hwnas(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(matches!(o.status.code(), Some(1) | Some(2)), "exit {:?}: {err}", o.status.code());
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-precision-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 300 HW-NAS-Bench Pixel 3 architectures, each as measured (fp32) and at 0.6x as int8.
fn mixed_csv() -> &'static Path {
    static CSV: OnceLock<PathBuf> = OnceLock::new();
    CSV.get_or_init(|| {
        let data = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/hw-nas-bench-fbnet/fbnet_cifar100_pixel3.csv");
        let text = std::fs::read_to_string(data).unwrap();
        let mut out = String::from("arch,latency_ms,precision\n");
        for line in text.lines().skip(1).take(300) {
            let (arch, ms) = line.rsplit_once(',').unwrap();
            let ms: f64 = ms.parse().unwrap();
            out += &format!("{arch},{ms},fp32\n{arch},{},int8\n", ms * 0.6);
        }
        let path = scratch("data").join("mixed.csv");
        std::fs::write(&path, out).unwrap();
        path
    })
}

/// A lookup table fitted on the int8 rows, once per test binary.
fn int8_lut() -> &'static Path {
    static LUT: OnceLock<PathBuf> = OnceLock::new();
    LUT.get_or_init(|| fit("int8"))
}

fn fit(precision: &str) -> PathBuf {
    let out = mixed_csv().parent().unwrap().join(format!("{precision}.json"));
    let csv = s(mixed_csv());
    let args = ["fit", "--data", csv, "--space", "fbnet-cifar100", "--predictor", "lut", "--train-count", "200"];
    ok(&[&args[..], &["--precision", precision, "--out", s(&out)]].concat());
    out
}

#[test]
fn fit_refuses_mixed_precisions_and_records_the_one_selected() {
    let csv = s(mixed_csv());
    refused(
        &["fit", "--data", csv, "--space", "fbnet-cifar100", "--predictor", "lut"],
        &["mixes precisions fp32, int8", "--precision"],
    );
    refused(
        &["fit", "--data", csv, "--space", "fbnet-cifar100", "--precision", "fp16"],
        &["no rows in precision fp16", "fp32, int8"],
    );
    refused(&["fit", "--data", csv, "--space", "fbnet-cifar100", "--precision", "int4"], &["int4"]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(int8_lut()).unwrap()).unwrap();
    assert_eq!(doc["precision"], "int8");
}

fn search_args<'a>(lut: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "search",
        "--space",
        "fbnet-cifar100",
        "--latency",
        s(lut),
        "--max-latency-ms",
        "1000",
        "--strategy",
        "random",
        "--population",
        "4",
        "--generations",
        "1",
        "--out",
        s(out),
    ]
}

#[test]
fn search_refuses_a_predictor_of_another_precision_naming_both() {
    let dir = scratch("search");
    let out = dir.join("fp32-job");
    let err =
        refused(&search_args(int8_lut(), &out), &["fitted on int8", "deploys fp32", "--allow-precision-mismatch"]);
    assert!(err.contains(s(int8_lut())), "names the file: {err}");
    assert!(!out.join("config.json").exists(), "nothing is written for a refused job");

    // An int8 job with the int8 table runs, and its config says int8.
    let out = dir.join("int8-job");
    ok(&[&search_args(int8_lut(), &out)[..], &["--precision", "int8"]].concat());
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["precision"], "int8");

    // An fp32 table refuses the int8 job in turn; allowed, the job runs and its log says so.
    let fp32 = fit("fp32");
    let out = dir.join("mismatch");
    let args = [&search_args(&fp32, &out)[..], &["--precision", "int8"]].concat();
    refused(&args, &["fitted on fp32", "deploys int8"]);
    let said = ok(&[&args[..], &["--allow-precision-mismatch"]].concat());
    assert!(said.contains("warning") && said.contains("fp32 measurements"), "{said}");
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    assert!(log.contains("WARNING") && log.contains("allow_precision_mismatch"), "{log}");

    // Differentiable searches derive fp32 networks: an int8 table is refused before training.
    refused(
        &[
            "search",
            "--strategy",
            "fbnet",
            "--space",
            "fbnet-cifar100",
            "--latency",
            s(int8_lut()),
            "--max-latency-ms",
            "1000",
            "--accuracy-data",
            "synthetic:8:10",
            "--out",
            s(&dir.join("dnas")),
        ],
        &["fitted on int8", "deploys fp32"],
    );
}

#[test]
fn an_old_job_and_an_old_predictor_without_precision_resume_as_fp32() {
    let dir = scratch("old");
    let lut = fit("fp32");
    // A predictor file of an older build: no `precision` field.
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&lut).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("precision");
    let old_lut = dir.join("old-lut.json");
    std::fs::write(&old_lut, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = dir.join("job");
    ok(&search_args(&old_lut, &out));
    // ...and a job of an older build: no `precision` in its config or checkpoint.
    for f in ["config.json", "state.json"] {
        let path = out.join(f);
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let config = if f == "state.json" { &mut v["config"] } else { &mut v };
        assert_eq!(config["precision"], "fp32", "{f}");
        config.as_object_mut().unwrap().remove("precision");
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }
    let said = ok(&["search", "--out", s(&out), "--resume"]);
    assert!(said.contains("best architecture"), "{said}");
    // Asking for another precision on resume is a different job.
    refused(&["search", "--out", s(&out), "--resume", "--precision", "int8"], &["precision"]);
}

#[test]
fn export_refuses_precisions_and_calibration_data_that_do_not_apply() {
    let dir = scratch("export");
    let out = dir.join("m.out");
    let base = ["export", "--preset", "mnasnet-b1", "--out", s(&out)];
    let with = |extra: &[&str]| -> Vec<String> { base.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run = |extra: &[&str], needles: &[&str]| {
        let args = with(extra);
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles);
        assert!(!out.exists(), "{extra:?}: nothing is written");
    };
    for f in ["json", "torchscript"] {
        run(&["--format", f, "--precision", "int8"], &[&format!("--format {f} writes fp32 only"), "int8"]);
    }
    run(&["--format", "tflite", "--precision", "fp16", "--int8-io"], &["--int8-io needs --precision int8"]);
    run(&["--format", "onnx", "--calibration-data", "synthetic:4:10"], &["--calibration-data", "fp32"]);
    let raw = dir.join("short.f32");
    std::fs::write(&raw, vec![0u8; 1000]).unwrap();
    run(
        &["--format", "tflite", "--precision", "int8", "--calibration-data", s(&raw)],
        &[s(&raw), "1000 bytes", "1x3x224x224"],
    );
    let nan = dir.join("nan.f32");
    let mut bytes = vec![0u8; 4 * 3 * 224 * 224];
    bytes[400..404].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&nan, bytes).unwrap();
    run(&["--format", "tflite", "--precision", "int8", "--calibration-data", s(&nan)], &[s(&nan), "value 100", "NaN"]);
    let csv = s(mixed_csv());
    run(&["--format", "tflite", "--precision", "int8", "--calibration-data", csv], &[csv, "a file", "cifar10:DIR"]);
    run(
        &["--format", "onnx", "--precision", "int8", "--calibration-data", &format!("cifar10:{}", s(&dir))],
        &["--calibration-data cifar10:", "data_batch_1.bin not found"],
    );
}
