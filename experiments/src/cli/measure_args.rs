//! The flags that say how models are timed on a device (adb servers, runtime binary,
//! protocol), shared by `hwnas profile` and measured `hwnas search` objectives.

use anyhow::{anyhow, bail, Result};
use latency::profile::{Protocol, RuntimeSpec};
use latency::runtime::litert::LitertRuntime;
use std::path::PathBuf;
use std::time::Duration;

/// The runtimes a measurement can use (see `latency::runtime`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// hwnas-runner (tract), built beside hwnas.
    Runner,
    /// The stock TFLite benchmark_model.
    Tflite,
    /// LiteRT (ai-edge-litert, XNNPACK) through Python.
    Litert,
}

#[derive(clap::Args, Clone, Debug)]
pub struct MeasureArgs {
    /// adb servers (`HOST:PORT`) to find the devices on. Repeat for several; default 127.0.0.1:5037.
    #[arg(long = "adb", value_parser = latency::adb::host::check_address)]
    pub servers: Vec<String>,
    /// What times the models: `runner` (hwnas-runner, fp32 only), `tflite` (the stock
    /// benchmark_model, --benchmark-model) or `litert` (LiteRT/XNNPACK through Python on this
    /// machine, --litert-python; fp32, fp16 and int8).
    #[arg(long, value_enum, default_value_t = RuntimeKind::Runner)]
    pub runtime: RuntimeKind,
    /// The Python with ai-edge-litert that --runtime litert runs (default: the repository's .venv,
    /// which scripts/setup creates).
    #[arg(long)]
    litert_python: Option<PathBuf>,
    /// The TFLite benchmark_model binary built for the devices (Android arm64 for phones).
    #[arg(long)]
    benchmark_model: Option<PathBuf>,
    /// The hwnas-runner binary built for the devices (default: the one next to hwnas).
    #[arg(long)]
    runner: Option<PathBuf>,
    /// benchmark_model's --use_xnnpack, passed explicitly because defaults differ between releases.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    xnnpack: bool,
    /// Extra benchmark_model flag passed verbatim and recorded, e.g. --benchmark-arg=--use_gpu=true. Repeatable.
    #[arg(long = "benchmark-arg", allow_hyphen_values = true)]
    benchmark_args: Vec<String>,
    /// Runtime threads (1 for single-core numbers).
    #[arg(long, default_value_t = Protocol::default().threads, value_parser = at_least_1::<u32>)]
    threads: u32,
    /// Hex CPU mask for taskset, e.g. 70 = CPUs 4-6 (the Cortex-A76 cores of a Snapdragon 855).
    #[arg(long)]
    affinity: Option<String>,
    /// Untimed runs before the timed ones (at least)…
    #[arg(long, default_value_t = Protocol::default().warmup)]
    warmup: u32,
    /// …and, after the device was idle (a batch's first model, after a cool-down), at least this long.
    #[arg(long, default_value_t = Protocol::default().warmup_ms)]
    warmup_ms: u64,
    /// Samples per round (at least)…
    #[arg(long, default_value_t = Protocol::default().runs, value_parser = at_least_1::<u32>)]
    runs: u32,
    /// …whose timed runs last at least this long (ms; benchmark_model's --min_secs)…
    #[arg(long, default_value_t = Protocol::default().min_time_ms)]
    min_time_ms: u64,
    /// …and at least this many times what loading the model cost (hwnas-runner only; 0: off).
    #[arg(long, default_value_t = Protocol::default().setup_ratio)]
    setup_ratio: u64,
    /// A fixed pause between models (ms); the cool-down is otherwise triggered by the readings.
    #[arg(long, default_value_t = Protocol::default().cooldown.as_millis() as u64)]
    cooldown_ms: u64,
    /// Kill a runtime invocation after this long.
    #[arg(long, default_value_t = Protocol::default().timeout.as_secs(), value_parser = at_least_1::<u64>)]
    timeout_s: u64,
    /// Repeat rounds until the coefficient of variation of the kept samples is at most this…
    #[arg(long, default_value_t = Protocol::default().max_cv, value_parser = positive)]
    max_cv: f64,
    /// …with at least this many kept samples…
    #[arg(long, default_value_t = Protocol::default().min_samples, value_parser = at_least_1::<usize>)]
    min_samples: usize,
    /// …for at most this many rounds (then the record is flagged unstable).
    #[arg(long, default_value_t = Protocol::default().max_rounds, value_parser = at_least_1::<u32>)]
    max_rounds: u32,
    /// Wait before each model until the pinned cores run at this frequency (kHz).
    #[arg(long)]
    expect_freq_khz: Option<u64>,
    /// Wait before each model until the hottest thermal zone is at most this (°C).
    #[arg(long, value_parser = finite)]
    max_temp_c: Option<f64>,
    /// Wait before each model while the hottest thermal zone is more than this above its first
    /// reading in the run (°C; where readable), or `off`.
    #[arg(long, default_value_t = Rise(Protocol::default().max_temp_rise_c), value_parser = rise)]
    max_temp_rise_c: Rise,
    /// Give up waiting for frequency/temperature after this long and flag the record.
    #[arg(long, default_value_t = Protocol::default().settle_timeout.as_secs())]
    settle_s: u64,
}

