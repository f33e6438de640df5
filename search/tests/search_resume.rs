//! Reproducibility: the same seed gives the same history (for any thread count), and a job
//! killed after some generations and resumed ends exactly where an uninterrupted one does.

use crate::search_common::*;

use predictors::{LatencyPredictor, PredictError};
use search::config::JobConfig;
use search::history::Record;
use search::job::JobError;
use spaces::ir::Network;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
        assert!(crate::search_common::chain(&err).contains("--resume"));
        let mut other = cfg.clone();
        other.seed += 1;
        let err = open(other, pixel3_lut(), &dir, true).err().unwrap();
        assert!(crate::search_common::chain(&err).contains("seed"), "{err:#}");

        let mut job = open(cfg, pixel3_lut(), &dir, true).unwrap();
        assert_eq!(job.next_generation(), 3);
        let outcome = job.run(None, &mut |_| {}).unwrap().unwrap();
        assert_eq!(job.history(), &reference[..], "{name}: resumed history differs");
        assert_eq!(outcome.evaluated, reference.len());
        let lines = std::fs::read_to_string(dir.join("history.jsonl")).unwrap().lines().count();
        assert_eq!(lines, reference.len(), "{name}: the torn line must be dropped");
        let log = std::fs::read_to_string(dir.join("log.txt")).unwrap();
        assert!(log.contains("dropped 1 history line(s)"), "{name}: the cut is logged: {log}");
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

#[test]
fn a_second_job_on_one_directory_is_refused_while_the_first_holds_it() {
    let cfg = config("fbnet-cifar100", search::config::StrategyConfig::Random, 8, 3, 0, target());
    let dir = scratch("locked");
    let mut first = open(cfg.clone(), pixel3_lut(), &dir, false).unwrap();
    first.run(Some(1), &mut |_| {}).unwrap();
    let err = crate::search_common::chain(&open(cfg.clone(), pixel3_lut(), &dir, true).err().unwrap());
    assert!(err.contains(&dir.display().to_string()) && err.contains("in use"), "{err}");
    assert!(err.contains(&format!("PID {}", std::process::id())), "names the owner: {err}");
    drop(first);
    let mut again = open(cfg, pixel3_lut(), &dir, true).unwrap();
    again.run(None, &mut |_| {}).unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_changed_predictor_file_is_refused_on_resume_naming_it() {
    let dir = scratch("fingerprint");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pixel3.json");
    pixel3_lut().save(&file).unwrap();
    let mut cfg = config("fbnet-cifar100", search::config::StrategyConfig::Random, 8, 4, 0, target());
    cfg.latency[0].path = file.display().to_string();
    let job_dir = dir.join("job");
    let mut job = open(cfg.clone(), pixel3_lut(), &job_dir, false).unwrap();
    job.run(Some(2), &mut |_| {}).unwrap();
    drop(job);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(job_dir.join("config.json")).unwrap()).unwrap();
    let digest = saved["inputs"][0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(digest.len(), 64, "{saved}");
    assert_eq!(saved["inputs"][0]["path"], file.display().to_string());

    let original = std::fs::read(&file).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b" ");
    std::fs::write(&file, &changed).unwrap();
    let err = crate::search_common::chain(&open(cfg.clone(), pixel3_lut(), &job_dir, true).err().unwrap());
    assert!(err.contains(&file.display().to_string()) && err.contains("changed"), "{err}");
    assert!(err.contains(&digest[..12]), "names the old digest: {err}");

    std::fs::write(&file, &original).unwrap();
    let mut job = open(cfg, pixel3_lut(), &job_dir, true).unwrap();
    assert_eq!(job.next_generation(), 2);
    job.run(None, &mut |_| {}).unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// [`MacsLinear`] that, once `slow` is set, prices every network at 1000× (as if its file
/// had been swapped for a much slower device's).
struct Switchable {
    slow: AtomicBool,
}

impl LatencyPredictor for Switchable {
    fn family(&self) -> &str {
        "switchable"
    }
    fn predict_ms(&self, net: &Network) -> Result<f64, PredictError> {
        let ms = MacsLinear { additive: false }.predict_ms(net)?;
        Ok(if self.slow.load(Ordering::SeqCst) { 1000.0 * ms } else { ms })
    }
    fn save(&self, path: &Path) -> Result<(), predictors::DocumentError> {
        Err(crate::search_common::in_memory_only(path, "in memory only"))
    }
}

#[test]
fn generations_without_a_feasible_member_stop_the_job_saying_why() {
    let fast = MacsLinear { additive: false };
    let t = median_latency("fbnet-cifar100", &fast, 101);
    for strategy in ["evolution", "nsga2", "regularized"] {
        let mut cfg =
            config("fbnet-cifar100", search::config::StrategyConfig::by_name(strategy).unwrap(), 8, 200, 0, t);
        cfg.sampling_mut().max_tries = 40;
        cfg.sampling_mut().max_infeasible_generations = 4;
        let dir = scratch(&format!("unreachable-{strategy}"));
        let lat = Arc::new(Switchable { slow: AtomicBool::new(false) });
        let mut job = open(cfg, lat.clone(), &dir, false).unwrap();
        job.run(Some(3), &mut |_| {}).unwrap();
        lat.slow.store(true, Ordering::SeqCst);
        let err = job.run(None, &mut |_| {}).err().expect("the job stops");
        assert!(matches!(err, JobError::Unreachable(_)), "{strategy}: {err:#}");
        let msg = err.to_string();
        assert!(msg.contains("max_infeasible_generations") && msg.contains("smallest reachable latency"), "{msg}");
        assert!(job.next_generation() <= 3 + 4, "{strategy}: stopped at {}", job.next_generation());
        assert!(std::fs::read_to_string(dir.join("log.txt")).unwrap().contains("stopped: no member"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
