//! The stock TFLite `benchmark_model` binary. Its end-to-end latency is the
//! `Inference (avg)` of the `Inference timings in us` line, cross-checked against
//! the last bare `count=… avg=…` line printed before it (the timed runs). The
//! op-profiling `Timings (microseconds): count=…` line is a sum of per-op times,
//! not wall clock, and is never read as the end-to-end number.

use super::{excerpt, install_binary, sha256_file, with_affinity, OpProfileError, Round, Runtime, RuntimeError};
use crate::profile::Protocol;
use crate::target::{Output, Target};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct TfliteRuntime {
    binary: PathBuf,
    sha256: String,
    /// Flags appended verbatim after the protocol's own (e.g. `--use_xnnpack=true`).
    extra: Vec<String>,
}

impl TfliteRuntime {
    /// The user's `benchmark_model` build (Android arm64 for phones, host build for `local`).
    pub fn new(binary: impl Into<PathBuf>, extra: Vec<String>) -> Result<TfliteRuntime, RuntimeError> {
        let binary = binary.into();
        let sha256 = sha256_file(&binary)?;
        Ok(TfliteRuntime { binary, sha256, extra })
    }
}

impl Runtime for TfliteRuntime {
    fn name(&self) -> &str {
        "tflite"
    }

    fn binary_sha256(&self) -> &str {
        &self.sha256
    }

    fn install(&self, target: &dyn Target) -> Result<String, RuntimeError> {
        install_binary(target, &self.binary, &self.sha256, "benchmark_model")
    }

    fn profiles_layers(&self) -> bool {
        true
    }

    /// The op profile of `--enable_op_profiling=true` (on with `Protocol::layer_profile_runs`).
    fn op_times(&self, detail: &serde_json::Value) -> Option<Result<Vec<(String, f64)>, OpProfileError>> {
        TfliteRuntime::ops_of(detail)
    }

    fn argv(&self, binary: &str, model: &str, cfg: &Protocol) -> Vec<String> {
        let mut argv = vec![
            binary.to_string(),
            format!("--graph={model}"),
            format!("--num_threads={}", cfg.threads),
            format!("--warmup_runs={}", cfg.warmup),
            // Counts and times, both minimums, as the runner takes them (benchmark_model's own
            // defaults are 0.5 s and 1 s); benchmark_model has no setup ratio.
            format!("--warmup_min_secs={}", cfg.warmup_ms as f64 / 1000.0),
            format!("--num_runs={}", cfg.runs),
            format!("--min_secs={}", cfg.min_time_ms as f64 / 1000.0),
        ];
        if cfg.layer_profile_runs > 0 {
            // Per-op times of the timed runs themselves (benchmark_model profiles every run).
            argv.push("--enable_op_profiling=true".into());
        }
        argv.extend(self.extra.iter().cloned());
        with_affinity(cfg, argv)
    }

    fn parse(&self, out: &Output) -> Result<Round, RuntimeError> {
        let timings = parse_benchmark_output(&out.stdout)
            .or_else(|why| {
                // Some builds log to stderr (or split their lines between both); accept the timings
                // from there, but report the stdout failure unless stderr says what went wrong.
                parse_benchmark_output(&out.stderr)
                    .or_else(|_| parse_benchmark_output(&format!("{}\n{}", out.stdout, out.stderr)))
                    .map_err(|both| if matches!(both, BenchmarkOutputError::Failed(_)) { both } else { why })
            })
            .map_err(|why| RuntimeError::Malformed {
                runtime: "benchmark_model".into(),
                why: why.to_string(),
                excerpt: excerpt(out),
            })?;
        let detail = serde_json::json!({
            "count": timings.runs.count,
            "avg_us": timings.runs.avg,
            "std_us": timings.runs.std,
            "min_us": timings.runs.min,
            "max_us": timings.runs.max,
            "init_us": timings.init_us,
            "first_us": timings.first_us,
            "warmup_avg_us": timings.warmup_avg_us,
        });
        let mut detail = detail;
        if let Some(p) = &timings.op_profile {
            detail["op_profile"] = profile_json(p);
        }
        Ok(Round {
            samples_us: vec![timings.inference_avg_us],
            timed_us: timings.runs.avg * timings.runs.count as f64,
            detail,
        })
    }
}

