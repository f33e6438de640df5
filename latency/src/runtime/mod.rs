//! Runtimes time a model file on a [`Target`]: the stock TFLite `benchmark_model`
//! binary, hwnas' own `hwnas-runner`, or LiteRT through Python (`litert`). Each builds its
//! command line, and parses what the binary printed into per-round samples (never a silent zero).

mod install;
pub mod litert;
pub mod runner;
pub mod tflite;

pub use install::{install_binary, install_bytes, sha256_file, sha256_hex};

use crate::profile::Protocol;
use crate::target::{Output, Target, TargetError};

/// A `taskset` CPU mask that selects no CPU this can pin to.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MaskError {
    #[error("affinity mask `{0}` is not a hex CPU mask like `70` (CPUs 4-6) or `8` (CPU 3)")]
    NotHex(String),
    #[error("affinity mask `{0}` selects no CPU")]
    NoCpu(String),
}

/// Parses a `taskset` hex mask (`70`, `0x8`) into CPU indices.
pub fn parse_mask(mask: &str) -> Result<Vec<usize>, MaskError> {
    let hex = mask.trim_start_matches("0x").trim_start_matches("0X");
    let bits = u128::from_str_radix(hex, 16).map_err(|_| MaskError::NotHex(mask.into()))?;
    if bits == 0 {
        return Err(MaskError::NoCpu(mask.into()));
    }
    Ok((0..128).filter(|i| bits >> i & 1 == 1).collect())
}

/// What one invocation measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Round {
    /// Latency samples in µs: every timed run (runner) or the invocation's average (benchmark_model,
    /// which prints no per-run values).
    pub samples_us: Vec<f64>,
    /// Time the model itself spent in timed runs (µs), to separate profiling overhead.
    pub timed_us: f64,
    /// Runtime-specific statistics as printed (e.g. benchmark_model's count/std/init time).
    pub detail: serde_json::Value,
}

/// Why a round's per-op profile cannot be read (the record is flagged with it, not failed).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OpProfileError {
    #[error("an op without a name: {0}")]
    Unnamed(serde_json::Value),
    #[error("an op without a time: {0}")]
    Untimed(serde_json::Value),
    /// hwnas-runner's `layer_profile`, as its reader (`hwnas_runner::output`) says.
    #[error("{0}")]
    Runner(String),
}

/// Why a runtime could not be set up or time a model.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The runtime's binary is not there (`what` says which, and how to get it).
    #[error("no {what} at {path}")]
    NoBinary { what: &'static str, path: String },
    /// A host file the runtime needs (its binary, a staged script) cannot be read or written.
    #[error("cannot {action} {}", path.display())]
    File {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Python given for LiteRT cannot run it.
    #[error(
        "the litert runtime needs a Python with ai-edge-litert: {why} (run scripts/setup, which installs it into \
         .venv, or pass --litert-python PATH)"
    )]
    NoLitert {
        why: String,
        #[source]
        source: Option<std::io::Error>,
    },
    #[error("{runtime} printed output hwnas cannot read ({why}); it printed:\n{excerpt}")]
    Malformed { runtime: String, why: String, excerpt: String },
    #[error("{runtime} exited with code {code}; it printed:\n{excerpt}")]
    Exit { runtime: String, code: i32, excerpt: String },
    #[error("{0}")]
    Setup(String),
}