/// A whole number ≥ 1 (clap names the option in the error).
fn at_least_1<T: std::str::FromStr + PartialOrd + From<u8>>(s: &str) -> Result<T, String> {
    let v: T = s.trim().parse().map_err(|_| format!("`{s}` is not a whole number"))?;
    if v < T::from(1) {
        return Err(format!("must be at least 1 (got {s})"));
    }
    Ok(v)
}

fn finite(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a finite number")),
    }
}

/// `--max-temp-rise-c`: degrees above 0, or `off`.
#[derive(Clone, Copy, Debug)]
struct Rise(Option<f64>);

fn rise(s: &str) -> Result<Rise, String> {
    match s.trim() {
        "off" => Ok(Rise(None)),
        v => positive(v).map(|v| Rise(Some(v))),
    }
}

impl std::fmt::Display for Rise {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.0 {
            Some(r) => write!(f, "{r}"),
            None => write!(f, "off"),
        }
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match finite(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err(format!("must be above 0 (got {s})")),
    }
}

/// hwnas-runner next to the running hwnas binary (where cargo builds both).
pub(crate) fn default_runner() -> Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name("hwnas-runner"))
}

fn absolute(p: &std::path::Path) -> String {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.into()).display().to_string()
}

impl MeasureArgs {
    /// The protocol the flags ask for (what no flag sets keeps the library's default).
    pub fn protocol(&self) -> Protocol {
        Protocol {
            threads: self.threads,
            affinity: self.affinity.clone(),
            warmup: self.warmup,
            warmup_ms: self.warmup_ms,
            runs: self.runs,
            min_time_ms: self.min_time_ms,
            setup_ratio: self.setup_ratio,
            cooldown: Duration::from_millis(self.cooldown_ms),
            timeout: Duration::from_secs(self.timeout_s),
            max_cv: self.max_cv,
            min_samples: self.min_samples,
            max_rounds: self.max_rounds,
            expect_freq_khz: self.expect_freq_khz,
            max_temp_c: self.max_temp_c,
            max_temp_rise_c: self.max_temp_rise_c.0,
            settle_timeout: Duration::from_secs(self.settle_s),
            ..Protocol::default()
        }
    }

    /// The runtime with absolute binary paths (saved configs must work from any directory).
    pub fn runtime(&self) -> Result<RuntimeSpec> {
        if self.runtime != RuntimeKind::Tflite && !self.benchmark_args.is_empty() {
            bail!("--benchmark-arg applies to --runtime tflite only");
        }
        if self.runtime != RuntimeKind::Litert && self.litert_python.is_some() {
            bail!("--litert-python applies to --runtime litert only");
        }
        Ok(match self.runtime {
            RuntimeKind::Tflite => {
                let bin = self
                    .benchmark_model
                    .as_ref()
                    .ok_or_else(|| anyhow!("--runtime tflite needs --benchmark-model PATH"))?;
                let mut flags = vec![format!("--use_xnnpack={}", self.xnnpack)];
                flags.extend(self.benchmark_args.iter().cloned());
                RuntimeSpec::Tflite { binary: absolute(bin), flags }
            }
            RuntimeKind::Litert => {
                RuntimeSpec::litert(&self.litert_python.clone().unwrap_or_else(LitertRuntime::default_python))?
            }
            RuntimeKind::Runner => {
                let bin = match &self.runner {
                    Some(p) => p.clone(),
                    None => default_runner()?,
                };
                RuntimeSpec::Runner { binary: absolute(&bin) }
            }
        })
    }
}
