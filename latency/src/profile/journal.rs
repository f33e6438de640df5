//! The durable log of finished measurements: one JSON line per record, flushed to
//! disk (fsync) before the next model starts, so a run killed at any moment loses
//! at most the measurement in progress. On reopen: a line torn by a kill mid-write
//! is cut off, but a complete last record missing only its newline is kept; a record
//! whose identity is already in the journal is dropped (counted); any other
//! unreadable line is corruption and an error, unless `repair` moves the bad lines
//! (only those) to a side file.

use super::record::{Identity, Record};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Where `repair` moves unreadable lines (appended, so repairs never overwrite each other).
pub const BAD_LINES_FILE: &str = "journal.bad.jsonl";

/// Why the journal (or the error log beside it) could not be read or written. Each names
/// the file; an io or encoding failure is the source.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `create`, `read`, `open`, `write`, `sync`, …
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move {} into place", path.display())]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode a record")]
    Encode(#[source] serde_json::Error),
    /// A line other than a torn last one is unreadable: the journal is refused until repaired.
    #[error(transparent)]
    Corrupt(Box<Corrupt>),
}

/// A journal with unreadable lines other than a torn last one, and how to repair it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} line {line} is not a measurement record: {excerpt}\n{bad} of its lines are unreadable and {good} records \
     are fine; `hwnas profile --repair --out {}` moves only the unreadable lines to {} and keeps every record (do \
     not delete the journal: that throws the good records away)",
    path.display(),
    dir.display(),
    side.display()
)]
pub struct Corrupt {
    pub path: PathBuf,
    /// The first unreadable line (1-based) and its start.
    pub line: usize,
    pub excerpt: String,
    /// How many lines are unreadable, and how many records are fine.
    pub bad: usize,
    pub good: usize,
    pub dir: PathBuf,
    /// Where a repair moves the unreadable lines.
    pub side: PathBuf,
}

/// `cannot {action} {path}` with the io error as its source.
fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { action, path, source }
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

#[derive(Debug, Default)]
pub struct Loaded {
    /// Every record, each identity once (the first journaled).
    pub records: Vec<Record>,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: usize,
    /// A complete last record that lacked only its newline was kept (the newline added).
    pub unterminated: bool,
    /// Record lines dropped because an earlier line has the same identity.
    pub duplicates: usize,
    /// Unreadable lines moved to [`BAD_LINES_FILE`] by a repair: how many, and where.
    pub repaired: Option<(usize, PathBuf)>,
}

/// Reads a journal's text: the records (duplicates dropped) and the unreadable lines (1-based
/// line number, text); `torn` is the unreadable tail after the last newline.
#[allow(clippy::type_complexity)]
fn scan(text: &[u8]) -> (Vec<Record>, usize, Vec<(usize, &[u8])>, Option<&[u8]>, bool) {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // split gives a last (possibly empty) piece after the final newline: a write that did not finish…
    let tail = lines.pop().filter(|t| !t.iter().all(u8::is_ascii_whitespace));
    let (mut records, mut seen, mut duplicates, mut bad) = (Vec::new(), HashSet::<Identity>::new(), 0, Vec::new());
    let mut keep = |rec: Record, records: &mut Vec<Record>| {
        if seen.insert(rec.identity()) {
            records.push(rec);
        } else {
            duplicates += 1;
        }
    };
    for (n, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(rec) => keep(rec, &mut records),
            Err(_) => bad.push((n + 1, *line)),
        }
    }
    // …unless it is a whole record that only lacks its newline (a kill between the two writes
    // of an older build, or a file edited by hand): that one is kept.
    let (mut torn, mut unterminated) = (None, false);
    if let Some(t) = tail {
        match serde_json::from_slice::<Record>(t) {
            Ok(rec) => {
                keep(rec, &mut records);
                unterminated = true;
            }
            Err(_) => torn = Some(t),
        }
    }
    (records, duplicates, bad, torn, unterminated)
}

fn excerpt(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned()
}

impl Journal {
    /// Opens (or creates) `dir/journal.jsonl` and returns the records already in it.
    /// An unreadable line other than a torn last one is an error advising `--repair`.
    pub fn open(dir: &Path) -> Result<(Journal, Loaded), JournalError> {
        Journal::open_with(dir, false)
    }

