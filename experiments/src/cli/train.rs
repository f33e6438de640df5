//! `hwnas train`, `hwnas eval` and `hwnas bench-train`: train a supernet or one architecture
//! with resumable checkpoints, evaluate a (sub-)network after BN re-calibration, and time an
//! OFA supernet training step against its stand-alone largest sub-network. `train
//! --resume-from` and `eval --checkpoint` also take OFA's own supernet checkpoints (`.pth`).

use anyhow::{bail, Context, Result};
use search::inputs::{self, InputDigest};
use search::lock::lock_dir;
use search::nn::data::{Cifar, DataSource, ImageFolder, Split, Synthetic};
use search::nn::model::Model;
use search::nn::net::{Net, NetSpec};
use search::nn::optim::Method;
use search::nn::supernet::ofa::OfaSupernet;
use search::nn::supernet::ofa_checkpoint::{self, OfaCheckpoint};
use search::nn::tch::nn::{ModuleT, VarStore};
use search::nn::tch::{self, Device, Kind, Tensor};
use search::nn::train::{try_evaluate, try_recalibrate_bn, TrainConfig, Trainer};
use search::nn::{checkpoint, torchscript};
use spaces::Genome;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Clone)]
pub struct DataArgs {
    /// Data directory (CIFAR binary files, or train/ and val/ class folders).
    #[arg(long, conflicts_with = "synthetic", required_unless_present = "synthetic")]
    data: Option<PathBuf>,
    /// Format of --data.
    #[arg(long, value_parser = ["cifar10", "cifar100", "imagefolder"], default_value = "cifar10")]
    dataset: String,
    /// Seeded synthetic images with learnable class patterns instead of real data.
    #[arg(long)]
    synthetic: bool,
    /// Examples of the synthetic source (per split).
    #[arg(long, default_value_t = 512, value_parser = super::numeric::at_least_one)]
    synthetic_size: usize,
    /// Classes of the synthetic source.
    #[arg(long, default_value_t = 10, value_parser = super::numeric::classes)]
    synthetic_classes: u32,
    /// Run on the CPU even when CUDA is available.
    #[arg(long)]
    cpu: bool,
}

impl DataArgs {
    fn load(&self, split: Split) -> Result<Box<dyn DataSource>> {
        if self.synthetic {
            // Validation: the same class patterns, unseen examples.
            let offset = if split == Split::Train { 0 } else { self.synthetic_size };
            return Ok(Box::new(Synthetic::new(self.synthetic_size, self.synthetic_classes, 0).with_offset(offset)));
        }
        let dir = self.data.as_ref().context("give --data DIR or --synthetic")?;
        Ok(match self.dataset.as_str() {
            "cifar10" => Box::new(Cifar::load(dir, 10, split)?),
            "cifar100" => Box::new(Cifar::load(dir, 100, split)?),
            _ => Box::new(ImageFolder::load(dir, split)?),
        })
    }

