//! What hwnas says when a phone misbehaves, checked on simulated phones behind real adb
//! servers (private ports): a shell that answers without hwnas's exit marker is not called
//! an unplug, a TCP device that dropped off is told to `adb connect` again, and a port out
//! of range is called that.

use latency::adb::sim::{PhoneOptions, SimulatedPhone};
use latency::adb::AdbTarget;
use latency::target::{Target, TargetError};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn opts() -> PhoneOptions {
    PhoneOptions { daemon: Some(env!("CARGO_BIN_EXE_hwnas-adbd").into()), ..PhoneOptions::default() }
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn an_answer_without_the_exit_marker_from_an_online_phone_is_not_called_an_unplug() {
    // One command is answered without being run; the others work.
    let phone = SimulatedPhone::start(PhoneOptions { mute_on: Some("hwnas-mute".into()), ..opts() }).unwrap();
    let t = phone.target().unwrap();
    let e = t.run(&argv(&["echo", "hwnas-mute"]), T).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TargetError::Failed { .. }), "{msg}");
    assert!(msg.contains("without hwnas's exit marker although the device is online"), "{msg}");
    assert!(msg.contains("muted"), "the answer is quoted: {msg}");
    assert!(!msg.contains("unplugged"), "{msg}");
    assert_eq!(t.run(&argv(&["echo", "fine"]), T).unwrap().stdout, "fine\n");

    // Every command: the shell itself does not run the wrapper.
    let deaf = SimulatedPhone::start(PhoneOptions { mute_on: Some(".".into()), ..opts() }).unwrap();
    let msg = deaf.target().unwrap().run(&argv(&["echo", "hi"]), T).unwrap_err().to_string();
    assert!(msg.contains("its shell answers without hwnas's exit marker, even to `echo`"), "{msg}");
    assert!(!msg.contains("unplugged"), "{msg}");
}

#[test]
fn an_unplugged_tcp_phone_is_told_to_adb_connect_again() {
    let mut phone = SimulatedPhone::start(opts()).unwrap();
    let t = AdbTarget::connect(&phone.server(), &phone.serial(), T).unwrap();
    t.run(&argv(&["true"]), T).unwrap();
    phone.unplug();
    let port = phone.server().rsplit_once(':').unwrap().1.to_string();
    let want = format!("adb -P {port} connect {}", phone.serial());
    // The server may still list it as offline for a moment, or have dropped it already:
    // either way the advice is `adb connect`, never `adb reconnect offline`.
    let msg = t.run(&argv(&["true"]), T).unwrap_err().to_string();
    assert!(msg.contains(&want) && !msg.contains("reconnect offline"), "{msg}");
    std::thread::sleep(Duration::from_millis(500));
    let msg = t.run(&argv(&["true"]), T).unwrap_err().to_string();
    assert!(msg.contains(&want) && !msg.contains("reconnect offline"), "{msg}");
    let msg = AdbTarget::connect(&phone.server(), &phone.serial(), T).unwrap_err().to_string();
    assert!(!msg.contains("reconnect offline"), "{msg}");
}

#[test]
fn a_port_out_of_range_is_named_as_such() {
    let msg = AdbTarget::new("127.0.0.1:99999", "x").unwrap_err().to_string();
    assert!(msg.contains("port 99999 is not a valid TCP port (1-65535)"), "{msg}");
    assert!(!msg.contains("resolve"), "{msg}");
}
