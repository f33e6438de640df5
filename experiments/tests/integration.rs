//! The crate's integration tests, one module per concern, in one test binary.

mod adb_support;
mod cli_arch;
mod cli_devices;
mod cli_experiments;
mod cli_export;
mod cli_fit_transfer;
mod cli_litert;
mod cli_ofa_accuracy;
mod cli_ofa_checkpoint;
mod cli_ofa_tutorial;
mod cli_ofa_yaml;
mod cli_precision;
mod cli_reliability;
mod profile_cli;
mod profile_cli_adb;
mod readme_tour;
/// hwnas-runner built for the tests (shared with latency's tests).
#[path = "../../latency/tests/runner_binary/mod.rs"]
mod runner_binary;
mod search_measured;

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