    fn device(&self) -> Device {
        if self.cpu {
            Device::Cpu
        } else {
            search::nn::default_device()
        }
    }
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The space whose supernet to train (ofa-mbv3-w1.0, ofa-mbv3-w1.2, ofa-proxyless-w1.3,
    /// singlepath, fbnet, fbnet-cifar100), or the space of --arch.
    #[arg(long)]
    space: Option<String>,
    /// Train this one architecture (a JSON file in the space's encoding) instead of the supernet.
    #[arg(long, conflicts_with = "preset")]
    arch: Option<PathBuf>,
    /// Train a published network instead of the supernet.
    #[arg(long)]
    preset: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    #[arg(long, default_value_t = 5, value_parser = super::numeric::at_least_one)]
    epochs: usize,
    #[arg(long, default_value_t = 64, value_parser = super::numeric::at_least_one)]
    batch: usize,
    /// Peak learning rate (cosine decay after warm-up); 0 keeps the weights.
    #[arg(long, default_value_t = 0.05, value_parser = super::numeric::non_negative_f64)]
    lr: f64,
    #[arg(long, value_parser = ["sgd", "adam"], default_value = "sgd")]
    optimizer: String,
    #[arg(long, default_value_t = 3e-5, value_parser = super::numeric::non_negative_f64)]
    weight_decay: f64,
    #[arg(long, default_value_t = 0.1, value_parser = super::numeric::unit_fraction)]
    label_smoothing: f64,
    /// Distillation weight from the largest sub-network (OFA supernets; 0 = off).
    #[arg(long, default_value_t = 1.0, value_parser = super::numeric::non_negative_f64)]
    kd_ratio: f64,
    /// Training resolutions; one is drawn per batch (default: 32 for CIFAR and synthetic data,
    /// the space's resolutions for image folders, e.g. OFA's 128..224 step 4).
    #[arg(long, num_args = 1.., value_parser = super::numeric::resolution)]
    resolution: Vec<u32>,
    /// FBNet: epochs that train only the weights before θ is updated (paper: 10 of 90).
    #[arg(long, default_value_t = 0)]
    arch_warmup_epochs: usize,
    /// FBNet: Adam learning rate of the architecture logits θ.
    #[arg(long, default_value_t = 0.01, value_parser = super::numeric::non_negative_f64)]
    arch_lr: f64,
    /// Single-Path: epochs with dropout (keep 0.6) on the indicator values (paper: 5).
    #[arg(long, default_value_t = 0)]
    indicator_dropout_epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 200, value_parser = super::numeric::at_least_one)]
    checkpoint_every: usize,
    /// Stop after this many steps in total (the checkpoint can be resumed later).
    #[arg(long, value_parser = super::numeric::at_least_one)]
    max_steps: Option<usize>,
    /// Checkpoint directory.
    #[arg(long)]
    out: PathBuf,
    /// Continue the checkpoint in --out (its stored configuration wins over these flags).
    #[arg(long)]
    resume: bool,
    /// Start the supernet from an OFA supernet checkpoint (`.pth`, as OFA releases them)
    /// instead of random weights; its space is the one the file fits unless --space is given.
    #[arg(long, conflicts_with_all = ["resume", "arch", "preset"])]
    resume_from: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Checkpoint directory written by `hwnas train`, or an OFA supernet checkpoint (`.pth`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Sub-network to evaluate (JSON in the space's encoding); default: the largest OFA member,
    /// the decoded Single-Path member, the argmax FBNet member, or the trained fixed network.
    #[arg(long)]
    arch: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Evaluation resolution (default: the largest training resolution of the checkpoint; for
    /// an OFA checkpoint, the `r` of --arch, 224 without one).
    #[arg(long, value_parser = super::numeric::resolution)]
    resolution: Option<u32>,
    /// Training batches used to re-estimate BN statistics (0 = keep the stored ones, which for
    /// an OFA checkpoint gives the logits OFA's own code computes).
    #[arg(long, default_value_t = 20)]
    calib_batches: usize,
    #[arg(long, default_value_t = 64, value_parser = super::numeric::at_least_one)]
    batch: usize,
    #[arg(long, value_parser = super::numeric::at_least_one)]
    max_examples: Option<usize>,
    /// Also write the evaluated network as TorchScript.
    #[arg(long)]
    torchscript: Option<PathBuf>,
    /// Also write its weights (IR names, safetensors) for the TFLite/ONNX exporters.
    #[arg(long)]
    weights: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "ofa-mbv3-w1.0")]
    space: String,
    #[arg(long, default_value_t = 32, value_parser = super::numeric::at_least_one_i64)]
    batch: i64,
    #[arg(long, default_value_t = 224, value_parser = super::numeric::resolution_i64)]
    resolution: i64,
    /// Timed iterations (after one warm-up iteration).
    #[arg(long, default_value_t = 3, value_parser = super::numeric::at_least_one)]
    iters: usize,
    #[arg(long)]
    cpu: bool,
}

