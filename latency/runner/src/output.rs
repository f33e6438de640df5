//! The one JSON line `hwnas-runner` prints per invocation, and how hwnas reads it:
//!
//! `{"runtime":"hwnas-runner","version":…,"model":…,"threads":T,"init_us":…,"warmup":N,"samples_us":[…]}`
//!
//! `samples_us` holds every timed run (so outliers can be rejected per run). The reader
//! needs only that array: any binary that takes the same command line and prints it
//! (e.g. a LiteRT stand-in) can be profiled, and its other fields are kept as detail.

use crate::args::Args;
use serde::Serialize;

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
        }
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
        let args = Args { model: "/data/local/tmp/m.tflite".into(), warmup: 2, runs: 3, threads: 4 };
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
