//! One hwnas run at a time per device: a lock directory created with `mkdir` (atomic on any
//! POSIX filesystem, also through `adb shell`) in the device's scratch directory, holding its
//! owner (host, PID, run id) and a heartbeat the owner renews while it holds the lock. Two
//! processes on one host or on two hosts (each with its own adb server) therefore never time
//! on one phone at once: the second waits, or refuses naming the owner.
//!
//! A lock is stale, and taken over, when its owner ran on this host and that PID is gone
//! (killed), or its heartbeat stopped [`STALE_AFTER`] ago by the device's own clock (a dead
//! process on another host, or one that lost the device). The same code locks the `local`
//! target, whose "device" is the host's scratch directory.
//!
//! Each lock holder gets its own scratch directory `runs/<run>` on the device for model
//! files, removed on release, so no run deletes another's files.

use crate::target::{Target, TargetError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often the holder renews its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// A heartbeat this old (device clock) means the holder is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(90);
const SHELL_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(500);

const ACQUIRE: &str = r#"L="$1"; mkdir -p "${L%/*}" || exit 3
if mkdir "$L" 2>/dev/null; then
  printf '%s\n' "$2" > "$L/owner.part" && mv -f "$L/owner.part" "$L/owner" && date +%s > "$L/beat" || exit 4
  rm -rf "$3" && mkdir -p "$3/$4" || exit 5
  echo ACQUIRED
else
  echo HELD
  echo "owner=$(cat "$L/owner" 2>/dev/null)"
  b=$(cat "$L/beat" 2>/dev/null)
  case "$b" in ''|*[!0-9]*) echo "age=" ;; *) echo "age=$(( $(date +%s) - b ))" ;; esac
fi"#;
/// Removes a lock judged stale, only if its owner is still the one judged (compare, then rename).
const TAKE_OVER: &str = r#"L="$1"
if [ "$(cat "$L/owner" 2>/dev/null)" = "$2" ]; then mv "$L" "$L.stale.$3" 2>/dev/null && rm -rf "$L.stale.$3"; fi
true"#;
const BEAT: &str = r#"[ "$(cat "$1/owner" 2>/dev/null)" = "$2" ] && date +%s > "$1/beat""#;
const RELEASE: &str = r#"rm -rf "$3"; [ "$(cat "$1/owner" 2>/dev/null)" = "$2" ] && rm -rf "$1"; true"#;

/// Why a device's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DeviceLockError {
    /// Another run holds it (and is alive): who, and how to wait for it.
    #[error(
        "{device} is in use: another run is timing on it ({holder}); two runs at once would disturb each other's \
         numbers. Wait for it to finish ({waited}); a lock whose holder died is taken over by itself once its \
         heartbeat is {stale_after_s} s old (lock: {dir} on the device)"
    )]
    InUse {
        device: String,
        /// Who holds it and its last heartbeat.
        holder: String,
        /// How long this run waited, or how to wait.
        waited: String,
        stale_after_s: u64,
        dir: String,
    },
    #[error("cannot lock the device")]
    Shell(#[source] TargetError),
    /// The device's shell did not create the lock directory (what it printed).
    #[error("{device}: cannot create the lock {dir} (exit {code}): {said}")]
    Create { device: String, dir: String, code: i32, said: String },
    #[error("cannot remove the stale lock")]
    TakeOver(#[source] TargetError),
    #[error("cannot start the lock's heartbeat thread")]
    Heartbeat(#[source] std::io::Error),
}

/// Who holds a lock, as written in its `owner` file: `hwnas host=H pid=P run=R since=S`.
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    pub run: String,
    /// Unix seconds (the owner's clock) when it took the lock.
    pub since: u64,
}

impl Owner {
    fn line(&self) -> String {
        format!("hwnas host={} pid={} run={} since={}", self.host, self.pid, self.run, self.since)
    }

    fn parse(line: &str) -> Option<Owner> {
        let rest = line.trim().strip_prefix("hwnas ")?;
        let field = |k: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(k)?.strip_prefix('='));
        Some(Owner {
            host: field("host")?.to_string(),
            pid: field("pid")?.parse().ok()?,
            run: field("run")?.to_string(),
            since: field("since")?.parse().ok()?,
        })
    }

    fn describe(&self) -> String {
        let held = unix_now().saturating_sub(self.since);
        format!("hwnas PID {} on host {} (run {}, holding it for {held} s)", self.pid, self.host, self.run)
    }
}

