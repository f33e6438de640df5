//! The crate's integration tests, one module per concern, in one test binary.

mod layout;
mod ofa_net_config;
mod oracles;
mod properties;

// Every tests/*.rs must be declared above.
include!("../../scripts/test-files-declared.rs");