/// The end of a command's output, enough to see what went wrong without flooding the terminal.
pub fn excerpt(out: &Output) -> String {
    let text = if out.stderr.trim().is_empty() {
        out.stdout.clone()
    } else {
        format!("{}\n[stderr]\n{}", out.stdout.trim_end(), out.stderr)
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let tail = &lines[lines.len().saturating_sub(25)..];
    let mut s = tail.join("\n");
    if s.trim().is_empty() {
        s = "(nothing)".into();
    }
    if lines.len() > tail.len() {
        s = format!("[… {} earlier lines]\n{s}", lines.len() - tail.len());
    }
    s
}

/// A binary that times model files.
pub trait Runtime: Send + Sync {
    /// `tflite` or `runner`.
    fn name(&self) -> &str;
    /// SHA-256 of the binary, recorded with every measurement.
    fn binary_sha256(&self) -> &str;
    /// Makes the binary available on the target (pushed once, cached by content hash) and
    /// returns its device path.
    fn install(&self, target: &dyn Target) -> Result<String, RuntimeError>;
    /// The command line timing `model` as `cfg` says (its invocation settings: threads,
    /// affinity, warm-up, runs, time floors, layer profiles).
    fn argv(&self, binary: &str, model: &str, cfg: &Protocol) -> Vec<String>;
    /// Reads one invocation's output.
    fn parse(&self, out: &Output) -> Result<Round, RuntimeError>;

    /// The model precisions this runtime can time (checked before anything is pushed or timed).
    fn precisions(&self) -> &[crate::modelfile::precision::Precision] {
        &crate::modelfile::precision::Precision::ALL
    }

    /// Whether the binary installed at `binary` on `target` times many models in one process
    /// ([`Runtime::batch_argv`]); asked once per device and run.
    fn takes_batches(&self, _target: &dyn Target, _binary: &str) -> bool {
        false
    }

    /// The command line timing every model of the manifest at `manifest` (a device path) in
    /// one process, one output line per model (see `hwnas_runner::batch`).
    fn batch_argv(&self, binary: &str, manifest: &str, cfg: &Protocol) -> Vec<String> {
        with_affinity(cfg, vec![binary.into(), "--batch".into(), manifest.into()])
    }

    /// Whether [`Runtime::op_times`] can answer (the runtime times each op of a network when
    /// `Protocol::layer_profile_runs` asks); jobs asking otherwise are refused up front.
    fn profiles_layers(&self) -> bool {
        false
    }

    /// The per-op profile in one invocation's (or batch line's) detail, if it has one: each op
    /// by the name the runtime gives it and its mean µs per run (`Protocol::layer_profile_runs`).
    fn op_times(&self, _detail: &serde_json::Value) -> Option<Result<Vec<(String, f64)>, OpProfileError>> {
        None
    }

    /// Every flag, with the device paths replaced by placeholders so records from
    /// different devices and runs compare equal.
    fn flags(&self, cfg: &Protocol) -> Vec<String> {
        self.argv("{binary}", "{model}", cfg)
    }

    /// Runs one invocation and parses it; a non-zero exit is an error quoting the output.
    fn run_round(
        &self,
        target: &dyn Target,
        binary: &str,
        model: &str,
        cfg: &Protocol,
        timeout: std::time::Duration,
    ) -> Result<Round, RuntimeError> {
        let out = target.run(&self.argv(binary, model, cfg), timeout)?;
        if out.exit_code != 0 {
            return Err(RuntimeError::Exit {
                runtime: self.name().into(),
                code: out.exit_code,
                excerpt: excerpt(&out),
            });
        }
        self.parse(&out)
    }
}

/// `taskset <mask>` in front of a command when an affinity mask is set.
pub(crate) fn with_affinity(cfg: &Protocol, argv: Vec<String>) -> Vec<String> {
    match &cfg.affinity {
        Some(mask) => ["taskset".to_string(), mask.clone()].into_iter().chain(argv).collect(),
        None => argv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_select_cpus() {
        assert_eq!(parse_mask("70").unwrap(), vec![4, 5, 6]);
        assert_eq!(parse_mask("0x8").unwrap(), vec![3]);
        assert!(parse_mask("0").unwrap_err().to_string().contains("no CPU"));
        assert!(parse_mask("cpu4").unwrap_err().to_string().contains("`cpu4`"));
    }

    #[test]
    fn excerpts_keep_the_tail_and_stderr() {
        let out = Output { stdout: (0..40).map(|i| format!("l{i}\n")).collect(), stderr: "boom".into(), exit_code: 1 };
        let e = excerpt(&out);
        assert!(e.starts_with("[… 17 earlier lines]"), "{e}");
        assert!(e.ends_with("[stderr]\nboom"), "{e}");
        assert_eq!(excerpt(&Output { stdout: String::new(), stderr: String::new(), exit_code: 0 }), "(nothing)");
    }
}
