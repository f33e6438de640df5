//! [`AdbTarget`]: a phone behind an adb server, through `adb_client`'s server-mode device.
//!
//! Every blocking adb call runs on a worker thread and is abandoned after its timeout, so a
//! hung phone or server never hangs hwnas. adb_client's server-mode shell drops the exit
//! code, so commands are wrapped to print it after a marker, which is parsed and stripped.

use super::host;
use super::info::{parse_info, INFO_SCRIPT};
use crate::error::Chain;
use crate::target::{shell_line, DeviceInfo, Output, Target, TargetError};
use adb_client::server_device::ADBServerDevice;
use adb_client::{ADBDeviceExt, RustADBError};
use std::net::SocketAddrV4;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const EXIT_MARKER: &str = "__HWNAS_EXIT__";
const PID_MARKER: &str = "__HWNAS_PID__";
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the checks after a cut-off answer may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A writer whose bytes stay readable after the worker thread that writes them is abandoned.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What [`AdbTarget`]'s streaming shell reports: a stdout line, then the command's end.
enum Streamed {
    Line(String),
    Done(Result<Output, TargetError>),
}

/// Keeps everything written, and sends each complete line on (unless it is one of hwnas's markers).
struct LineTee {
    all: Vec<u8>,
    partial: Vec<u8>,
    lines: Option<mpsc::Sender<Streamed>>,
}

impl std::io::Write for LineTee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.all.extend_from_slice(buf);
        if let Some(tx) = &self.lines {
            for &b in buf {
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&self.partial).into_owned();
                    if !line.starts_with(EXIT_MARKER) && !line.starts_with(PID_MARKER) {
                        let _ = tx.send(Streamed::Line(line));
                    }
                    self.partial.clear();
                } else {
                    self.partial.push(b);
                }
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A device on an adb server (local or remote), addressed by serial.
#[derive(Clone, Debug)]
pub struct AdbTarget {
    server: String,
    addr: SocketAddrV4,
    serial: String,
    scratch: String,
    info_timeout: Duration,
}

impl AdbTarget {
    /// A target for `serial` on the adb server at `server` (`host:port`). Nothing is
    /// contacted yet; use [`AdbTarget::connect`] to check the device is online.
    pub fn new(server: &str, serial: &str) -> Result<AdbTarget, TargetError> {
        let addr = host::resolve(server)
            .map_err(|e| TargetError::Unreachable { device: serial.into(), why: Chain(&e).to_string() })?;
        Ok(AdbTarget {
            server: server.to_string(),
            addr,
            serial: serial.to_string(),
            scratch: "/data/local/tmp/hwnas".into(),
            info_timeout: Duration::from_secs(20),
        })
    }

    /// Like [`AdbTarget::new`], but fails with a clear message unless the server lists the
    /// device as online (`device` state).
    pub fn connect(server: &str, serial: &str, timeout: Duration) -> Result<AdbTarget, TargetError> {
        let t = AdbTarget::new(server, serial)?;
        let unreachable = |why: String| TargetError::Unreachable { device: serial.into(), why };
        let listed =
            host::request(server, "host:devices-l", timeout).map_err(|e| unreachable(Chain(&e).to_string()))?;
        let listed = host::parse_devices(&listed);
        match listed.iter().find(|d| d.serial == serial) {
            None => {
                let known: Vec<_> = listed.iter().map(|d| format!("{} ({})", d.serial, d.state)).collect();
                Err(unreachable(format!(
                    "not listed by adb server {server}; it lists: {}",
                    if known.is_empty() { "no devices".into() } else { known.join(", ") }
                )))
            }
            Some(d) => match host::device_problem(server, serial, &d.state) {
                Some(problem) => Err(unreachable(problem)),
                None => Ok(t),
            },
        }
    }

