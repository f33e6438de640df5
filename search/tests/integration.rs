//! The crate's integration tests, one module per concern, in one test binary.

mod nn_data;
mod nn_models;
mod nn_supernets;
mod nn_train;
mod ofa_checkpoint;
mod search_common;
mod search_constraints;
mod search_dnas;
mod search_note10;
mod search_objectives;
mod search_quality;
mod search_resume;
mod search_rl;
mod search_supernet;

// Every tests/*.rs must be declared above.
include!("../../scripts/test-files-declared.rs");
