//! Search: one job configuration ([`config`]) and one job directory ([`jobdir`]: lock,
//! checkpoint, history, log, resume) for every strategy — the sampling ones run by
//! [`job`] (random, OFA evolution, regularized evolution, NSGA-II, MnasNet RL) and the
//! differentiable ones run by [`dnas`] (FBNet DNAS, Single-Path NAS); objectives (latency
//! predictors or live device measurement, accuracy sources), evaluation, plots, and the tch
//! models and supernets the differentiable searches train.
pub mod config;
pub mod dnas;
pub mod evaluate;
pub mod export;
pub mod history;
pub mod inputs;
pub mod job;
pub mod jobdir;
pub mod lock;
pub mod min_latency;
pub mod nn;
pub mod objectives;
pub mod pareto;
pub mod pinned;
pub mod plots;
pub mod rng;
pub mod strategies;
