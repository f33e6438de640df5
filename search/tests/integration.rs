//! The crate's integration tests, one module per concern, in one test binary.

mod nn_data;
mod nn_models;
mod nn_supernets;
mod nn_train;
mod ofa_checkpoint;
mod search_common;
mod search_constraints;
mod search_dnas;
mod search_note10;
mod search_objectives;
mod search_quality;
mod search_resume;
mod search_rl;
mod search_supernet;

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
