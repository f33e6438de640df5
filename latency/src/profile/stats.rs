//! Summary statistics of latency samples; the code lives in `hwnas_runner::stats` so the
//! runner's in-process rounds (batches) stop by the same rule as the host.

pub use hwnas_runner::stats::*;
