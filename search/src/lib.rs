//! (in progress)
pub mod nn;
