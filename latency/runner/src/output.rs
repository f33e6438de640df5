//! The one JSON line `hwnas-runner` prints per invocation, and how hwnas reads it:
//!
//! `{"runtime":"hwnas-runner","version":…,"model":…,"threads":T,"init_us":…,"warmup":N,"samples_us":[…]}`
//!
//! `samples_us` holds every timed run (so outliers can be rejected per run). The reader
//! needs only that array: any binary that takes the same command line and prints it
//! (e.g. a LiteRT stand-in) can be profiled, and its other fields are kept as detail.

use crate::args::Args;
use crate::timing::Timed;
use serde::{Deserialize, Serialize};

/// What the binary prints: the job as given, the setup time and every timed run in µs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub runtime: String,
    pub version: String,
    pub model: String,
    pub threads: usize,
    /// Loading, optimising and allocating the plan, as TFLite's benchmark "Init" covers.
    pub init_us: f64,
    pub warmup: usize,
    pub samples_us: Vec<f64>,
    /// How the samples were taken (see [`crate::timing`]).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_profile: Option<LayerProfile>,
}

/// How a model's samples were taken: the warm-up it had and the window each round filled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub warmup_runs: usize,
    pub warmup_us: f64,
    /// Runs per sample: a sample is the mean of this many back-to-back runs.
    pub runs_per_sample: usize,
    /// The timed window each round had to fill (µs).
    pub window_us: f64,
}

/// Per-node times of extra runs after the timed ones (`--layer-profile-runs`): tract's
/// plan run node by node, each node's evaluation timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerProfile {
    pub runs: usize,
    /// Wall time of the profiled runs together (µs): not part of the samples.
    pub total_us: f64,
    /// Every node of the plan in execution order: its name (tract names nodes after the
    /// TFLite op's output tensor, optimised nodes with a suffix) and mean µs per run.
    pub nodes: Vec<(String, f64)>,
}

impl LayerProfile {
    /// The profile in a line's detail, if it has one; an error names what is malformed.
    pub fn of(detail: &serde_json::Value) -> Option<Result<LayerProfile, String>> {
        let v = detail.get("layer_profile")?;
        Some(serde_json::from_value(v.clone()).map_err(|e| format!("malformed `layer_profile`: {e}")))
    }
}

impl Report {
    pub fn new(args: &Args, init_us: f64, samples_us: Vec<f64>) -> Report {
        Report {
            runtime: crate::RUNTIME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            model: args.model.display().to_string(),
            threads: args.threads,
            init_us,
            warmup: args.warmup,
            samples_us,
            timing: None,
            layer_profile: None,
        }
    }

    /// The report of a model timed by [`crate::timing::time`].
    pub fn timed(args: &Args, init_us: f64, t: Timed) -> Report {
        let timing = Timing {
            warmup_runs: t.warmup_runs,
            warmup_us: t.warmup_us,
            runs_per_sample: t.runs_per_sample,
            window_us: t.window_us,
        };
        Report { timing: Some(timing), ..Report::new(args, init_us, t.samples_us) }
    }

    /// The line to print (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a report of strings and numbers serialises")
    }
}

/// What hwnas keeps from one invocation's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Every timed run, in µs: positive and finite.
    pub samples_us: Vec<f64>,
    /// The rest of the printed object (runtime, version, init_us, …).
    pub detail: serde_json::Value,
}

/// Runs per sample of a printed object's `detail` (`runs_per_sample`; 1 where absent): a
/// sample is the mean of that many runs (tiny models are timed in groups), so the time in
/// timed runs is the samples' sum times it.
pub fn runs_per_sample(detail: &serde_json::Value) -> f64 {
    detail.get("runs_per_sample").and_then(|v| v.as_u64()).unwrap_or(1).max(1) as f64
}