fn train_spec(a: &TrainArgs) -> Result<NetSpec> {
    if a.arch.is_some() || a.preset.is_some() {
        let arch = super::arch::load(a.space.as_deref(), a.preset.as_deref(), a.arch.as_ref())?;
        return Ok(NetSpec::Fixed { space: arch.space_name().to_string(), arch: arch.to_json() });
    }
    let space = a.space.clone().context("give --space (a supernet), or --arch/--preset (one network)")?;
    spaces::space(&space)?;
    Ok(NetSpec::Supernet { space })
}

/// Where `hwnas train` keeps the fingerprints of its inputs beside the checkpoint.
const INPUTS_FILE: &str = "inputs.json";

/// The training data directory (none for --synthetic), fingerprinted.
fn data_inputs(a: &DataArgs) -> Result<Vec<InputDigest>> {
    match (&a.data, a.synthetic) {
        (Some(dir), false) => Ok(vec![inputs::digest("training data", dir)?]),
        _ => Ok(Vec::new()),
    }
}

/// Saves the inputs of a new run, or on --resume refuses training data that changed.
fn check_inputs(a: &TrainArgs) -> Result<()> {
    let path = a.out.join(INPUTS_FILE);
    let mut now = data_inputs(&a.data)?;
    if a.resume && path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let saved: Vec<InputDigest> =
            serde_json::from_str(&text).with_context(|| format!("{} is not a list of inputs", path.display()))?;
        // The architecture and the OFA start were read once, at the start: only the data is read again.
        let saved: Vec<InputDigest> = saved.into_iter().filter(|d| d.role == "training data").collect();
        if saved.is_empty() != now.is_empty() {
            bail!(
                "cannot resume {}: it was trained on {}, not {}; resume with the same data",
                a.out.display(),
                saved.first().map_or("synthetic data".into(), |d| d.path.clone()),
                now.first().map_or("synthetic data".into(), |d| d.path.clone())
            );
        }
        return Ok(inputs::check_unchanged(&a.out, &saved, &now)?);
    }
    if !a.resume {
        if let Some(p) = &a.arch {
            now.push(inputs::digest("architecture", p)?);
        }
        if let Some(p) = &a.resume_from {
            now.push(inputs::digest("OFA supernet checkpoint", p)?);
        }
    }
    let text = serde_json::to_string_pretty(&now)? + "\n";
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

pub fn train(a: TrainArgs) -> Result<()> {
    let device = a.data.device();
    let data = a.data.load(Split::Train)?;
    if !a.resume && data.len() < a.batch {
        bail!("--batch {} is larger than the {} training examples; give a smaller --batch", a.batch, data.len());
    }
    // Held until training returns: a second process on this --out is refused.
    let lock = lock_dir(&a.out, "train")?;
    if let Some(note) = lock.takeover_note() {
        eprintln!("{note}");
    }
    let mut trainer = if a.resume {
        check_inputs(&a)?;
        let t = Trainer::resume(&a.out, device)?;
        eprintln!("resuming {} at step {} of {}", a.out.display(), t.step, t.total_steps());
        t
    } else {
        if checkpoint::latest(&a.out)?.is_some() {
            bail!(
                "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
                a.out.display()
            );
        }
        let ofa = match &a.resume_from {
            Some(p) if ofa_checkpoint::is_torch_file(p) => Some(OfaCheckpoint::read(p, a.space.as_deref())?),
            Some(p) => bail!(
                "--resume-from takes an OFA supernet checkpoint (.pth); {} is not one (continue an hwnas checkpoint with --resume)",
                p.display()
            ),
            None => None,
        };
        let spec = match &ofa {
            Some(ck) => NetSpec::Supernet { space: ck.space.clone() },
            None => train_spec(&a)?,
        };
        let resolutions = if !a.resolution.is_empty() {
            a.resolution.clone()
        } else if a.data.synthetic || a.data.dataset != "imagefolder" {
            vec![32]
        } else {
            spaces::space(spec.space()).map(|s| s.resolutions()).unwrap_or_else(|_| vec![224])
        };
        let spe = data.len() / a.batch;
        let mut c = TrainConfig::new(a.epochs, a.batch, a.lr, resolutions, spe);
        if a.optimizer == "adam" {
            c.optim.method = Method::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
        }
        c.optim.weight_decay = a.weight_decay;
        c.label_smoothing = a.label_smoothing;
        c.kd_ratio = a.kd_ratio;
        c.seed = a.seed;
        c.arch_warmup_epochs = a.arch_warmup_epochs;
        c.arch_lr = a.arch_lr;
        c.indicator_dropout_epochs = a.indicator_dropout_epochs;
        c.checkpoint_every = a.checkpoint_every.max(1);
        let t = Trainer::new(spec, c, spe, device)?;
        check_inputs(&a)?;
        if let (Some(ck), Some(p)) = (&ofa, &a.resume_from) {
            ck.copy_into(&t.vs)?;
            eprintln!("starting from the OFA `{}` supernet {}", ck.space, p.display());
        }
        t
    };
    if data.classes() > trainer.net.classes() {
        bail!("the data has {} classes but the network predicts {}", data.classes(), trainer.net.classes());
    }
    eprintln!(
        "training {} on {} examples, {} steps/epoch, {} epochs, device {:?}",
        trainer.spec,
        data.len(),
        trainer.steps_per_epoch,
        trainer.config.epochs,
        device
    );
    let start = trainer.step;
    let t0 = Instant::now();
    let losses = trainer.train(data.as_ref(), Some(&a.out), a.max_steps, None)?;
    let n = losses.len();
    if n > 0 {
        let k = (n / 2).clamp(1, 10);
        let avg = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        outln!(
            "steps {}..{} in {:.1}s: loss {:.4} (first {k}) -> {:.4} (last {k})",
            start,
            trainer.step,
            t0.elapsed().as_secs_f64(),
            avg(&losses[..k]),
            avg(&losses[n - k..])
        );
    }
    outln!("checkpoint {} at step {} of {}", a.out.display(), trainer.step, trainer.total_steps());
    drop(lock);
    Ok(())
}

