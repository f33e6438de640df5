//! `hwnas-runner`: hwnas' own timing binary. It prints one JSON line whose
//! `samples_us` array holds every timed run, so outliers can be rejected per run.

use super::{excerpt, install_binary, sha256_file, with_affinity, Round, RunConfig, Runtime, RuntimeError};
use crate::target::{Output, Target};
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

    fn install(&self, target: &dyn Target) -> Result<String, RuntimeError> {
        install_binary(target, &self.binary, &self.sha256, "hwnas-runner")
    }

    fn argv(&self, binary: &str, model: &str, cfg: &RunConfig) -> Vec<String> {
        let argv = vec![
            binary.to_string(),
            "--model".into(),
            model.to_string(),
            "--warmup".into(),
            cfg.warmup.to_string(),
            "--runs".into(),
            cfg.runs.to_string(),
            "--threads".into(),
            cfg.threads.to_string(),
        ];
        with_affinity(cfg, argv)
    }

    fn parse(&self, out: &Output) -> Result<Round, RuntimeError> {
        let malformed =
            |why: String| RuntimeError::Malformed { runtime: "hwnas-runner".into(), why, excerpt: excerpt(out) };
        let (line, value) = out
            .stdout
            .lines()
            .rev()
            .find_map(|l| {
                Some((l, serde_json::from_str::<serde_json::Value>(l.trim()).ok().filter(|v| v.is_object())?))
            })
            .ok_or_else(|| malformed("no JSON object line".into()))?;
        let samples = value
            .get("samples_us")
            .and_then(|s| s.as_array())
            .ok_or_else(|| malformed(format!("no `samples_us` array in `{line}`")))?;
        let samples_us = samples
            .iter()
            .map(|s| s.as_f64().filter(|v| v.is_finite() && *v > 0.0))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| malformed(format!("`samples_us` must hold positive times in `{line}`")))?;
        if samples_us.is_empty() {
            return Err(malformed(format!("`samples_us` is empty in `{line}`")));
        }
        let mut detail = value.clone();
        if let Some(o) = detail.as_object_mut() {
            o.remove("samples_us");
        }
        Ok(Round { timed_us: samples_us.iter().sum(), samples_us, detail })
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
        for (text, want) in [
            ("panicked at 'bad model'", "no JSON object line"),
            ("{\"samples\":[1]}", "no `samples_us` array"),
            ("{\"samples_us\":[1,\"x\"]}", "positive times"),
            ("{\"samples_us\":[0]}", "positive times"),
            ("{\"samples_us\":[]}", "is empty"),
        ] {
            let e = rt().parse(&out(text)).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains(text), "{e}");
        }
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