impl TfliteRuntime {
    /// The `Run Order` rows of an op profile kept in a round's detail (see [`profile_json`]):
    /// each node by its output tensor's name (the `[name]:index` column without brackets and
    /// index) and its average µs per run.
    pub fn ops_of(detail: &serde_json::Value) -> Option<Result<Vec<(String, f64)>, OpProfileError>> {
        let ops = detail.get("op_profile")?.get("ops")?.as_array()?;
        Some(
            ops.iter()
                .map(|o| {
                    let name = o["name"].as_str().ok_or_else(|| OpProfileError::Unnamed(o.clone()))?;
                    let avg_ms = o["avg_ms"].as_f64().ok_or_else(|| OpProfileError::Untimed(o.clone()))?;
                    Ok((tensor_of(name).to_string(), avg_ms * 1000.0))
                })
                .collect(),
        )
    }
}

/// The tensor name in a `Run Order` row's name: `[MobilenetV1/Conv2d_0/Relu6]:0` →
/// `MobilenetV1/Conv2d_0/Relu6` (names printed without brackets are taken as they are).
pub fn tensor_of(name: &str) -> &str {
    let without_index = match name.rsplit_once(':') {
        Some((head, idx)) if idx.chars().all(|c| c.is_ascii_digit()) && !idx.is_empty() => head,
        _ => name,
    };
    without_index.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(without_index)
}

/// A `count=… first=… curr=… min=… max=… avg=… std=…` statistics line.
#[derive(Clone, Debug, PartialEq)]
pub struct RunStats {
    pub count: u64,
    pub avg: f64,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One row of an op profile's `Run Order` table (times in ms, as printed).
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    pub node_type: String,
    /// `[name]:index` as printed (the TFLite tensor name of the node's output, and the node index).
    pub name: String,
    pub start_ms: Option<f64>,
    pub first_ms: Option<f64>,
    pub avg_ms: f64,
    pub percent: Option<f64>,
    pub mem_kb: Option<f64>,
    pub times_called: Option<u64>,
}

/// One row of an op profile's `Summary by node type` table.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTypeTime {
    pub node_type: String,
    pub count: Option<u64>,
    pub avg_ms: f64,
    pub percent: Option<f64>,
    pub times_called: Option<u64>,
}

/// An op profile (`--enable_op_profiling=true`): per-node and per-node-type times.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpProfile {
    /// The `Run Order` table: every node, in execution order.
    pub ops: Vec<OpTime>,
    /// The `Summary by node type` table.
    pub by_type: Vec<NodeTypeTime>,
    /// The profile's `Timings (microseconds): count=… avg=…` line: the **sum of per-op times**
    /// per run, not wall clock (close to, never used as, the end-to-end latency).
    pub timings: Option<RunStats>,
}

/// What `benchmark_model` reports about the timed runs.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchmarkTimings {
    pub init_us: f64,
    /// `First inference`; TF 1.x builds do not print it.
    pub first_us: Option<f64>,
    /// `Warmup (avg)` (TF 1.x: `Warmup`).
    pub warmup_avg_us: f64,
    /// `Inference (avg)` (TF 1.x: `no stats`): the end-to-end latency.
    pub inference_avg_us: f64,
    /// The last bare `count=` line before `Inference timings`.
    pub runs: RunStats,
    /// The op profile of the regular (timed) runs, when op profiling was on.
    pub op_profile: Option<OpProfile>,
    /// The op profile of the initialization (delegate application, tensor allocation).
    pub init_profile: Option<OpProfile>,
}

/// Case-insensitive marker of the end-to-end summary line; TF 1.x prints
/// `Average inference timings in us: Warmup: …, Init: …, no stats: X`, TF 2.x
/// `Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): X`.
const END_TO_END: &str = "inference timings in us:";

