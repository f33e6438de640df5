//! An exclusive lock on a job directory (`hwnas search`, `hwnas train`, the DNAS searches),
//! so that two processes never write one job's files at once.
//!
//! The lock is an OS file lock (`flock`) on `DIR/.lock`, taken without waiting: atomic, and
//! released by the kernel when its holder exits or is killed, so a job killed with `kill -9`
//! can be resumed at once. The holder writes its host, PID, command line and start time
//! into the file; a second process refused the lock names them. A file left with an owner
//! that no longer holds the lock (a killed run) is taken over, and the caller is told
//! whose it was (the job logs it). The file is emptied, never removed, on release: removing
//! it would let two processes each lock a different file of the same name.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a job directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock; `held` says by whom.
    #[error("{dir} is in use by another hwnas {what} job, {held}; wait for it to finish or stop it, or choose another --out")]
    InUse { dir: PathBuf, what: String, held: String },
    #[error("cannot create the job directory {dir}")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the lock file {path} (is {dir} writable?)")]
    CreateFile {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path} (does this file system support file locks?)")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the lock file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock file of a job directory.
pub const LOCK_FILE: &str = ".lock";

/// Who holds (or last held) a lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// Seconds since the Unix epoch.
    pub since: u64,
}

impl Owner {
    fn me() -> Owner {
        let mut command = std::env::args().collect::<Vec<_>>().join(" ");
        if command.len() > 300 {
            let cut = (0..=300).rev().find(|&i| command.is_char_boundary(i)).unwrap_or(0);
            command.truncate(cut);
            command.push('…');
        }
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Owner { host: hostname(), pid: std::process::id(), command, since }
    }

    /// Whether this owner is a process of this host that is no longer running.
    pub fn is_dead_here(&self) -> bool {
        self.host == hostname() && !pid_alive(self.pid)
    }

    fn describe(&self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!(
            "PID {} on host {} (`{}`, started {} ago)",
            self.pid,
            self.host,
            self.command,
            ago(now.saturating_sub(self.since))
        )
    }
}

fn ago(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Whether process `pid` of this host is running (assumed so where `/proc` is missing).
fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Held while a process writes a job directory; released (and the file emptied) on drop.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
    /// The owner recorded by a run that ended without releasing the lock (killed), whose
    /// lock this one took over.
    pub taken_over: Option<Owner>,
}

impl DirLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A line for the job's log when this lock replaced one left by a killed run.
    pub fn takeover_note(&self) -> Option<String> {
        self.taken_over.as_ref().map(|o| {
            format!(
                "the previous run ({}) ended without releasing {} (killed?); this run took the job over",
                o.describe(),
                self.path.display()
            )
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_owner(file: &mut File) -> Option<Owner> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Takes the exclusive lock of `dir` (created if missing) for a `what` job (`search`,
/// `train`, …), or refuses naming the directory and the process that holds it.
pub fn lock_dir(dir: &Path, what: &str) -> Result<DirLock, LockError> {
    std::fs::create_dir_all(dir).map_err(|source| LockError::CreateDir { dir: dir.into(), source })?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::CreateFile { path: path.clone(), dir: dir.into(), source })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let held = match read_owner(&mut file) {
                Some(o) if o.is_dead_here() => format!(
                    "its recorded owner, {}, is no longer running, but the lock is still held — by a process it \
                     started, or by one that is just starting (`fuser {}` shows the holder)",
                    o.describe(),
                    path.display()
                ),
                Some(o) => format!("by {}", o.describe()),
                None => format!("by a process that is just starting (lock {})", path.display()),
            };
            return Err(LockError::InUse { dir: dir.into(), what: what.into(), held });
        }
        Err(TryLockError::Error(source)) => return Err(LockError::Lock { path, source }),
    }
    let me = Owner::me();
    let taken_over = read_owner(&mut file).filter(|o| o.pid != me.pid || o.host != me.host);
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(serde_json::to_string(&me).unwrap_or_default().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_data()
    };
    write(&mut file).map_err(|source| LockError::Write { path: path.clone(), source })?;
    Ok(DirLock { file, path, taken_over })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_naming_the_owner_and_a_dead_owner_is_taken_over() {
        let dir = std::env::temp_dir().join(format!("hwnas-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = lock_dir(&dir, "search").unwrap();
        assert!(first.taken_over.is_none());
        // flock conflicts between two open files of one process as between two processes.
        let err = format!("{:#}", lock_dir(&dir, "search").unwrap_err());
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains(&format!("PID {}", std::process::id())), "{err}");
        assert!(err.contains(&hostname()), "{err}");
        drop(first);
        // Released: the file is empty and the next lock is not a takeover.
        assert_eq!(std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(), "");
        let again = lock_dir(&dir, "search").unwrap();
        assert!(again.taken_over.is_none());
        drop(again);
        // A file left by a killed process (its lock gone with it) is taken over, and said so.
        let dead = Owner { host: hostname(), pid: u32::MAX - 7, command: "hwnas search".into(), since: 0 };
        assert!(dead.is_dead_here());
        std::fs::write(dir.join(LOCK_FILE), serde_json::to_string(&dead).unwrap()).unwrap();
        let l = lock_dir(&dir, "search").unwrap();
        assert_eq!(l.taken_over.as_ref(), Some(&dead));
        assert!(l.takeover_note().unwrap().contains(&format!("PID {}", u32::MAX - 7)));
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
