//! `shell:`, `shell,v2,...:` and `exec:` services: the command runs on the host through
//! `sh -c` inside the sandbox, in its own process group so a host-side close kills it all.

use super::daemon::Shared;
use super::stream::{Stream, StreamWriter};
use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a command's output travels back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Framing {
    /// Raw bytes, stderr merged into stdout (`shell:` v1 and `exec:`).
    Raw,
    /// Shell protocol v2 packets: stdout (1), stderr (2), exit code (3).
    V2,
}

const ID_STDIN: u8 = 0;
const ID_STDOUT: u8 = 1;
const ID_STDERR: u8 = 2;
const ID_EXIT: u8 = 3;
const ID_CLOSE_STDIN: u8 = 4;

fn packet(id: u8, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + data.len());
    p.push(id);
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p
}

pub fn run(stream: Arc<Stream>, shared: Arc<Shared>, command: String, framing: Framing) {
    let result = execute(&stream, &shared, &command, framing);
    if let Err(e) = result {
        if !stream.is_closed() {
            let msg = format!("hwnas-adbd: {e}\n");
            let _ = match framing {
                Framing::Raw => stream.write(msg.as_bytes()),
                Framing::V2 => stream.write(&[packet(ID_STDERR, msg.as_bytes()), packet(ID_EXIT, &[127])].concat()),
            };
        }
    }
    stream.close();
}

/// Starts the command; the second value is the read end of the merged stdout+stderr
/// pipe in `Raw` framing (stdout and stderr are separate pipes of the child in `V2`).
fn spawn(shared: &Shared, command: &str, framing: Framing) -> io::Result<(Child, Option<io::PipeReader>)> {
    use std::os::unix::process::CommandExt;
    let sandbox = &shared.config.sandbox;
    let scratch = sandbox.host_path("/data/local/tmp");
    let path = format!(
        "{}:{}",
        sandbox.host_path("/system/bin").display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let line = if command.trim().is_empty() { "sh".to_string() } else { sandbox.map_command(command) };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line).current_dir(&scratch).env("PATH", path).env("HOME", &scratch).env("TMPDIR", &scratch);
    cmd.process_group(0).stdin(Stdio::piped());
    match framing {
        Framing::V2 => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            Ok((cmd.spawn()?, None))
        }
        Framing::Raw => {
            let (reader, writer) = io::pipe()?;
            cmd.stdout(writer.try_clone()?).stderr(writer);
            let child = cmd.spawn()?;
            // `cmd` holds our copies of the write end: drop it so EOF comes when the command's
            // last process exits.
            drop(cmd);
            Ok((child, Some(reader)))
        }
    }
}

fn execute(stream: &Arc<Stream>, shared: &Arc<Shared>, command: &str, framing: Framing) -> io::Result<()> {
    let (mut child, merged) = spawn(shared, command, framing)?;
    let pgid = child.id();
    let finished = Arc::new(AtomicBool::new(false));
    shared.log(&format!("stream {}: running {command:?} (pgid {pgid})", stream.local));

    // Host input -> the command's stdin; a host-side close kills the whole process group.
    let stdin = child.stdin.take();
    let feeder = {
        let (stream, finished) = (stream.clone(), finished.clone());
        std::thread::spawn(move || feed_stdin(&stream, stdin, framing, &finished, pgid))
    };

    let mut readers = Vec::new();
    if let Some(out) = merged {
        readers.push(pump(stream.clone(), out, framing, ID_STDOUT));
    }
    if let Some(out) = child.stdout.take() {
        readers.push(pump(stream.clone(), out, framing, ID_STDOUT));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(pump(stream.clone(), err, framing, ID_STDERR));
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait()?;
    finished.store(true, Ordering::SeqCst);
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    shared.log(&format!("stream {}: exit {code}", stream.local));
    if framing == Framing::V2 && !stream.is_closed() {
        stream.write(&packet(ID_EXIT, &[code as u8]))?;
    }
    stream.close();
    let _ = feeder.join();
    Ok(())
}

fn pump(
    stream: Arc<Stream>,
    mut from: impl Read + Send + 'static,
    framing: Framing,
    id: u8,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let sent = match framing {
                Framing::Raw => StreamWriter(&stream).write_all(&buf[..n]),
                Framing::V2 => stream.write(&packet(id, &buf[..n])),
            };
            if sent.is_err() {
                return; // the host went away; the feeder kills the command
            }
        }
    })
}

fn feed_stdin(
    stream: &Stream,
    mut stdin: Option<std::process::ChildStdin>,
    framing: Framing,
    finished: &AtomicBool,
    pgid: u32,
) {
    let mut pending = Vec::new();
    while let Some(data) = stream.read() {
        match framing {
            Framing::Raw => {
                if let Some(s) = stdin.as_mut() {
                    let _ = s.write_all(&data);
                }
            }
            Framing::V2 => {
                pending.extend_from_slice(&data);
                while pending.len() >= 5 {
                    let len = u32::from_le_bytes(pending[1..5].try_into().unwrap()) as usize;
                    if pending.len() < 5 + len {
                        break;
                    }
                    let id = pending[0];
                    let body: Vec<u8> = pending.drain(..5 + len).skip(5).collect();
                    match id {
                        ID_STDIN => {
                            if let Some(s) = stdin.as_mut() {
                                let _ = s.write_all(&body);
                            }
                        }
                        ID_CLOSE_STDIN => stdin = None,
                        _ => {} // window-size changes mean nothing without a terminal
                    }
                }
            }
        }
    }
    drop(stdin);
    if !finished.load(Ordering::SeqCst) {
        kill_group(pgid);
    }
}

/// Kills a process group. `kill(1)` instead of libc keeps this crate free of `unsafe`.
pub fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
