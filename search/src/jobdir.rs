//! One job directory for every search job, sampling ([`crate::job`]) or differentiable
//! ([`crate::dnas`]): what is in it, and the rules that keep it consistent across kills and
//! resumes.
//!
//! - `.lock`: held while a process works on the job ([`crate::lock`]): a second process on
//!   the same directory is refused, naming the one that holds it;
//! - `config.json`: the resolved [`JobConfig`] with the SHA-256 fingerprints of its input
//!   files under `inputs` ([`crate::inputs`]);
//! - `state.json`: the [`Checkpoint`] after each completed step (a generation or an epoch):
//!   the configuration, the fingerprints and the job's own progress, replaced atomically
//!   (`latency::files::write_atomic`), so a kill leaves the old one or the new one;
//! - `history.jsonl`: one JSON row per evaluated member or epoch, appended and forced to disk
//!   before the checkpoint that counts them;
//! - `log.txt`: what happened, step by step.
//!
//! A new job refuses a directory that holds a checkpoint unless asked to resume it. Resuming
//! refuses a configuration that differs from the saved one, naming the settings that
//! differ, and an input file that changed, naming it; it keeps the committed history rows and
//! cuts what follows them (a step killed halfway, which runs again), saying so in the log.

use crate::config::{self, AccuracySpec, ConfigError, JobConfig, LatencySpec, SearchConfig};
use crate::inputs::{self, InputDigest, InputError};
use crate::lock::{lock_dir, DirLock, LockError};
use latency::files::write_atomic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a job could not be opened, continued or finished.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Input(#[from] InputError),
    /// A checkpointed job, and no `resume`.
    #[error("{dir} already holds a search job; pass --resume to continue it or choose another --out")]
    Exists { dir: PathBuf },
    /// `resume` with other settings than the saved job's.
    #[error(
        "cannot resume {dir}: its saved configuration differs in {} (resume with the same settings, or omit them)",
        .differences.join(", ")
    )]
    Differs { dir: PathBuf, differences: Vec<String> },
    #[error("{path} is not a checkpoint")]
    NotACheckpoint {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has checkpoint format {found}, this build reads {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: bad history row")]
    HistoryRow {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has {found} rows but the checkpoint committed {committed}")]
    HistoryShort { path: PathBuf, found: usize, committed: usize },
    /// The latency target is below the smallest latency the space reaches.
    #[error(transparent)]
    Infeasible(Box<Infeasible>),
    /// The job stopped: its last generations had no feasible member.
    #[error(transparent)]
    Unreachable(#[from] Unreachable),
    /// A latency predictor that cannot serve the job (another space, another precision, not
    /// additive where the strategy needs a table).
    #[error("latency predictor `{label}` ({path})")]
    Predictor {
        label: String,
        path: String,
        #[source]
        source: RefusedPredictor,
    },
    /// A latency predictor a differentiable strategy cannot use.
    #[error("--strategy {strategy} needs {needs}: {what}")]
    NeedsPredictor {
        strategy: &'static str,
        needs: &'static str,
        /// The file, and what it is when that is the problem.
        what: String,
        #[source]
        source: Option<Box<predictors::DocumentError>>,
    },
    /// A pinned resolution no latency predictor covers.
    #[error("fixed resolution {wanted} is not covered: {why} covers resolutions {covered} only")]
    Uncovered { wanted: String, why: String, covered: String },
    /// The data does not fit the job (more classes than the classifier, too few examples).
    #[error("{0}")]
    Data(String),
    /// The job's space.
    #[error(transparent)]
    Space(#[from] spaces::ArchError),
    /// The job's `fixed` genes, or the resolutions its predictors cover.
    #[error(transparent)]
    Pin(#[from] crate::pinned::PinError),
    /// Timing or scoring members (predictors, device measurements, accuracy sources).
    #[error(transparent)]
    Objective(Box<crate::objectives::ObjectiveError>),
    /// The sampling strategy.
    #[error(transparent)]
    Strategy(#[from] crate::strategies::StrategyError),
    /// A differentiable search's supernet, data, training or checkpoint files.
    #[error(transparent)]
    Nn(Box<crate::nn::NnError>),
    /// The latency predictor of a differentiable search could not price the derived member.
    #[error(transparent)]
    Predict(#[from] predictors::PredictError),
    /// A device's measurements could not be written as a dataset at the end.
    #[error("cannot write the measurements of latency `{label}` as a dataset")]
    Measurements {
        label: String,
        #[source]
        source: crate::objectives::MeasureError,
    },
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    #[error(transparent)]
    Plot(#[from] predictors::PlotError),
    #[error("cannot serialise {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

// The large errors of the parts are boxed: a job's error stays small on the happy path.
impl From<crate::objectives::ObjectiveError> for JobError {
    fn from(e: crate::objectives::ObjectiveError) -> Self {
        JobError::Objective(Box::new(e))
    }
}

impl From<crate::nn::NnError> for JobError {
    fn from(e: crate::nn::NnError) -> Self {
        JobError::Nn(Box::new(e))
    }
}

/// Why a latency predictor cannot serve a job.
#[derive(Debug, thiserror::Error)]
pub enum RefusedPredictor {
    /// Fitted on another space or another precision.
    #[error(transparent)]
    Serve(#[from] predictors::ServeError),
    /// It cannot price a layer the search needs.
    #[error(transparent)]
    Price(#[from] predictors::PredictError),
    /// FBNet's per-layer table needs the space's searchable layers.
    #[error("space {space} gave {found} searchable layers, expected {expected}")]
    SearchableLayers { space: String, found: usize, expected: usize },
}

impl JobError {
    /// The latency predictor of `spec` refused for the job, and why.
    pub(crate) fn predictor(spec: &LatencySpec, e: impl Into<RefusedPredictor>) -> JobError {
        JobError::Predictor { label: spec.label.clone(), path: spec.path.clone(), source: e.into() }
    }

    fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> JobError {
        move |source| JobError::Serialize { what, source }
    }

    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JobError {
        let path = path.to_path_buf();
        move |source| JobError::Io { action, path, source }
    }
}

/// Refuses the latency predictor of `spec` when it was fitted on measurements of another
/// precision than the job's models (`config.precision`), naming both, unless
/// `allow_precision_mismatch`; then returns the warning to log.
pub(crate) fn check_predictor_precision(
    config: &JobConfig,
    spec: &LatencySpec,
    p: &dyn predictors::LatencyPredictor,
) -> Result<Option<String>, JobError> {
    match predictors::check_precision(p, config.precision) {
        Ok(()) => Ok(None),
        Err(_) if config.allow_precision_mismatch => Ok(Some(format!(
            "latency predictor `{}` ({}) was fitted on {} measurements and prices this {} job's models \
             (allow_precision_mismatch): its latencies are not those of the deployed models",
            spec.label,
            spec.path,
            p.precision(),
            config.precision
        ))),
        Err(e) => Err(JobError::predictor(spec, e)),
    }
}

/// A latency target below the smallest latency the job's space reaches.
#[derive(Debug, thiserror::Error)]
#[error(
    "latency target {target_ms} ms is infeasible for space {space} under {source_kind} `{label}`: the smallest \
     latency found is {smallest_ms:.4} ms ({arch}), by {method}"
)]
pub struct Infeasible {
    pub target_ms: f64,
    pub space: String,
    /// `predictor` or `device`.
    pub source_kind: &'static str,
    pub label: String,
    pub smallest_ms: f64,
    pub arch: String,
    pub method: String,
}

/// Why a job stopped early: its last generations produced no feasible member.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Unreachable {
    pub message: String,
}

/// The input files `config` reads, fingerprinted: predictor files (and the weights an MLP
/// keeps beside its JSON), the accuracy predictor or supernet checkpoint and its data, or a
/// differentiable search's training data. A latency path that is no file (an in-memory
/// predictor's description) is not an input.
pub fn job_inputs(config: &JobConfig) -> Result<Vec<InputDigest>, JobError> {
    let mut out = Vec::new();
    let mut add = |role: String, path: &Path, required: bool| -> Result<(), JobError> {
        if required || path.exists() {
            out.push(inputs::digest(&role, path)?);
        }
        Ok(())
    };
    for spec in config.latency.iter().filter(|s| s.measure.is_none()) {
        let path = Path::new(&spec.path);
        if path.is_file() {
            let role = format!("latency predictor `{}`", spec.label);
            add(role.clone(), path, true)?;
            add(format!("{role} weights"), &predictors::mlp::weights_path(path), false)?;
        }
    }
    match &config.search {
        SearchConfig::Sampling(s) => match &s.accuracy {
            AccuracySpec::Predictor { path } => {
                let path = Path::new(path);
                add("accuracy predictor".into(), path, true)?;
                add("accuracy predictor weights".into(), &predictors::mlp::weights_path(path), false)?;
            }
            AccuracySpec::Supernet { path, eval } => {
                add("supernet checkpoint".into(), Path::new(path), true)?;
                if let Some(d) = inputs::data_dir(&eval.data) {
                    add("accuracy data".into(), d, true)?;
                }
            }
            AccuracySpec::CapacityProxy => {}
        },
        SearchConfig::Differentiable(d) => {
            if let Some(dir) = inputs::data_dir(&d.data) {
                add("training data".into(), dir, true)?;
            }
        }
    }
    Ok(out)
}

/// The checkpoint format this build writes and reads.
pub const FORMAT: u32 = 1;

fn format_one() -> u32 {
    FORMAT
}

/// `state.json`: everything needed to continue after the last completed step.
#[derive(Serialize, Deserialize)]
pub struct Checkpoint<P> {
    /// Absent in differentiable jobs' checkpoints of older builds.
    #[serde(default = "format_one")]
    pub format: u32,
    pub config: JobConfig,
    /// Fingerprints of the input files (absent in checkpoints of older builds).
    #[serde(default)]
    pub inputs: Vec<InputDigest>,
    /// The job's own progress (generations and strategy state, or epochs and weights).
    #[serde(flatten)]
    pub progress: P,
}

/// A job's progress as its checkpoint records it.
pub trait Progress: Serialize + DeserializeOwned {
    /// The history rows this checkpoint commits.
    fn history_rows(&self) -> usize;
    /// The step that runs next, e.g. `("generation", 3)`.
    fn next_step(&self) -> (&'static str, usize);
}

/// A job directory opened: a new job, or a checkpointed one with its committed history.
pub enum Opened<P, R> {
    New(JobDir),
    Resumed { dir: JobDir, checkpoint: Box<Checkpoint<P>>, history: Vec<R> },
}

/// A job directory, locked for the lifetime of this value.
pub struct JobDir {
    path: PathBuf,
    config: JobConfig,
    inputs: Vec<InputDigest>,
    log: File,
    /// Held for the job's lifetime: no other process writes this directory meanwhile.
    lock: DirLock,
}

pub const CONFIG_FILE: &str = "config.json";
pub const STATE_FILE: &str = "state.json";
pub const HISTORY_FILE: &str = "history.jsonl";
pub const LOG_FILE: &str = "log.txt";

impl JobDir {
    /// Whether `dir` holds a checkpointed job; one is refused without `resume`. Called before
    /// a job does anything costly, so that a second start fails at once.
    pub fn checkpointed(dir: &Path, resume: bool) -> Result<bool, JobError> {
        let exists = dir.join(STATE_FILE).exists();
        if exists && !resume {
            return Err(JobError::Exists { dir: dir.into() });
        }
        Ok(exists)
    }

    /// Locks `dir` (creating it) for a `config` job reading `inputs`, and opens the job
    /// checkpointed there when there is one and `resume` (its configuration must equal
    /// `config` and its inputs be unchanged), else starts a new one: config.json written, the
    /// history emptied and the log started.
    pub fn open<P: Progress, R: DeserializeOwned>(
        dir: &Path,
        config: &JobConfig,
        inputs: Vec<InputDigest>,
        resume: bool,
    ) -> Result<Opened<P, R>, JobError> {
        let lock = lock_dir(dir, "search")?;
        // A job another process checkpointed meanwhile is refused as before the lock.
        if Self::checkpointed(dir, resume)? {
            return Self::resume(dir, config, inputs, lock);
        }
        let log_path = dir.join(LOG_FILE);
        let log = File::create(&log_path).map_err(JobError::io("write", &log_path))?;
        let mut job = JobDir { path: dir.into(), config: config.clone(), inputs, log, lock };
        job.write_config()?;
        let history = dir.join(HISTORY_FILE);
        File::create(&history).map_err(JobError::io("write", &history))?;
        job.note_takeover();
        Ok(Opened::New(job))
    }

    fn resume<P: Progress, R: DeserializeOwned>(
        dir: &Path,
        config: &JobConfig,
        inputs: Vec<InputDigest>,
        lock: DirLock,
    ) -> Result<Opened<P, R>, JobError> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(JobError::io("read", &path))?;
        let cp: Checkpoint<P> =
            serde_json::from_str(&text).map_err(|source| JobError::NotACheckpoint { path: path.clone(), source })?;
        if cp.format != FORMAT {
            return Err(JobError::Format { path, found: cp.format });
        }
        if cp.config != *config {
            return Err(JobError::Differs { dir: dir.into(), differences: config::differences(&cp.config, config) });
        }
        inputs::check_unchanged(dir, &cp.inputs, &inputs)?;
        let log_path = dir.join(LOG_FILE);
        let log =
            OpenOptions::new().create(true).append(true).open(&log_path).map_err(JobError::io("write", &log_path))?;
        let mut job = JobDir { path: dir.into(), config: config.clone(), inputs, log, lock };
        job.note_takeover();
        let rows = cp.progress.history_rows();
        let (history, dropped) = job.load_committed(rows)?;
        if dropped > 0 {
            let (step, n) = cp.progress.next_step();
            job.note(&format!(
                "dropped {dropped} history line(s) after the {rows} committed rows: {step} {n} was interrupted \
                 before its checkpoint and runs again"
            ))?;
        }
        if cp.inputs.is_empty() && !job.inputs.is_empty() {
            job.note("this job's checkpoint had no input fingerprints; they are recorded from now on")?;
        }
        // Rewritten in this build's format (a job of an older build keeps its settings).
        job.write_config()?;
        Ok(Opened::Resumed { dir: job, checkpoint: Box::new(cp), history })
    }

    fn note_takeover(&mut self) {
        if let Some(n) = self.lock.takeover_note() {
            let _ = self.note(&n);
        }
    }

    fn write_config(&self) -> Result<(), JobError> {
        let path = self.path.join(CONFIG_FILE);
        let text = inputs::with_inputs(&self.config, &self.inputs).map_err(JobError::serialize("the configuration"))?;
        write_atomic(&path, text.as_bytes()).map_err(JobError::io("write", &path))
    }

    /// The first `rows` rows of the history, and how many lines after them (rows of a step
    /// killed before its checkpoint, a torn last line) were cut off the file.
    fn load_committed<R: DeserializeOwned>(&self, rows: usize) -> Result<(Vec<R>, usize), JobError> {
        let path = self.path.join(HISTORY_FILE);
        if rows == 0 && !path.exists() {
            return Ok((Vec::new(), 0));
        }
        let text = std::fs::read_to_string(&path).map_err(JobError::io("read", &path))?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() < rows {
            return Err(JobError::HistoryShort { path, found: lines.len(), committed: rows });
        }
        let history = lines[..rows]
            .iter()
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|source| JobError::HistoryRow {
                    path: path.clone(),
                    line: i + 1,
                    source,
                })
            })
            .collect::<Result<Vec<R>, _>>()?;
        let dropped = lines.len() - rows;
        if dropped > 0 {
            let kept: String = lines[..rows].iter().map(|l| format!("{l}\n")).collect();
            write_atomic(&path, kept.as_bytes()).map_err(JobError::io("write", &path))?;
        }
        Ok((history, dropped))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a line to the job's log.
    pub fn note(&mut self, line: &str) -> Result<(), JobError> {
        let path = self.path.join(LOG_FILE);
        writeln!(self.log, "{line}").map_err(JobError::io("write", &path))
    }

    /// Appends rows to the history and forces them to disk (before the checkpoint that counts them).
    pub fn append_history<R: Serialize>(&self, rows: &[R]) -> Result<(), JobError> {
        let path = self.path.join(HISTORY_FILE);
        let mut buf = Vec::new();
        for r in rows {
            serde_json::to_writer(&mut buf, r).map_err(JobError::serialize("a history row"))?;
            buf.push(b'\n');
        }
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            f.write_all(&buf)?;
            f.sync_data()
        };
        write().map_err(JobError::io("write", &path))
    }

    /// Replaces the checkpoint atomically with one of `progress`.
    pub fn checkpoint<P: Progress>(&self, progress: P) -> Result<(), JobError> {
        let cp = Checkpoint { format: FORMAT, config: self.config.clone(), inputs: self.inputs.clone(), progress };
        let path = self.path.join(STATE_FILE);
        let text = serde_json::to_string(&cp).map_err(JobError::serialize("the checkpoint"))?;
        write_atomic(&path, text.as_bytes()).map_err(JobError::io("write", &path))
    }

    /// Writes a result file `name` of the directory atomically.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), JobError> {
        let path = self.path.join(name);
        write_atomic(&path, bytes).map_err(JobError::io("write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LatencySpec, StrategyConfig};

    #[derive(Serialize, Deserialize)]
    struct Steps {
        next: usize,
    }

    impl Progress for Steps {
        fn history_rows(&self) -> usize {
            2 * self.next
        }
        fn next_step(&self) -> (&'static str, usize) {
            ("step", self.next)
        }
    }

    fn config(seed: u64) -> JobConfig {
        let latency = vec![LatencySpec { label: "t".into(), path: "memory".into(), measure: None }];
        let mut c = JobConfig::sampling("fbnet-cifar100", latency, 10.0, StrategyConfig::Random);
        c.seed = seed;
        c
    }

    #[test]
    fn a_resume_keeps_the_committed_rows_refuses_other_settings_and_a_second_start() {
        let dir = std::env::temp_dir().join(format!("hwnas-jobdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let Opened::<Steps, u32>::New(mut job) = JobDir::open(&dir, &config(1), vec![], false).unwrap() else {
            panic!("a new directory opens a new job")
        };
        job.append_history(&[1u32, 2]).unwrap();
        job.checkpoint(Steps { next: 1 }).unwrap();
        job.note("step 0").unwrap();
        // Step 1 killed after one of its rows, and a torn line.
        job.append_history(&[3u32]).unwrap();
        std::fs::OpenOptions::new().append(true).open(dir.join(HISTORY_FILE)).unwrap().write_all(b"4").unwrap();
        drop(job);
        assert!(matches!(JobDir::checkpointed(&dir, false), Err(JobError::Exists { .. })));
        let err = JobDir::open::<Steps, u32>(&dir, &config(2), vec![], true).err().unwrap().to_string();
        assert!(err.contains("seed (1 saved, 2 given)"), "{err}");
        let Opened::Resumed { checkpoint, history, .. } =
            JobDir::open::<Steps, u32>(&dir, &config(1), vec![], true).unwrap()
        else {
            panic!("a checkpointed job resumes")
        };
        assert_eq!((checkpoint.progress.next, history), (1, vec![1, 2]));
        assert_eq!(std::fs::read_to_string(dir.join(HISTORY_FILE)).unwrap(), "1\n2\n");
        let log = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap();
        assert!(
            log.starts_with("step 0\n") && log.contains("dropped 2 history line(s) after the 2 committed rows: step 1")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
