//! `hwnas-runner`: hwnas' own timing binary (crate `hwnas-runner`, latency/runner). Its
//! command line and output line are defined in that crate, for both sides.

use super::{excerpt, install_binary, sha256_file, with_affinity, Round, RunConfig, Runtime, RuntimeError};
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

    fn argv(&self, binary: &str, model: &str, cfg: &RunConfig) -> Vec<String> {
        let job = Args {
            model: model.into(),
            warmup: cfg.warmup as usize,
            runs: cfg.runs as usize,
            threads: cfg.threads as usize,
        };
        with_affinity(cfg, std::iter::once(binary.to_string()).chain(job.to_argv()).collect())
    }

    fn parse(&self, out: &Output) -> Result<Round, RuntimeError> {
        let r = hwnas_runner::output::read(&out.stdout).map_err(|why| RuntimeError::Malformed {
            runtime: RUNTIME.into(),
            why,
            excerpt: excerpt(out),
        })?;
        Ok(Round { timed_us: r.samples_us.iter().sum(), samples_us: r.samples_us, detail: r.detail })
    }
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
    fn malformed_output_is_quoted() {
        // Each way the line can be wrong is tested with the format (hwnas_runner::output).
        let e = rt().parse(&out("panicked at 'bad model'")).unwrap_err().to_string();
        assert!(e.starts_with("hwnas-runner printed output hwnas cannot read (no JSON object line)"), "{e}");
        assert!(e.ends_with("panicked at 'bad model'"), "{e}");
    }

    #[test]
    fn command_line() {
        let cfg = RunConfig { threads: 2, warmup: 3, runs: 7, affinity: Some("8".into()) };
        assert_eq!(
            rt().argv("/b/r", "/m.tflite", &cfg).join(" "),
            "taskset 8 /b/r --model /m.tflite --warmup 3 --runs 7 --threads 2"
        );
    }
}
