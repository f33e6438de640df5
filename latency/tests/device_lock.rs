//! One run at a time per device: the lock directory on the device (and on the host for
//! `local`), its owner and heartbeat, stale locks, and two profiling runs aimed at one
//! simulated phone behind a real adb server: the second waits (or refuses naming the first),
//! neither loses a model to the other, and each run's model files stay in its own directory.

use crate::profile_support::{layers, runner, tmp, Keys};
use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::adb::AdbTarget;
use latency::device_lock::{host_name, DeviceLock, STALE_AFTER};
use latency::local::LocalTarget;
use latency::profile::{session, Job, Protocol, Record};
use latency::target::Target;
use std::path::Path;
use std::time::{Duration, Instant};

fn opts() -> PhoneOptions {
    PhoneOptions { daemon: Some(env!("CARGO_BIN_EXE_hwnas-adbd").into()), ..PhoneOptions::default() }
}

fn sh(t: &dyn Target, script: &str) -> String {
    let o = t.run(&["sh".into(), "-c".into(), script.into()], Duration::from_secs(20)).unwrap();
    assert_eq!(o.exit_code, 0, "{script}: {o:?}");
    o.stdout
}

/// A lock left by someone else: `owner` line and a heartbeat `age_s` seconds old (device clock).
fn plant(t: &dyn Target, owner: &str, age_s: u64) {
    let dir = DeviceLock::path_on(t);
    sh(t, &format!("mkdir -p {dir} && echo '{owner}' > {dir}/owner && echo $(( $(date +%s) - {age_s} )) > {dir}/beat"));
}

/// A PID that is not running on this host.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_held_lock_refuses_naming_its_owner_and_is_free_after_release() {
    let dir = tmp("lock-local");
    let t = LocalTarget::new(dir.join("scratch")).unwrap();
    let first = DeviceLock::acquire(&t, Duration::ZERO).unwrap();
    assert!(Path::new(first.run_dir()).is_dir());
    // Another run in the same process (same PID, other run id) is refused too.
    let e = DeviceLock::acquire(&t, Duration::ZERO).unwrap_err().to_string();
    let me = format!("hwnas PID {} on host {}", std::process::id(), host_name());
    assert!(e.contains("local is in use") && e.contains(&me), "{e}");
    assert!(e.contains(&format!("run {}", first.owner().run)) && e.contains("--device-wait-s"), "{e}");
    let run_dir = first.run_dir().to_string();
    first.release(&t);
    assert!(!Path::new(&run_dir).exists(), "the run's scratch directory is removed with the lock");
    DeviceLock::acquire(&t, Duration::ZERO).unwrap().release(&t);
}

#[test]
fn a_waiter_gets_the_lock_when_the_holder_releases_it() {
    let dir = tmp("lock-wait");
    let t = LocalTarget::new(dir.join("scratch")).unwrap();
    let held = DeviceLock::acquire(&t, Duration::ZERO).unwrap();
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(800));
            held.release(&t);
        });
        let second = DeviceLock::acquire(&t, Duration::from_secs(20)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(700), "{:?}", start.elapsed());
        second.release(&t);
    });
    // A waiter that runs out of time says how long it waited.
    let held = DeviceLock::acquire(&t, Duration::ZERO).unwrap();
    let e = DeviceLock::acquire(&t, Duration::from_millis(300)).unwrap_err().to_string();
    assert!(e.contains("waited 0 s") || e.contains("waited 1 s"), "{e}");
    held.release(&t);
}

#[test]
fn stale_locks_are_taken_over_and_live_ones_on_other_hosts_are_not() {
    let dir = tmp("lock-stale");
    let t = LocalTarget::new(dir.join("scratch")).unwrap();
    // Killed on this host: its PID is gone, heartbeat or not.
    plant(&t, &format!("hwnas host={} pid={} run=killed since=1", host_name(), dead_pid()), 0);
    let l = DeviceLock::acquire(&t, Duration::ZERO).unwrap();
    assert!(sh(&t, &format!("cat {}/owner", DeviceLock::path_on(&t))).contains(&format!("run={}", l.owner().run)));
    l.release(&t);
    // Another host's live run (fresh heartbeat): its PID means nothing here; refused.
    plant(&t, &format!("hwnas host=other-lab-pc pid={} run=remote since=1", dead_pid()), 3);
    let e = DeviceLock::acquire(&t, Duration::ZERO).unwrap_err().to_string();
    assert!(e.contains("on host other-lab-pc (run remote") && e.contains("last heartbeat 3 s ago"), "{e}");
    // Its heartbeat stopped long ago: taken over.
    plant(&t, "hwnas host=other-lab-pc pid=1 run=remote since=1", STALE_AFTER.as_secs() + 60);
    DeviceLock::acquire(&t, Duration::ZERO).unwrap().release(&t);
}

