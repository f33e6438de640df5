//! Writing a network as a file that runtimes and tools load: the one place every output
//! format is chosen and written — TFLite and ONNX (`latency::modelfile`, fp32, fp16 or int8),
//! TorchScript ([`crate::nn::torchscript`]: the tch module traced in eval mode), and the arch
//! JSON document (the member, its layers, MACs, params, predicted latencies and accuracy, and
//! OFA's `net.config` for OFA members). The int8 calibration inputs are read here too.

use crate::nn::data::{epoch_order, Split};
use crate::nn::model::Model;
use latency::modelfile::{onnx, tflite, ModelFileError, Precision, Quantization};
use predictors::{AccuracyPredictor, LatencyPredictor};
use serde_json::{json, Map, Value};
use spaces::ir::{Network, Weights};
use spaces::{Arch, ArchError, SpaceFamily};
use std::fmt;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Kind};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The arch JSON document (`format: hwnas-arch`).
    Json,
    TorchScript,
    Tflite,
    Onnx,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Json, Format::TorchScript, Format::Tflite, Format::Onnx];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::TorchScript => "torchscript",
            Format::Tflite => "tflite",
            Format::Onnx => "onnx",
        }
    }

    /// Whether the format's files can be written in fp16 or int8 (the others are fp32).
    pub fn quantizable(self) -> bool {
        matches!(self, Format::Tflite | Format::Onnx)
    }

    /// Refuses a precision the format's files cannot be written in (anything but fp32 for
    /// the formats that are not [`quantizable`](Self::quantizable)).
    pub fn check_precision(self, precision: Precision) -> Result<(), ExportError> {
        if !self.quantizable() && precision != Precision::Fp32 {
            return Err(ExportError::FloatOnly { format: self, precision });
        }
        Ok(())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format `{s}` ({})", Format::ALL.map(Format::name).join(", ")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{format} files are written in fp32 only, not {precision}")]
    FloatOnly { format: Format, precision: Precision },
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error(transparent)]
    Arch(#[from] ArchError),
    #[error("building the tch module or tracing it")]
    TorchScript(#[source] Box<crate::nn::NnError>),
    #[error("cannot write {}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("latency `{label}`")]
    Latency { label: String, source: crate::jobdir::RefusedPredictor },
    #[error("predicting the accuracy")]
    Accuracy(#[source] predictors::AccuracyError),
    #[error("predicting the accuracy needs a member of a search space at its own resolution (the network is {0})")]
    AccuracyOfNonMember(String),
    #[error("{what}; expected cifar10:DIR, cifar100:DIR, imagefolder:DIR, synthetic:N:CLASSES, or a raw float32 NCHW file FILE{RAW_SUFFIX}")]
    CalibrationSource { what: &'static str },
    #[error("cannot read the dataset")]
    CalibrationDataset(#[source] Box<crate::nn::NnError>),
    #[error("the dataset's images came as {found}, the network takes 1x{shape}")]
    CalibrationShape { found: String, shape: String },
    #[error("the training split holds no images")]
    CalibrationEmpty,
    #[error("the images are RGB but the network takes {0} input channels")]
    CalibrationChannels(u32),
    #[error("cannot read {}", path.display())]
    CalibrationRead { path: PathBuf, source: std::io::Error },
    #[error(
        "{bytes} bytes is not a whole number of inputs of shape 1x{shape} ({per_input} bytes of float32 each, at resolution {resolution})"
    )]
    CalibrationSize { bytes: usize, shape: String, per_input: usize, resolution: u32 },
    #[error("value {index} (input {input}) is {value}")]
    CalibrationValue { index: usize, input: usize, value: f32 },
}

/// Suffix of raw float32 calibration files.
pub const RAW_SUFFIX: &str = ".f32";

/// Where int8 calibration inputs come from (`hwnas export --calibration-data`).
#[derive(Clone, Debug, PartialEq)]
pub enum CalibrationData {
    /// A training dataset as `hwnas train` reads it (`cifar10:DIR`, `cifar100:DIR`,
    /// `imagefolder:DIR`, `synthetic:N:CLASSES`): its training split, resized to the network's
    /// resolution and normalised as training feeds it, no augmentation.
    Dataset(String),
    /// Little-endian float32 NCHW inputs at the network's shape.
    Raw(PathBuf),
}

impl std::str::FromStr for CalibrationData {
    type Err = ExportError;
    fn from_str(spec: &str) -> Result<Self, ExportError> {
        let kind = spec.split_once(':').map(|(k, _)| k);
        if matches!(kind, Some("cifar10" | "cifar100" | "imagefolder" | "synthetic")) {
            return Ok(CalibrationData::Dataset(spec.into()));
        }
        let path = Path::new(spec);
        if spec.ends_with(RAW_SUFFIX) {
            return Ok(CalibrationData::Raw(path.into()));
        }
        let what = if path.is_dir() {
            "a directory"
        } else if path.exists() {
            "a file"
        } else {
            "no such file"
        };
        Err(ExportError::CalibrationSource { what })
    }
}

impl CalibrationData {
    /// Up to `samples` NCHW float inputs at `net`'s input shape (dataset images drawn with `seed`).
    pub fn inputs(&self, samples: usize, seed: u64, net: &Network) -> Result<Vec<Vec<f32>>, ExportError> {
        let s = net.input;
        let per_input = (s.c * s.h * s.w) as usize;
        let shape = format!("{}x{}x{}", s.c, s.h, s.w);
        match self {
            CalibrationData::Dataset(spec) => {
                if s.c != 3 {
                    return Err(ExportError::CalibrationChannels(s.c));
                }
                let data = crate::objectives::supernet::load_data(spec, Split::Train)
                    .map_err(|e| ExportError::CalibrationDataset(Box::new(e)))?;
                if data.is_empty() {
                    return Err(ExportError::CalibrationEmpty);
                }
                let n = samples.min(data.len());
                let indices: Vec<usize> = epoch_order(data.len(), seed, 0).into_iter().take(n).collect();
                let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
                // No augmentation: the images as training evaluates them, at the network's resolution.
                let (x, _) = data
                    .batch(&indices, s.h, false, &mut rng)
                    .map_err(|e| ExportError::CalibrationDataset(Box::new(e)))?;
                let x = x.to_kind(Kind::Float).contiguous();
                let flat = Vec::<f32>::try_from(x.reshape([-1]))
                    .map_err(|e| ExportError::CalibrationDataset(Box::new(e.into())))?;
                if flat.len() != n * per_input {
                    return Err(ExportError::CalibrationShape { found: format!("{:?}", x.size()), shape });
                }
                Ok(flat.chunks_exact(per_input).map(<[f32]>::to_vec).collect())
            }
            CalibrationData::Raw(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|source| ExportError::CalibrationRead { path: path.clone(), source })?;
                let per_bytes = 4 * per_input;
                if bytes.is_empty() || bytes.len() % per_bytes != 0 {
                    return Err(ExportError::CalibrationSize {
                        bytes: bytes.len(),
                        shape,
                        per_input: per_bytes,
                        resolution: s.h,
                    });
                }
                let values: Vec<f32> =
                    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                    return Err(ExportError::CalibrationValue {
                        index,
                        input: index / per_input,
                        value: values[index],
                    });
                }
                Ok(values.chunks_exact(per_input).take(samples).map(<[f32]>::to_vec).collect())
            }
        }
    }
}

