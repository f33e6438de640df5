//! End-to-end: the `hwnas-adbd` simulator behind a real Debian `adb` server, driven through
//! `AdbTarget` (adb_client). Every test uses private ports, so they run in parallel and never
//! touch a user's server on 5037; every wait is bounded.

use latency::adb::sim::{AdbServer, PhoneOptions, SimulatedPhone};
use latency::adb::{list_devices, AdbTarget};
use latency::target::{Target, TargetError};
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

fn opts() -> PhoneOptions {
    PhoneOptions { daemon: Some(env!("CARGO_BIN_EXE_hwnas-adbd").into()), ..PhoneOptions::default() }
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn command_stdout_stderr_and_exit_code() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let t = phone.target().unwrap();
    let out = t.run(&argv(&["sh", "-c", "echo out; echo err >&2; printf 'no newline'; exit 7"]), T).unwrap();
    assert_eq!(out.stdout, "out\nno newline");
    assert_eq!(out.stderr, "err\n");
    assert_eq!(out.exit_code, 7);

    // Arguments arrive verbatim: no injection through quoting.
    let tricky = "a b'; echo pwned; '$(id)";
    let out = t.run(&argv(&["printf", "%s", tricky]), T).unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), (tricky, 0));

    // Commands start in the scratch area with device paths mapped into the sandbox.
    let out = t.run(&argv(&["sh", "-c", "echo hi > /data/local/tmp/w.txt && cat /data/local/tmp/w.txt"]), T).unwrap();
    assert_eq!(out.stdout, "hi\n");
    assert!(phone.host_path("/data/local/tmp/w.txt").is_file());
    assert_eq!(t.id(), phone.serial());
}

#[test]
fn phone_without_shell_v2_still_gives_exit_codes() {
    let phone = SimulatedPhone::start(PhoneOptions { features: Some(String::new()), ..opts() }).unwrap();
    let t = phone.target().unwrap();
    let out = t.run(&argv(&["sh", "-c", "echo out; echo err >&2; exit 4"]), T).unwrap();
    // The v1 shell merges stderr into stdout; the wrapper's PID line must not leak into it.
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.exit_code), ("out\nerr\n", "", 4));
    assert_eq!(t.info().unwrap().model, "hwnas-sim");
}

#[test]
fn push_then_read_back() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let t = phone.target().unwrap();
    // Larger than one WRTE and one sync DATA chunk, with every byte value.
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let local = std::env::temp_dir().join(format!("hwnas-push-{}.bin", std::process::id()));
    std::fs::write(&local, &data).unwrap();
    let remote = format!("{}/models/m.bin", t.scratch_dir());
    t.push(&local, &remote).unwrap();
    std::fs::remove_file(&local).unwrap();
    assert_eq!(std::fs::read(phone.host_path(&remote)).unwrap(), data);
    let out = t.run(&argv(&["wc", "-c", &remote]), T).unwrap();
    assert_eq!(out.stdout.split_whitespace().next(), Some("700000"));

    let small = std::env::temp_dir().join(format!("hwnas-push-{}.txt", std::process::id()));
    std::fs::write(&small, "hello phone\n").unwrap();
    t.push(&small, "/data/local/tmp/hello.txt").unwrap();
    std::fs::remove_file(&small).unwrap();
    assert_eq!(t.run(&argv(&["cat", "/data/local/tmp/hello.txt"]), T).unwrap().stdout, "hello phone\n");

    // Outside the sandbox the simulated phone is read-only, and the error says so.
    let err = t.push(Path::new("/etc/hostname"), "/sys/hwnas-test").unwrap_err();
    assert!(matches!(err, TargetError::Failed { .. }) && err.to_string().contains("Read-only"), "{err}");
}

use std::path::Path;

