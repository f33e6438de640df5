//! How one model is timed once it is loaded: a warm-up, then rounds of timed runs until the
//! kept samples are stable, each round filling a timed window. Counts and times together,
//! as TFLite's `benchmark_model` does (`--warmup_runs`/`--warmup_min_secs`,
//! `--num_runs`/`--min_secs`), plus one rule of hwnas' own: a round's timed runs last at
//! least `setup_ratio` times what loading the model cost (parsing, optimising, planning), so
//! the device's time goes to timing rather than to setting models up.
//!
//! Runs faster than [`MIN_SAMPLE_US`] are timed in groups: a sample is then the mean of
//! `runs_per_sample` back-to-back runs (a clock read costs tens of ns, and a window of a
//! sub-microsecond model would otherwise hold hundreds of thousands of samples). The same
//! grouping caps a round at about [`MAX_SAMPLES_PER_ROUND`] samples.
//!
//! The logic takes the clock and the run as closures, so it is tested without a model
//! (the binary passes `Instant` and tract; another runtime can follow the same rule).

use crate::stats::{keep_mask, summarize};

/// Runs faster than this (µs) are timed in groups of back-to-back runs.
pub const MIN_SAMPLE_US: f64 = 10.0;
/// A round's timed window is cut into at most about this many samples (by grouping runs).
pub const MAX_SAMPLES_PER_ROUND: usize = 2000;

/// How to time one loaded model.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Warm-up: at least this many untimed runs…
    pub warmup: usize,
    /// …and at least this long (ms).
    pub warmup_ms: u64,
    /// A round: at least this many samples…
    pub runs: usize,
    /// …whose timed runs last at least this long (ms)…
    pub min_time_ms: u64,
    /// …and at least this many times the model's setup (parse, optimise, plan); 0: no such floor.
    pub setup_ratio: u64,
    /// Rounds repeat until the kept samples' CV is at most `cv_bound` with at least
    /// `min_samples` kept, for at most `max_rounds` rounds.
    pub max_rounds: u32,
    pub cv_bound: f64,
    pub min_samples: usize,
}

impl Plan {
    /// Whether `samples` (every sample so far, after `rounds` rounds) are enough: the host's rule.
    pub fn done(&self, samples: &[f64], rounds: u32) -> bool {
        if rounds >= self.max_rounds {
            return true;
        }
        let s = summarize(samples, &keep_mask(samples));
        s.is_some_and(|s| s.n_kept >= self.min_samples && s.cv <= self.cv_bound)
    }

    /// The timed window each round must fill (µs), given what loading the model cost.
    pub fn window_us(&self, setup_us: f64) -> f64 {
        (self.min_time_ms as f64 * 1e3).max(self.setup_ratio as f64 * setup_us)
    }
}

/// What timing one model gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Timed {
    /// One per sample, µs per run (a group's mean when `runs_per_sample` > 1).
    pub samples_us: Vec<f64>,
    pub rounds: u32,
    pub runs_per_sample: usize,
    pub warmup_runs: usize,
    pub warmup_us: f64,
    /// The timed window each round had to fill (µs).
    pub window_us: f64,
}

impl Timed {
    /// Time spent in timed runs (µs).
    pub fn timed_us(&self) -> f64 {
        self.samples_us.iter().sum::<f64>() * self.runs_per_sample as f64
    }
}

