//! `hwnas export`: an architecture as a JSON config, TorchScript, TFLite or ONNX,
//! with given weights or seeded random ones. Same input, same bytes. The formats are
//! written by `search::export`; this command reads the flags, the weights and the
//! predictor files, and says what it wrote.
//!
//! TFLite and ONNX files are written in a precision (`--precision fp32|fp16|int8`); int8
//! activation ranges are calibrated on seeded synthetic inputs, or on images of a training
//! dataset (`--calibration-data cifar10:DIR`, …) normalised as `hwnas train` feeds them, or
//! on raw NCHW float32 inputs (`.f32`).

use super::arch::ArchArgs;
use anyhow::{anyhow, bail, Context, Result};
use latency::modelfile::{Calibration, Precision, Quantization};
use predictors::load_predictor;
use search::export::{self, Annotations, CalibrationData, Format};
use spaces::ir::{Network, Weights};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    arch: ArchArgs,
    /// IR-named weights (.safetensors), e.g. from `hwnas eval --checkpoint CKPT --arch FILE --weights OUT`,
    /// which extracts the sub-network from a supernet and re-calibrates its BN. Seeded random weights otherwise.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// json, torchscript, tflite or onnx.
    #[arg(long)]
    format: Format,
    /// Input resolution (default: the architecture's own).
    #[arg(long, value_parser = super::numeric::resolution)]
    resolution: Option<u32>,
    /// json: predicted latency under these predictors, as LABEL=FILE (repeatable).
    #[arg(long)]
    latency: Vec<String>,
    /// json: the accuracy this accuracy predictor file predicts (`predicted_accuracy`), e.g. from
    /// `hwnas fit --import ofa-accuracy`.
    #[arg(long)]
    accuracy: Option<PathBuf>,
    /// Seed of the random weights when --weights is not given (and of the synthetic
    /// calibration inputs, and of which dataset images calibrate).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// tflite/onnx: the precision of the weights and compute (fp32, fp16, int8).
    #[arg(long, default_value = "fp32")]
    precision: Precision,
    /// int8: the model's input and output tensors are int8 too (otherwise float, with
    /// quantize/dequantize at the ends).
    #[arg(long)]
    int8_io: bool,
    /// int8: calibrate activation ranges on these inputs instead of seeded synthetic ones:
    /// a training dataset as `hwnas train` reads it (cifar10:DIR, cifar100:DIR, imagefolder:DIR,
    /// synthetic:N:CLASSES; training split, resized to the network's resolution and normalised
    /// as in training), or a raw little-endian float32 file of NCHW inputs at the network's
    /// shape (FILE.f32).
    #[arg(long)]
    calibration_data: Option<String>,
    /// int8: how many calibration inputs to use.
    #[arg(long, default_value_t = 16, value_parser = super::numeric::at_least_one)]
    calibration_samples: usize,
    #[arg(long)]
    out: PathBuf,
}

fn weights_for(net: &Network, a: &Args) -> Result<Weights> {
    let Some(path) = &a.weights else { return Ok(Weights::random(net, a.seed)) };
    if path.is_dir() {
        bail!(
            "{} is a checkpoint directory: extract the sub-network and re-calibrate its BN first with \
             `hwnas eval --checkpoint {} --arch FILE --weights OUT.safetensors`, then export with --weights OUT.safetensors",
            path.display(),
            path.display()
        );
    }
    let w = Weights::load(path).with_context(|| format!("cannot read weights {}", path.display()))?;
    w.check(net).with_context(|| format!("{} does not fit this architecture", path.display()))?;
    Ok(w)
}

/// The predictor files of `--latency` and `--accuracy`, loaded, and the arch JSON built from them.
fn json_document(arch: &spaces::Arch, net: &Network, a: &Args) -> Result<serde_json::Value> {
    let pairs = a
        .latency
        .iter()
        .map(|spec| spec.split_once('=').context("--latency takes LABEL=FILE"))
        .collect::<Result<Vec<_>>>()?;
    super::numeric::unique_labels("--latency", a.latency.iter().zip(&pairs).map(|(spec, &(l, _))| (l, spec.as_str())))?;
    let mut loaded = Vec::new();
    for (label, file) in &pairs {
        let p = load_predictor(Path::new(file)).with_context(|| format!("cannot load predictor {file}"))?;
        loaded.push((*label, p));
    }
    let accuracy = match &a.accuracy {
        Some(file) => Some(
            predictors::accuracy::load(file)
                .with_context(|| format!("cannot load accuracy predictor {}", file.display()))?,
        ),
        None => None,
    };
    let notes =
        Annotations { latency: loaded.iter().map(|(l, p)| (*l, p.as_ref())).collect(), accuracy: accuracy.as_deref() };
    Ok(export::arch_document(arch, net, &notes)?)
}

/// The quantization flags, checked against the format before anything is read or written.
fn quantization(a: &Args, net: &Network) -> Result<Quantization> {
    let float = a.precision != Precision::Int8;
    a.format.check_precision(a.precision).map_err(|_| {
        anyhow!(
            "--format {} writes fp32 only: --precision {} applies to --format tflite or onnx",
            a.format,
            a.precision
        )
    })?;
    if float && a.int8_io {
        bail!("--int8-io needs --precision int8 (an {} model has float inputs and outputs)", a.precision);
    }
    if float && a.calibration_data.is_some() {
        bail!("--calibration-data calibrates int8 activations; an {} model has none to calibrate", a.precision);
    }
    let calibration = match (&a.calibration_data, a.precision) {
        (Some(spec), Precision::Int8) => {
            let inputs = spec
                .parse::<CalibrationData>()
                .and_then(|data| data.inputs(a.calibration_samples, a.seed, net))
                .with_context(|| format!("--calibration-data {spec}"))?;
            Calibration::Inputs(inputs)
        }
        _ => Calibration::Synthetic { seed: a.seed, samples: a.calibration_samples },
    };
    Ok(Quantization { precision: a.precision, int8_io: a.int8_io, calibration })
}

pub fn run(a: Args) -> Result<()> {
    let arch = a.arch.load()?;
    let net = arch.network(a.resolution);
    // Refused before anything is written: no 0x0 model, no wrapped MAC count.
    super::numeric::check_network(&net, "--resolution")?;
    let q = quantization(&a, &net)?;
    // The JSON document has no weights: they are read or drawn for model files only.
    let written = match a.format {
        Format::Json => export::write_document(&json_document(&arch, &net, &a)?, &a.out)?,
        _ => export::write_model(a.format, &net, &weights_for(&net, &a)?, &q, &a.out)?,
    };
    let (r, space) = (net.resolution(), arch.space_name());
    println!(
        "wrote {} ({} bytes, {space} at {r}x{r}{})",
        a.out.display(),
        written.bytes,
        match q.precision {
            Precision::Fp32 => String::new(),
            p => format!(", {p}{}", if q.int8_io { " with int8 input/output" } else { "" }),
        }
    );
    Ok(())
}
