//! The real hwnas-runner for the tests that time models with it. It is another package's
//! binary (latency/runner), which `cargo test --workspace` builds but `cargo test -p latency`
//! does not, and `CARGO_BIN_EXE_*` names only this package's binaries; so it is built here,
//! once per test binary, with this test's profile (a no-op when up to date). The workspace's
//! features are resolved (`--workspace --bin`), as for the binary `cargo test --workspace`
//! builds, so the two share one build instead of compiling tract twice.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub fn hwnas_runner() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(build).clone()
}

/// The profile that built this test: its output directory is target/<dir>/deps.
fn profile() -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(|deps| deps.parent()).and_then(|d| d.file_name()).and_then(|d| d.to_str());
    match dir {
        Some("debug") | None => "dev".into(),
        Some(other) => other.into(),
    }
}

fn build() -> PathBuf {
    let args =
        ["build", "--quiet", "--workspace", "--bin", "hwnas-runner", "--profile", &profile(), "--message-format=json"];
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo starts");
    assert!(out.status.success(), "`cargo {}` failed", args.join(" "));
    // cargo's JSON messages name the executable it built (or found fresh).
    let executable = String::from_utf8_lossy(&out.stdout).lines().find_map(|line| {
        let msg: serde_json::Value = serde_json::from_str(line).ok()?;
        let is_runner = msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "hwnas-runner";
        msg["executable"].as_str().filter(|_| is_runner).map(PathBuf::from)
    });
    executable.unwrap_or_else(|| panic!("`cargo {}` reported no hwnas-runner executable", args.join(" ")))
}
