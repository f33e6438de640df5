//! Neural networks in tch: any IR [`Network`](spaces::ir::Network) as a trainable module,
//! weight-shared supernets (OFA, Single-Path, FBNet), data sources, training with
//! resumable checkpoints, and TorchScript export.
//!
//! Every tensor lives in a `VarStore` under exactly the name `Layer::param_specs()` gives
//! (`stage1.block0.dw.conv.weight`), so checkpoints, exporters and the IR agree.

pub mod checkpoint;
pub mod data;
pub mod error;
pub mod layers;
pub mod model;
pub mod net;
pub mod optim;
pub mod supernet;
pub mod torchscript;
pub mod train;
pub mod weights;

pub use error::NnError;

/// Re-exported so callers (the CLI) name devices and tensors without their own tch dependency.
pub use tch;

use tch::Device;

/// CUDA when libtorch can use it, else the CPU.
pub fn default_device() -> Device {
    Device::cuda_if_available()
}

/// A progress bar with ETA on stderr (hidden automatically when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
        .expect("valid progress template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}
