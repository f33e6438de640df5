//! Reproducibility: the same seed gives the same history (for any thread count), and a job
//! killed after some generations and resumed ends exactly where an uninterrupted one does.

mod search_common;
use search_common::*;

use search::config::JobConfig;
use search::history::Record;
use std::io::Write;

fn run_full(cfg: JobConfig, name: &str) -> Vec<Record> {
    let dir = scratch(name);
    let mut job = open(cfg, pixel3_lut(), &dir, false).unwrap();
    job.run(None, &mut |_| {}).unwrap().unwrap();
    let h = job.history().to_vec();
    let _ = std::fs::remove_dir_all(&dir);
    h
}

fn target() -> f64 {
    median_latency("fbnet-cifar100", &*pixel3_lut(), 201)
}

#[test]
fn resuming_after_a_kill_gives_the_uninterrupted_result() {
    let t = target();
    for strategy in all_strategies() {
        let name = strategy.name();
        let cfg = config("fbnet-cifar100", strategy, 12, 6, 11, t);
        let reference = run_full(cfg.clone(), &format!("ref-{name}"));

        let dir = scratch(&format!("killed-{name}"));
        let mut job = open(cfg.clone(), pixel3_lut(), &dir, false).unwrap();
        assert!(job.run(Some(3), &mut |_| {}).unwrap().is_none(), "a capped run stops early");
        drop(job);
        // A kill in the middle of generation 3's history write leaves a torn, uncommitted line.
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join("history.jsonl")).unwrap();
        f.write_all(b"{\"generation\":3,\"genome\":[1,2").unwrap();
        drop(f);

        // Without --resume an existing job is refused; with other settings it is refused too.
        let err = open(cfg.clone(), pixel3_lut(), &dir, false).err().unwrap();
        assert!(format!("{err:#}").contains("--resume"));
        let mut other = cfg.clone();
        other.seed += 1;
        let err = open(other, pixel3_lut(), &dir, true).err().unwrap();
        assert!(format!("{err:#}").contains("seed"), "{err:#}");

        let mut job = open(cfg, pixel3_lut(), &dir, true).unwrap();
        assert_eq!(job.next_generation(), 3);
        let outcome = job.run(None, &mut |_| {}).unwrap().unwrap();
        assert_eq!(job.history(), &reference[..], "{name}: resumed history differs");
        assert_eq!(outcome.evaluated, reference.len());
        let lines = std::fs::read_to_string(dir.join("history.jsonl")).unwrap().lines().count();
        assert_eq!(lines, reference.len(), "{name}: the torn line must be dropped");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_same_seed_gives_the_same_history_on_any_thread_count() {
    let t = target();
    for strategy in all_strategies() {
        let name = strategy.name();
        let cfg = config("fbnet-cifar100", strategy, 12, 4, 5, t);
        let a = run_full(cfg.clone(), &format!("seed-a-{name}"));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let b = pool.install(|| run_full(cfg.clone(), &format!("seed-b-{name}")));
        assert_eq!(a, b, "{name}: one thread vs the default pool");
        let mut other = cfg;
        other.seed = 6;
        let c = run_full(other, &format!("seed-c-{name}"));
        assert_ne!(a, c, "{name}: a different seed should explore differently");
    }
}