fn protocol() -> Protocol {
    Protocol {
        cooldown: Duration::from_millis(1),
        timeout: Duration::from_secs(30),
        max_rounds: 1,
        ..Protocol::counts(1, 3)
    }
}

fn adb(phone: &SimulatedPhone) -> Box<dyn Target> {
    Box::new(AdbTarget::connect(&phone.server(), &phone.serial(), Duration::from_secs(10)).unwrap())
}

/// (start, end) in ms of a run's measurements.
fn span(recs: &[Record]) -> (f64, f64) {
    let start = recs.iter().map(|r| r.timestamp_ms as f64 - r.wall_us / 1e3).fold(f64::MAX, f64::min);
    let end = recs.iter().map(|r| r.timestamp_ms as f64).fold(0.0, f64::max);
    (start, end)
}

#[test]
fn two_runs_on_one_phone_take_turns_and_lose_no_model() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("lock-two-runs");
    let rt = runner(&dir);
    let p = protocol();
    // The same models in both runs: identical files, identical device paths before runs had their own.
    let models = layers(&["slow-1", "slow-2", "slow-3", "slow-4"]);
    let (out_a, out_b) = (dir.join("a"), dir.join("b"));
    let opts = session::Options { device_wait: Duration::from_secs(60), ..Default::default() };
    std::thread::scope(|s| {
        for out in [&out_a, &out_b] {
            let (rt, p, models, opts, phone) = (&rt, &p, &models, &opts, &phone);
            s.spawn(move || {
                let job = Job { runtime: rt, protocol: p, models, source: &Keys, out_dir: out };
                let o = session::run_with(&job, &[adb(phone)], opts, &|_| {}).unwrap();
                assert!(o.problems().is_none(), "{:?}", o.problems());
            });
        }
    });
    let (a, b) = (session::read_journal(&out_a).unwrap(), session::read_journal(&out_b).unwrap());
    assert_eq!((a.len(), b.len()), (4, 4));
    let ((a0, a1), (b0, b1)) = (span(&a), span(&b));
    assert!(a1 <= b0 + 5.0 || b1 <= a0 + 5.0, "the runs timed at once: a {a0}..{a1}, b {b0}..{b1}");
    // Nothing left behind: the lock and both runs' directories are gone.
    assert!(!phone.host_path("/data/local/tmp/hwnas/lock").exists());
    let runs = phone.host_path("/data/local/tmp/hwnas/runs");
    assert_eq!(std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn a_run_on_a_busy_phone_stops_naming_the_holder() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let dir = tmp("lock-busy");
    let holder = phone.target().unwrap();
    let held = DeviceLock::acquire(&holder, Duration::ZERO).unwrap();
    let rt = runner(&dir);
    let p = protocol();
    let models = layers(&["ok-1"]);
    let job = Job { runtime: &rt, protocol: &p, models: &models, source: &Keys, out_dir: &dir.join("out") };
    let o = session::run(&job, &[adb(&phone)], &|_| {}).unwrap();
    let why = o.reports[0].stopped.clone().unwrap_or_default();
    assert!(why.contains(&format!("{} is in use", phone.serial())), "{why}");
    assert!(why.contains(&format!("PID {} on host {}", std::process::id(), host_name())), "{why}");
    assert_eq!(o.reports[0].measured, 0);
    // The lock lives on the phone, in the scratch area.
    assert!(phone.host_path("/data/local/tmp/hwnas/lock/owner").is_file());
    held.release(&holder);
    let o = session::run(&job, &[adb(&phone)], &|_| {}).unwrap();
    assert!(o.problems().is_none(), "{:?}", o.problems());
}