#[test]
fn info_reports_the_simulated_identity_and_host_cpus() {
    let phone = SimulatedPhone::start(PhoneOptions {
        model: "Pixel 4".into(),
        soc: "SM8150".into(),
        abi: Some("arm64-v8a".into()),
        ..opts()
    })
    .unwrap();
    let info = phone.target().unwrap().info().unwrap();
    assert_eq!(info.model, "Pixel 4");
    assert_eq!(info.soc, "SM8150");
    assert_eq!(info.abi, "arm64-v8a");
    assert_eq!(info.serial, phone.serial());
    assert_eq!(info.server, phone.server());
    let host_cpus = std::fs::read_dir("/sys/devices/system/cpu")
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name().into_string().unwrap();
            n.strip_prefix("cpu").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .count();
    assert_eq!(info.cores as usize, host_cpus);
    assert_eq!(info.cur_freq_khz.len(), host_cpus);
}

#[test]
fn hung_command_times_out_and_the_phone_stays_usable() {
    let phone = SimulatedPhone::start(PhoneOptions { hang_on: Some("benchmark_model".into()), ..opts() }).unwrap();
    let t = phone.target().unwrap();
    let start = Instant::now();
    let err =
        t.run(&argv(&["/data/local/tmp/benchmark_model", "--graph=m.tflite"]), Duration::from_secs(2)).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, TargetError::Timeout { .. }), "{err}");
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(6), "{waited:?}");
    assert!(err.to_string().contains("benchmark_model"), "{err}");
    assert_eq!(t.run(&argv(&["echo", "alive"]), T).unwrap().stdout, "alive\n");
}