    /// Uses `dir` (an absolute device path) as scratch directory instead of /data/local/tmp/hwnas.
    pub fn with_scratch_dir(mut self, dir: &str) -> AdbTarget {
        self.scratch = dir.trim_end_matches('/').to_string();
        self
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Runs a raw device shell line (pipes, redirections and variables allowed).
    /// Prefer [`Target::run`], which quotes every argument.
    pub fn run_shell(&self, line: &str, timeout: Duration) -> Result<Output, TargetError> {
        self.shell(line, timeout, true, None)
    }

    /// [`AdbTarget::run_shell`]; `diagnose`: when the answer lacks the exit marker, find out why
    /// (the device is gone, or its shell does not run what it is given) before reporting.
    /// `lines`: where each complete stdout line goes as it arrives (hwnas's markers left out).
    fn shell(
        &self,
        line: &str,
        timeout: Duration,
        diagnose: bool,
        lines: Option<mpsc::Sender<Streamed>>,
    ) -> Result<Output, TargetError> {
        // The shell's PID goes to stderr first, so an overrunning command can be killed on the
        // device; the line runs in a subshell so `exit` or `exec` cannot skip the exit marker.
        let wrapped = format!("echo {PID_MARKER}$$ >&2; ({line}); printf '\\n{EXIT_MARKER}%d\\n' \"$?\"");
        let stderr = SharedBuf::default();
        let err_writer = stderr.clone();
        let result = self.blocking(line, timeout, move |dev| {
            let (mut out, mut err) = (LineTee { all: Vec::new(), partial: Vec::new(), lines }, err_writer);
            dev.shell_command(&wrapped, Some(&mut out), Some(&mut err))?;
            Ok(out.all)
        });
        let stderr = String::from_utf8_lossy(&stderr.take()).into_owned();
        let (shell_pid, stderr) = split_pid(&stderr);
        let result = result.map(|out| {
            let out = String::from_utf8_lossy(&out).into_owned();
            // Devices without shell v2 merge stderr into stdout, PID line included.
            match split_pid(&out) {
                (Some(_), rest) if shell_pid.is_none() => rest.to_string(),
                _ => out,
            }
        });
        let stdout = match result {
            Err(timeout @ TargetError::Timeout { .. }) => {
                if let Some(pid) = shell_pid {
                    self.kill_process_tree(pid);
                }
                return Err(timeout);
            }
            other => other?,
        };
        let Some((body, exit_code)) = split_exit(&stdout) else {
            let out = Output { stdout: stdout.clone(), stderr: stderr.to_string(), exit_code: -1 };
            return Err(if diagnose {
                self.without_marker(line, &out)
            } else {
                self.failed(format!("`{line}` answered without hwnas's exit marker"))
            });
        };
        Ok(Output { stdout: body.to_string(), stderr: stderr.to_string(), exit_code })
    }

    /// Why a command's answer lacks the exit marker the wrapper prints after it: the device
    /// dropped off (the server no longer lists it online), or it is online but its shell did
    /// not run the wrapper (not a POSIX shell, or a shell that ignores its command), or this
    /// one command's output was cut short.
    fn without_marker(&self, line: &str, out: &Output) -> TargetError {
        let device = self.serial.clone();
        let printed = crate::runtime::excerpt(out);
        let listed = host::request(&self.server, "host:devices-l", PROBE_TIMEOUT).map(|t| host::parse_devices(&t));
        let state = match &listed {
            Err(e) => {
                return TargetError::Unreachable {
                    device,
                    why: format!("the connection ended before `{line}` finished, and {}", Chain(e)),
                }
            }
            Ok(l) => l.iter().find(|d| d.serial == self.serial).map(|d| d.state.clone()),
        };
        match state.as_deref() {
            Some("device") => match self.shell("echo hwnas-probe", PROBE_TIMEOUT, false, None) {
                Ok(_) => self.failed(format!(
                    "`{line}` ended without hwnas's exit marker although the device is online and answers other \
                     commands: its output was cut short (the command closed it, or adbd dropped the stream); it \
                     printed:\n{printed}"
                )),
                Err(TargetError::Failed { .. }) => self.failed(format!(
                    "the device is online but its shell answers without hwnas's exit marker, even to `echo`: it did \
                     not run the wrapper hwnas puts around each command (`(CMD); printf …`), so its shell is not a \
                     POSIX sh or ignores its command line; `{line}` printed:\n{printed}"
                )),
                Err(e) => e,
            },
            Some(other) => TargetError::Unreachable {
                device,
                why: format!(
                    "the connection ended before `{line}` finished; adb server {} now lists the device as {}",
                    self.server,
                    host::device_problem(&self.server, &self.serial, other).unwrap_or_else(|| other.to_string())
                ),
            },
            None => TargetError::Unreachable {
                device,
                why: format!(
                    "the connection ended before `{line}` finished and adb server {} no longer lists the device \
                     (unplugged?); {}",
                    self.server,
                    host::reconnect_advice(&self.server, &self.serial)
                ),
            },
        }
    }

    /// Kills an overrunning command on the device (its process group, then its process tree
    /// bottom-up), so a hung benchmark does not keep heating the phone. Best effort, bounded.
    fn kill_process_tree(&self, pid: u32) {
        let script = format!(
            "k() {{ for c in $(pgrep -P $1); do k $c; done; kill -9 $1; }} 2>/dev/null; kill -9 -- -{pid} 2>/dev/null; k {pid}; true"
        );
        let _ = self.blocking("kill overrunning command", KILL_TIMEOUT, move |dev| {
            dev.shell_command(&script, None, None)?;
            Ok(())
        });
    }

    /// Runs `f` with a fresh server connection on a worker thread; gives up after `timeout`.
    /// A call that overruns keeps its thread until the server or device closes the socket
    /// (adb_client exposes no way to interrupt it), but the caller is released at once.
    fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl FnOnce(&mut ADBServerDevice) -> Result<T, RustADBError> + Send + 'static,
    ) -> Result<T, TargetError> {
        let (tx, rx) = mpsc::channel();
        let (serial, addr) = (self.serial.clone(), self.addr);
        std::thread::Builder::new()
            .name(format!("adb {serial}"))
            .spawn(move || {
                let mut dev = ADBServerDevice::new(serial, Some(addr));
                let _ = tx.send(f(&mut dev));
            })
            .map_err(|e| self.failed(format!("cannot start a worker thread: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(result) => result.map_err(|e| self.adb_error(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(TargetError::Timeout { device: self.serial.clone(), command: what.to_string(), timeout })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(self.failed(format!("the adb worker for `{what}` panicked")))
            }
        }
    }

    fn failed(&self, why: String) -> TargetError {
        TargetError::Failed { device: self.serial.clone(), why }
    }

    fn adb_error(&self, e: RustADBError) -> TargetError {
        let device = self.serial.clone();
        match e {
            // The server refused: the device is gone, offline or unauthorized; any other
            // refusal (e.g. a sync FAIL such as "Permission denied") is the request's fault.
            RustADBError::ADBRequestFailed(msg) => match explain(&msg, &self.server, &self.serial) {
                Some(why) => TargetError::Unreachable { device, why: format!("adb server {}: {why}", self.server) },
                None => TargetError::Failed { device, why: msg },
            },
            RustADBError::IOError(io) => {
                let why = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        format!("no adb server at {} (connection refused)", self.server)
                    }
                    _ => format!("adb server {}: {io}", self.server),
                };
                TargetError::Unreachable { device, why }
            }
            other => TargetError::Failed { device, why: other.to_string() },
        }
    }
}