/// Reads the last line of `stdout` that is a JSON object (earlier lines, such as a
/// runtime's log, are skipped). The error says what is wrong and quotes the line.
pub fn read(stdout: &str) -> Result<Reading, String> {
    let (line, mut value) = stdout
        .lines()
        .rev()
        .find_map(|l| Some((l, serde_json::from_str::<serde_json::Value>(l.trim()).ok().filter(|v| v.is_object())?)))
        .ok_or("no JSON object line")?;
    let samples = value
        .get("samples_us")
        .and_then(|s| s.as_array())
        .ok_or_else(|| format!("no `samples_us` array in `{line}`"))?;
    let samples_us = samples
        .iter()
        .map(|s| s.as_f64().filter(|v| v.is_finite() && *v > 0.0))
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| format!("`samples_us` must hold positive times in `{line}`"))?;
    if samples_us.is_empty() {
        return Err(format!("`samples_us` is empty in `{line}`"));
    }
    value.as_object_mut().expect("filtered to objects above").remove("samples_us");
    Ok(Reading { samples_us, detail: value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_binary_prints_hwnas_reads() {
        let argv = ["--model", "/data/local/tmp/m.tflite", "--warmup", "2", "--runs", "3", "--threads", "4"];
        let args = Args::parse(&argv.map(String::from)).unwrap();
        let line = Report::new(&args, 1500.25, vec![812.5, 790.0, 2100.0]).to_line();
        assert!(!line.contains('\n'), "{line}");
        let r = read(&format!("loading the model\n{line}\n")).unwrap();
        assert_eq!(r.samples_us, vec![812.5, 790.0, 2100.0]);
        assert_eq!(
            r.detail,
            serde_json::json!({"runtime": "hwnas-runner", "version": env!("CARGO_PKG_VERSION"),
                "model": "/data/local/tmp/m.tflite", "threads": 4, "init_us": 1500.25, "warmup": 2})
        );
    }

    #[test]
    fn timing_and_layer_profiles_are_in_the_line() {
        let args = Args::parse(&["--model", "m", "--warmup", "1", "--runs", "2"].map(String::from)).unwrap();
        let t = Timed {
            samples_us: vec![1.5, 1.25],
            rounds: 1,
            runs_per_sample: 8,
            warmup_runs: 40,
            warmup_us: 62.0,
            window_us: 20.0,
        };
        let mut report = Report::timed(&args, 900.0, t);
        report.layer_profile = Some(LayerProfile { runs: 2, total_us: 3.5, nodes: vec![("conv".into(), 1.0)] });
        let r = read(&report.to_line()).unwrap();
        assert_eq!(r.detail["runs_per_sample"], 8);
        assert_eq!(r.detail["warmup_us"], 62.0);
        let p = LayerProfile::of(&r.detail).unwrap().unwrap();
        assert_eq!(p.nodes, vec![("conv".to_string(), 1.0)]);
        assert!(LayerProfile::of(&serde_json::json!({})).is_none());
        let bad = LayerProfile::of(&serde_json::json!({"layer_profile": {"runs": 1}})).unwrap();
        assert!(bad.unwrap_err().contains("malformed `layer_profile`"));
    }

    #[test]
    fn other_runtimes_need_only_the_samples() {
        let r = read("{\"samples_us\":[1.5,2e3],\"runtime\":\"litert\"}").unwrap();
        assert_eq!(r.samples_us, vec![1.5, 2000.0]);
        assert_eq!(r.detail, serde_json::json!({"runtime": "litert"}));
    }

    #[test]
    fn malformed_output_is_explained() {
        for (text, want) in [
            ("", "no JSON object line"),
            ("panicked at 'bad model'\n[1,2]", "no JSON object line"),
            ("{\"samples\":[1]}", "no `samples_us` array in `{\"samples\":[1]}`"),
            ("{\"samples_us\":[1,\"x\"]}", "positive times"),
            ("{\"samples_us\":[0]}", "positive times"),
            ("{\"samples_us\":[-3]}", "positive times"),
            ("{\"samples_us\":[]}", "`samples_us` is empty"),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
