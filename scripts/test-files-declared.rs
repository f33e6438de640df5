/// With `autotests = false` a test file that is not declared in the crate's
/// tests/integration.rs would silently never run. Included by every crate's integration tests.
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