/// What a transport-level refusal of the adb server means for the user; `None` for others.
/// A TCP device (`HOST:PORT`) that dropped off needs `adb connect` again: the server does
/// not bring it back by itself, and `adb reconnect offline` leaves it off the list.
fn explain(msg: &str, server: &str, serial: &str) -> Option<String> {
    let again = host::reconnect_advice(server, serial);
    let hint = if msg == "closed" {
        format!("the device dropped the connection (unplugged, rebooted or adbd restarted); {again}")
    } else if msg.contains("offline") {
        format!("the device is offline ({again})")
    } else if msg.contains("not found") && host::is_tcp_serial(serial) {
        format!("the device is no longer connected to this server (it dropped off?); {again}")
    } else if msg.contains("not found") {
        "the device is not attached to this server (unplugged, or wrong serial/server?)".to_string()
    } else if msg.contains("unauthorized") {
        "accept the USB debugging prompt on the phone".to_string()
    } else {
        return None;
    };
    Some(format!("{msg}: {hint}"))
}

/// Splits the wrapper's PID line off the command's stderr.
fn split_pid(stderr: &str) -> (Option<u32>, &str) {
    match stderr.strip_prefix(PID_MARKER).and_then(|r| r.split_once('\n')) {
        Some((pid, rest)) => (pid.trim().parse().ok(), rest),
        None => (None, stderr),
    }
}