    /// Like [`Journal::open`]; with `repair`, unreadable lines are moved to
    /// `dir/journal.bad.jsonl` and every readable record is kept.
    pub fn open_with(dir: &Path, repair: bool) -> Result<(Journal, Loaded), JournalError> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let path = dir.join(JOURNAL_FILE);
        let text = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let (records, duplicates, bad, torn, unterminated) = scan(&text);
        let side = dir.join(BAD_LINES_FILE);
        let mut repaired = None;
        if !bad.is_empty() {
            if !repair {
                let (n, line) = bad[0];
                return Err(JournalError::Corrupt(Box::new(Corrupt {
                    path,
                    line: n,
                    excerpt: excerpt(line),
                    bad: bad.len(),
                    good: records.len(),
                    dir: dir.to_path_buf(),
                    side,
                })));
            }
            move_bad_lines(&path, &side, &text, &bad, torn)?;
            repaired = Some((bad.len(), side));
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        let torn_bytes = torn.map_or(0, <[u8]>::len);
        if torn_bytes > 0 && repaired.is_none() {
            // Everything after the last newline is a write that did not finish.
            let complete = text.len() - torn_bytes;
            file.set_len(complete as u64).map_err(io("cut the torn line off", &path))?;
            file.sync_all().map_err(io("sync", &path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io("seek to the end of", &path))?;
        if unterminated && repaired.is_none() {
            // The next record must start on a line of its own.
            file.write_all(b"\n").and_then(|_| file.sync_data()).map_err(io("write", &path))?;
        }
        if text.is_empty() {
            // A new file's directory entry must reach the disk too, or a crash can lose the whole journal.
            sync_dir(dir)?;
        }
        let loaded = Loaded { records, torn_bytes, unterminated, duplicates, repaired };
        Ok((Journal { path, file: Mutex::new(file) }, loaded))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and waits until it is on disk.
    pub fn append(&self, rec: &Record) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(rec).map_err(JournalError::Encode)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(io("write", &self.path))
    }
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))
}

