//! Batches: `hwnas-runner --batch MANIFEST` times every model the manifest lists in one
//! process, so start-up is paid once per batch, and prints one JSON line per model as
//! soon as it is timed (flushed), in manifest order:
//!
//! - done: the [`crate::output::Report`] fields plus `"index"` (the manifest line, from 0) and
//!   `"rounds"`;
//! - failed: `{"index":I,"model":…,"error":…}`; the batch goes on with the next model.
//!
//! The manifest holds one JSON [`Entry`] per line. Before each model the runner reads the
//! device (frequencies, temperature) and, while the reading is outside the entry's
//! [`Window`], waits up to `settle_ms` (the cool-down). Each model is then loaded and warmed
//! up once, and timed in rounds (each at least `runs` samples, `min_time_ms` and
//! `setup_ratio` × its setup: [`crate::timing`]) until the kept samples are stable by the
//! host's rule ([`crate::stats`]: CV ≤ `cv_bound` with ≥ `min_samples` kept) or `max_rounds`
//! is reached. With `layer_profile_runs` > 0, that many more runs time each node of the
//! plan (`layer_profile` in the line; not part of the samples).
//! `hwnas-runner --capabilities` prints [`CAPABILITIES`], so hwnas can tell a runner that
//! takes batches from an older one (or a stand-in) that does not.

use crate::window::Window;
use serde::{Deserialize, Serialize};

pub const CAPABILITIES_FLAG: &str = "--capabilities";
/// What `--capabilities` prints (one line).
/// `batch=2`: time floors, the setup ratio, the device window and layer profiles in the
/// manifest (a `batch=1` runner would refuse those fields).
pub const CAPABILITIES: &str = "hwnas-runner batch=2";

/// One model of a batch and how to time it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The model file; a relative path is relative to the manifest's directory (hwnas writes
    /// file names, so no device path has to be spelled inside the file).
    pub model: String,
    pub warmup: usize,
    pub runs: usize,
    pub threads: usize,
    pub max_rounds: u32,
    pub cv_bound: f64,
    pub min_samples: usize,
    /// A fixed pause before this model when it is not the batch's first.
    #[serde(default)]
    pub cooldown_ms: u64,
    /// Warm-up lasts at least this long too (ms).
    #[serde(default)]
    pub warmup_ms: u64,
    /// A round's timed runs last at least this long (ms)…
    #[serde(default)]
    pub min_time_ms: u64,
    /// …and at least this many times the model's setup (load, optimise, warm-up).
    #[serde(default)]
    pub setup_ratio: u64,
    /// Runs that time each node after the timed ones (0: none).
    #[serde(default)]
    pub layer_profile_runs: usize,
    /// The device state the model must start in (nothing checked when open)…
    #[serde(default, skip_serializing_if = "Window::is_open")]
    pub window: Window,
    /// …waited for up to this long (ms) before timing anyway (the host flags the record).
    #[serde(default)]
    pub settle_ms: u64,
}

impl Entry {
    /// How the model is timed.
    pub fn plan(&self) -> crate::timing::Plan {
        crate::timing::Plan {
            warmup: self.warmup,
            warmup_ms: self.warmup_ms,
            runs: self.runs,
            min_time_ms: self.min_time_ms,
            setup_ratio: self.setup_ratio,
            max_rounds: self.max_rounds,
            cv_bound: self.cv_bound,
            min_samples: self.min_samples,
        }
    }

    /// Whether `samples` (every sample so far, after `rounds` rounds) are enough.
    pub fn done(&self, samples: &[f64], rounds: u32) -> bool {
        self.plan().done(samples, rounds)
    }
}

/// The manifest text: one entry per line.
pub fn write_manifest(entries: &[Entry]) -> String {
    entries.iter().map(|e| serde_json::to_string(e).expect("an entry serialises") + "\n").collect()
}

/// Reads a manifest; the error names the bad line.
pub fn read_manifest(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(line).map_err(|e| format!("manifest line {}: {e}", n + 1))?;
        if e.runs == 0 || e.threads == 0 || e.max_rounds == 0 {
            return Err(format!("manifest line {}: runs, threads and max_rounds must be at least 1", n + 1));
        }
        entries.push(e);
    }
    if entries.is_empty() {
        return Err("the manifest lists no model".into());
    }
    Ok(entries)
}

/// The line printed for a model that failed.
pub fn failed_line(index: usize, model: &str, error: &str) -> String {
    serde_json::json!({"index": index, "model": model, "error": error}).to_string()
}

