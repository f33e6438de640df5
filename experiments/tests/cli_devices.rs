//! `hwnas devices` end to end: simulated phones (`hwnas-adbd`, built with the latency crate)
//! behind real adb servers on private ports.

use latency::adb::sim::{free_port, PhoneOptions, SimulatedPhone};
use serde_json::Value;
use std::process::{Command, Output};

fn hwnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hwnas")).args(args).output().expect("hwnas runs")
}

#[test]
fn lists_phones_of_several_servers_with_identity() {
    let a = SimulatedPhone::start(PhoneOptions { model: "Pixel 4".into(), soc: "SM8150".into(), ..Default::default() })
        .expect("start a simulated phone (needs adb and target/*/hwnas-adbd: cargo build -p latency)");
    let b = SimulatedPhone::start(PhoneOptions { model: "Galaxy S10".into(), ..Default::default() }).unwrap();
    let dead = format!("127.0.0.1:{}", free_port().unwrap());

    let out = hwnas(&["devices", "--adb", &a.server(), "--adb", &b.server(), "--adb", &dead, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let servers = v["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    for (i, (phone, model)) in [(&a, "Pixel 4"), (&b, "Galaxy S10")].into_iter().enumerate() {
        assert_eq!(servers[i]["server"], phone.server().as_str());
        let d = &servers[i]["devices"][0];
        assert_eq!(d["serial"], phone.serial().as_str());
        assert_eq!(d["state"], "device");
        assert_eq!(d["info"]["model"], model);
        assert!(d["info"]["cores"].as_u64().unwrap() >= 1);
    }
    assert_eq!(servers[0]["devices"][0]["info"]["soc"], "SM8150");
    assert!(servers[2]["error"].as_str().unwrap().contains("cannot connect"));

    let table = hwnas(&["devices", "--adb", &a.server()]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("SERVER"), "{text}");
    assert!(text.contains(&a.serial()) && text.contains("Pixel 4") && text.contains("SM8150"), "{text}");
}

#[test]
fn no_reachable_server_is_an_error() {
    let dead = format!("127.0.0.1:{}", free_port().unwrap());
    let out = hwnas(&["devices", "--adb", &dead]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: no adb server answered"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot connect"));
}
