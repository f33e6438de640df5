//! The numeric precision a model file is written in, and how an int8 model's
//! activation ranges are calibrated. Part of a measurement's identity: a table
//! profiled in one precision does not price a model deployed in another.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What the weights and the compute of a written model are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 weights and compute.
    #[default]
    Fp32,
    /// TFLite's float16 quantization: fp16 weights, DEQUANTIZE to float, float compute.
    Fp16,
    /// Full-integer post-training quantization: int8 weights (symmetric, per output
    /// channel for convs), int32 biases, int8 activations calibrated per tensor.
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Fp16, Precision::Int8];

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A precision name that is not one of [`Precision::ALL`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("unknown precision {0:?}: expected one of fp32, fp16, int8")]
pub struct UnknownPrecision(pub String);

impl FromStr for Precision {
    type Err = UnknownPrecision;
    fn from_str(s: &str) -> Result<Precision, UnknownPrecision> {
        Precision::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownPrecision(s.into()))
    }
}

/// Where an int8 model's activation ranges come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Calibration {
    /// `samples` inputs drawn from a seeded standard normal (the default).
    Synthetic { seed: u64, samples: usize },
    /// Given inputs, each NCHW float32 of the network's input shape (batch 1).
    Inputs(Vec<Vec<f32>>),
}

impl Default for Calibration {
    fn default() -> Calibration {
        Calibration::Synthetic { seed: 0, samples: 16 }
    }
}

/// How to write a model file: its precision and, for int8, its calibration and
/// whether the input/output tensors are int8 too (otherwise float with
/// QUANTIZE/DEQUANTIZE at the ends).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quantization {
    pub precision: Precision,
    pub int8_io: bool,
    pub calibration: Calibration,
}

impl Quantization {
    pub fn of(precision: Precision) -> Quantization {
        Quantization { precision, ..Quantization::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_round_trip_through_their_names() {
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert!("int4".parse::<Precision>().unwrap_err().to_string().contains("int4"));
    }
}