/// Why `benchmark_model`'s output could not be read (each names the line it is about).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BenchmarkOutputError {
    /// No summary line, and nothing in the log saying why.
    #[error("no `Inference timings in us:` line (did the model fail to load or run?)")]
    NoSummary,
    /// No summary line; the log's own error lines.
    #[error("no `Inference timings in us:` line; it reported: {}", .0.join(" / "))]
    Failed(Vec<String>),
    #[error("`{part}` is not `{form}` in line `{line}`")]
    NotAField { part: String, form: &'static str, line: String },
    #[error("`{what}` is `{value}`, not a time, in line `{line}`")]
    NotATime { what: String, value: String, line: String },
    #[error("no `{what}` in line `{line}`")]
    Missing { what: String, line: String },
    #[error("`count` is {count}, not a whole number, in line `{line}`")]
    Count { count: f64, line: String },
    #[error("no `count=… avg=…` line of the timed runs before `{line}`")]
    NoRunsLine { line: String },
    #[error("the timed runs line says no run happened: `{line}`")]
    NoRuns { line: String },
    /// The two averages disagree: the wrong line was read.
    #[error("`Inference (avg)` is {inference_avg_us} µs but the timed runs line `{line}` says avg={runs_avg_us}")]
    Disagree { inference_avg_us: f64, runs_avg_us: f64, line: String },
    #[error("`Inference (avg)` is 0 µs in line `{line}`")]
    Zero { line: String },
    #[error("op profile row `{line}` does not have the {columns} columns of its table")]
    Columns { line: String, columns: usize },
    #[error("no `[avg ms]` column for row `{line}`")]
    NoAverage { line: String },
}

/// Strips log prefixes (`INFO: `, repeated) and surrounding space.
fn bare(line: &str) -> &str {
    let mut l = line.trim();
    while let Some(rest) = l.strip_prefix("INFO:") {
        l = rest.trim_start();
    }
    l
}

fn number(text: &str, what: &str, line: &str) -> Result<f64, BenchmarkOutputError> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(BenchmarkOutputError::NotATime { what: what.into(), value: text.trim().into(), line: line.into() }),
    }
}

/// `no `what` in line `line``.
fn missing(what: &str, line: &str) -> BenchmarkOutputError {
    BenchmarkOutputError::Missing { what: what.into(), line: line.into() }
}

/// Parses `count=50 first=… avg=… std=… p5=… median=…` into named values.
fn stats_fields(line: &str) -> Result<BTreeMap<String, f64>, BenchmarkOutputError> {
    line.split_whitespace()
        .map(|tok| {
            let (k, v) = tok.split_once('=').ok_or_else(|| BenchmarkOutputError::NotAField {
                part: tok.into(),
                form: "name=value",
                line: line.into(),
            })?;
            Ok((k.to_string(), number(v, k, line)?))
        })
        .collect()
}

fn run_stats(line: &str) -> Result<RunStats, BenchmarkOutputError> {
    let f = stats_fields(line)?;
    let need = |k: &str| f.get(k).copied().ok_or_else(|| missing(&format!("{k}="), line));
    let count = need("count")?;
    if count.fract() != 0.0 {
        return Err(BenchmarkOutputError::Count { count, line: line.into() });
    }
    Ok(RunStats {
        count: count as u64,
        // A single run prints only `count=1 curr=…`.
        avg: f.get("avg").or(f.get("curr")).copied().ok_or_else(|| missing("avg=", line))?,
        std: f.get("std").copied(),
        min: f.get("min").copied(),
        max: f.get("max").copied(),
    })
}

/// Lines where the tool or a delegate said what went wrong (for the error of a failed run).
fn error_lines(lines: &[&str]) -> Vec<String> {
    let failing = |l: &&&str| {
        let lower = l.to_ascii_lowercase();
        l.starts_with("ERROR")
            || l.starts_with("E ")
            || lower.contains("failed")
            || lower.contains("segmentation fault")
            || lower.contains("aborted")
            || lower.contains("cannot")
            || lower.contains("could not")
    };
    lines.iter().filter(failing).take(3).map(|l| l.chars().take(300).collect()).collect()
}