/// This machine's name, restricted to characters that need no quoting.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let raw = if ok {
        String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned()
    } else {
        String::new()
    };
    let clean: String = raw.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect();
    if clean.is_empty() {
        "unknown-host".into()
    } else {
        clean
    }
}

/// Whether `pid` is a live process on this host.
fn alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seed = format!("{}-{nanos}-{}", std::process::id(), RUNS.fetch_add(1, Ordering::Relaxed));
    crate::runtime::sha256_hex(seed.as_bytes())[..12].to_string()
}

/// A held device lock. Release it with [`DeviceLock::release`] (a holder that dies without
/// releasing is detected as stale); keep it alive with [`DeviceLock::beat`], or hold it
/// through [`hold`], which does both.
#[derive(Clone, Debug)]
pub struct DeviceLock {
    device: String,
    dir: String,
    owner: Owner,
    runs_dir: String,
    run_dir: String,
}

/// What one acquisition attempt found.
enum Attempt {
    Acquired,
    Held { owner: Option<Owner>, raw: String, age_s: Option<u64> },
}

impl DeviceLock {
    /// The lock directory of `target`.
    pub fn path_on(target: &dyn Target) -> String {
        format!("{}/lock", target.scratch_dir())
    }

    /// Takes `target`'s lock, waiting up to `wait` for another holder to finish. Refuses
    /// with a message naming the holder when it is still held after `wait`; takes over a
    /// stale lock (see the module comment).
    pub fn acquire(target: &dyn Target, wait: Duration) -> Result<DeviceLock, DeviceLockError> {
        let scratch = target.scratch_dir();
        let owner = Owner { host: host_name(), pid: std::process::id(), run: new_run_id(), since: unix_now() };
        let runs_dir = format!("{scratch}/runs");
        let lock = DeviceLock {
            device: target.id(),
            dir: format!("{scratch}/lock"),
            run_dir: format!("{runs_dir}/{}", owner.run),
            runs_dir,
            owner,
        };
        let start = Instant::now();
        // When a lock without owner file was first seen (its creator may still be writing it).
        let mut ownerless_since: Option<Instant> = None;
        loop {
            match lock.attempt(target)? {
                Attempt::Acquired => return Ok(lock),
                Attempt::Held { owner, raw, age_s } => {
                    let stale = match (&owner, age_s) {
                        (_, Some(age)) if age > STALE_AFTER.as_secs() => {
                            Some(format!("its heartbeat stopped {age} s ago"))
                        }
                        (Some(o), _) if o.host == lock.owner.host && o.pid != lock.owner.pid && !alive(o.pid) => {
                            Some(format!("PID {} no longer runs on this host", o.pid))
                        }
                        (None, _) => {
                            let first = *ownerless_since.get_or_insert_with(Instant::now);
                            (first.elapsed() > STALE_AFTER).then(|| "it has had no owner for too long".to_string())
                        }
                        _ => None,
                    };
                    if let Some(why) = stale {
                        eprintln!(
                            "{}: taking over the stale lock {} of {} ({why})",
                            lock.device,
                            lock.dir,
                            owner.as_ref().map_or("an unknown process".into(), Owner::describe)
                        );
                        lock.take_over(target, &raw)?;
                        ownerless_since = None;
                        continue;
                    }
                    if start.elapsed() >= wait {
                        let who = owner.as_ref().map_or_else(
                            || "a hwnas process that is still creating it".to_string(),
                            |o| {
                                format!(
                                    "{}, last heartbeat {}",
                                    o.describe(),
                                    age_s.map_or("unknown".into(), |a| format!("{a} s ago"))
                                )
                            },
                        );
                        let waited = if wait.is_zero() {
                            "pass --device-wait-s SECONDS to wait for it".to_string()
                        } else {
                            format!("waited {:.0} s", start.elapsed().as_secs_f64())
                        };
                        return Err(DeviceLockError::InUse {
                            device: lock.device,
                            holder: who,
                            waited,
                            stale_after_s: STALE_AFTER.as_secs(),
                            dir: lock.dir,
                        });
                    }
                    std::thread::sleep(POLL.min(wait.saturating_sub(start.elapsed())).max(Duration::from_millis(10)));
                }
            }
        }
    }