/// What the arch JSON document says beside the architecture itself.
pub struct Annotations<'a> {
    /// Predicted latency under each (label, predictor).
    pub latency: Vec<(&'a str, &'a dyn LatencyPredictor)>,
    /// The accuracy this predictor predicts (`predicted_accuracy`).
    pub accuracy: Option<&'a dyn AccuracyPredictor>,
}

/// The arch JSON document of `arch` as `net` (its layers with keys, shapes, MACs and params;
/// totals; the annotations' predictions; OFA's `net.config` for OFA members).
pub fn arch_document(arch: &Arch, net: &Network, notes: &Annotations) -> Result<Value, ExportError> {
    let mut latency = Map::new();
    for &(label, p) in &notes.latency {
        let failed = |source: crate::jobdir::RefusedPredictor| ExportError::Latency { label: label.into(), source };
        if let Arch::Member { space, .. } = arch {
            predictors::check_serves(p, space.name()).map_err(|e| failed(e.into()))?;
        }
        latency.insert(label.into(), json!(p.predict_ms(net).map_err(|e| failed(e.into()))?));
    }
    let layers: Vec<Value> = net
        .layers
        .iter()
        .map(|l| json!({"name": l.name, "key": l.key(), "input": l.input, "output": l.output, "macs": l.macs(), "params": l.params()}))
        .collect();
    let mut doc = json!({
        "format": "hwnas-arch", "version": 1, "space": arch.space_name(), "arch": arch.to_json(),
        "resolution": net.resolution(), "macs": net.macs(), "params": net.params(), "latency_ms": latency, "layers": layers,
    });
    if let Some(p) = notes.accuracy {
        let Arch::Member { space, genome } = arch else {
            return Err(ExportError::AccuracyOfNonMember("a free-form network".into()));
        };
        if net.resolution() != space.resolution(genome) {
            return Err(ExportError::AccuracyOfNonMember(format!(
                "at {}, the architecture's own resolution is {}",
                net.resolution(),
                space.resolution(genome)
            )));
        }
        doc["predicted_accuracy"] = json!(p.predict(&**space, genome).map_err(ExportError::Accuracy)?);
    }
    if let Arch::Member { space, genome } = arch {
        if matches!(space.family(), SpaceFamily::Ofa(_)) {
            doc["ofa_net_config"] = spaces::spaces::ofa_net_config::to_net_config(&**space, genome)?;
        }
    }
    Ok(doc)
}