/// Reads `benchmark_model`'s text output (see the module comment for which lines count):
/// TF 1.x and 2.x summaries, `INFO:` prefixes, exponent notation, percentiles, and the op
/// profiles of `--enable_op_profiling=true`. Delegate and vendor log lines are ignored.
pub fn parse_benchmark_output(text: &str) -> Result<BenchmarkTimings, BenchmarkOutputError> {
    let lines: Vec<&str> = text.lines().map(bare).collect();
    let Some(at) = lines.iter().rposition(|l| l.to_ascii_lowercase().contains(END_TO_END)) else {
        let errors = error_lines(&lines);
        return Err(if errors.is_empty() {
            BenchmarkOutputError::NoSummary
        } else {
            BenchmarkOutputError::Failed(errors)
        });
    };
    let line = lines[at];
    let body = &line[line.to_ascii_lowercase().find(END_TO_END).unwrap() + END_TO_END.len()..];
    let mut fields = BTreeMap::new();
    for part in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.rsplit_once(':').ok_or_else(|| BenchmarkOutputError::NotAField {
            part: part.into(),
            form: "name: value",
            line: line.into(),
        })?;
        fields.insert(k.trim().to_string(), number(v, k.trim(), line)?);
    }
    let any = |keys: &[&str]| keys.iter().find_map(|k| fields.get(*k).copied());
    let need = |keys: &[&str]| any(keys).ok_or_else(|| missing(keys[0], line));
    let inference_avg_us = need(&["Inference (avg)", "no stats", "Inference"])?;
    let runs_line = lines[..at]
        .iter()
        .rev()
        .find(|l| l.starts_with("count="))
        .ok_or_else(|| BenchmarkOutputError::NoRunsLine { line: line.into() })?;
    let runs = run_stats(runs_line)?;
    if runs.count == 0 {
        return Err(BenchmarkOutputError::NoRuns { line: runs_line.to_string() });
    }
    // The two are the same statistic printed twice; disagreement means we read the wrong line.
    if (runs.avg - inference_avg_us).abs() > 1.0 + 0.005 * inference_avg_us {
        return Err(BenchmarkOutputError::Disagree {
            inference_avg_us,
            runs_avg_us: runs.avg,
            line: runs_line.to_string(),
        });
    }
    if inference_avg_us == 0.0 {
        return Err(BenchmarkOutputError::Zero { line: line.into() });
    }
    let (init_profile, op_profile) = op_profiles(&lines)?;
    Ok(BenchmarkTimings {
        init_us: need(&["Init"])?,
        first_us: any(&["First inference"]),
        warmup_avg_us: need(&["Warmup (avg)", "Warmup"])?,
        inference_avg_us,
        runs,
        op_profile,
        init_profile,
    })
}

/// Which op profile a table belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Section {
    Init,
    Regular,
}

