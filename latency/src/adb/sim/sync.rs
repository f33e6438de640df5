//! The `sync:` service, protocol v1 (AOSP `SYNC.TXT`): STAT, SEND, RECV, LIST, QUIT.
//! Requests are buffered because hosts split them across WRTEs at arbitrary points.

use super::daemon::Shared;
use super::sandbox::{set_mode, Sandbox};
use super::stream::Stream;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

const MAX_DATA: usize = 64 * 1024;

/// Pulls bytes from the stream on demand.
struct Input<'a> {
    stream: &'a Stream,
    buf: Vec<u8>,
    /// After a SEND's DONE: adb_client sends the mtime as a u64, so a zero word may follow.
    /// Checked lazily, because real adb waits for our OKAY before sending anything else.
    after_done: bool,
}

impl Input<'_> {
    /// Ensures `n` bytes are buffered; `None` when the host closed the stream first.
    fn fill(&mut self, n: usize) -> Option<()> {
        while self.buf.len() < n {
            self.buf.extend(self.stream.read()?);
        }
        Some(())
    }

    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        self.fill(n)?;
        Some(self.buf.drain(..n).collect())
    }

    fn request(&mut self) -> Option<([u8; 4], u32)> {
        if std::mem::take(&mut self.after_done) {
            self.fill(4)?;
            if self.buf[..4] == [0, 0, 0, 0] {
                self.buf.drain(..4); // request ids are never zero
            }
        }
        let h = self.take(8)?;
        Some((h[0..4].try_into().unwrap(), u32::from_le_bytes(h[4..8].try_into().unwrap())))
    }
}

fn reply(id: &[u8; 4], words: &[u32], tail: &[u8]) -> Vec<u8> {
    let mut r = id.to_vec();
    for w in words {
        r.extend_from_slice(&w.to_le_bytes());
    }
    r.extend_from_slice(tail);
    r
}

fn fail(msg: &str) -> Vec<u8> {
    reply(b"FAIL", &[msg.len() as u32], msg.as_bytes())
}

pub fn run(stream: Arc<Stream>, shared: Arc<Shared>) {
    let sandbox = &shared.config.sandbox;
    let mut input = Input { stream: &stream, buf: Vec::new(), after_done: false };
    while let Some((id, len)) = input.request() {
        if len as usize > 4096 && &id != b"DATA" {
            let _ = stream.write(&fail("request too long"));
            break;
        }
        let Some(payload) = input.take(len as usize) else { break };
        let path = String::from_utf8_lossy(&payload).into_owned();
        shared.log(&format!("stream {}: sync {} {path}", stream.local, String::from_utf8_lossy(&id)));
        let sent = match &id {
            b"STAT" => stream.write(&stat(sandbox, &path)),
            b"LIST" => list(sandbox, &path).and_then(|r| stream.write(&r)),
            b"RECV" => recv(&stream, sandbox, &path),
            b"SEND" => match send(&mut input, sandbox, &path) {
                Some(answer) => stream.write(&answer),
                None => break,
            },
            b"QUIT" => break,
            other => {
                let _ = stream.write(&fail(&format!("unknown sync request {}", String::from_utf8_lossy(other))));
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    stream.close();
}

fn mtime(m: &fs::Metadata) -> u32 {
    m.mtime().clamp(0, u32::MAX as i64) as u32
}

fn stat(sandbox: &Sandbox, path: &str) -> Vec<u8> {
    match fs::symlink_metadata(sandbox.host_path(path)) {
        Ok(m) => reply(b"STAT", &[m.mode(), m.size().min(u32::MAX as u64) as u32, mtime(&m)], &[]),
        Err(_) => reply(b"STAT", &[0, 0, 0], &[]),
    }
}

fn list(sandbox: &Sandbox, path: &str) -> io::Result<Vec<u8>> {
    let dir = sandbox.host_path(path);
    let mut out = Vec::new();
    let mut names = vec![".".to_string(), "..".to_string()];
    if let Ok(entries) = fs::read_dir(&dir) {
        names.extend(entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()));
    }
    for name in names {
        if let Ok(m) = fs::symlink_metadata(dir.join(&name)) {
            let size = m.size().min(u32::MAX as u64) as u32;
            out.extend(reply(b"DENT", &[m.mode(), size, mtime(&m), name.len() as u32], name.as_bytes()));
        }
    }
    out.extend(reply(b"DONE", &[0, 0, 0, 0], &[]));
    Ok(out)
}

fn recv(stream: &Stream, sandbox: &Sandbox, path: &str) -> io::Result<()> {
    let mut file = match fs::File::open(sandbox.host_path(path)) {
        Ok(f) => f,
        Err(e) => return stream.write(&fail(&format!("{path}: {e}"))),
    };
    let mut buf = vec![0u8; MAX_DATA];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return stream.write(&fail(&format!("{path}: {e}"))),
        };
        stream.write(&reply(b"DATA", &[n as u32], &buf[..n]))?;
    }
    // DONE in a WRTE of its own: adb_client's direct pull looks for it at the end of a payload.
    stream.write(&reply(b"DONE", &[0], &[]))
}

/// Parses the SEND mode: real adb sends decimal (`33188`), adb_client octal (`0777`).
fn parse_mode(s: &str) -> Option<u32> {
    if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// Receives one file. `None` when the host vanished mid-transfer.
fn send(input: &mut Input, sandbox: &Sandbox, spec: &str) -> Option<Vec<u8>> {
    let (path, mode) = match spec.rsplit_once(',') {
        Some((p, m)) => (p, parse_mode(m)),
        None => (spec, None),
    };
    let mut data = Vec::new();
    let mtime = loop {
        let (id, len) = input.request()?;
        match &id {
            b"DATA" => data.extend(input.take(len as usize)?),
            b"DONE" => break len,
            other => return Some(fail(&format!("unexpected {} during SEND", String::from_utf8_lossy(other)))),
        }
    };
    input.after_done = true;
    if mode.is_none() {
        return Some(fail(&format!("bad SEND spec {spec:?}: expected PATH,MODE")));
    }
    if !sandbox.writable(path) {
        return Some(fail(&format!("{path}: Read-only file system (the simulator writes only under /data, /sdcard, /storage, /system, /vendor)")));
    }
    let host = sandbox.host_path(path);
    let written = (|| -> io::Result<()> {
        if let Some(parent) = host.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut f = fs::File::create(&host)?;
        f.write_all(&data)?;
        f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime as u64))?;
        let perms = mode.unwrap() & 0o777;
        set_mode(&host, if perms == 0 { 0o644 } else { perms })
    })();
    Some(match written {
        Ok(()) => reply(b"OKAY", &[0], &[]),
        Err(e) => fail(&format!("{path}: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_mode;

    #[test]
    fn modes_octal_and_decimal() {
        assert_eq!(parse_mode("0777"), Some(0o777));
        assert_eq!(parse_mode("33188"), Some(0o100644));
        assert_eq!(parse_mode("0"), Some(0));
        assert_eq!(parse_mode("x"), None);
    }
}