/// Splits wrapped output into the command's own stdout and its exit code.
fn split_exit(stdout: &str) -> Option<(&str, i32)> {
    let at = stdout.rfind(&format!("\n{EXIT_MARKER}"))?;
    let code = stdout[at + 1 + EXIT_MARKER.len()..].trim().parse().ok()?;
    Some((&stdout[..at], code))
}

impl Target for AdbTarget {
    fn id(&self) -> String {
        self.serial.clone()
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
        if argv.is_empty() {
            return Err(self.failed("run: empty command".into()));
        }
        self.run_shell(&shell_line(argv), timeout)
    }

    fn run_lines(
        &self,
        argv: &[String],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output, TargetError> {
        if argv.is_empty() {
            return Err(self.failed("run: empty command".into()));
        }
        let (tx, rx) = mpsc::channel();
        let (me, line) = (self.clone(), shell_line(argv));
        std::thread::Builder::new()
            .name(format!("adb lines {}", self.serial))
            .spawn(move || {
                let done = me.shell(&line, timeout, true, Some(tx.clone()));
                let _ = tx.send(Streamed::Done(done));
            })
            .map_err(|e| self.failed(format!("cannot start a worker thread: {e}")))?;
        // The worker's own timeout ends it; lines of an abandoned call after Done are ignored.
        loop {
            match rx.recv() {
                Ok(Streamed::Line(l)) => on_line(&l),
                Ok(Streamed::Done(result)) => return result,
                Err(_) => return Err(self.failed("the adb worker panicked".into())),
            }
        }
    }

    /// Pushes through the sync service. The timeout allows 30 s plus 1 s per MB.
    fn push(&self, local: &Path, remote: &str) -> Result<(), TargetError> {
        if !remote.starts_with('/') {
            return Err(self.failed(format!("push: device path {remote:?} is not absolute")));
        }
        let file = std::fs::File::open(local).map_err(|e| self.failed(format!("push: {}: {e}", local.display())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let timeout = Duration::from_secs(30 + size / 1_000_000);
        let what = format!("push {} {remote}", local.display());
        let dest = remote.to_string();
        self.blocking(&what, timeout, move |dev| dev.push(file, &dest)).map_err(|e| match e {
            TargetError::Failed { device, why } => TargetError::Failed { device, why: format!("{what}: {why}") },
            other => other,
        })
    }

    fn scratch_dir(&self) -> String {
        self.scratch.clone()
    }

    fn info(&self) -> Result<DeviceInfo, TargetError> {
        let out = self.run_shell(INFO_SCRIPT, self.info_timeout)?;
        let info = parse_info(&self.serial, &self.server, &out.stdout);
        if info.model.is_empty() && info.cores == 0 {
            return Err(self.failed(format!("could not read device information: {}", out.stderr.trim())));
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_marker_is_stripped() {
        assert_eq!(split_exit("hello\n\n__HWNAS_EXIT__3\n"), Some(("hello\n", 3)));
        assert_eq!(split_exit("no newline\n__HWNAS_EXIT__0\n"), Some(("no newline", 0)));
        assert_eq!(split_exit("\n__HWNAS_EXIT__0\n"), Some(("", 0)));
        assert_eq!(split_exit("cut off"), None);
        assert_eq!(split_pid("__HWNAS_PID__42\nwarn\n"), (Some(42), "warn\n"));
        assert_eq!(split_pid("other"), (None, "other"));
    }

    #[test]
    fn a_tcp_device_that_dropped_off_is_told_to_connect_again() {
        let e = explain("device offline (x)", "127.0.0.1:5037", "127.0.0.1:5555").unwrap();
        assert!(e.contains("`adb connect 127.0.0.1:5555`") && !e.contains("reconnect offline"), "{e}");
        let e = explain("device '127.0.0.1:5555' not found", "127.0.0.1:15037", "127.0.0.1:5555").unwrap();
        assert!(e.contains("`adb -P 15037 connect 127.0.0.1:5555`"), "{e}");
        let e = explain("device offline (x)", "127.0.0.1:5037", "R58M123").unwrap();
        assert!(e.contains("`adb reconnect offline`"), "{e}");
        assert!(explain("Permission denied", "127.0.0.1:5037", "R58M123").is_none());
    }
}