/// Gone, or a zombie nobody reaps (containers without an init).
fn process_is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn overrunning_command_is_killed_on_the_device() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let t = phone.target().unwrap();
    let pid_file = "/data/local/tmp/sleeper.pid";
    let line = format!("echo $$ > {pid_file}; exec sleep 60");
    let err = t.run(&argv(&["sh", "-c", &line]), Duration::from_millis(1500)).unwrap_err();
    assert!(matches!(err, TargetError::Timeout { .. }), "{err}");
    let pid = std::fs::read_to_string(phone.host_path(pid_file)).unwrap().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_is_dead(&pid) {
        assert!(Instant::now() < deadline, "the timed-out `sleep 60` (pid {pid}) still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn unplugged_phone_is_a_clear_error() {
    let phone = SimulatedPhone::start(PhoneOptions { exit_after_commands: Some(1), ..opts() }).unwrap();
    let t = phone.target().unwrap();
    assert_eq!(t.run(&argv(&["echo", "one"]), T).unwrap().stdout, "one\n");
    let start = Instant::now();
    let err = t.run(&argv(&["echo", "two"]), T).unwrap_err();
    eprintln!("after unplug: {err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&phone.serial()), "{err}");
    // Later commands fail fast too, naming what the server says about the device.
    let err = t.run(&argv(&["echo", "three"]), T).unwrap_err();
    assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
    let err = AdbTarget::connect(&phone.server(), &phone.serial(), T).unwrap_err();
    eprintln!("connect after unplug: {err}");
    assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
}

#[test]
fn two_servers_each_with_a_phone_are_listed_together() {
    let a = SimulatedPhone::start(PhoneOptions { model: "Phone A".into(), ..opts() }).unwrap();
    let b = SimulatedPhone::start(PhoneOptions { model: "Phone B".into(), ..opts() }).unwrap();
    assert_ne!(a.server(), b.server());
    let dead = format!("127.0.0.1:{}", latency::adb::sim::free_port().unwrap());
    let start = Instant::now();
    let listed = list_devices(&[a.server(), b.server(), dead.clone()]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(listed.len(), 3);
    for (phone, model, entry) in [(&a, "Phone_A", &listed[0]), (&b, "Phone_B", &listed[1])] {
        assert_eq!(entry.server, phone.server());
        let devices = entry.devices.as_ref().unwrap();
        assert_eq!(devices.len(), 1, "{devices:?}");
        assert_eq!(devices[0].serial, phone.serial());
        assert_eq!(devices[0].state, "device");
        assert_eq!(devices[0].model.as_deref(), Some(model));
    }
    let err = listed[2].devices.as_ref().unwrap_err().to_string();
    assert!(err.contains(&dead) && err.contains("cannot connect"), "{err}");

    // A second phone on the same server shows up beside the first.
    let c = SimulatedPhone::start_on(&a.server(), PhoneOptions { model: "Phone C".into(), ..opts() }).unwrap();
    let listed = list_devices(&[a.server()]);
    let serials: Vec<_> = listed[0].devices.as_ref().unwrap().iter().map(|d| d.serial.clone()).collect();
    assert!(serials.contains(&a.serial()) && serials.contains(&c.serial()), "{serials:?}");
    assert_eq!(AdbTarget::connect(&a.server(), &c.serial(), T).unwrap().info().unwrap().model, "Phone C");
}

#[test]
fn real_adb_client_works_with_the_simulator() {
    let phone = SimulatedPhone::start(opts()).unwrap();
    let port = phone.server().rsplit_once(':').unwrap().1.to_string();
    let adb = |args: &[&str]| {
        let mut cmd = Command::new("timeout");
        cmd.args(["20", "adb", "-P", &port, "-s", &phone.serial()]).args(args);
        cmd.output().unwrap()
    };
    // Shell protocol v2 passes the exit code through the real client.
    let out = adb(&["shell", "echo via-adb; exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via-adb\n");
    assert_eq!(String::from_utf8_lossy(&adb(&["exec-out", "getprop ro.product.model"]).stdout), "hwnas-sim\n");

    // Real adb sends the mode in decimal (33188) and DONE with a u32 mtime.
    let dir = std::env::temp_dir().join(format!("hwnas-realadb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.txt"), "pushed by adb\n").unwrap();
    assert!(adb(&["push", dir.join("in.txt").to_str().unwrap(), "/sdcard/in.txt"]).status.success());
    assert!(adb(&["pull", "/sdcard/in.txt", dir.join("out.txt").to_str().unwrap()]).status.success());
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "pushed by adb\n");
    let ls = String::from_utf8_lossy(&adb(&["ls", "/sdcard"]).stdout).into_owned();
    assert!(ls.contains("in.txt"), "{ls}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn adb_server_guard_kills_its_server() {
    let server = AdbServer::start().unwrap();
    let addr = server.addr();
    assert!(list_devices(std::slice::from_ref(&addr))[0].devices.is_ok());
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    while list_devices(std::slice::from_ref(&addr))[0].devices.is_ok() {
        assert!(Instant::now() < deadline, "adb server on {addr} survived kill-server");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn adb_client_direct_tcp_mode_works_with_the_simulator() {
    use adb_client::tcp::ADBTcpDevice;
    use adb_client::ADBDeviceExt;
    // A server start guarantees ~/.android/adbkey exists (adb_client loads it even without AUTH).
    let phone = SimulatedPhone::start(opts()).unwrap();
    let key = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".android/adbkey");
    let addr: std::net::SocketAddr = phone.serial().parse().unwrap();
    // Bounded: the whole exchange runs on a thread we stop waiting for after 30 s.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let run = || -> Result<(String, Vec<u8>), adb_client::RustADBError> {
            let mut dev = ADBTcpDevice::new_with_custom_private_key(addr, key)?;
            let mut out = Vec::new();
            dev.shell_command(&"echo direct; getprop ro.product.cpu.abi", Some(&mut out), None)?;
            // Direct push never acknowledges our last WRTE and waits for CLSE after QUIT.
            dev.push(&mut &b"direct bytes"[..], &"/data/local/tmp/direct.bin")?;
            let mut back = Vec::new();
            dev.pull(&"/data/local/tmp/direct.bin", &mut back)?;
            Ok((String::from_utf8_lossy(&out).into_owned(), back))
        };
        let _ = tx.send(run());
    });
    let (out, back) = rx.recv_timeout(Duration::from_secs(30)).expect("direct mode hung").unwrap();
    assert_eq!(out, format!("direct\n{}\n", latency::adb::sim::sandbox::host_abi()));
    assert_eq!(back, b"direct bytes");
    assert_eq!(std::fs::read(phone.host_path("/data/local/tmp/direct.bin")).unwrap(), b"direct bytes");
}