/// The stand-alone model `eval` scores: a sub-network extracted from a supernet, or the fixed
/// network, at `resolution` (default: the `r` of the OFA member).
fn model_for(
    net: &Net,
    spec: &NetSpec,
    vs: &VarStore,
    arch: Option<&Path>,
    resolution: Option<u32>,
) -> Result<(Model, String)> {
    let parse = |space: &str| -> Result<Option<Genome>> {
        let Some(path) = arch else { return Ok(None) };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let s = spaces::space(space)?;
        Ok(Some(s.parse(&text).with_context(|| format!("{} is not a `{space}` member", path.display()))?))
    };
    let at = |r: Option<u32>| r.context("give --resolution");
    Ok(match net {
        Net::Fixed(m) => {
            if arch.is_some() {
                bail!("this checkpoint holds one fixed network; --arch applies to supernet checkpoints");
            }
            let net = spaces::Arch::parse(spec.space(), &spec_arch(spec))?.network(Some(at(resolution)?));
            let w = m.to_weights()?;
            (Model::from_weights(&vs.root(), &net, &w)?, spec_arch(spec))
        }
        Net::Ofa(s) => {
            let g = parse(s.space.name())?.unwrap_or_else(|| s.space.extremes().1);
            let r = resolution.unwrap_or_else(|| s.space.resolution(&g));
            (s.extract(&vs.root(), &g, r), s.space.to_json(&g).to_string())
        }
        Net::FbNet(s) => {
            let g = parse(s.space.name())?.unwrap_or_else(|| s.derive());
            (s.extract(&vs.root(), &g), s.space.to_json(&g).to_string())
        }
        Net::SinglePath(s) => {
            let g = parse("singlepath")?.unwrap_or_else(|| s.decode());
            (s.extract(&vs.root(), &g, at(resolution)?), spaces::space("singlepath")?.to_json(&g).to_string())
        }
    })
}

