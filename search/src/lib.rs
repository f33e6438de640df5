//! Search: jobs (config, evaluation, history, checkpoints, plots), strategies (random,
//! OFA evolution, regularized evolution, NSGA-II, MnasNet RL), objectives (latency
//! predictors or live device measurement, accuracy sources), the differentiable searches
//! (FBNet DNAS, Single-Path NAS) and the tch models and supernets they train.
pub mod config;
pub mod dnas;
pub mod evaluate;
pub mod export;
pub mod history;
pub mod inputs;
pub mod job;
pub mod lock;
pub mod min_latency;
pub mod nn;
pub mod objectives;
pub mod pareto;
pub mod pinned;
pub mod plots;
pub mod rng;
pub mod strategies;
