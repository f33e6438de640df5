//! The crate's integration tests, one module per concern, in one test binary.

mod adb_messages;
mod adb_protocol;
mod adb_sim;
mod benchmark_logs;
mod device_lock;
mod modelfile_files;
mod modelfile_precision;
mod modelfile_runner;
mod modelfile_runtimes;
mod profile_adb;
mod profile_batch;
mod profile_litert;
mod profile_local;
mod profile_protocol;
mod profile_support;
mod runner_binary;

/// The full name of test `f` of the module calling this, as `--exact` wants it (a test that
/// runs this binary again to be killed mid-run names its child entry this way).
#[track_caller]
fn test_name(f: &str) -> String {
    let file = std::panic::Location::caller().file();
    let module = std::path::Path::new(file).file_stem().expect("a test file").to_string_lossy();
    format!("{module}::{f}")
}

/// With `autotests = false` a test file that is not declared above would silently never run.
#[test]
fn every_test_file_is_declared_here() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = std::fs::read_to_string(dir.join("integration.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let module = path.extension().is_some_and(|e| e == "rs") || path.join("mod.rs").is_file();
        if module && stem != "integration" {
            assert!(this.contains(&format!("mod {stem};")), "tests/{stem} is not declared in tests/integration.rs");
        }
    }
}
