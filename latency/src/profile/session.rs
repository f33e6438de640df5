//! One `hwnas profile` run over an output directory: lock it, load the journal,
//! refresh the dataset from what is already measured, run the job, and write the
//! dataset again from everything journaled.

use super::dataset::{write_parquet, DATASET_FILE};
use super::job::{identities, DeviceReport, Event, Job};
use super::journal::Journal;
use super::record::Record;
use crate::target::Target;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".lock";

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub reports: Vec<DeviceReport>,
    /// Records in the journal before this run (resumed from).
    pub resumed: usize,
    /// Bytes of a torn last journal line that were cut off.
    pub torn_bytes: usize,
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

pub(crate) fn lock(dir: &Path) -> Result<DirLock, String> {
    let path = dir.join(LOCK_FILE);
    let f = File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own for the lifetime of the guard.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!("another hwnas process is writing {} (lock {} is held)", dir.display(), path.display()));
    }
    Ok(DirLock { _file: f })
}

/// Reads every record in `dir`'s journal (without repairing it).
pub fn read_journal(dir: &Path) -> Result<Vec<Record>, String> {
    let (_, loaded) = Journal::open(dir)?;
    Ok(loaded.records)
}

/// Runs `job` on `targets`, resuming from `job.out_dir`'s journal.
pub fn run(job: &Job, targets: &[Box<dyn Target>], on_event: &(dyn Fn(Event) + Sync)) -> Result<Outcome, String> {
    let mut seen = BTreeMap::new();
    for t in targets {
        if seen.insert(t.id(), ()).is_some() {
            return Err(format!("device `{}` is selected twice", t.id()));
        }
    }
    job.protocol.validate()?;
    let dir = job.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _lock = lock(dir)?;
    let (journal, loaded) = Journal::open(dir)?;
    let dataset = dir.join(DATASET_FILE);
    let resumed = loaded.records.len();
    // A run killed earlier may not have written the dataset; bring it up to date first.
    if resumed > 0 {
        write_parquet(&loaded.records, &dataset)?;
    }
    let done = identities(&loaded.records);
    let reports = job.run(targets, &journal, &done, on_event);
    drop(journal);
    let records = read_journal(dir)?;
    write_parquet(&records, &dataset)?;
    Ok(Outcome {
        reports,
        resumed,
        torn_bytes: loaded.torn_bytes,
        records: records.len(),
        dataset,
        journal: dir.join(super::JOURNAL_FILE),
    })
}