/// Appends the unreadable lines to `side` (synced first), then replaces the journal by its
/// readable lines (a temporary file renamed into place), so a crash at any point loses no line.
fn move_bad_lines(
    path: &Path,
    side: &Path,
    text: &[u8],
    bad: &[(usize, &[u8])],
    torn: Option<&[u8]>,
) -> Result<(), JournalError> {
    let mut moved = Vec::new();
    for (_, line) in bad {
        moved.extend_from_slice(line);
        moved.push(b'\n');
    }
    let mut f = OpenOptions::new().create(true).append(true).open(side).map_err(io("open", side))?;
    f.write_all(&moved).and_then(|_| f.sync_all()).map_err(io("write", side))?;
    let bad_lines: HashSet<usize> = bad.iter().map(|(n, _)| *n).collect();
    let mut kept = Vec::with_capacity(text.len());
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let last = lines.pop().unwrap_or_default();
    for (i, line) in lines.iter().enumerate() {
        if !bad_lines.contains(&(i + 1)) && !line.iter().all(u8::is_ascii_whitespace) {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        }
    }
    // The last piece: a torn write is dropped, a complete record gets its newline.
    if torn.is_none() && !last.iter().all(u8::is_ascii_whitespace) {
        kept.extend_from_slice(last);
        kept.push(b'\n');
    }
    let tmp = path.with_extension("jsonl.repair");
    let mut t = File::create(&tmp).map_err(io("create", &tmp))?;
    t.write_all(&kept).and_then(|_| t.sync_all()).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(|source| JournalError::Rename { path: path.into(), source })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Appends free-form JSON lines (the error log), flushed like the journal.
pub fn append_json_line(path: &Path, value: &serde_json::Value) -> Result<(), JournalError> {
    let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(io("open", path))?;
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    f.write_all(&line).and_then(|_| f.sync_data()).map_err(io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::record::{ModelId, Phases, RuntimeId};
    use crate::profile::stats::summarize;

    fn rec(key: &str, flags: &str) -> Record {
        let samples = vec![100.0, 101.0];
        let kept = vec![true, true];
        Record {
            device: "local".into(),
            model: ModelId::layer("test", key.into(), 32),
            runtime: RuntimeId { runtime: "runner".into(), flags: vec![flags.into()], binary_sha256: "00".into() },
            device_info: Default::default(),
            model_sha256: "ab".into(),
            model_bytes: 3,
            summary: summarize(&samples, &kept).unwrap(),
            samples_us: samples,
            kept,
            rounds: 1,
            warnings: vec![],
            detail: vec![],
            timed_us: 201.0,
            wall_us: 300.0,
            phases: Phases::default(),
            layer_times: None,
            timestamp_ms: 1,
        }
    }

    fn line(r: &Record) -> String {
        serde_json::to_string(r).unwrap() + "\n"
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hwnas-journal-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn duplicated_lines_are_dropped_on_read() {
        let d = dir("dup");
        let (a, b) = (rec("a", "x"), rec("b", "x"));
        // The same record twice, and a second measurement of `a` (same identity): one each.
        let mut later_a = a.clone();
        later_a.timestamp_ms = 99;
        std::fs::write(d.join(JOURNAL_FILE), [line(&a), line(&b), line(&a), line(&later_a)].concat()).unwrap();
        let (_, loaded) = Journal::open(&d).unwrap();
        assert_eq!(loaded.records, vec![a.clone(), b]);
        assert_eq!(loaded.duplicates, 2);
        // The same key with other flags is another identity, not a duplicate.
        let other = rec("a", "y");
        std::fs::write(d.join(JOURNAL_FILE), [line(&a), line(&other)].concat()).unwrap();
        let (_, loaded) = Journal::open(&d).unwrap();
        assert_eq!((loaded.records.len(), loaded.duplicates), (2, 0));
    }

    #[test]
    fn a_complete_last_record_without_newline_is_kept() {
        let d = dir("nonl");
        let (a, b, c) = (rec("a", "x"), rec("b", "x"), rec("c", "x"));
        let text = line(&a) + line(&b).trim_end();
        std::fs::write(d.join(JOURNAL_FILE), &text).unwrap();
        let (j, loaded) = Journal::open(&d).unwrap();
        assert_eq!(loaded.records, vec![a.clone(), b.clone()]);
        assert!(loaded.unterminated && loaded.torn_bytes == 0);
        // The next record lands on its own line.
        j.append(&c).unwrap();
        drop(j);
        assert_eq!(std::fs::read_to_string(d.join(JOURNAL_FILE)).unwrap(), line(&a) + &line(&b) + &line(&c));
        // A torn one is still cut off.
        let torn = line(&a) + &line(&b)[..40];
        std::fs::write(d.join(JOURNAL_FILE), &torn).unwrap();
        let (_, loaded) = Journal::open(&d).unwrap();
        assert_eq!((loaded.records.len(), loaded.torn_bytes, loaded.unterminated), (1, 40, false));
        assert_eq!(std::fs::read_to_string(d.join(JOURNAL_FILE)).unwrap(), line(&a));
    }

    #[test]
    fn a_bad_line_in_the_middle_advises_repair_which_moves_only_it() {
        let d = dir("repair");
        let (a, b) = (rec("a", "x"), rec("b", "x"));
        let text = [line(&a), "{\"device\": garbage\n".into(), line(&b), "not json either\n".into()].concat();
        std::fs::write(d.join(JOURNAL_FILE), &text).unwrap();
        let e = Journal::open(&d).err().unwrap().to_string();
        assert!(e.contains("line 2 is not a measurement record"), "{e}");
        assert!(e.contains("2 of its lines are unreadable and 2 records are fine"), "{e}");
        assert!(e.contains(&format!("hwnas profile --repair --out {}", d.display())), "{e}");
        assert!(!e.contains("move the file away"), "{e}");
        // Refusing changed nothing.
        assert_eq!(std::fs::read_to_string(d.join(JOURNAL_FILE)).unwrap(), text);

        let (j, loaded) = Journal::open_with(&d, true).unwrap();
        assert_eq!(loaded.records, vec![a.clone(), b.clone()]);
        assert_eq!(loaded.repaired, Some((2, d.join(BAD_LINES_FILE))));
        drop(j);
        assert_eq!(std::fs::read_to_string(d.join(JOURNAL_FILE)).unwrap(), line(&a) + &line(&b));
        assert_eq!(std::fs::read_to_string(d.join(BAD_LINES_FILE)).unwrap(), "{\"device\": garbage\nnot json either\n");
        // Now it opens without repair, and a second repair has nothing to do.
        let (_, loaded) = Journal::open(&d).unwrap();
        assert_eq!((loaded.records.len(), loaded.repaired), (2, None));
    }

    #[test]
    fn an_unreadable_journal_keeps_the_io_error_as_its_source() {
        use crate::error::Chain;
        let d = dir("unreadable");
        let path = d.join(JOURNAL_FILE);
        std::fs::create_dir_all(&path).unwrap(); // a directory where the file should be
        let e = Journal::open(&d).err().unwrap();
        assert_eq!(e.to_string(), format!("cannot read {}", path.display()));
        let io = std::error::Error::source(&e).unwrap().downcast_ref::<std::io::Error>().unwrap().to_string();
        assert_eq!(Chain(&e).to_string(), format!("cannot read {}: {io}", path.display()));
        // Through a profiling run's error the chain is the same, said once.
        let e = crate::profile::ProfileError::from(e);
        assert_eq!(Chain(&e).to_string(), format!("cannot read {}: {io}", path.display()));
    }
}