fn spec_arch(spec: &NetSpec) -> String {
    match spec {
        NetSpec::Fixed { arch, .. } => arch.to_string(),
        NetSpec::Supernet { .. } => String::new(),
    }
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let device = a.data.device();
    let (net, spec, trained_at) = if ofa_checkpoint::is_torch_file(&a.checkpoint) {
        let ck = OfaCheckpoint::read(&a.checkpoint, None)?;
        (Net::Ofa(ck.supernet(device)?.1), NetSpec::Supernet { space: ck.space }, None)
    } else {
        let t = Trainer::resume(&a.checkpoint, device)?;
        let r = t.config.resolutions.iter().max().copied();
        (t.net, t.spec, r)
    };
    let vs = VarStore::new(device);
    let (mut model, arch) = model_for(&net, &spec, &vs, a.arch.as_deref(), a.resolution.or(trained_at))?;
    let resolution = a.resolution.or(trained_at).unwrap_or_else(|| model.net.resolution());
    if a.calib_batches > 0 {
        let train = a.data.load(Split::Train)?;
        try_recalibrate_bn(&mut model, train.as_ref(), resolution, a.calib_batches, a.batch.min(train.len()), 0)?;
    }
    let val = a.data.load(Split::Val)?;
    let acc = try_evaluate(&|x| model.forward_t(x, false), val.as_ref(), resolution, a.batch, a.max_examples, device)?;
    outln!("arch {arch}");
    outln!(
        "resolution {resolution}  params {}  MACs {}  examples {}  top-1 {:.2}%  top-5 {:.2}%  loss {:.4}",
        model.net.params(),
        model.net.macs(),
        acc.examples,
        100.0 * acc.top1,
        100.0 * acc.top5,
        acc.loss
    );
    if let Some(p) = &a.torchscript {
        torchscript::export(&model, resolution, device, p)?;
        outln!("wrote TorchScript {}", p.display());
    }
    if let Some(p) = &a.weights {
        model.to_weights()?.save(p).with_context(|| format!("cannot write {}", p.display()))?;
        outln!("wrote weights {}", p.display());
    }
    Ok(())
}

/// Median seconds of `a` and of `b` over `iters` interleaved runs after one warm-up each;
/// interleaving exposes both to the same machine load.
fn time_pair(iters: usize, device: Device, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let once = |f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        f();
        if let Device::Cuda(_) = device {
            tch::Cuda::synchronize(0);
        }
        t0.elapsed().as_secs_f64()
    };
    once(&mut a);
    once(&mut b);
    let (mut ta, mut tb): (Vec<f64>, Vec<f64>) = (0..iters.max(1)).map(|_| (once(&mut a), once(&mut b))).unzip();
    let median = |t: &mut Vec<f64>| {
        t.sort_by(|x, y| x.total_cmp(y));
        t[t.len() / 2]
    };
    (median(&mut ta), median(&mut tb))
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let device = if a.cpu { Device::Cpu } else { search::nn::default_device() };
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let mut sn = OfaSupernet::new(&vs.root(), &a.space)?;
    let x = Tensor::randn([a.batch, 3, a.resolution, a.resolution], (Kind::Float, device));
    let y = Tensor::zeros([a.batch], (Kind::Int64, device));
    let step = |forward: &dyn Fn(&Tensor) -> Tensor| {
        let loss = forward(&x).cross_entropy_for_logits(&y);
        loss.backward();
    };
    outln!(
        "{}: forward+backward, batch {} at {}x{} on {:?} ({} threads), median of {} interleaved runs",
        a.space,
        a.batch,
        a.resolution,
        a.resolution,
        device,
        tch::get_num_threads(),
        a.iters
    );
    let (smallest, largest) = sn.space.extremes();
    for (what, g) in [("largest", largest), ("smallest", smallest)] {
        sn.active = g.clone();
        let sub_vs = VarStore::new(device);
        let model = sn.extract(&sub_vs.root(), &g, a.resolution as u32);
        let (t_super, t_plain) =
            time_pair(a.iters, device, || step(&|x| sn.forward_t(x, true)), || step(&|x| model.forward_t(x, true)));
        outln!(
            "  {what:<8} sub-network ({:>4.0}M MACs): supernet {:8.1} ms, extracted stand-alone {:8.1} ms, overhead {:.3}x",
            model.net.macs() as f64 / 1e6,
            1e3 * t_super,
            1e3 * t_plain,
            t_super / t_plain
        );
    }
    Ok(())
}
