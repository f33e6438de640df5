//! Model files generated from the IR: TFLite (NHWC, what phones run) and ONNX
//! (NCHW). Both are written from the same [`graph::Graph`], so they compute the
//! same function and can be checked against each other and against PyTorch.
//! Files are deterministic: the same network and weights give the same bytes.

pub mod calibrate;
pub mod graph;
pub mod onnx;
mod onnx_proto;
pub mod precision;
pub mod quant;
pub mod tflite;

pub use precision::{Calibration, Precision, Quantization};
use spaces::ir::WeightsError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelFileError {
    #[error("weights do not fit the network: {0}")]
    Weights(#[from] WeightsError),
    #[error("malformed network: {0}")]
    Network(String),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("cannot express in {format}: {why}")]
    Unsupported { format: &'static str, why: String },
}
