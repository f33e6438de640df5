//! What the CLI tests over simulated phones share: scratch directories, running `hwnas`,
//! stand-in runner scripts, reading JSON-lines files, and starting a run to kill or
//! unplug under it once it has made some progress.

#![allow(dead_code)] // each test binary uses its own subset

use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A fresh scratch directory for one test of `suite`.
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn phone(model: &str) -> SimulatedPhone {
    SimulatedPhone::start(PhoneOptions { model: model.into(), ..Default::default() })
        .expect("start a simulated phone (needs adb and target/*/hwnas-adbd: cargo build -p latency)")
}

/// An executable stand-in for hwnas-runner at `dir/name`.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    Command::new("chmod").arg("755").arg(&p).status().unwrap();
    p
}

pub fn hwnas(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The parseable lines of a JSON-lines file (none if it does not exist yet).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Starts `hwnas args` (output captured) and returns it once `progress()` holds, failing the
/// test if it exits first or makes no progress in three minutes.
pub fn start_until(args: &[String], progress: impl Fn() -> bool) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hwnas"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !progress() {
        assert!(start.elapsed() < Duration::from_secs(180), "no progress");
        if child.try_wait().unwrap().is_some() {
            panic!("hwnas exited before it was stopped: {}", text(&child.wait_with_output().unwrap()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Kills a run started by [`start_until`].
pub fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}
