//! Latency profiling: targets (phones over adb, the simulator, the host), model
//! files to time, runtimes, the measurement protocol and durable records.

pub mod adb;
pub mod device_lock;
pub mod error;
pub mod files;
pub mod local;
pub mod modelfile;
pub mod profile;
pub mod runtime;
pub mod target;
