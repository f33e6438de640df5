//! How a measurement is set up, as plain data: which device (and on which adb servers) and
//! which runtime binary; the protocol's settings are [`super::Protocol`]. `hwnas profile`
//! builds these from its flags and live-measured searches keep them in their job config, so
//! both read and apply them here, in one place.

use crate::adb::{AdbTarget, DEFAULT_SERVER};
use crate::local::{LocalTarget, LOCAL_ID};
use crate::runtime::litert::LitertRuntime;
use crate::runtime::runner::RunnerRuntime;
use crate::runtime::tflite::TfliteRuntime;
use crate::runtime::{Runtime, RuntimeError};
use crate::target::{Target, TargetError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The binary that times model files on the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RuntimeSpec {
    /// hwnas-runner built for the device.
    Runner { binary: String },
    /// The stock TFLite `benchmark_model`, with extra flags passed verbatim (and recorded).
    Tflite { binary: String, flags: Vec<String> },
    /// LiteRT (ai-edge-litert) through this host's `python` (see [`LitertRuntime`]).
    Litert { python: String },
}

impl RuntimeSpec {
    /// LiteRT through `python`, made absolute. Not canonicalised: a venv's python is a symlink
    /// to the system one, and only the venv's path finds the venv's packages.
    pub fn litert(python: &Path) -> std::io::Result<RuntimeSpec> {
        Ok(RuntimeSpec::Litert { python: std::path::absolute(python)?.display().to_string() })
    }

    /// The runtime, its binary checked and hashed (a missing binary is named with how to get it).
    pub fn build(&self) -> Result<Box<dyn Runtime>, RuntimeError> {
        let missing = |path: &str, what: &'static str| RuntimeError::NoBinary { what, path: path.into() };
        Ok(match self {
            RuntimeSpec::Runner { binary } => {
                if !Path::new(binary).is_file() {
                    return Err(missing(
                        binary,
                        "hwnas-runner (build it with `cargo build -p hwnas-runner`, or pass --runner)",
                    ));
                }
                Box::new(RunnerRuntime::new(binary)?)
            }
            RuntimeSpec::Tflite { binary, flags } => {
                if !Path::new(binary).is_file() {
                    return Err(missing(binary, "benchmark_model"));
                }
                Box::new(TfliteRuntime::new(binary, flags.clone())?)
            }
            RuntimeSpec::Litert { python } => Box::new(LitertRuntime::new(python)?),
        })
    }
}

/// Why [`connect`] found no device.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// This machine's scratch directory is not usable.
    #[error(transparent)]
    Local(#[from] TargetError),
    /// No server has the device; what each said.
    #[error("device {serial} not found:\n  {}", said.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    NotFound { serial: String, said: Vec<TargetError> },
}

/// Finds `serial` on the first of `servers` (default: the local adb server) that has it;
/// `local` is this machine. The error lists what every server said.
pub fn connect(serial: &str, servers: &[String]) -> Result<Box<dyn Target>, ConnectError> {
    if serial == LOCAL_ID {
        return Ok(Box::new(LocalTarget::new(LocalTarget::default_scratch())?));
    }
    let default = [DEFAULT_SERVER.to_string()];
    let servers = if servers.is_empty() { &default[..] } else { servers };
    let mut said = Vec::new();
    for s in servers {
        match AdbTarget::connect(s, serial, Duration::from_secs(10)) {
            Ok(t) => return Ok(Box::new(t)),
            Err(e) => said.push(e),
        }
    }
    Err(ConnectError::NotFound { serial: serial.into(), said })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_runtime_binary_is_named() {
        let e = RuntimeSpec::Runner { binary: "/nonexistent/hwnas-runner".into() }.build().err().unwrap().to_string();
        assert!(e.contains("/nonexistent/hwnas-runner"), "{e}");
    }
}
