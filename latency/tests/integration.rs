//! The crate's integration tests, one module per concern, in one test binary.

mod adb_messages;
mod adb_protocol;
mod adb_sim;
mod benchmark_logs;
mod device_lock;
mod modelfile_files;
mod modelfile_precision;
mod modelfile_runner;
mod modelfile_runtimes;
mod profile_adb;
mod profile_batch;
mod profile_litert;
mod profile_local;
mod profile_protocol;
mod profile_support;
mod runner_binary;

// Every tests/*.rs must be declared above.
include!("../../scripts/test-files-declared.rs");
