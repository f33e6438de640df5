//! Shared helpers of the integration tests: where `shared/` is.

use std::path::{Path, PathBuf};

pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

#[allow(dead_code)] // not every test binary reads the HW-NAS-Bench CSVs
pub fn hwnas_bench(device: &str) -> PathBuf {
    shared().join(format!("data/hw-nas-bench-fbnet/fbnet_cifar100_{device}.csv"))
}

/// An error with its sources, `: `-separated: what the `hwnas` binary prints (anyhow's `{:#}`).
#[allow(dead_code)] // not every test module reads error chains
pub fn chain(e: &dyn std::error::Error) -> String {
    latency::error::Chain(e).to_string()
}
