//! LiteRT (`ai-edge-litert`, the Python package of TFLite's runtime, whose default CPU path is
//! the XNNPACK delegate: the kernels a phone's CPU runs) timing models on the host. The timing
//! program is the Python script `litert.py` beside this file, compiled into hwnas and pushed
//! like a binary; it speaks hwnas-runner's command line, output line and batch manifest, so
//! batches, records and the protocol (warm-up, rounds, the CV stop rule, per-model device
//! readings) are the runner's. It times fp32, fp16 and int8 models.
//!
//! Identity: the SHA-256 recorded with every measurement covers the script and the
//! `ai-edge-litert` version of the Python it runs with, so a changed script or LiteRT release
//! is another runtime and re-measures.
//!
//! Where it runs: on `local` with the host's Python (by default the repository's `.venv`,
//! which `scripts/setup` creates). On any other device only when the device's `python3`
//! imports `ai_edge_litert` of the same version as the host's (a Linux board with pip); a phone
//! has no Python, and the check refuses it, before anything is pushed, naming what the device
//! answered and pointing at `--runtime tflite` (benchmark_model built for Android).

use super::{excerpt, install_bytes, sha256_hex, Round, Runtime, RuntimeError};
use crate::local::LOCAL_ID;
use crate::profile::Protocol;
use crate::target::{shell_quote, Output, Target};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The timing program (see its docstring).
pub const SCRIPT: &str = include_str!("litert.py");
/// Its file name on the device.
pub const SCRIPT_NAME: &str = "hwnas_litert.py";
/// The runtime's name in records.
pub const NAME: &str = "litert";
/// Python code that imports LiteRT's interpreter and prints the package version: the check
/// that a Python can run the script, on the host and on a device.
pub const VERSION_PROBE: &str =
    "import importlib.metadata as m, ai_edge_litert.interpreter; print('ai-edge-litert', m.version('ai-edge-litert'))";
/// The Python on a device other than `local`.
pub const DEVICE_PYTHON: &str = "python3";

const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct LitertRuntime {
    /// The host's Python with ai-edge-litert (used on `local`).
    python: PathBuf,
    /// `ai-edge-litert` version that Python has.
    version: String,
    sha256: String,
}

/// Reads the probe's answer: the version, or why not.
fn probe_answer(out: &Output) -> Result<String, String> {
    if out.exit_code != 0 {
        return Err(excerpt(out));
    }
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("ai-edge-litert ").map(|v| v.trim().to_string()))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| excerpt(out))
}

impl LitertRuntime {
    /// The repository's `.venv` Python (where `scripts/setup` installs ai-edge-litert), as
    /// located when hwnas was built.
    pub fn default_python() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join(".venv/bin/python")
    }

    /// LiteRT through `python`: checks that it imports `ai_edge_litert` and records its version.
    pub fn new(python: impl Into<PathBuf>) -> Result<LitertRuntime, RuntimeError> {
        let python = python.into();
        let setup = |why: String| RuntimeError::NoLitert { why, source: None };
        if !python.is_file() {
            return Err(setup(format!("no Python at {}", python.display())));
        }
        let out = std::process::Command::new(&python).args(["-c", VERSION_PROBE]).output().map_err(|source| {
            RuntimeError::NoLitert { why: format!("cannot start {}", python.display()), source: Some(source) }
        })?;
        let out = Output {
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
            exit_code: out.status.code().unwrap_or(-1),
        };
        let version = probe_answer(&out)
            .map_err(|said| setup(format!("{} cannot import ai_edge_litert; it printed:\n{said}", python.display())))?;
        let sha256 = identity(&version);
        Ok(LitertRuntime { python, version, sha256 })
    }

    /// The `ai-edge-litert` version that times the models.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The Python that runs the script on `target`.
    fn python_on(&self, target: &dyn Target) -> String {
        if target.id() == LOCAL_ID {
            self.python.display().to_string()
        } else {
            DEVICE_PYTHON.into()
        }
    }
}

/// SHA-256 over the script and the LiteRT version: what records name as the runtime's binary.
pub fn identity(version: &str) -> String {
    sha256_hex(format!("{SCRIPT}\n--\nai-edge-litert=={version}\n").as_bytes())
}

impl Runtime for LitertRuntime {
    fn name(&self) -> &str {
        NAME
    }

    fn binary_sha256(&self) -> &str {
        &self.sha256
    }