/// The line printed for a model that was timed.
pub fn done_line(index: usize, report: &crate::output::Report, rounds: u32) -> String {
    let mut v = serde_json::to_value(report).expect("a report serialises");
    v["index"] = index.into();
    v["rounds"] = rounds.into();
    v.to_string()
}

/// One model's result as read back by hwnas.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Its samples and the rest of the line (`rounds` included, `index` removed).
    Done(crate::output::Reading),
    Failed(String),
}

/// Reads one output line of a batch: `None` for a line that is not a JSON object (a log
/// line), else the manifest index and what happened to that model.
pub fn read_line(line: &str) -> Option<Result<(usize, Outcome), String>> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok().filter(|v: &serde_json::Value| v.is_object())?;
    let Some(index) = v.get("index").and_then(|i| i.as_u64()) else {
        return Some(Err(format!("no `index` in batch line `{line}`")));
    };
    let index = index as usize;
    if let Some(e) = v.get("error") {
        return Some(Ok((index, Outcome::Failed(e.as_str().map_or_else(|| e.to_string(), String::from)))));
    }
    Some(crate::output::read(line).map(|mut r| {
        if let Some(o) = r.detail.as_object_mut() {
            o.remove("index");
        }
        (index, Outcome::Done(r))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;
    use crate::output::Report;

    fn entry(model: &str) -> Entry {
        Entry {
            model: model.into(),
            warmup: 1,
            runs: 3,
            threads: 1,
            max_rounds: 4,
            cv_bound: 0.05,
            min_samples: 3,
            cooldown_ms: 0,
            warmup_ms: 2,
            min_time_ms: 10,
            setup_ratio: 12,
            layer_profile_runs: 0,
            window: Window::default(),
            settle_ms: 0,
        }
    }

    #[test]
    fn manifests_round_trip_and_bad_lines_are_named() {
        let es = vec![entry("/a b.tflite"), entry("/c.tflite")];
        assert_eq!(read_manifest(&write_manifest(&es)).unwrap(), es);
        let mut bad = write_manifest(&es);
        bad.push_str("{\"model\":\"x\"}\n");
        assert!(read_manifest(&bad).unwrap_err().starts_with("manifest line 3:"));
        assert!(read_manifest("\n").unwrap_err().contains("no model"));
        let zero = Entry { runs: 0, ..entry("m") };
        assert!(read_manifest(&write_manifest(&[zero])).unwrap_err().contains("at least 1"));
        // A manifest of a batch=1 host (no time floors, no window) still reads, as counts alone.
        let old = r#"{"model":"m","warmup":1,"runs":3,"threads":1,"max_rounds":4,"cv_bound":0.05,"min_samples":3}"#;
        let e = &read_manifest(old).unwrap()[0];
        assert_eq!((e.min_time_ms, e.setup_ratio, e.window.is_open()), (0, 0, true));
        let hot = Entry { window: Window { max_temp_c: Some(40.0), ..Default::default() }, ..entry("m") };
        assert_eq!(read_manifest(&write_manifest(std::slice::from_ref(&hot))).unwrap(), vec![hot]);
    }

    #[test]
    fn what_the_batch_prints_hwnas_reads() {
        let args = Args::parse(&["--model", "/m.tflite", "--warmup", "1", "--runs", "3"].map(String::from)).unwrap();
        let line = done_line(4, &Report::new(&args, 10.0, vec![1.0, 2.0, 3.0]), 2);
        let (i, o) = read_line(&line).unwrap().unwrap();
        let Outcome::Done(r) = o else { panic!("{o:?}") };
        assert_eq!((i, r.samples_us, r.detail["rounds"].as_u64()), (4, vec![1.0, 2.0, 3.0], Some(2)));
        assert!(r.detail.get("index").is_none());
        assert_eq!(read_line(&failed_line(7, "/x", "boom")).unwrap().unwrap(), (7, Outcome::Failed("boom".into())));
        assert!(read_line("loading /m.tflite").is_none());
        assert!(read_line("{\"samples_us\":[1]}").unwrap().unwrap_err().contains("no `index`"));
    }

    #[test]
    fn rounds_stop_when_stable_or_at_the_limit() {
        let e = entry("m");
        assert!(e.done(&[100.0, 100.5, 99.5], 1));
        assert!(!e.done(&[100.0, 150.0, 200.0], 1));
        assert!(e.done(&[100.0, 150.0, 200.0], 4));
    }
}
