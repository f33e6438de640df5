//! `hwnas export`: an architecture as a JSON config, TorchScript, TFLite or ONNX,
//! with given weights or seeded random ones. Same input, same bytes.

use super::arch::ArchArgs;
use anyhow::{bail, Context, Result};
use latency::modelfile::{onnx, tflite};
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
    /// Seed of the random weights when --weights is not given.
    #[arg(long, default_value_t = 0)]
    seed: u64,
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

pub fn run(a: Args) -> Result<()> {
    let arch = a.arch.load()?;
    let net = arch.network(a.resolution);
    // Refused before anything is written: no 0x0 model, no wrapped MAC count.
    super::numeric::check_network(&net, "--resolution")?;
    let bytes = match a.format.as_str() {
        "json" => json_config(&arch, &net, &a)?,
        "tflite" => tflite::network_model(&net, &weights_for(&net, &a)?)?,
        "onnx" => onnx::network_model(&net, &weights_for(&net, &a)?)?,
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
        "wrote {} ({} bytes, {} at {}x{})",
        a.out.display(),
        bytes.len(),
        arch.space_name(),
        net.resolution(),
        net.resolution()
    );
    Ok(())
}
