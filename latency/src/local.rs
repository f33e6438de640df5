//! The host as a [`Target`]: commands run as child processes (killed with their
//! whole process group when they overrun), "push" copies into a scratch directory,
//! and device information comes from /proc and /sys like it does on a phone.

use crate::target::{DeviceInfo, Output, Target, TargetError};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const LOCAL_ID: &str = "local";
/// Overrides the `local` target's scratch directory (see [`LocalTarget::default_scratch`]).
pub const SCRATCH_ENV: &str = "HWNAS_LOCAL_SCRATCH";

/// The machine hwnas runs on.
#[derive(Clone, Debug)]
pub struct LocalTarget {
    scratch: PathBuf,
    sys_root: PathBuf,
}

impl LocalTarget {
    /// A target whose pushed files live in `scratch` (created when missing).
    pub fn new(scratch: impl Into<PathBuf>) -> Result<LocalTarget, TargetError> {
        let scratch = scratch.into();
        std::fs::create_dir_all(&scratch).map_err(|e| failed(format!("cannot create {}: {e}", scratch.display())))?;
        // Absolute, because runtimes build device paths from it.
        let scratch = scratch.canonicalize().map_err(|e| failed(format!("{}: {e}", scratch.display())))?;
        Ok(LocalTarget { scratch, sys_root: PathBuf::from("/") })
    }

    /// The default scratch directory, stable across runs so pushed binaries stay cached:
    /// `$HWNAS_LOCAL_SCRATCH`, else `$TMPDIR/hwnas-local`. The `local` device's lock lives
    /// there, so runs that share it take turns (tests give each their own).
    pub fn default_scratch() -> PathBuf {
        match std::env::var_os(SCRATCH_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => std::env::temp_dir().join("hwnas-local"),
        }
    }

    /// Reads /proc and /sys under `root` instead of `/` (for tests with a fake tree).
    pub fn with_sys_root(mut self, root: impl Into<PathBuf>) -> LocalTarget {
        self.sys_root = root.into();
        self
    }

    fn sys(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.sys_root.join(rel)).ok().map(|s| s.trim().to_string())
    }
}

fn failed(why: String) -> TargetError {
    TargetError::Failed { device: LOCAL_ID.into(), why }
}

/// Reads a pipe to the end on its own thread, so a chatty child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Reads a pipe line by line on its own thread (each line with its newline, the last maybe without).
fn stream_lines(pipe: Option<impl Read + Send + 'static>) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Some(p) = pipe else { return };
        let mut r = std::io::BufReader::new(p);
        let mut buf = Vec::new();
        while matches!(std::io::BufRead::read_until(&mut r, b'\n', &mut buf), Ok(n) if n > 0) {
            if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                return;
            }
            buf.clear();
        }
    });
    rx
}

