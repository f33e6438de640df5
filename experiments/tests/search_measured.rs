//! `hwnas search --latency device:SERIAL`: every candidate timed on a simulated phone
//! (`hwnas-adbd` behind a real adb server). The stand-in runner answers with the model
//! file's size in KB as its latency in ms, so measurements are deterministic and differ
//! between architectures; a killed search must resume from its journal without timing
//! any architecture twice.

use crate::adb_support::{hwnas, json_lines, kill, phone, script, start_until, text};
use latency::adb::sim::SimulatedPhone;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    crate::adb_support::tmp("search-measured", name)
}

/// Latency (µs) = model file size in bytes (3.1–9.5 MB here), after a pause of `pause_s`.
fn runner(dir: &Path, pause_s: &str) -> PathBuf {
    let body = format!(
        "#!/bin/sh\nsleep {pause_s}\nwhile [ $# -gt 0 ]; do [ \"$1\" = --model ] && m=\"$2\"; shift; done\n\
         s=$(wc -c < \"$m\")\necho \"{{\\\"samples_us\\\":[$s,$s,$s]}}\"\n"
    );
    script(dir, &format!("runner-{pause_s}.sh"), &body)
}

fn args(p: &SimulatedPhone, runner: &Path, out: &Path) -> Vec<String> {
    let mut a: Vec<String> = ["search", "--space", "fbnet-cifar100", "--max-latency-ms", "6000", "--population", "4"]
        .into_iter()
        .map(String::from)
        .collect();
    a.extend(["--generations".into(), "2".into(), "--latency".into(), format!("phone=device:{}", p.serial())]);
    a.extend(["--adb".into(), p.server(), "--runner".into(), runner.display().to_string()]);
    a.extend(["--warmup", "0", "--runs", "3", "--cooldown-ms", "0", "--out"].map(String::from));
    a.push(out.display().to_string());
    a
}

fn journal(out: &Path) -> Vec<serde_json::Value> {
    json_lines(&out.join("measurements/phone/journal.jsonl"))
}

/// Architecture JSON → measured median (ms), checking that none was timed twice.
fn measured(out: &Path) -> HashMap<String, f64> {
    let recs = journal(out);
    let m: HashMap<String, f64> = recs
        .iter()
        .map(|r| (r["model"]["arch"].as_str().unwrap().to_string(), r["summary"]["median_us"].as_f64().unwrap() / 1e3))
        .collect();
    assert_eq!(m.len(), recs.len(), "an architecture was timed twice");
    m
}

/// (generation, architecture, latency) of every history row.
fn history(out: &Path) -> Vec<(u64, String, f64)> {
    let space = spaces::space("fbnet-cifar100").unwrap();
    json_lines(&out.join("history.jsonl"))
        .iter()
        .map(|r| {
            let g: spaces::Genome = serde_json::from_value(r["genome"].clone()).unwrap();
            (r["generation"].as_u64().unwrap(), space.to_json(&g).to_string(), r["latency_ms"][0].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn measured_search_times_each_candidate_once_and_resumes_after_a_kill() {
    let p = phone("Pixel 3");
    let dir = tmp("kill");

    let out = dir.join("out");
    let argv = args(&p, &runner(&dir, "0.1"), &out);
    kill(start_until(&argv, || journal(&out).len() >= 5));
    let before = journal(&out).len();
    let mut resume = argv.clone();
    resume.push("--resume".into());
    let o = hwnas(&resume);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("latency (phone):"), "{}", text(&o));
    let times = measured(&out);
    let rows = history(&out);
    assert_eq!(rows.len(), 3 * 4);
    for (_, arch, ms) in &rows {
        assert_eq!(times.get(arch), Some(ms), "history latency of {arch} is not its measurement");
    }
    let distinct: HashSet<u64> = rows.iter().map(|r| r.2.to_bits()).collect();
    assert!(distinct.len() > 3, "latencies do not depend on the architecture");
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap();
    // Everything the killed run measured was found again; nothing was timed twice (above).
    let line = log.lines().find(|l| l.contains("records already in the journal")).expect("measurement note");
    let n = |after: &str| -> usize {
        line.split(after).next().unwrap().split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(n(" records already"), before, "{line}");
    assert!(n(" taken from") <= before, "{line}");
    assert_eq!(n(" networks timed") + before, times.len(), "{line}");
    assert!(log.contains(&format!("networks timed on {}", p.serial())), "{log}");
    assert!(out.join("measurements/phone/latency.parquet").is_file());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["latency"][0]["measure"]["device"], p.serial().as_str());
    assert_eq!(config["max_tries"], 40, "measured jobs default to 10 proposals per member");
    // Feasible means feasible as measured.
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best.json")).unwrap()).unwrap();
    assert!(best["best"]["latency_ms"]["phone"].as_f64().unwrap() <= 6000.0);
}

#[test]
fn unplugged_phone_stops_the_search_with_its_measurements_kept() {
    let mut p = phone("Pixel 3");
    let dir = tmp("unplug");
    let out = dir.join("out");
    let child = start_until(&args(&p, &runner(&dir, "0.1"), &out), || journal(&out).len() >= 3);
    p.unplug();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains(&p.serial()), "the error does not name the device: {t}");
    assert!(t.contains("measurements taken so far are kept in") && t.contains("--resume"), "{t}");
    assert!(journal(&out).len() >= 3, "measurements were lost");
}

#[test]
fn device_latency_errors_name_the_problem() {
    let dir = tmp("errors");
    let run = |extra: &[&str]| {
        let mut a: Vec<String> = ["search", "--space", "fbnet-cifar100", "--max-latency-ms", "5", "--out"]
            .into_iter()
            .map(String::from)
            .collect();
        a.push(dir.join("out").display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        hwnas(&a)
    };
    let o = run(&["--latency", "device:"]);
    assert!(!o.status.success() && text(&o).contains("name the device"), "{}", text(&o));
    let o = run(&["--latency", "device:no-such-phone", "--adb", "127.0.0.1:1", "--runner", "/bin/sh"]);
    assert!(!o.status.success() && text(&o).contains("device no-such-phone not found"), "{}", text(&o));
    let o = run(&["--latency", "device:local", "--strategy", "fbnet"]);
    assert!(!o.status.success() && text(&o).contains("lookup table"), "{}", text(&o));
}
