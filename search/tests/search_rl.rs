//! The MnasNet-style RL strategy on real data (a lookup table fitted to HW-NAS-Bench's
//! Pixel 3 measurements of FBNet CIFAR-100 networks, capacity-proxy accuracy): its
//! controller learns (rewards rise, choices concentrate), it beats random sampling at an
//! equal number of evaluations, and its history does not depend on libtorch's thread count.

use crate::search_common::*;

use search::config::{JobConfig, PolicyGradient, RlConfig, StrategyConfig};
use search::history::Record;
use search::objectives::Reward;

fn run(cfg: JobConfig, name: &str) -> Vec<Record> {
    let dir = scratch(name);
    let mut job = open(cfg, pixel3_lut(), &dir, false).unwrap();
    job.run(None, &mut |_| {}).unwrap().unwrap();
    let h = job.history().to_vec();
    let _ = std::fs::remove_dir_all(&dir);
    h
}

fn rl(reward: Reward) -> StrategyConfig {
    StrategyConfig::Rl(RlConfig { reward, ..Default::default() })
}

fn target() -> f64 {
    median_latency("fbnet-cifar100", &*pixel3_lut(), 201)
}

/// Largest MnasNet reward among the members.
fn best_reward(h: &[Record], reward: Reward, t: f64) -> f64 {
    h.iter().map(|r| reward.value(r.eval.accuracy, r.eval.latency_ms[0], t)).fold(f64::NEG_INFINITY, f64::max)
}

fn best_feasible_accuracy(h: &[Record]) -> f64 {
    h.iter().filter(|r| r.eval.feasible).map(|r| r.eval.accuracy).fold(f64::NEG_INFINITY, f64::max)
}

/// Mean MnasNet reward of generation `g`'s members.
fn mean_reward(h: &[Record], g: usize, reward: Reward, t: f64) -> f64 {
    let v: Vec<f64> = h
        .iter()
        .filter(|r| r.generation == g)
        .map(|r| reward.value(r.eval.accuracy, r.eval.latency_ms[0], t))
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean over genes of the share of generation `g`'s members that take the gene's most common choice.
fn concentration(h: &[Record], g: usize) -> f64 {
    let members: Vec<&Record> = h.iter().filter(|r| r.generation == g).collect();
    let genes = members[0].eval.genome.0.len();
    let mut total = 0.0;
    for i in 0..genes {
        let mut counts = [0usize; 256];
        for r in &members {
            counts[r.eval.genome.0[i] as usize] += 1;
        }
        total += *counts.iter().max().unwrap() as f64 / members.len() as f64;
    }
    total / genes as f64
}

#[test]
fn rl_learns_and_beats_random_sampling_at_equal_budget() {
    let _tch = crate::search_common::tch_lock();
    // 32 × 31 = 992 evaluations each, hard and soft constraints, three seeds; random
    // search's members are scored with the same reward.
    let t = target();
    let (pop, gens) = (32, 30);
    for reward in [Reward::HARD, Reward::SOFT] {
        for seed in 0..3 {
            let h = run(config("fbnet-cifar100", rl(reward), pop, gens, seed, t), &format!("rl-{seed}"));
            let r = run(config("fbnet-cifar100", StrategyConfig::Random, pop, gens, seed, t), &format!("rnd-{seed}"));
            assert_eq!(h.len(), r.len());
            let (first, last) = (mean_reward(&h, 0, reward, t), mean_reward(&h, gens, reward, t));
            let random_mean = (0..=gens).map(|g| mean_reward(&r, g, reward, t)).sum::<f64>() / (gens + 1) as f64;
            let (c0, c1) = (concentration(&h, 0), concentration(&h, gens));
            let (best_rl, best_rnd) = (best_reward(&h, reward, t), best_reward(&r, reward, t));
            eprintln!(
                "{reward:?} seed {seed}: mean reward first {first:.4} last {last:.4} (random {random_mean:.4}); \
                 concentration {c0:.3} -> {c1:.3}; best reward rl {best_rl:.4} random {best_rnd:.4}"
            );
            assert!(last > random_mean + 0.05, "{reward:?} seed {seed}: last {last:.4} vs random {random_mean:.4}");
            assert!(c1 > c0 + 0.15, "{reward:?} seed {seed}: concentration {c0:.3} -> {c1:.3}");
            assert!(best_rl > best_rnd, "{reward:?} seed {seed}: best rl {best_rl:.4} <= random {best_rnd:.4}");
            if reward == Reward::HARD {
                // Under the hard constraint the reward of a feasible member is its accuracy.
                let (a, b) = (best_feasible_accuracy(&h), best_feasible_accuracy(&r));
                assert!(a > b, "seed {seed}: best feasible accuracy rl {a:.4} <= random {b:.4}");
            }
        }
    }
}

#[test]
fn reinforce_learns_too() {
    let _tch = crate::search_common::tch_lock();
    let t = target();
    let cfg = RlConfig { algorithm: PolicyGradient::Reinforce, ..Default::default() };
    let h = run(config("fbnet-cifar100", StrategyConfig::Rl(cfg.clone()), 32, 30, 4, t), "reinforce");
    let (first, last) = (mean_reward(&h, 0, cfg.reward, t), mean_reward(&h, 30, cfg.reward, t));
    assert!(last > first + 0.05, "first {first:.4}, last {last:.4}");
}

#[test]
fn rl_history_does_not_depend_on_libtorch_threads() {
    let _tch = crate::search_common::tch_lock();
    let t = target();
    let cfg = config("fbnet-cifar100", rl(Reward::SOFT), 16, 5, 7, t);
    let before = tch::get_num_threads();
    tch::set_num_threads(1);
    let a = run(cfg.clone(), "threads-1");
    tch::set_num_threads(4);
    let b = run(cfg, "threads-4");
    tch::set_num_threads(before);
    assert_eq!(a, b);
}
