//! The interface between hwnas and its timing binary `hwnas-runner`: the command
//! line hwnas builds and the binary parses ([`args`]), the JSON line the binary
//! prints and hwnas reads back ([`output`]), the batch manifest ([`batch`]), how a model is
//! timed ([`timing`]) and the device state it may start in ([`window`]). Both
//! sides use this crate, so the two cannot drift apart. The binary itself (src/main.rs)
//! adds tract to time models.

pub mod args;
pub mod batch;
pub mod output;
pub mod stats;
pub mod timing;
pub mod window;

/// The runtime name the binary reports and hwnas records.
pub const RUNTIME: &str = "hwnas-runner";
