//! `hwnas-runner`: hwnas' own timing binary (crate `hwnas-runner`, latency/runner). Its
//! command line and output line are defined in that crate, for both sides.

use super::{excerpt, install_binary, sha256_file, with_affinity, OpProfileError, Round, Runtime, RuntimeError};
use crate::profile::Protocol;
use crate::target::{Output, Target};
use hwnas_runner::args::Args;
use hwnas_runner::RUNTIME;
use std::path::PathBuf;

pub struct RunnerRuntime {
    binary: PathBuf,
    sha256: String,
}

impl RunnerRuntime {
    pub fn new(binary: impl Into<PathBuf>) -> Result<RunnerRuntime, RuntimeError> {
        let binary = binary.into();
        let sha256 = sha256_file(&binary)?;
        Ok(RunnerRuntime { binary, sha256 })
    }
}

impl Runtime for RunnerRuntime {
    fn name(&self) -> &str {
        "runner"
    }

    fn binary_sha256(&self) -> &str {
        &self.sha256
    }

    /// fp32 only: hwnas-runner feeds float32 inputs and its tract build is verified on float
    /// models only (docs/profiling.md), so fp16/int8 are refused before anything is timed.
    fn precisions(&self) -> &[crate::modelfile::precision::Precision] {
        &[crate::modelfile::precision::Precision::Fp32]
    }

    fn install(&self, target: &dyn Target) -> Result<String, RuntimeError> {
        install_binary(target, &self.binary, &self.sha256, RUNTIME)
    }

    /// `--capabilities` answers [`hwnas_runner::batch::CAPABILITIES`]; an older runner or a
    /// stand-in that does not is timed one model per invocation, as before.
    fn takes_batches(&self, target: &dyn Target, binary: &str) -> bool {
        let argv = [binary.to_string(), hwnas_runner::batch::CAPABILITIES_FLAG.into()];
        target
            .run(&argv, std::time::Duration::from_secs(30))
            .is_ok_and(|o| o.exit_code == 0 && o.stdout.lines().any(|l| l.trim() == hwnas_runner::batch::CAPABILITIES))
    }

    fn argv(&self, binary: &str, model: &str, cfg: &Protocol) -> Vec<String> {
        protocol_argv(binary, model, cfg)
    }

    fn parse(&self, out: &Output) -> Result<Round, RuntimeError> {
        read_report(RUNTIME, out)
    }

    fn profiles_layers(&self) -> bool {
        true
    }

    /// tract's plan timed node by node (`--layer-profile-runs`): node names as tract gives them.
    fn op_times(&self, detail: &serde_json::Value) -> Option<Result<Vec<(String, f64)>, OpProfileError>> {
        hwnas_runner::output::LayerProfile::of(detail).map(|p| p.map(|p| p.nodes).map_err(OpProfileError::Runner))
    }
}

/// hwnas-runner's command line for one model (also spoken by the litert runtime's script).
pub(super) fn protocol_argv(binary: &str, model: &str, cfg: &Protocol) -> Vec<String> {
    let job = Args {
        model: model.into(),
        warmup: cfg.warmup as usize,
        runs: cfg.runs as usize,
        threads: cfg.threads as usize,
        warmup_ms: cfg.warmup_ms,
        min_time_ms: cfg.min_time_ms,
        setup_ratio: cfg.setup_ratio,
        layer_profile_runs: cfg.layer_profile_runs as usize,
    };
    with_affinity(cfg, std::iter::once(binary.to_string()).chain(job.to_argv()).collect())
}

/// Reads hwnas-runner's output line (also the litert script's), naming `runtime` when it is malformed.
pub(super) fn read_report(runtime: &str, out: &Output) -> Result<Round, RuntimeError> {
    let r = hwnas_runner::output::read(&out.stdout).map_err(|why| RuntimeError::Malformed {
        runtime: runtime.into(),
        why,
        excerpt: excerpt(out),
    })?;
    let per_sample = hwnas_runner::output::runs_per_sample(&r.detail);
    Ok(Round { timed_us: r.samples_us.iter().sum::<f64>() * per_sample, samples_us: r.samples_us, detail: r.detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> RunnerRuntime {
        RunnerRuntime { binary: "r".into(), sha256: "00".into() }
    }

    fn out(stdout: &str) -> Output {
        Output { stdout: stdout.into(), stderr: String::new(), exit_code: 0 }
    }

    #[test]
    fn reads_every_sample() {
        let r = rt()
            .parse(&out("loading m.tflite\n{\"model\":\"m.tflite\",\"warmup\":2,\"samples_us\":[812.5,790,2.1e3]}\n"))
            .unwrap();
        assert_eq!(r.samples_us, vec![812.5, 790.0, 2100.0]);
        assert_eq!(r.timed_us, 3702.5);
        assert_eq!(r.detail["warmup"], 2);
        assert!(r.detail.get("samples_us").is_none());
    }

    #[test]
    fn grouped_samples_count_every_run_and_layer_profiles_are_read() {
        let line = "{\"samples_us\":[0.5,0.5],\"runs_per_sample\":20,\
                    \"layer_profile\":{\"runs\":2,\"total_us\":3.0,\"nodes\":[[\"conv\",1.25]]}}";
        let r = rt().parse(&out(line)).unwrap();
        assert_eq!(r.timed_us, 20.0);
        assert_eq!(rt().op_times(&r.detail).unwrap().unwrap(), vec![("conv".to_string(), 1.25)]);
        assert!(rt().op_times(&serde_json::json!({})).is_none());
    }

    #[test]
    fn malformed_output_is_quoted() {
        // Each way the line can be wrong is tested with the format (hwnas_runner::output).
        let e = rt().parse(&out("panicked at 'bad model'")).unwrap_err().to_string();
        assert!(e.starts_with("hwnas-runner printed output hwnas cannot read (no JSON object line)"), "{e}");
        assert!(e.ends_with("panicked at 'bad model'"), "{e}");
    }

    #[test]
    fn command_line() {
        let cfg = Protocol { threads: 2, warmup: 3, runs: 7, affinity: Some("8".into()), ..Protocol::default() };
        assert_eq!(
            rt().argv("/b/r", "/m.tflite", &cfg).join(" "),
            "taskset 8 /b/r --model /m.tflite --warmup 3 --runs 7 --threads 2 --warmup-ms 20 --min-time-ms 50 \
             --setup-ratio 15 --layer-profile-runs 0"
        );
    }
}