/// Kills the child's whole process group: a runtime started through `sh` or
/// `taskset` would otherwise survive and keep the output pipes open.
fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for this child.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Target for LocalTarget {
    fn id(&self) -> String {
        LOCAL_ID.into()
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError> {
        self.run_lines(argv, timeout, &mut |_| {})
    }

    fn run_lines(
        &self,
        argv: &[String],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output, TargetError> {
        let (program, args) = argv.split_first().ok_or_else(|| failed("empty command".into()))?;
        let line = crate::target::shell_line(argv);
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&self.scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| failed(format!("cannot start `{line}`: {e}")))?;
        let lines = stream_lines(child.stdout.take());
        let err = drain(child.stderr.take());
        let start = Instant::now();
        let mut stdout = String::new();
        let mut take = |l: String, stdout: &mut String| {
            on_line(l.trim_end_matches('\n'));
            stdout.push_str(&l);
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() >= timeout => {
                    kill_group(&mut child);
                    let _ = err.join();
                    return Err(TargetError::Timeout { device: LOCAL_ID.into(), command: line, timeout });
                }
                Ok(None) => {
                    let wait = Duration::from_millis(2).max(start.elapsed() / 50).min(Duration::from_millis(50));
                    if let Ok(l) = lines.recv_timeout(wait) {
                        take(l, &mut stdout);
                    }
                }
                Err(e) => {
                    kill_group(&mut child);
                    return Err(failed(format!("waiting for `{line}`: {e}")));
                }
            }
        };
        // The rest of the output, until the pipe closes.
        while let Ok(l) = lines.recv() {
            take(l, &mut stdout);
        }
        let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
        // A signal-killed process has no exit code; report it the way a shell would (128 + signal).
        let exit_code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        Ok(Output { stdout, stderr, exit_code })
    }

    fn push(&self, local: &Path, remote: &str) -> Result<(), TargetError> {
        let remote = Path::new(remote);
        if let Some(dir) = remote.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::copy(local, remote)
            .map(|_| ())
            .map_err(|e| failed(format!("cannot copy {} to {}: {e}", local.display(), remote.display())))
    }

    /// Writes the file in place: no staging copy on the host's own disk.
    fn push_bytes(&self, bytes: &[u8], _staging: &Path, remote: &str) -> Result<(), TargetError> {
        let remote = Path::new(remote);
        if let Some(dir) = remote.parent() {
            std::fs::create_dir_all(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(remote, bytes).map_err(|e| failed(format!("cannot write {}: {e}", remote.display())))
    }

    fn scratch_dir(&self) -> String {
        self.scratch.to_string_lossy().into_owned()
    }

    fn info(&self) -> Result<DeviceInfo, TargetError> {
        let cpuinfo = self.sys("proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_string())
            })
        };
        let listed = cpuinfo.lines().filter(|l| l.split(':').next().map(str::trim) == Some("processor")).count();
        let cores = if listed > 0 { listed } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
        let freq = |cpu: usize, file: &str| {
            self.sys(&format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/{file}")).and_then(|s| s.parse::<u64>().ok())
        };
        let model = self
            .sys("sys/devices/virtual/dmi/id/product_name")
            .filter(|s| !s.is_empty())
            .or_else(|| self.sys("proc/sys/kernel/hostname"))
            .unwrap_or_else(|| "host".into());
        Ok(DeviceInfo {
            serial: LOCAL_ID.into(),
            server: LOCAL_ID.into(),
            model,
            soc: field("model name").or_else(|| field("Hardware")).unwrap_or_default(),
            abi: std::env::consts::ARCH.into(),
            cores: cores as u32,
            cur_freq_khz: (0..cores).map(|c| freq(c, "scaling_cur_freq")).collect(),
            max_freq_khz: (0..cores).map(|c| freq(c, "cpuinfo_max_freq")).collect(),
            governor: self.sys("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            temperature_c: max_thermal_zone(&self.sys_root.join("sys/class/thermal")),
        })
    }
}

/// Highest temperature over the thermal zones, in °C (sysfs reports millidegrees).
fn max_thermal_zone(dir: &Path) -> Option<f64> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("temp")).ok()?.trim().parse::<f64>().ok())
        .map(|milli| milli / 1000.0)
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hwnas-local-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runs_commands_and_passes_exit_codes() {
        let t = LocalTarget::new(scratch("run")).unwrap();
        let o = t.run(&argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10)).unwrap();
        assert_eq!((o.stdout.as_str(), o.stderr.as_str(), o.exit_code), ("out\n", "err\n", 3));
        // Arguments are not re-split by a shell.
        let o = t.run(&argv(&["printf", "%s", "a b;$(id)"]), Duration::from_secs(10)).unwrap();
        assert_eq!(o.stdout, "a b;$(id)");
    }

    #[test]
    fn lines_arrive_while_the_command_runs() {
        let t = LocalTarget::new(scratch("lines")).unwrap();
        let start = Instant::now();
        let mut seen = Vec::new();
        let o = t
            .run_lines(&argv(&["sh", "-c", "echo one; sleep 1; printf two"]), Duration::from_secs(10), &mut |l| {
                seen.push((l.to_string(), start.elapsed()))
            })
            .unwrap();
        assert_eq!(o.stdout, "one\ntwo");
        assert_eq!(seen.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        assert!(seen[0].1 < Duration::from_millis(800), "the first line came after {:?}", seen[0].1);
    }

    #[test]
    fn a_hung_command_is_killed_with_its_children() {
        let t = LocalTarget::new(scratch("hang")).unwrap();
        let start = Instant::now();
        // The grandchild `sleep` holds the pipes open; only a group kill lets this return.
        let e = t.run(&argv(&["sh", "-c", "sleep 30 & sleep 30"]), Duration::from_millis(300)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
        assert!(matches!(e, TargetError::Timeout { .. }), "{e}");
        assert!(e.to_string().contains("sleep 30 & sleep 30"), "{e}");
    }

    #[test]
    fn push_copies_into_place() {
        let dir = scratch("push");
        let t = LocalTarget::new(&dir).unwrap();
        let src = dir.join("src.bin");
        std::fs::write(&src, b"abc").unwrap();
        let dst = format!("{}/sub/dst.bin", t.scratch_dir());
        t.push(&src, &dst).unwrap();
        assert_eq!(std::fs::read(&dst).unwrap(), b"abc");
        assert!(t.push(&dir.join("missing"), &dst).unwrap_err().to_string().contains("missing"));
        let direct = format!("{}/sub2/direct.bin", t.scratch_dir());
        t.push_bytes(b"xyz", &dir.join("unused"), &direct).unwrap();
        assert_eq!(std::fs::read(&direct).unwrap(), b"xyz");
        assert!(!dir.join("unused").exists(), "no staging file on the host's own disk");
    }

    #[test]
    fn info_reads_cpufreq_and_thermal_zones() {
        let root = scratch("sysroot");
        let w = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w("proc/cpuinfo", "processor\t: 0\nHardware\t: Qualcomm SM8150\nprocessor\t: 1\n");
        w("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1785600\n");
        w("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "1785600\n");
        w("sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq", "2419200\n");
        w("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "schedutil\n");
        w("sys/class/thermal/thermal_zone0/temp", "36500\n");
        w("sys/class/thermal/thermal_zone3/temp", "41200\n");
        let t = LocalTarget::new(scratch("info")).unwrap().with_sys_root(&root);
        let i = t.info().unwrap();
        assert_eq!(i.cores, 2);
        assert_eq!(i.soc, "Qualcomm SM8150");
        assert_eq!(i.cur_freq_khz, vec![Some(1785600), None]);
        assert_eq!(i.max_freq_khz, vec![Some(1785600), Some(2419200)]);
        assert_eq!(i.governor.as_deref(), Some("schedutil"));
        assert_eq!(i.temperature_c, Some(41.2));
        // The real host answers too.
        assert!(LocalTarget::new(scratch("real")).unwrap().info().unwrap().cores >= 1);
    }
}
