//! Shared by the profile_* tests: a scripted stand-in for hwnas-runner whose
//! behaviour the model file selects, and a model source writing those files.
#![allow(dead_code)]

use latency::profile::{ModelId, ModelSource};
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
    fn build(&self, m: &ModelId) -> Result<Vec<u8>, String> {
        Ok(m.key.clone().into_bytes())
    }
}

pub fn layers(keys: &[&str]) -> Vec<ModelId> {
    keys.iter().map(|k| ModelId::layer("test", k.to_string(), 224)).collect()
}
