//! How a measurement is set up, as plain data: which device (and on which adb servers),
//! which runtime binary, and the protocol's knobs. `hwnas profile` builds these from its
//! flags and live-measured searches keep them in their job config, so both read and
//! apply them here, in one place.

use super::protocol::Protocol;
use crate::adb::{AdbTarget, DEFAULT_SERVER};
use crate::local::{LocalTarget, LOCAL_ID};
use crate::runtime::litert::LitertRuntime;
use crate::runtime::runner::RunnerRuntime;
use crate::runtime::tflite::TfliteRuntime;
use crate::runtime::{RunConfig, Runtime};
use crate::target::Target;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The measurement protocol's settings (see [`Protocol`]), with `hwnas profile`'s defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolSpec {
    /// Runtime threads (1 for single-core numbers).
    pub threads: u32,
    /// Hex CPU mask for taskset, e.g. `70` = CPUs 4–6.
    pub affinity: Option<String>,
    /// Untimed runs before the timed ones (at least)…
    pub warmup: u32,
    /// …and, after the device was idle, at least this long (ms).
    pub warmup_ms: u64,
    /// Samples per round (at least)…
    pub runs: u32,
    /// …whose timed runs last at least this long (ms)…
    pub min_time_ms: u64,
    /// …and at least this many times the model's load (runner only).
    pub setup_ratio: u64,
    /// Extra runs timing each op of a network, for per-layer times (0: none).
    pub layer_profile_runs: u32,
    /// A fixed pause between models (ms).
    pub cooldown_ms: u64,
    pub timeout_s: u64,
    /// Rounds repeat until the kept samples' coefficient of variation is at most this…
    pub max_cv: f64,
    /// …with at least this many kept samples…
    pub min_samples: usize,
    /// …for at most this many rounds.
    pub max_rounds: u32,
    /// Wait until the pinned cores run at this frequency (kHz).
    pub expect_freq_khz: Option<u64>,
    /// Wait until the hottest thermal zone is at most this (°C).
    pub max_temp_c: Option<f64>,
    /// Wait while the hottest thermal zone is more than this above the run's first reading (°C).
    pub max_temp_rise_c: Option<f64>,
    /// Give up waiting for frequency/temperature after this long (the record is flagged).
    pub settle_s: u64,
}

impl Default for ProtocolSpec {
    fn default() -> Self {
        let p = Protocol::default();
        ProtocolSpec {
            threads: p.run.threads,
            affinity: p.run.affinity,
            warmup: p.run.warmup,
            warmup_ms: p.run.warmup_ms,
            runs: p.run.runs,
            min_time_ms: p.run.min_time_ms,
            setup_ratio: p.run.setup_ratio,
            layer_profile_runs: p.run.layer_profile_runs,
            cooldown_ms: p.cooldown.as_millis() as u64,
            timeout_s: p.timeout.as_secs(),
            max_cv: p.cv_bound,
            min_samples: p.min_samples,
            max_rounds: p.max_rounds,
            expect_freq_khz: p.expected_freq_khz,
            max_temp_c: p.max_temp_c,
            max_temp_rise_c: p.max_temp_rise_c,
            settle_s: p.settle_timeout.as_secs(),
        }
    }
}

impl ProtocolSpec {
    /// The validated protocol.
    pub fn protocol(&self) -> Result<Protocol, String> {
        let settle = Duration::from_secs(self.settle_s);
        let p = Protocol {
            run: RunConfig {
                threads: self.threads,
                warmup: self.warmup,
                runs: self.runs,
                affinity: self.affinity.clone(),
                warmup_ms: self.warmup_ms,
                min_time_ms: self.min_time_ms,
                setup_ratio: self.setup_ratio,
                layer_profile_runs: self.layer_profile_runs,
            },
            cooldown: Duration::from_millis(self.cooldown_ms),
            timeout: Duration::from_secs(self.timeout_s),
            cv_bound: self.max_cv,
            min_samples: self.min_samples,
            max_rounds: self.max_rounds,
            expected_freq_khz: self.expect_freq_khz,
            max_temp_c: self.max_temp_c,
            max_temp_rise_c: self.max_temp_rise_c,
            settle_timeout: settle,
            settle_poll: Duration::from_secs(2).min(settle.max(Duration::from_secs(1))),
        };
        p.validate()?;
        Ok(p)
    }
}

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
    pub fn build(&self) -> Result<Box<dyn Runtime>, String> {
        let missing = |b: &str, what: &str| format!("no {what} at {b}");
        Ok(match self {
            RuntimeSpec::Runner { binary } => {
                if !Path::new(binary).is_file() {
                    return Err(missing(
                        binary,
                        "hwnas-runner (build it with `cargo build -p hwnas-runner`, or pass --runner)",
                    ));
                }
                Box::new(RunnerRuntime::new(binary).map_err(|e| e.to_string())?)
            }
            RuntimeSpec::Tflite { binary, flags } => {
                if !Path::new(binary).is_file() {
                    return Err(missing(binary, "benchmark_model"));
                }
                Box::new(TfliteRuntime::new(binary, flags.clone()).map_err(|e| e.to_string())?)
            }
            RuntimeSpec::Litert { python } => Box::new(LitertRuntime::new(python).map_err(|e| e.to_string())?),
        })
    }
}

/// Finds `serial` on the first of `servers` (default: the local adb server) that has it;
/// `local` is this machine. The error lists what every server said.
pub fn connect(serial: &str, servers: &[String]) -> Result<Box<dyn Target>, String> {
    if serial == LOCAL_ID {
        return Ok(Box::new(LocalTarget::new(LocalTarget::default_scratch()).map_err(|e| e.to_string())?));
    }
    let default = [DEFAULT_SERVER.to_string()];
    let servers = if servers.is_empty() { &default[..] } else { servers };
    let mut why = Vec::new();
    for s in servers {
        match AdbTarget::connect(s, serial, Duration::from_secs(10)) {
            Ok(t) => return Ok(Box::new(t)),
            Err(e) => why.push(e.to_string()),
        }
    }
    Err(format!("device {serial} not found:\n  {}", why.join("\n  ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_protocol_defaults() {
        assert_eq!(ProtocolSpec::default().protocol().unwrap(), Protocol::default());
    }

    #[test]
    fn bad_settings_name_the_problem() {
        let bad = ProtocolSpec { affinity: Some("zz".into()), ..Default::default() };
        assert!(bad.protocol().unwrap_err().contains("`zz`"));
        let e = RuntimeSpec::Runner { binary: "/nonexistent/hwnas-runner".into() }.build().err().unwrap();
        assert!(e.contains("/nonexistent/hwnas-runner"), "{e}");
        let e: Result<ProtocolSpec, _> = serde_json::from_str(r#"{"warmpu": 3}"#);
        assert!(e.unwrap_err().to_string().contains("warmpu"));
    }
}