    /// Checks the device's Python and LiteRT first (nothing is pushed to a device that cannot
    /// run the script; on `local`, [`LitertRuntime::new`] checked the host's), then installs
    /// the script and a launcher that runs it with that Python (`{scratch}/bin/{sha256}/`),
    /// and returns the launcher's path.
    fn install(&self, target: &dyn Target) -> Result<String, RuntimeError> {
        let id = target.id();
        let python = self.python_on(target);
        if id != LOCAL_ID {
            let probe = target.run(&[python.clone(), "-c".into(), VERSION_PROBE.into()], PROBE_TIMEOUT)?;
            let version = probe_answer(&probe).map_err(|said| {
                RuntimeError::Setup(format!(
                    "{id}: the litert runtime times models with Python and ai-edge-litert on the device, and `{python}` \
                     there cannot import ai_edge_litert (a phone has no Python; time TFLite on it with --runtime tflite \
                     --benchmark-model PATH, LiteRT's benchmark_model built for the device); it answered:\n{said}"
                ))
            })?;
            if version != self.version {
                return Err(RuntimeError::Setup(format!(
                    "{id}: `{python}` has ai-edge-litert {version}, but the records name {} (this host's {}): install \
                     the same version on both",
                    self.version,
                    self.python.display()
                )));
            }
        }
        let script_path = install_bytes(target, SCRIPT.as_bytes(), &self.sha256, SCRIPT_NAME)?;
        // One launcher per Python path, so hosts with their venvs in different places never
        // share one that names the other's Python.
        let launcher = format!("#!/bin/sh\nexec {} {} \"$@\"\n", shell_quote(&python), shell_quote(&script_path));
        let name = format!("hwnas-litert-{}", &sha256_hex(python.as_bytes())[..12]);
        install_bytes(target, launcher.as_bytes(), &self.sha256, &name)
    }

    /// Always: the script is hwnas' own and times every manifest ([`Runtime::batch_argv`]).
    fn takes_batches(&self, _target: &dyn Target, _binary: &str) -> bool {
        true
    }

    fn argv(&self, binary: &str, model: &str, cfg: &Protocol) -> Vec<String> {
        super::runner::protocol_argv(binary, model, cfg)
    }

    fn parse(&self, out: &Output) -> Result<Round, RuntimeError> {
        super::runner::read_report(NAME, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> LitertRuntime {
        LitertRuntime { python: "/py".into(), version: "2.3.0".into(), sha256: identity("2.3.0") }
    }

    #[test]
    fn identity_covers_the_script_and_the_version() {
        assert_ne!(identity("2.3.0"), identity("2.4.0"));
        assert_eq!(identity("2.3.0"), identity("2.3.0"));
        assert_eq!(rt().binary_sha256().len(), 64);
    }

    #[test]
    fn command_lines_are_the_runners() {
        let cfg = Protocol { threads: 2, warmup: 3, runs: 7, affinity: Some("8".into()), ..Protocol::default() };
        assert_eq!(
            rt().argv("/b/l", "/m.tflite", &cfg),
            super::super::runner::protocol_argv("/b/l", "/m.tflite", &cfg)
        );
        assert_eq!(
            rt().argv("/b/l", "/m.tflite", &cfg).join(" "),
            "taskset 8 /b/l --model /m.tflite --warmup 3 --runs 7 --threads 2 --warmup-ms 20 --min-time-ms 50 \
             --setup-ratio 15 --layer-profile-runs 0"
        );
        assert_eq!(rt().batch_argv("/b/l", "/m/batch.jsonl", &cfg).join(" "), "taskset 8 /b/l --batch /m/batch.jsonl");
        assert_eq!(rt().precisions(), &crate::modelfile::precision::Precision::ALL);
    }

    #[test]
    fn probe_answers() {
        let out = |stdout: &str, code| Output { stdout: stdout.into(), stderr: "boom".into(), exit_code: code };
        assert_eq!(probe_answer(&out("INFO: x\nai-edge-litert 2.3.0\n", 0)), Ok("2.3.0".into()));
        assert!(probe_answer(&out("", 1)).unwrap_err().contains("boom"));
        assert!(probe_answer(&out("Python 3\n", 0)).is_err());
    }

    #[test]
    fn reads_the_scripts_line() {
        let out = Output {
            stdout:
                "{\"runtime\":\"litert\",\"version\":\"2.3.0\",\"samples_us\":[10.5,11],\"xnnpack_partitions\":1}\n"
                    .into(),
            stderr: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.".into(),
            exit_code: 0,
        };
        let r = rt().parse(&out).unwrap();
        assert_eq!(r.samples_us, vec![10.5, 11.0]);
        assert_eq!(r.detail["xnnpack_partitions"], 1);
        let bad = Output { stdout: "Traceback".into(), stderr: String::new(), exit_code: 0 };
        assert!(rt().parse(&bad).unwrap_err().to_string().starts_with("litert printed output hwnas cannot read"));
    }
}
