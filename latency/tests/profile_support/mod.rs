//! Shared by the profile_* tests: a scripted stand-in for hwnas-runner whose
//! behaviour the model file selects, and a model source writing those files.
#![allow(dead_code)]

use latency::profile::{ModelId, ModelSource, SourceError};
use latency::runtime::runner::RunnerRuntime;
use std::path::{Path, PathBuf};

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-profile-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Prints what hwnas-runner prints, or misbehaves as the model file asks. `slow` models
/// take 0.15 s, so a run can be interrupted half-way.
pub const SCRIPT: &str = r#"#!/bin/sh
model="$2"
case "$(cat "$model")" in
  *garbage*) echo "Segmentation fault (core dumped)"; exit 0 ;;
  *fail*) echo "cannot map tensor" >&2; exit 3 ;;
  *hang*) sleep 60 ;;
  *noisy*) echo '{"samples_us":[100,150,200,120,180]}' ;;
  *slow*) sleep 0.15; echo '{"samples_us":[150000,150100,149900]}' ;;
  *) echo "loaded $model"; echo '{"samples_us":[100,102,101,99,100,250],"threads":1}' ;;
esac
"#;

pub fn runner(dir: &Path) -> RunnerRuntime {
    let p = dir.join("fake-runner.sh");
    std::fs::write(&p, SCRIPT).unwrap();
    std::process::Command::new("chmod").arg("755").arg(&p).status().unwrap();
    RunnerRuntime::new(p).unwrap()
}

/// Model files whose content is the layer key, which the script reads.
pub struct Keys;
impl ModelSource for Keys {
    fn build(&self, m: &ModelId) -> Result<Vec<u8>, SourceError> {
        Ok(m.key.clone().into_bytes())
    }
}

pub fn layers(keys: &[&str]) -> Vec<ModelId> {
    keys.iter().map(|k| ModelId::layer("test", k.to_string(), 224)).collect()
}

/// A stand-in that takes batches like hwnas-runner (`--capabilities`, `--batch MANIFEST`),
/// answering each model as [`SCRIPT`] would (`fail`: an error line, `slow`: 0.15 s, `hot`: the
/// runner's reading says 90 °C), and appending one line per invocation to `log`.
pub fn batch_script(log: &Path) -> String {
    format!(
        r#"#!/bin/sh
if [ "$1" = "--capabilities" ]; then echo "{}"; exit 0; fi
echo "$*" >> '{}'
if [ "$1" = "--batch" ]; then cp "$2" "$(dirname '{}')/last-manifest.jsonl"; fi
if [ "$1" != "--batch" ]; then exec sh -c 'echo "{{\"samples_us\":[100,102,101]}}"'; fi
i=0
while IFS= read -r line; do
  model="$(dirname "$2")/$(printf '%s' "$line" | sed 's/.*"model":"\([^"]*\)".*/\1/')"
  case "$(cat "$model")" in
    *fail*) echo "{{\"index\":$i,\"model\":\"$model\",\"error\":\"cannot map tensor\"}}" ;;
    *slow*) sleep 0.15; echo "{{\"index\":$i,\"samples_us\":[150000,150100,149900],\"rounds\":1}}" ;;
    *hot*) echo "{{\"index\":$i,\"samples_us\":[100,101,100],\"rounds\":1,\"temperature_c\":90.0}}" ;;
    *) echo "loaded $model"; echo "{{\"index\":$i,\"samples_us\":[100,102,101,99,100,250],\"rounds\":1}}" ;;
  esac
  i=$((i+1))
done < "$2"
"#,
        hwnas_runner::batch::CAPABILITIES,
        log.display(),
        log.display()
    )
}

pub fn batch_runner(dir: &Path) -> RunnerRuntime {
    let p = dir.join("batch-runner.sh");
    std::fs::write(&p, batch_script(&dir.join("invocations.log"))).unwrap();
    std::process::Command::new("chmod").arg("755").arg(&p).status().unwrap();
    RunnerRuntime::new(p).unwrap()
}

/// Runtime invocations the batch stand-in logged in `dir`.
pub fn invocations(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("invocations.log")).unwrap_or_default().lines().map(String::from).collect()
}

/// Runs test `entry` of the calling module again in a child process of this test binary, with
/// `spec` in the environment variable `env` (the child reads it and profiles into `out`), waits
/// until `out`'s journal holds `at_least` records (the child may not exit first, and must get
/// there within `limit`), then kills it with SIGKILL: a run killed mid-way.
#[track_caller]
pub fn kill_child_after(entry: &str, env: &str, spec: &str, out: &Path, at_least: usize, limit: std::time::Duration) {
    let module = Path::new(std::panic::Location::caller().file()).file_stem().expect("a test file").to_string_lossy();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("{module}::{entry}"), "--nocapture", "--test-threads=1"])
        .env(env, spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let journal = out.join(latency::profile::JOURNAL_FILE);
    let lines = || std::fs::read_to_string(&journal).map_or(0, |t| t.matches('\n').count());
    let start = std::time::Instant::now();
    while lines() < at_least {
        assert!(start.elapsed() < limit, "the child measured {} models in {limit:?}", lines());
        assert!(child.try_wait().unwrap().is_none(), "the child exited before it was killed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}
