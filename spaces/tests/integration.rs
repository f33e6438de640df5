//! The crate's integration tests, one module per concern, in one test binary.

mod layout;
mod ofa_net_config;
mod oracles;
mod properties;
