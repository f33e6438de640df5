//! The durable log of finished measurements: one JSON line per record, flushed to
//! disk (fsync) before the next model starts, so a run killed at any moment loses
//! at most the measurement in progress. A line torn by a kill mid-write is cut off
//! on reopen; any other unreadable line is corruption and an error.

use super::record::Record;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const JOURNAL_FILE: &str = "journal.jsonl";

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

#[derive(Debug)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: usize,
}

impl Journal {
    /// Opens (or creates) `dir/journal.jsonl` and returns the records already in it.
    pub fn open(dir: &Path) -> Result<(Journal, Loaded), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(JOURNAL_FILE);
        let text = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        // Everything after the last newline is a write that did not finish.
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut records = Vec::new();
        for (n, line) in text[..complete].split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let rec: Record = serde_json::from_slice(line).map_err(|e| {
                format!(
                    "{} line {} is not a measurement record ({e}); move the file away to start over: {}",
                    path.display(),
                    n + 1,
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                )
            })?;
            records.push(rec);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let torn_bytes = text.len() - complete;
        if torn_bytes > 0 {
            file.set_len(complete as u64)
                .map_err(|e| format!("cannot cut the torn line off {}: {e}", path.display()))?;
            file.sync_all().map_err(|e| format!("{}: {e}", path.display()))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| format!("{}: {e}", path.display()))?;
        if text.is_empty() {
            // A new file's directory entry must reach the disk too, or a crash can lose the whole journal.
            File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
        }
        Ok((Journal { path, file: Mutex::new(file) }, Loaded { records, torn_bytes }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and waits until it is on disk.
    pub fn append(&self, rec: &Record) -> Result<(), String> {
        let mut line = serde_json::to_vec(rec).map_err(|e| format!("cannot encode a record: {e}"))?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// Appends free-form JSON lines (the error log), flushed like the journal.
pub fn append_json_line(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    f.write_all(&line).and_then(|_| f.sync_data()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
