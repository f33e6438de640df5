//! One `hwnas profile` run over an output directory: lock it, load the journal,
//! refresh the dataset from what is already measured, run the job, and write the
//! dataset again from everything journaled.

use super::dataset::{write_parquet, DatasetError, DATASET_FILE};
use super::job::{identities, DeviceReport, Event, Job};
use super::journal::{Journal, JournalError, Loaded};
use super::models::ModelError;
use super::protocol::ProtocolError;
use super::record::{Record, RuntimeId};
use super::settings::ConnectError;
use crate::device_lock::DeviceLockError;
use crate::modelfile::precision::Precision;
use crate::runtime::{Runtime, RuntimeError};
use crate::target::Target;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const LOCK_FILE: &str = ".lock";

/// Why a profiling run or a live meter could not start or go on. Each names what it is about
/// (the device, the file, the runtime); the error it comes from is the source.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("device `{0}` is selected twice")]
    SelectedTwice(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A model precision the runtime cannot time (refused before anything is pushed or timed).
    #[error(
        "runtime {runtime} cannot time {precision} models (it times {}); nothing was pushed or timed (--runtime {} \
         times fp32, fp16 and int8 on this machine)",
        names(can),
        crate::runtime::litert::NAME
    )]
    Precision { runtime: String, precision: Precision, can: Vec<Precision> },
    /// Per-layer times asked of a runtime that reports no per-op times.
    #[error(
        "runtime {0} reports no per-op times, so it cannot time layers inside networks (--per-layer); nothing was \
         pushed or timed (use --runtime runner, or --runtime tflite with benchmark_model)"
    )]
    LayerProfiles(String),
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the output directory's lock.
    #[error("another hwnas process is writing {} (lock {} is held)", dir.display(), lock.display())]
    Busy { dir: PathBuf, lock: PathBuf },
    #[error("no {} in {}", super::JOURNAL_FILE, .0.display())]
    NoJournal(PathBuf),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    DeviceLock(#[from] DeviceLockError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot install {runtime} on {device}")]
    Install {
        runtime: String,
        device: String,
        #[source]
        source: RuntimeError,
    },
    #[error("measuring {model} on {device}")]
    Measure {
        model: String,
        device: String,
        #[source]
        source: RuntimeError,
    },
    /// A measurement the journal could not take (it is lost; the run stops).
    #[error("measured {model} on {device} but could not journal it")]
    Journaling {
        model: String,
        device: String,
        #[source]
        source: JournalError,
    },
}