/// The initialization and regular-runs op profiles, if printed. A profile without a
/// `Profiling Info for …` heading (older builds) counts as the regular runs'.
#[allow(clippy::type_complexity)]
fn op_profiles(lines: &[&str]) -> Result<(Option<OpProfile>, Option<OpProfile>), BenchmarkOutputError> {
    let (mut init, mut regular): (Option<OpProfile>, Option<OpProfile>) = (None, None);
    let mut section = Section::Regular;
    let mut table: Option<(String, Vec<String>)> = None;
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if lower.contains("profiling info for") {
            section = if lower.contains("initialization") { Section::Init } else { Section::Regular };
            table = None;
            continue;
        }
        let profile = match section {
            Section::Init => init.get_or_insert_with(OpProfile::default),
            Section::Regular => regular.get_or_insert_with(OpProfile::default),
        };
        if let Some(title) = line.strip_prefix("====") {
            table = Some((title.trim_matches(|c: char| c == '=' || c.is_whitespace()).to_string(), Vec::new()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("Timings (microseconds):") {
            profile.timings = Some(run_stats(rest.trim())?);
            table = None;
            continue;
        }
        let Some((title, columns)) = table.as_mut() else { continue };
        if line.is_empty() {
            table = None;
            continue;
        }
        if line.starts_with('[') {
            *columns = header_columns(line);
            continue;
        }
        if columns.is_empty() {
            continue;
        }
        let cells = row_cells(line, columns.len())
            .ok_or_else(|| BenchmarkOutputError::Columns { line: line.to_string(), columns: columns.len() })?;
        let cell = |name: &str| columns.iter().position(|c| c == name).map(|i| cells[i].as_str());
        let num = |name: &str| -> Result<Option<f64>, BenchmarkOutputError> {
            cell(name).map(|c| number(c.trim_end_matches('%'), name, line)).transpose()
        };
        let whole = |name: &str| -> Result<Option<u64>, BenchmarkOutputError> {
            Ok(num(name)?.filter(|v| v.fract() == 0.0).map(|v| v as u64))
        };
        let node_type = cell("node type").unwrap_or_default().to_string();
        let avg_ms = num("avg ms")?.ok_or_else(|| BenchmarkOutputError::NoAverage { line: line.to_string() })?;
        match title.as_str() {
            "Run Order" => profile.ops.push(OpTime {
                node_type,
                name: cell("name").unwrap_or_default().to_string(),
                start_ms: num("start")?,
                first_ms: num("first")?,
                avg_ms,
                percent: num("%")?,
                mem_kb: num("mem kb")?,
                times_called: whole("times called")?,
            }),
            "Summary by node type" => profile.by_type.push(NodeTypeTime {
                node_type,
                count: whole("count")?,
                avg_ms,
                percent: num("avg %")?,
                times_called: whole("times called")?,
            }),
            _ => {} // `Top by …` repeats Run Order rows
        }
    }
    let nonempty =
        |p: Option<OpProfile>| p.filter(|p| !p.ops.is_empty() || !p.by_type.is_empty() || p.timings.is_some());
    Ok((nonempty(init), nonempty(regular)))
}

/// `[node type]  [start] … [Name]` -> lower-case column names.
fn header_columns(line: &str) -> Vec<String> {
    line.split('[').filter_map(|part| part.split_once(']')).map(|(name, _)| name.trim().to_ascii_lowercase()).collect()
}

/// A table row's cells: tab-separated as printed, or (when tabs were lost in copying) by
/// whitespace, with a node type of several words (`Vx Delegate`) taking the extra words.
fn row_cells(line: &str, n: usize) -> Option<Vec<String>> {
    let by_tab: Vec<String> = line.split('\t').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect();
    if by_tab.len() == n {
        return Some(by_tab);
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < n {
        return None;
    }
    let extra = words.len() - n;
    let mut cells = vec![words[..=extra].join(" ")];
    cells.extend(words[extra + 1..].iter().map(|w| w.to_string()));
    Some(cells)
}

/// The op profile as journaled with a round: compact per-node rows and the per-type summary.
fn profile_json(p: &OpProfile) -> serde_json::Value {
    serde_json::json!({
        "ops": p.ops.iter().map(|o| serde_json::json!({
            "node_type": o.node_type, "name": o.name, "avg_ms": o.avg_ms, "times_called": o.times_called,
        })).collect::<Vec<_>>(),
        "by_type": p.by_type.iter().map(|t| serde_json::json!({
            "node_type": t.node_type, "avg_ms": t.avg_ms, "count": t.count, "times_called": t.times_called,
        })).collect::<Vec<_>>(),
        "sum_of_ops_avg_us": p.timings.as_ref().map(|t| t.avg),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TFLite 2.x, CPU, no op profiling, default warm-up of one run.
    const PLAIN: &str = "\
STARTING!
Log parameter values verbosely: [0]
Num threads: [1]
Graph: [/data/local/tmp/hwnas/models/3f2a.tflite]
#threads used for CPU inference: [1]
Loaded model /data/local/tmp/hwnas/models/3f2a.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
The input model file size (MB): 5.48312
Initialized session in 24.807ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1 curr=15312

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=12108 curr=11744 min=11601 max=12790 avg=11876.5 std=231

Inference timings in us: Init: 24807, First inference: 15312, Warmup (avg): 15312, Inference (avg): 11876.5
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=8.62109 overall=14.0273
";

    /// Newer build: every line logged with `INFO: `, exponent notation, percentiles appended.
    const NEWER: &str = "\
INFO: STARTING!
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/hwnas/models/big.tflite]
INFO: Loaded model /data/local/tmp/hwnas/models/big.tflite
INFO: Initialized session in 312.4ms.
INFO: Running benchmark for at least 10 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=10 first=3.1022e+06 curr=2.95034e+06 min=2.94011e+06 max=3.1022e+06 avg=2.96101e+06 std=46210 p5=2.94011e+06 median=2.95034e+06 p95=3.1022e+06

INFO: Running benchmark for at least 20 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=20 first=2.95012e+06 curr=2.95034e+06 min=2.9401e+06 max=2.97e+06 avg=2.95e+06 std=8120 p5=2.9401e+06 median=2.9497e+06 p95=2.97e+06

INFO: Inference timings in us: Init: 312400, First inference: 3.1022e+06, Warmup (avg): 2.96101e+06, Inference (avg): 2.95e+06
INFO: Memory footprint delta from the start of the tool (MB): init=40.1 overall=61.2
";

    /// `--enable_op_profiling=true`: two op profiles, each ending in a `Timings (microseconds)` line
    /// (sum of per-op times), printed around the end-to-end summary.
    const PROFILED: &str = "\
STARTING!
Num threads: [1]
Graph: [m.tflite]
Enable op profiling: [1]
Loaded model m.tflite
Initialized session in 4.102ms.
Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=10 first=2280 curr=2141 min=2120 max=2280 avg=2160.3 std=45

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=472 first=2133 curr=2118 min=2101 max=2350 avg=2127.84 std=31

Profiling Info for Benchmark Initialization:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t         AllocateTensors\t            0.000\t    0.412\t    0.412\t100.000%\t100.000%\t     0.000\t        1\tAllocateTensors/0

Timings (microseconds): count=1 curr=412
Memory (bytes): count=0
1 nodes observed

Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t                 CONV_2D\t            0.000\t    1.201\t    1.190\t 58.110%\t 58.110%\t     0.000\t        1\t[layer0.conv]:0
\t       DEPTHWISE_CONV_2D\t            1.191\t    0.858\t    0.857\t 41.890%\t100.000%\t     0.000\t        1\t[layer0.dw]:1

============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t                 CONV_2D\t        1\t     1.190\t    58.110%\t    58.110%\t     0.000\t        1
\t       DEPTHWISE_CONV_2D\t        1\t     0.857\t    41.890%\t   100.000%\t     0.000\t        1

Timings (microseconds): count=472 first=2059 curr=2047 min=2030 max=2210 avg=2047.9 std=29
Memory (bytes): count=0
2 nodes observed

Inference timings in us: Init: 4102, First inference: 2280, Warmup (avg): 2160.3, Inference (avg): 2127.84
";

    #[test]
    fn reads_the_end_to_end_line_and_the_timed_runs() {
        let t = parse_benchmark_output(PLAIN).unwrap();
        assert_eq!(t.inference_avg_us, 11876.5);
        assert_eq!((t.init_us, t.first_us, t.warmup_avg_us), (24807.0, Some(15312.0), 15312.0));
        assert_eq!(t.op_profile, None);
        assert_eq!(
            t.runs,
            RunStats { count: 50, avg: 11876.5, std: Some(231.0), min: Some(11601.0), max: Some(12790.0) }
        );
    }

    #[test]
    fn tolerates_info_prefixes_exponents_and_percentiles() {
        let t = parse_benchmark_output(NEWER).unwrap();
        assert_eq!(t.inference_avg_us, 2.95e6);
        // The last bare count= line, not the warm-up one.
        assert_eq!(t.runs.count, 20);
        assert_eq!(t.runs.std, Some(8120.0));
    }

    #[test]
    fn op_profile_timings_are_not_the_end_to_end_latency() {
        let t = parse_benchmark_output(PROFILED).unwrap();
        assert_eq!(t.inference_avg_us, 2127.84);
        assert_eq!(t.runs.count, 472);
        assert_eq!(t.runs.avg, 2127.84);
        // Same when the profiles are printed after the summary.
        let (head, profiles) = PROFILED.split_at(PROFILED.find("Profiling Info").unwrap());
        let (profiles, summary) = profiles.split_at(profiles.find("Inference timings").unwrap());
        let reordered = format!("{head}{summary}{profiles}");
        let t = parse_benchmark_output(&reordered).unwrap();
        assert_eq!((t.inference_avg_us, t.runs.count), (2127.84, 472));
        // The per-op tables are read, the initialization's apart from the regular runs'.
        let ops = t.op_profile.unwrap();
        assert_eq!(ops.ops.len(), 2);
        assert_eq!((ops.ops[1].node_type.as_str(), ops.ops[1].name.as_str()), ("DEPTHWISE_CONV_2D", "[layer0.dw]:1"));
        assert_eq!((ops.ops[1].avg_ms, ops.ops[1].times_called), (0.857, Some(1)));
        assert_eq!(ops.by_type[0].avg_ms, 1.190);
        assert_eq!(ops.timings.unwrap().avg, 2047.9);
        assert_eq!(t.init_profile.unwrap().ops[0].node_type, "AllocateTensors");
    }

    #[test]
    fn a_rounds_op_profile_names_each_op_by_its_output_tensor() {
        let rt = TfliteRuntime { binary: "bm".into(), sha256: "00".into(), extra: vec![] };
        let r = rt.parse(&Output { stdout: PROFILED.into(), stderr: String::new(), exit_code: 0 }).unwrap();
        let ops = rt.op_times(&r.detail).unwrap().unwrap();
        assert_eq!(ops[0], ("layer0.conv".to_string(), 1190.0));
        assert_eq!(ops[1], ("layer0.dw".to_string(), 857.0));
        assert_eq!(tensor_of("[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0"), "MobilenetV1/MobilenetV1/Conv2d_0/Relu6");
        assert_eq!(tensor_of("AllocateTensors/0"), "AllocateTensors/0");
        assert_eq!(tensor_of("[a:b]"), "a:b");
        let plain = rt.parse(&Output { stdout: PLAIN.into(), stderr: String::new(), exit_code: 0 }).unwrap();
        assert!(rt.op_times(&plain.detail).is_none());
    }

    #[test]
    fn op_tables_whose_tabs_were_lost_are_read_by_words() {
        let spaced = PROFILED.replace('\t', "  ");
        let ops = parse_benchmark_output(&spaced).unwrap().op_profile.unwrap();
        assert_eq!(ops.ops.len(), 2);
        assert_eq!((ops.ops[0].name.as_str(), ops.ops[0].avg_ms), ("[layer0.conv]:0", 1.190));
        let vx = "\
count=3 first=2 curr=2 min=2 max=2 avg=2 std=0
Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 2, Inference (avg): 2
============================== Run Order ==============================
 [node type]  [start]  [first]  [avg ms]  [%]  [cdf%]  [mem KB]  [times called]  [Name]
 Vx Delegate  0.010  2.509  2.504  100.000%  100.000%  0.000  1  [out]:31
";
        let ops = parse_benchmark_output(vx).unwrap().op_profile.unwrap();
        assert_eq!((ops.ops[0].node_type.as_str(), ops.ops[0].percent), ("Vx Delegate", Some(100.0)));
    }

    #[test]
    fn tf1_summaries_have_no_first_inference() {
        let tf1 =
            "count=1 curr=751932\n\ncount=50 first=747738 curr=747428 min=747331 max=748577 avg=747733 std=293\n\n\
                   Average inference timings in us: Warmup: 751932, Init: 21039, no stats: 747733\n";
        let t = parse_benchmark_output(tf1).unwrap();
        assert_eq!((t.inference_avg_us, t.warmup_avg_us, t.init_us, t.first_us), (747733.0, 751932.0, 21039.0, None));
        assert_eq!(t.runs.count, 50);
    }

    #[test]
    fn malformed_output_is_an_error_quoting_it() {
        let failed = "STARTING!\nGraph: [m.tflite]\nERROR: Could not open 'm.tflite'.\nFailed to read model m.tflite\n";
        let e = parse_benchmark_output(failed).unwrap_err().to_string();
        assert!(e.contains("no `Inference timings in us:` line"), "{e}");
        // What the tool said went wrong is in the reason itself, not only in the excerpt.
        assert!(e.contains("it reported: ERROR: Could not open 'm.tflite'. / Failed to read model"), "{e}");

        let garbled = PLAIN.replace("Inference (avg): 11876.5", "Inference (avg): n/a");
        let e = parse_benchmark_output(&garbled).unwrap_err().to_string();
        assert!(e.contains("`Inference (avg)` is `n/a`"), "{e}");

        let no_runs = PLAIN.replace("count=50 first=12108 curr=11744 min=11601 max=12790 avg=11876.5 std=231", "");
        // Falls back to the warm-up line, whose average disagrees: caught, not silently used.
        let e = parse_benchmark_output(&no_runs).unwrap_err().to_string();
        assert!(e.contains("says avg=15312"), "{e}");

        let rt = TfliteRuntime { binary: "bm".into(), sha256: "00".into(), extra: vec![] };
        let out = Output { stdout: failed.into(), stderr: String::new(), exit_code: 0 };
        let msg = rt.parse(&out).unwrap_err().to_string();
        assert!(msg.contains("Failed to read model m.tflite"), "{msg}");
    }

    #[test]
    fn a_round_is_the_invocations_average() {
        let rt = TfliteRuntime { binary: "bm".into(), sha256: "00".into(), extra: vec!["--use_xnnpack=true".into()] };
        let r = rt.parse(&Output { stdout: PLAIN.into(), stderr: String::new(), exit_code: 0 }).unwrap();
        assert_eq!(r.samples_us, vec![11876.5]);
        assert_eq!(r.timed_us, 11876.5 * 50.0);
        assert_eq!(r.detail["std_us"], 231.0);
    }

    #[test]
    fn command_line_pins_and_fixes_the_run_count() {
        let rt = TfliteRuntime { binary: "bm".into(), sha256: "00".into(), extra: vec!["--use_xnnpack=true".into()] };
        let cfg =
            Protocol { warmup: 10, affinity: Some("70".into()), warmup_ms: 0, min_time_ms: 0, ..Protocol::default() };
        assert_eq!(
            rt.argv("/d/bm", "/d/m.tflite", &cfg).join(" "),
            "taskset 70 /d/bm --graph=/d/m.tflite --num_threads=1 --warmup_runs=10 --warmup_min_secs=0 \
             --num_runs=50 --min_secs=0 --use_xnnpack=true"
        );
        let timed = Protocol { layer_profile_runs: 20, ..Protocol::default() };
        assert_eq!(
            rt.argv("/d/bm", "/d/m.tflite", &timed).join(" "),
            "/d/bm --graph=/d/m.tflite --num_threads=1 --warmup_runs=2 --warmup_min_secs=0.02 --num_runs=50 \
             --min_secs=0.05 --enable_op_profiling=true --use_xnnpack=true"
        );
        let flags = rt.flags(&Protocol { affinity: None, ..cfg });
        assert_eq!(flags[0], "{binary}");
        assert_eq!(flags[1], "--graph={model}");
    }
}