    fn sh(&self, target: &dyn Target, script: &str, args: &[&str]) -> Result<crate::target::Output, TargetError> {
        let mut argv = vec!["sh".to_string(), "-c".into(), script.into(), "hwnas-lock".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        target.run(&argv, SHELL_TIMEOUT)
    }

    fn attempt(&self, target: &dyn Target) -> Result<Attempt, DeviceLockError> {
        let owner = self.owner.line();
        let out = self
            .sh(target, ACQUIRE, &[&self.dir, &owner, &self.runs_dir, &self.owner.run])
            .map_err(DeviceLockError::Shell)?;
        let text = out.stdout;
        let mut lines = text.lines();
        match lines.next().map(str::trim) {
            Some("ACQUIRED") if out.exit_code == 0 => Ok(Attempt::Acquired),
            Some("HELD") => {
                let raw = lines.next().and_then(|l| l.strip_prefix("owner=")).unwrap_or("").to_string();
                let age_s =
                    lines.next().and_then(|l| l.strip_prefix("age=")).and_then(|a| a.trim().parse::<i64>().ok());
                Ok(Attempt::Held { owner: Owner::parse(&raw), raw, age_s: age_s.map(|a| a.max(0) as u64) })
            }
            _ => Err(DeviceLockError::Create {
                device: self.device.clone(),
                dir: self.dir.clone(),
                code: out.exit_code,
                said: format!("{}{}", text.trim(), out.stderr.trim()),
            }),
        }
    }

    fn take_over(&self, target: &dyn Target, seen_owner: &str) -> Result<(), DeviceLockError> {
        self.sh(target, TAKE_OVER, &[&self.dir, seen_owner, &self.owner.run])
            .map(|_| ())
            .map_err(DeviceLockError::TakeOver)
    }

    /// Renews the heartbeat; false if the lock is no longer this holder's (or the device is gone).
    pub fn beat(&self, target: &dyn Target) -> bool {
        self.sh(target, BEAT, &[&self.dir, &self.owner.line()]).is_ok_and(|o| o.exit_code == 0)
    }

    /// Removes the lock (if still ours) and this run's scratch directory. Best effort.
    pub fn release(self, target: &dyn Target) {
        let _ = self.sh(target, RELEASE, &[&self.dir, &self.owner.line(), &self.run_dir]);
    }

    /// This run's own scratch directory on the device (exists while the lock is held).
    pub fn run_dir(&self) -> &str {
        &self.run_dir
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }
}

/// Holds `target`'s lock while `f` runs, renewing its heartbeat on a second thread, and
/// releases it afterwards.
pub fn hold<R>(target: &dyn Target, wait: Duration, f: impl FnOnce(&DeviceLock) -> R) -> Result<R, DeviceLockError> {
    let lock = DeviceLock::acquire(target, wait)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let result = std::thread::scope(|s| {
        let lock = &lock;
        s.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                lock.beat(target);
            }
        });
        let r = f(lock);
        drop(stop);
        r
    });
    lock.release(target);
    Ok(result)
}

/// A lock held by a long-lived owner (a live meter), with its heartbeat thread; released on drop.
pub struct HeldLock {
    lock: Option<DeviceLock>,
    target: std::sync::Arc<dyn Target>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    beating: Option<std::thread::JoinHandle<()>>,
}

impl HeldLock {
    pub fn acquire(target: std::sync::Arc<dyn Target>, wait: Duration) -> Result<HeldLock, DeviceLockError> {
        let lock = DeviceLock::acquire(&*target, wait)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (t, beat) = (target.clone(), lock.clone());
        let beating = std::thread::Builder::new()
            .name("hwnas device lock".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    beat.beat(&*t);
                }
            })
            .map_err(DeviceLockError::Heartbeat)?;
        Ok(HeldLock { lock: Some(lock), target, stop: Some(stop), beating: Some(beating) })
    }

    pub fn run_dir(&self) -> &str {
        self.lock.as_ref().map_or("", |l| l.run_dir())
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.beating.take() {
            let _ = h.join();
        }
        if let Some(l) = self.lock.take() {
            l.release(&*self.target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_lines_round_trip() {
        let o = Owner { host: "vm".into(), pid: 42, run: "abc".into(), since: 7 };
        assert_eq!(Owner::parse(&o.line()), Some(o));
        assert_eq!(Owner::parse("garbage"), None);
        assert!(alive(std::process::id()));
        assert!(!host_name().is_empty());
    }
}