/// `fp32, fp16` …
fn names(precisions: &[Precision]) -> String {
    precisions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

/// `cannot create {path}`, with the io error as its source.
pub(crate) fn create(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError {
    let path = path.to_path_buf();
    move |source| ProfileError::Create { path, source }
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub reports: Vec<DeviceReport>,
    /// Records in the journal before this run (resumed from).
    pub resumed: usize,
    /// Bytes of a torn last journal line that were cut off.
    pub torn_bytes: usize,
    /// A complete last record missing only its newline was kept.
    pub unterminated: bool,
    /// Duplicated record lines in the journal (dropped on read, not in the dataset).
    pub duplicates: usize,
    /// Unreadable journal lines moved aside by `repair`, and where.
    pub repaired: Option<(usize, PathBuf)>,
    /// Journaled records taken with other runtime settings (runtime, flags or binary) than this
    /// run's: kept in the journal, left out of this run's dataset.
    pub other_settings: usize,
    /// Records in the dataset now.
    pub records: usize,
    pub dataset: PathBuf,
    pub journal: PathBuf,
}

impl Outcome {
    /// An error naming every device that did not finish its queue and what was kept.
    pub fn problems(&self) -> Option<String> {
        let bad: Vec<String> = self
            .reports
            .iter()
            .filter(|r| !r.complete())
            .map(|r| {
                let mut s =
                    format!("{}: measured {} of {} ({} already done)", r.device, r.measured, r.total, r.skipped);
                if !r.failed.is_empty() {
                    s += &format!(", {} failed (first: {}: {})", r.failed.len(), r.failed[0].0, r.failed[0].1);
                }
                if let Some(why) = &r.stopped {
                    s += &format!(", stopped: {why}");
                }
                s
            })
            .collect();
        (!bad.is_empty()).then(|| {
            format!(
                "{}\nkept {} records in {} (run the same command again to resume)",
                bad.join("\n"),
                self.records,
                self.journal.display()
            )
        })
    }
}

/// Holds an exclusive lock on the output directory; the OS drops it if the process dies.
pub(crate) struct DirLock {
    _file: File,
}

pub(crate) fn lock(dir: &Path) -> Result<DirLock, ProfileError> {
    let path = dir.join(LOCK_FILE);
    let f = File::create(&path).map_err(create(&path))?;
    // A child process that another thread is starting holds a copy of every descriptor until
    // it execs (close-on-exec), so a lock this process just released can look held for a
    // moment; a few short retries tell that apart from another run.
    // SAFETY: flock on a file descriptor we own for the lifetime of the guard.
    let try_lock = || unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !(0..10).any(|i| {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        try_lock()
    }) {
        return Err(ProfileError::Busy { dir: dir.into(), lock: path });
    }
    Ok(DirLock { _file: f })
}

/// Reads every record in `dir`'s journal (without repairing it), each identity once.
pub fn read_journal(dir: &Path) -> Result<Vec<Record>, JournalError> {
    let (_, loaded) = Journal::open(dir)?;
    Ok(loaded.records)
}

/// How [`run_with`] treats the output directory and busy devices.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Move unreadable journal lines to `journal.bad.jsonl` instead of refusing to start.
    pub repair: bool,
    /// How long to wait for a device another hwnas run is timing on (zero: refuse at once).
    pub device_wait: Duration,
}

/// Repairs `dir`'s journal (see [`Options::repair`]) under the directory's lock, without profiling.
pub fn repair(dir: &Path) -> Result<Loaded, ProfileError> {
    if !dir.join(super::JOURNAL_FILE).is_file() {
        return Err(ProfileError::NoJournal(dir.into()));
    }
    let _lock = lock(dir)?;
    Ok(Journal::open_with(dir, true).map(|(_, loaded)| loaded)?)
}

/// The settings under which `job` measures (what its records must match to be in its dataset).
pub fn runtime_id(job: &Job) -> RuntimeId {
    RuntimeId {
        runtime: job.runtime.name().into(),
        flags: job.runtime.flags(job.protocol),
        binary_sha256: job.runtime.binary_sha256().into(),
    }
}

/// This run's records (its runtime settings), and how many others were left out.
fn this_run(records: Vec<Record>, id: &RuntimeId) -> (Vec<Record>, usize) {
    let (mine, other): (Vec<Record>, Vec<Record>) = records.into_iter().partition(|r| &r.runtime == id);
    (mine, other.len())
}

/// Refuses a job with a model of a precision its runtime cannot time, before anything is
/// pushed or timed, naming the runtime and the precision.
pub fn check_precisions(job: &Job) -> Result<(), ProfileError> {
    job.models.iter().try_for_each(|m| check_precision(job.runtime, m.precision))
}

/// Refuses a job asking for per-layer times inside networks of a runtime that reports no
/// per-op times, before anything is pushed or timed.
pub fn check_layer_profiles(job: &Job) -> Result<(), ProfileError> {
    if job.protocol.layer_profile_runs == 0 || job.runtime.profiles_layers() {
        return Ok(());
    }
    Err(ProfileError::LayerProfiles(job.runtime.name().into()))
}

/// Refuses `precision` when `runtime` cannot time it, naming both (the one message of that
/// refusal, for profiling jobs and live meters alike).
pub fn check_precision(runtime: &dyn Runtime, precision: Precision) -> Result<(), ProfileError> {
    let can = runtime.precisions();
    if can.contains(&precision) {
        return Ok(());
    }
    Err(ProfileError::Precision { runtime: runtime.name().into(), precision, can: can.to_vec() })
}

/// Runs `job` on `targets`, resuming from `job.out_dir`'s journal (default [`Options`]).
pub fn run(job: &Job, targets: &[Box<dyn Target>], on_event: &(dyn Fn(Event) + Sync)) -> Result<Outcome, ProfileError> {
    run_with(job, targets, &Options::default(), on_event)
}

/// Runs `job` on `targets`, resuming from `job.out_dir`'s journal. The dataset holds the
/// records taken with this run's runtime settings; records of other settings stay in the
/// journal and are counted in [`Outcome::other_settings`].
pub fn run_with(
    job: &Job,
    targets: &[Box<dyn Target>],
    opts: &Options,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<Outcome, ProfileError> {
    let mut seen = BTreeMap::new();
    for t in targets {
        if seen.insert(t.id(), ()).is_some() {
            return Err(ProfileError::SelectedTwice(t.id()));
        }
    }
    job.protocol.validate()?;
    check_precisions(job)?;
    check_layer_profiles(job)?;
    let dir = job.out_dir;
    std::fs::create_dir_all(dir).map_err(create(dir))?;
    let _lock = lock(dir)?;
    let (journal, loaded) = Journal::open_with(dir, opts.repair)?;
    let dataset = dir.join(DATASET_FILE);
    let id = runtime_id(job);
    let done = identities(&loaded.records);
    let (mine, _) = this_run(loaded.records.clone(), &id);
    let resumed = mine.len();
    // A run killed earlier may not have written the dataset; bring it up to date first.
    if resumed > 0 {
        write_parquet(&mine, &dataset)?;
    }
    let reports = job.run(targets, &journal, &done, opts.device_wait, on_event);
    drop(journal);
    let (records, other_settings) = this_run(read_journal(dir)?, &id);
    write_parquet(&records, &dataset)?;
    Ok(Outcome {
        reports,
        resumed,
        torn_bytes: loaded.torn_bytes,
        unterminated: loaded.unterminated,
        duplicates: loaded.duplicates,
        repaired: loaded.repaired,
        other_settings,
        records: records.len(),
        dataset,
        journal: dir.join(super::JOURNAL_FILE),
    })
}
