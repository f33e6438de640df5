//! (in progress)
pub mod nn;
// Search jobs and strategies (job, config, strategies, objectives, history, plots).
pub mod config;
pub mod dnas;
pub mod evaluate;
pub mod history;
pub mod job;
pub mod min_latency;
pub mod objectives;
pub mod pareto;
pub mod plots;
pub mod rng;
pub mod strategies;