/// Warms up and times a model: `now` reads a clock in µs, `run` runs the model once, and
/// `setup_us` is what loading it cost.
pub fn time<E>(
    plan: &Plan,
    setup_us: f64,
    mut now: impl FnMut() -> f64,
    mut run: impl FnMut() -> Result<(), E>,
) -> Result<Timed, E> {
    let start = now();
    let (mut warmup_runs, mut fastest) = (0usize, f64::INFINITY);
    loop {
        let t = now();
        if warmup_runs >= plan.warmup && t - start >= plan.warmup_ms as f64 * 1e3 {
            break;
        }
        run()?;
        fastest = fastest.min(now() - t);
        warmup_runs += 1;
    }
    let warmup_us = now() - start;
    let window_us = plan.window_us(setup_us);
    // The fastest warm-up run estimates a run (the first ones allocate and fill caches).
    let runs_per_sample = if fastest.is_finite() && fastest > 0.0 {
        let for_clock = (MIN_SAMPLE_US / fastest).ceil();
        let for_cap = (window_us / (MAX_SAMPLES_PER_ROUND as f64 * fastest)).ceil();
        for_clock.max(for_cap).max(1.0) as usize
    } else {
        1
    };
    let mut samples_us = Vec::new();
    let mut rounds = 0;
    loop {
        let (mut taken, mut timed) = (0usize, 0.0);
        // A model that runs much faster than its warm-up said cannot fill the window with
        // endless samples: a round ends at 4× the cap.
        while taken < plan.runs || (timed < window_us && taken < 4 * MAX_SAMPLES_PER_ROUND) {
            let t = now();
            for _ in 0..runs_per_sample {
                run()?;
            }
            let took = (now() - t).max(1e-3);
            samples_us.push(took / runs_per_sample as f64);
            timed += took;
            taken += 1;
        }
        rounds += 1;
        if plan.done(&samples_us, rounds) {
            break;
        }
    }
    Ok(Timed { samples_us, rounds, runs_per_sample, warmup_runs, warmup_us, window_us })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn plan() -> Plan {
        Plan {
            warmup: 2,
            warmup_ms: 0,
            runs: 5,
            min_time_ms: 0,
            setup_ratio: 0,
            max_rounds: 3,
            cv_bound: 0.05,
            min_samples: 3,
        }
    }

    fn timed(p: &Plan, setup_us: f64, costs: &[f64]) -> (Timed, usize) {
        let clock = Cell::new(0.0);
        let n = Cell::new(0usize);
        let t = time(
            p,
            setup_us,
            || clock.get(),
            || -> Result<(), ()> {
                clock.set(clock.get() + costs[n.get() % costs.len()]);
                n.set(n.get() + 1);
                Ok(())
            },
        )
        .unwrap();
        (t, n.get())
    }

    #[test]
    fn counts_alone_give_the_old_protocol() {
        let (t, n) = timed(&plan(), 1000.0, &[100.0]);
        assert_eq!((t.warmup_runs, t.samples_us.len(), t.rounds, t.runs_per_sample, n), (2, 5, 1, 1, 7));
        assert_eq!(t.samples_us, vec![100.0; 5]);
        assert_eq!(t.timed_us(), 500.0);
    }

    #[test]
    fn warm_up_and_window_by_time() {
        let p = Plan { warmup_ms: 1, min_time_ms: 3, ..plan() };
        let (t, _) = timed(&p, 0.0, &[100.0]);
        assert_eq!(t.warmup_runs, 10, "1 ms of 100 µs runs");
        assert_eq!(t.samples_us.len(), 30, "3 ms of timed runs");
        assert_eq!(t.window_us, 3000.0);
    }

    #[test]
    fn the_window_amortises_the_setup() {
        let p = Plan { setup_ratio: 10, ..plan() };
        // 400 µs to load: 10 × 400 µs of timed runs.
        let (t, _) = timed(&p, 400.0, &[50.0]);
        assert_eq!(t.window_us, 4000.0);
        assert_eq!(t.samples_us.len(), 80);
        assert!(t.timed_us() >= 10.0 * 400.0);
    }

    #[test]
    fn fast_runs_are_timed_in_groups_and_rounds_stay_bounded() {
        let p = Plan { min_time_ms: 100, ..plan() };
        let (t, n) = timed(&p, 0.0, &[0.2]);
        assert_eq!(t.runs_per_sample, 250, "100 ms in 2000 samples of 0.2 µs runs");
        assert!((1990..=2010).contains(&t.samples_us.len()), "{}", t.samples_us.len());
        assert!(t.samples_us.iter().all(|s| (s - 0.2).abs() < 1e-9));
        assert_eq!(n, 2 + t.samples_us.len() * 250);
        // A group lasts at least MIN_SAMPLE_US.
        let (t, _) = timed(&plan(), 0.0, &[0.5]);
        assert_eq!(t.runs_per_sample, 20);
    }

    #[test]
    fn the_fastest_warm_up_run_sets_the_group() {
        // The first run allocates (500 µs), the next is 2 µs: groups of 5, not 1.
        let (t, _) = timed(&plan(), 0.0, &[500.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(t.runs_per_sample, 5);
    }

    #[test]
    fn unstable_samples_take_more_rounds_up_to_the_limit() {
        let (t, _) = timed(&plan(), 0.0, &[100.0, 300.0, 150.0, 90.0, 260.0]);
        assert_eq!(t.rounds, 3);
        assert_eq!(t.samples_us.len(), 15);
    }

    #[test]
    fn a_failing_run_is_returned() {
        let r = time(&plan(), 0.0, || 0.0, || Err::<(), _>("boom"));
        assert_eq!(r.unwrap_err(), "boom");
    }
}
