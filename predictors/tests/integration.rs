//! The crate's integration tests, one module per concern, in one test binary.

mod accuracy;
mod additive;
mod auto_real;
mod bad_data;
mod common;
mod families;
mod layer_rows;
mod lut_file;
mod lut_hwnasbench;
mod ofa_accuracy;
mod ofa_yaml;
mod precision;
mod spnas_pixel1;
mod torch_file;
mod transfer_real;

// Every tests/*.rs must be declared above.
include!("../../scripts/test-files-declared.rs");
