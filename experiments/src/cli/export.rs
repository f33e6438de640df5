//! `hwnas export`: an architecture as a JSON config, TorchScript, TFLite or ONNX,
//! with given weights or seeded random ones. Same input, same bytes.
//!
//! TFLite and ONNX files are written in a precision (`--precision fp32|fp16|int8`); int8
//! activation ranges are calibrated on seeded synthetic inputs, or on images of a training
//! dataset (`--calibration-data cifar10:DIR`, …) normalised as `hwnas train` feeds them, or
//! on raw NCHW float32 inputs (`.f32`).

use super::arch::ArchArgs;
use anyhow::{bail, Context, Result};
use latency::modelfile::{onnx, tflite, Calibration, Precision, Quantization};
use predictors::load_predictor;
use search::nn::model::Model;
use search::nn::tch::nn::VarStore;
use search::nn::tch::Device;
use search::nn::torchscript;
use serde_json::{json, Map, Value};
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
    #[arg(long, value_parser = ["json", "torchscript", "tflite", "onnx"])]
    format: String,
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

fn json_config(arch: &spaces::Arch, net: &Network, a: &Args) -> Result<Vec<u8>> {
    let mut latency = Map::new();
    let pairs = a
        .latency
        .iter()
        .map(|spec| spec.split_once('=').map(|(l, _)| (l, spec.as_str())).context("--latency takes LABEL=FILE"))
        .collect::<Result<Vec<_>>>()?;
    super::numeric::unique_labels("--latency", pairs)?;
    for spec in &a.latency {
        let (label, file) = spec.split_once('=').context("--latency takes LABEL=FILE")?;
        let p = load_predictor(Path::new(file)).with_context(|| format!("cannot load predictor {file}"))?;
        if let spaces::Arch::Member { space, .. } = arch {
            predictors::check_serves(p.as_ref(), space.name()).with_context(|| format!("--latency {label}={file}"))?;
        }
        latency.insert(label.into(), json!(p.predict_ms(net).with_context(|| format!("predicting with {file}"))?));
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
    if let Some(file) = &a.accuracy {
        let spaces::Arch::Member { space, genome } = arch else {
            bail!("--accuracy needs a member of a search space, not a free-form network");
        };
        if net.resolution() != space.resolution(genome) {
            bail!("--accuracy predicts at the architecture's own resolution: drop --resolution or set r in the arch");
        }
        let p = predictors::accuracy::load(file)
            .with_context(|| format!("cannot load accuracy predictor {}", file.display()))?;
        doc["predicted_accuracy"] =
            json!(p.predict(&**space, genome).with_context(|| format!("predicting with {}", file.display()))?);
    }
    if let spaces::Arch::Member { space, genome } = arch {
        if space.name().starts_with("ofa-") {
            doc["ofa_net_config"] = spaces::spaces::ofa_net_config::to_net_config(&**space, genome)?;
        }
    }
    Ok(serde_json::to_vec_pretty(&doc)?)
}

/// The quantization flags, checked against the format before anything is read or written.
fn quantization(a: &Args, net: &Network) -> Result<Quantization> {
    let float = a.precision != Precision::Int8;
    if matches!(a.format.as_str(), "json" | "torchscript") && a.precision != Precision::Fp32 {
        bail!("--format {} writes fp32 only: --precision {} applies to --format tflite or onnx", a.format, a.precision);
    }
    if float && a.int8_io {
        bail!("--int8-io needs --precision int8 (an {} model has float inputs and outputs)", a.precision);
    }
    if float && a.calibration_data.is_some() {
        bail!("--calibration-data calibrates int8 activations; an {} model has none to calibrate", a.precision);
    }
    let calibration = match (&a.calibration_data, a.precision) {
        (Some(spec), Precision::Int8) => {
            Calibration::Inputs(calibration_inputs(spec, a.calibration_samples, a.seed, net)?)
        }
        _ => Calibration::Synthetic { seed: a.seed, samples: a.calibration_samples },
    };
    Ok(Quantization { precision: a.precision, int8_io: a.int8_io, calibration })
}

/// Suffix of raw float32 calibration files.
const RAW_SUFFIX: &str = ".f32";

/// `--calibration-data SPEC`: up to `--calibration-samples` NCHW float inputs at the
/// network's input shape. Anything that is not a known dataset or a raw file of whole inputs
/// is refused, naming it.
fn calibration_inputs(spec: &str, samples: usize, seed: u64, net: &Network) -> Result<Vec<Vec<f32>>> {
    let s = net.input;
    let per_input = (s.c * s.h * s.w) as usize;
    let shape = format!("{}x{}x{}", s.c, s.h, s.w);
    let kind = spec.split_once(':').map(|(k, _)| k);
    if matches!(kind, Some("cifar10" | "cifar100" | "imagefolder" | "synthetic")) {
        use search::nn::data::{epoch_order, Split};
        use search::nn::tch::Kind;
        if s.c != 3 {
            bail!("--calibration-data {spec}: the images are RGB but the network takes {} input channels", s.c);
        }
        let data = search::objectives::supernet::load_data(spec, Split::Train)
            .with_context(|| format!("--calibration-data {spec}: cannot read the dataset"))?;
        if data.is_empty() {
            bail!("--calibration-data {spec}: the training split holds no images");
        }
        let n = samples.min(data.len());
        let indices: Vec<usize> = epoch_order(data.len(), seed, 0).into_iter().take(n).collect();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        // No augmentation: the images as training evaluates them, at the network's resolution.
        let (x, _) = data
            .batch(&indices, s.h, false, &mut rng)
            .with_context(|| format!("--calibration-data {spec}: cannot read images"))?;
        let x = x.to_kind(Kind::Float).contiguous();
        if x.size() != [n as i64, 3, s.h as i64, s.w as i64] {
            bail!("--calibration-data {spec}: images came as {:?}, the network takes 1x{shape}", x.size());
        }
        let flat = Vec::<f32>::try_from(x.reshape([-1]))?;
        return Ok(flat.chunks_exact(per_input).map(<[f32]>::to_vec).collect());
    }
    let path = Path::new(spec);
    if !spec.ends_with(RAW_SUFFIX) {
        let what = if path.is_dir() {
            "a directory"
        } else if path.exists() {
            "a file"
        } else {
            "no such file"
        };
        bail!(
            "--calibration-data {spec}: {what}; expected cifar10:DIR, cifar100:DIR, imagefolder:DIR, \
             synthetic:N:CLASSES, or a raw float32 NCHW file FILE{RAW_SUFFIX}"
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("--calibration-data: cannot read {spec}"))?;
    let per_bytes = 4 * per_input;
    if bytes.is_empty() || bytes.len() % per_bytes != 0 {
        bail!(
            "--calibration-data {spec}: {} bytes is not a whole number of inputs of shape 1x{shape} \
             ({per_bytes} bytes of float32 each, at resolution {})",
            bytes.len(),
            s.h
        );
    }
    let values: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("--calibration-data {spec}: value {i} (input {}) is {}", i / per_input, values[i]);
    }
    Ok(values.chunks_exact(per_input).take(samples).map(<[f32]>::to_vec).collect())
}

pub fn run(a: Args) -> Result<()> {
    let arch = a.arch.load()?;
    let net = arch.network(a.resolution);
    // Refused before anything is written: no 0x0 model, no wrapped MAC count.
    super::numeric::check_network(&net, "--resolution")?;
    let q = quantization(&a, &net)?;
    let bytes = match a.format.as_str() {
        "json" => json_config(&arch, &net, &a)?,
        "tflite" => tflite::network_model_as(&net, &weights_for(&net, &a)?, &q)?,
        "onnx" => onnx::network_model_as(&net, &weights_for(&net, &a)?, &q)?,
        _ => {
            // torchscript: the IR network in tch with the same weights, traced in eval mode.
            let vs = VarStore::new(Device::Cpu);
            let model = Model::from_weights(&vs.root(), &net, &weights_for(&net, &a)?)?;
            torchscript::export(&model, net.resolution(), Device::Cpu, &a.out)?;
            println!("wrote {} ({} at {}x{})", a.out.display(), arch.space_name(), net.resolution(), net.resolution());
            return Ok(());
        }
    };
    std::fs::write(&a.out, &bytes).with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "wrote {} ({} bytes, {} at {}x{}{})",
        a.out.display(),
        bytes.len(),
        arch.space_name(),
        net.resolution(),
        net.resolution(),
        match q.precision {
            Precision::Fp32 => String::new(),
            p => format!(", {p}{}", if q.int8_io { " with int8 input/output" } else { "" }),
        }
    );
    Ok(())
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
        let x = calibration_inputs(&spec, 3, 0, &net).unwrap();
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
        assert_eq!(calibration_inputs(&spec, 3, 0, &net).unwrap(), x, "seeded");
        // More samples than images: all of them.
        assert_eq!(calibration_inputs(&spec, 100, 0, &net).unwrap().len(), 20);
        // At the network's resolution (OFA at 160: resized).
        let ofa = spaces::space("ofa-mbv3-w1.0").unwrap();
        let mut g = ofa.extremes().0;
        ofa.canonicalize(&mut g);
        let big = ofa.network_at(&g, 160);
        assert_eq!(calibration_inputs(&spec, 2, 0, &big).unwrap()[0].len(), 3 * 160 * 160);
        std::fs::remove_dir_all(&dir).ok();
    }
}