/// A file written: its size.
pub struct Written {
    pub bytes: u64,
}

/// Writes the arch JSON document `doc` (of [`arch_document`]) to `out`: [`Format::Json`].
pub fn write_document(doc: &Value, out: &Path) -> Result<Written, ExportError> {
    write_bytes(&serde_json::to_vec_pretty(doc).expect("a JSON value serialises"), out)
}

/// Writes `net` with `weights` as a model file of `format` (TorchScript, TFLite or ONNX) to
/// `out`; TFLite and ONNX in `q`'s precision (TorchScript refuses anything but fp32). The
/// arch JSON document has no weights: [`write_document`] writes it.
pub fn write_model(
    format: Format,
    net: &Network,
    weights: &Weights,
    q: &Quantization,
    out: &Path,
) -> Result<Written, ExportError> {
    format.check_precision(q.precision)?;
    let bytes = match format {
        Format::Tflite => tflite::network_model_as(net, weights, q)?,
        Format::Onnx => onnx::network_model_as(net, weights, q)?,
        Format::Json => panic!("the arch JSON document is written by write_document, not as a model"),
        Format::TorchScript => {
            // The IR network in tch with the same weights, traced in eval mode.
            let vs = VarStore::new(Device::Cpu);
            let model =
                Model::from_weights(&vs.root(), net, weights).map_err(|e| ExportError::TorchScript(Box::new(e)))?;
            crate::nn::torchscript::export(&model, net.resolution(), Device::Cpu, out)
                .map_err(|e| ExportError::TorchScript(Box::new(e)))?;
            let bytes = std::fs::metadata(out).map_err(|source| ExportError::Write { path: out.into(), source })?;
            return Ok(Written { bytes: bytes.len() });
        }
    };
    write_bytes(&bytes, out)
}

fn write_bytes(bytes: &[u8], out: &Path) -> Result<Written, ExportError> {
    std::fs::write(out, bytes).map_err(|source| ExportError::Write { path: out.into(), source })?;
    Ok(Written { bytes: bytes.len() as u64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CIFAR-10 binary files of `n` records each, pixel i of image j = (7 j + i) mod 256.
    fn cifar(dir: &Path, n: usize) {
        std::fs::create_dir_all(dir).unwrap();
        let mut bytes = Vec::new();
        for j in 0..n {
            bytes.push((j % 10) as u8);
            bytes.extend((0..3072).map(|i| ((7 * j + i) % 256) as u8));
        }
        for f in (1..=5).map(|i| format!("data_batch_{i}.bin")) {
            std::fs::write(dir.join(f), &bytes).unwrap();
        }
    }

    fn inputs(spec: &str, samples: usize, net: &Network) -> Vec<Vec<f32>> {
        spec.parse::<CalibrationData>().unwrap().inputs(samples, 0, net).unwrap()
    }

    #[test]
    fn dataset_calibration_inputs_are_the_training_images_normalised_as_training_does() {
        let dir = std::env::temp_dir().join(format!("hwnas-export-calib-{}", std::process::id()));
        cifar(&dir, 4);
        let arch = spaces::Arch::Member {
            space: spaces::space("fbnet-cifar100").unwrap(),
            genome: spaces::space("fbnet-cifar100").unwrap().extremes().0,
        };
        let net = arch.network(None);
        assert_eq!(net.resolution(), 32);
        let spec = format!("cifar10:{}", dir.display());
        let x = inputs(&spec, 3, &net);
        assert_eq!((x.len(), x[0].len()), (3, 3 * 32 * 32), "3 samples of 1x3x32x32");
        let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
        // Every input is one of the 20 images (5 files x 4), channel-planar and normalised.
        for input in &x {
            let j = (0..20).find(|j| {
                (0..3072).all(|i| {
                    let c = i / 1024;
                    let v = (((7 * (j % 4) + i) % 256) as f32 / 255.0 - mean[c]) / std[c];
                    (input[i] - v).abs() < 1e-5
                })
            });
            assert!(j.is_some(), "a calibration input is not a normalised training image");
        }
        assert_eq!(inputs(&spec, 3, &net), x, "seeded");
        // More samples than images: all of them.
        assert_eq!(inputs(&spec, 100, &net).len(), 20);
        // At the network's resolution (OFA at 160: resized).
        let ofa = spaces::space("ofa-mbv3-w1.0").unwrap();
        let mut g = ofa.extremes().0;
        ofa.canonicalize(&mut g);
        let big = ofa.network_at(&g, 160);
        assert_eq!(inputs(&spec, 2, &big)[0].len(), 3 * 160 * 160);
        std::fs::remove_dir_all(&dir).ok();
    }
}
