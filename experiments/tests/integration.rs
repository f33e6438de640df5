//! The crate's integration tests, one module per concern, in one test binary.

mod adb_support;
mod cli_arch;
mod cli_devices;
mod cli_experiments;
mod cli_export;
mod cli_fit_transfer;
mod cli_litert;
mod cli_ofa_accuracy;
mod cli_ofa_checkpoint;
mod cli_ofa_tutorial;
mod cli_ofa_yaml;
mod cli_precision;
mod cli_reliability;
mod profile_cli;
mod profile_cli_adb;
mod readme_tour;
/// hwnas-runner built for the tests (shared with latency's tests).
#[path = "../../latency/tests/runner_binary/mod.rs"]
mod runner_binary;
mod search_measured;

// Every tests/*.rs must be declared above.
include!("../../scripts/test-files-declared.rs");
