//! Differentiable hardware-aware search: the architecture is trained, not sampled.
//!
//! - FBNet DNAS (Wu et al., CVPR 2019; `shared/reference/spaces.md` §5): per-layer logits θ
//!   over the 9 ops mix every candidate with a Gumbel-softmax sample at temperature
//!   τ = τ0·exp(−decay·epoch). Each epoch trains the weights on 80 % of the training data,
//!   then (after the warm-up epochs) θ on the other 20 % with the loss
//!   CE · α · (ln LAT)^β, LAT = scale·(fixed + Σ_l Σ_i softmax(θ)_{l,i}·LUT[l][i]) + offset
//!   (the predictor's compiled per-layer table and calibration, see [`FbNetLatency`]). The result is argmax θ.
//!   After the last epoch six members are also sampled from softmax(θ) (the paper's
//!   "six architectures sampled from the final distribution"), into `samples.json`.
//! - Single-Path NAS (Stamoulis et al., 2019; §3): weights and superkernel thresholds are
//!   trained together by one RMSProp (TensorFlow semantics) on CE + λ·ln R, R the
//!   differentiable runtime of the indicators; during the warm-up epochs λ = 0 and the
//!   indicators go through dropout (keep 0.6). The result is the decoded superkernel.
//!
//! Each epoch the derived member is extracted from the supernet, its BN statistics are
//! re-estimated on training batches (the supernet's statistics describe the mixture, not
//! the member), and its validation loss and top-1 are recorded next to the supernet's own
//! validation loss. This costs `calib_batches` forward passes of one member plus the
//! validation pass, small next to an epoch of supernet training.
//!
//! The job runs in the job directory every search uses ([`crate::jobdir`]: lock, config.json
//! with the SHA-256 of the latency predictor and the data, `history.jsonl` with one row per
//! epoch, `log.txt`, and the checkpoint `state.json`, which here names the epoch's weights
//! and optimizer states in `epoch-N/`), and adds `best.json` (the last epoch's derived
//! architecture, with whether it meets the target, and its re-calibrated validation loss and
//! top-1), `samples.json` (FBNet), `loss.{png,svg}` and `latency.{png,svg}`. Its settings are
//! a [`JobConfig`] whose search is [`crate::config::SearchConfig::Differentiable`].
//!
//! Device: the job runs on CUDA when libtorch sees a GPU ([`DnasJob::open`]), else on the
//! CPU; [`DnasJob::open_on`] picks one. The device is not part of the configuration, so a
//! job checkpointed on one can resume on the other.

use crate::config::{DnasConfig, DnasMethod, FbNetConfig, JobConfig, SinglePathConfig};
use crate::jobdir::{check_predictor_precision, job_inputs, JobDir, JobError, Opened, Progress, RefusedPredictor};
use crate::nn::data::{self, DataSource, Split};
use crate::nn::optim::{Method, OptimConfig, Optimizer};
use crate::nn::supernet::fbnet::FbNetSupernet;
use crate::nn::supernet::singlepath::SinglePathSupernet;
use crate::nn::train::try_recalibrate_bn_on;
use crate::nn::NnError;
use crate::plots::{err, range, SIZE};
use plotters::prelude::*;
use predictors::additive::{Calibration, LayerTable, PerLayer};
use predictors::spnas::SinglePathPredictor;
use predictors::{LatencyPredictor, PlotError};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use spaces::spaces::fbnet::{FbNet, LAYERS, OPS};
use spaces::{Genome, SearchSpace};
use std::fs;
use std::path::Path;
use std::time::Instant;
use tch::nn::ModuleT;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// One epoch of a differentiable search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// Gumbel-softmax temperature (FBNet only).
    pub temperature: Option<f64>,
    /// Mean loss of the weight steps (Single-Path: the joint loss).
    pub train_loss: f64,
    /// Mean loss of the θ steps (FBNet after the warm-up).
    pub arch_loss: Option<f64>,
    /// Mean cross-entropy on the held-out 20 % at the end of the epoch, of the supernet in
    /// evaluation mode (FBNet: the argmax path; Single-Path: the hard indicators) with the
    /// supernet's BN statistics.
    #[serde(alias = "val_loss")]
    pub supernet_val_loss: f64,
    /// The derived member, extracted and BN-re-calibrated on `calib_batches` training
    /// batches: mean cross-entropy and top-1 (fraction) on the held-out 20 %.
    #[serde(default = "nan")]
    pub derived_val_loss: f64,
    #[serde(default = "nan")]
    pub derived_top1: f64,
    /// FBNet: scale·(fixed layers + Σ softmax(θ)·LUT) + offset; Single-Path: R of the indicators at the end of
    /// the epoch (evaluation mode: hard, no dropout).
    pub expected_latency_ms: f64,
    /// The derived architecture (space JSON) and its latency under the job's predictor.
    pub arch: serde_json::Value,
    pub latency_ms: f64,
    pub feasible: bool,
    pub seconds: f64,
    /// Part of `seconds` spent extracting, re-calibrating and validating the derived member.
    #[serde(default)]
    pub derived_eval_seconds: f64,
}

/// Histories written before the derived member was evaluated have no value.
fn nan() -> f64 {
    f64::NAN
}

/// One of FBNet's architectures sampled from the final distribution softmax(θ).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampledArch {
    pub arch: serde_json::Value,
    pub latency_ms: f64,
    pub feasible: bool,
}

/// FBNet samples six architectures from the final distribution.
pub const FBNET_SAMPLES: usize = 6;

/// A differentiable job's progress in its checkpoint: the epochs done (one history row
/// each) and the directory of their weights and optimizer states.
#[derive(Serialize, Deserialize)]
struct Epochs {
    next_epoch: usize,
    dir: String,
}

impl Progress for Epochs {
    fn history_rows(&self) -> usize {
        self.next_epoch
    }
    fn next_step(&self) -> (&'static str, usize) {
        ("epoch", self.next_epoch)
    }
}

/// Why a `--device` name was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("device cuda: libtorch sees no CUDA device")]
    NoCuda,
    #[error("device `{0}`: expected auto, cpu or cuda")]
    Unknown(String),
}

/// `auto` (CUDA when libtorch sees a GPU), `cpu` or `cuda`.
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    Ok(match name {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => return Err(DeviceError::NoCuda),
        other => return Err(DeviceError::Unknown(other.into())),
    })
}

/// FBNet's latency model from a predictor that is additive per layer:
/// LAT = scale · (fixed_ms + Σ_l Σ_i p_{l,i} · table[l][i]) + offset, with the raw per-layer
/// costs of the predictor's compiled [`LayerTable`]; at a one-hot θ this is the predictor's
/// `predict_ms` of that member (calibration included).
#[derive(Clone, Debug)]
pub struct FbNetLatency {
    /// Raw cost of op i at searchable layer l ([22][9]).
    pub table: Vec<[f64; 9]>,
    /// Raw cost of the fixed layers (stem, head, pooling, classifier).
    pub fixed_ms: f64,
    pub calibration: Calibration,
}

impl FbNetLatency {
    /// Expected latency under the per-layer op probabilities `probs` [22, 9] (differentiable).
    pub fn expected(&self, probs: &Tensor) -> Tensor {
        (FbNetSupernet::expected_latency(probs, &self.table) + self.fixed_ms) * self.calibration.scale
            + self.calibration.offset_ms
    }
}

/// [`FbNetLatency`] of `space` under `p`; every layer a member can contain must be priced.
pub fn fbnet_lut(space: &dyn SearchSpace, p: &dyn PerLayer) -> Result<FbNetLatency, RefusedPredictor> {
    let compiled = LayerTable::compile(p, &space.layer_table(&space.resolutions()))?;
    let head: Vec<u8> = if space.genes().len() > LAYERS { vec![0] } else { vec![] };
    let mut table = vec![[0.0; 9]; LAYERS];
    let mut fixed_ms = 0.0;
    #[allow(clippy::needless_range_loop)] // j is both the op index of the genome and the column
    for j in 0..OPS.len() {
        let mut g = vec![j as u8; LAYERS];
        g.extend(&head);
        let net = space.network(&Genome(g));
        let mut l = 0;
        for layer in &net.layers {
            // Skip ops are priced as the predictor prices them (its identity entry), so that
            // a one-hot θ reproduces predict_ms.
            let ms = if layer.is_timed() { compiled.require(layer)? } else { 0.0 };
            if FbNet::is_searchable(layer) {
                table[l][j] = ms;
                l += 1;
            } else if j == 0 {
                fixed_ms += ms;
            }
        }
        if l != LAYERS {
            return Err(RefusedPredictor::SearchableLayers { space: space.name().into(), found: l, expected: LAYERS });
        }
    }
    Ok(FbNetLatency { table, fixed_ms, calibration: compiled.calibration() })
}

/// Single-Path NAS's runtime rows (R_l[k5e3], R_l[k5e6], R_l[k3e6]) of layers 1..20 and the constant.
pub fn singlepath_lut(p: &SinglePathPredictor) -> (Vec<[f64; 3]>, f64) {
    let rows = p.table[1..=20].iter().map(|&[_, k3e6, k5e3, k5e6]| [k5e3, k5e6, k3e6]).collect();
    (rows, p.constant_ms)
}

enum Supernet {
    Fbnet { net: FbNetSupernet, lat: FbNetLatency, cfg: FbNetConfig },
    Singlepath { net: SinglePathSupernet, lut: Vec<[f64; 3]>, constant: f64, cfg: SinglePathConfig },
}

/// A differentiable search job in its directory.
pub struct DnasJob {
    pub config: JobConfig,
    dir: JobDir,
    vs: VarStore,
    net: Supernet,
    predictor: Box<dyn LatencyPredictor>,
    space: Box<dyn SearchSpace>,
    weights_opt: Optimizer,
    arch_opt: Optimizer,
    data: Box<dyn DataSource>,
    /// Seeded 80/20 split of the training data: (weights, architecture/validation).
    train_idx: Vec<usize>,
    val_idx: Vec<usize>,
    pub next_epoch: usize,
    pub history: Vec<EpochRecord>,
    /// FBNet: the members sampled from softmax(θ) when the search finished.
    pub samples: Vec<SampledArch>,
    /// Predictors used although fitted on another precision (`allow_precision_mismatch`),
    /// also in the log.
    pub warnings: Vec<String>,
    device: Device,
}

/// The training settings of a configuration handed to a differentiable job.
fn settings(config: &JobConfig) -> Result<&DnasConfig, JobError> {
    config.dnas_config().ok_or_else(|| {
        crate::config::invalid(
            "strategy",
            format!("{} is a sampling strategy: open it with search::job::Job", config.strategy_name()),
        )
        .into()
    })
}

/// The job's latency predictor (its per-layer table for FBNet, its runtime model for
/// Single-Path) and the supernet, freshly initialised from the seed; a predictor fitted on
/// another precision than the fp32 networks the search derives is refused unless
/// `allow_precision_mismatch` (then the returned warning says so).
fn load_predictor(config: &JobConfig, device: Device) -> Result<Loaded, JobError> {
    let d = settings(config)?;
    let spec = &config.latency[0];
    let path = Path::new(&spec.path);
    let shown = path.display().to_string();
    let strategy = d.method.name();
    let vs = VarStore::new(device);
    let root = vs.root();
    let needs = |needs: &'static str, what: String, source: Option<Box<predictors::DocumentError>>| {
        JobError::NeedsPredictor { strategy, needs, what, source }
    };
    let mut warnings = Vec::new();
    const ADDITIVE: &str = "a predictor additive per layer (e.g. `lut`)";
    let loaded = match &d.method {
        DnasMethod::Fbnet(cfg) => {
            let p = predictors::load_predictor(path).map_err(|e| needs(ADDITIVE, shown.clone(), Some(Box::new(e))))?;
            warnings.extend(check_predictor_precision(config, spec, p.as_ref())?);
            predictors::check_serves(p.as_ref(), &config.space).map_err(|e| JobError::predictor(spec, e))?;
            // Initial weights come from libtorch's global generator: seeded, so a job is reproducible.
            tch::manual_seed(config.seed as i64);
            let net = FbNetSupernet::new(&root, &config.space)?;
            // The space's members share one resolution: the predictor's per-layer form there.
            let r = net.space.resolutions()[0];
            let per_layer = p.per_layer_at(r).ok_or_else(|| {
                needs(
                    ADDITIVE,
                    format!("{shown} is a `{}` predictor, not additive at resolution {r}", p.family()),
                    None,
                )
            })?;
            let lat = fbnet_lut(&*net.space, per_layer).map_err(|e| JobError::predictor(spec, e))?;
            (p, Supernet::Fbnet { net, lat, cfg: cfg.clone() })
        }
        DnasMethod::Singlepath(cfg) => {
            let p = SinglePathPredictor::load(path).map_err(|e| {
                needs(
                    "the Single-Path runtime model (`hwnas fit --import spnas-pixel1 …`)",
                    shown.clone(),
                    Some(Box::new(e)),
                )
            })?;
            warnings.extend(check_predictor_precision(config, spec, &p)?);
            let (lut, constant) = singlepath_lut(&p);
            tch::manual_seed(config.seed as i64);
            let net = SinglePathSupernet::new(&root);
            (Box::new(p) as Box<dyn LatencyPredictor>, Supernet::Singlepath { net, lut, constant, cfg: cfg.clone() })
        }
    };
    Ok(Loaded { predictor: loaded.0, net: loaded.1, vs, warnings })
}

/// What [`load_predictor`] gives: the predictor, the seeded supernet and its variables, and
/// the warnings about precision mismatches allowed.
struct Loaded {
    predictor: Box<dyn LatencyPredictor>,
    net: Supernet,
    vs: VarStore,
    warnings: Vec<String>,
}

fn is_threshold(n: &str) -> bool {
    n.ends_with(".t5x5") || n.ends_with(".t50c") || n.ends_with(".t100c")
}

/// The weights' optimizer and the architecture's. FBNet: SGD on the weights, Adam on θ.
/// Single-Path: one RMSProp on weights and thresholds together (the paper's), so the
/// architecture optimizer holds no variables.
fn optimizers(vs: &VarStore, config: &DnasConfig, steps: usize) -> (Optimizer, Optimizer) {
    type Named = Vec<(String, Tensor)>;
    let (arch, weights): (Named, Named) = vs.variables().into_iter().partition(|(n, _)| n == FbNetSupernet::THETA);
    match &config.method {
        DnasMethod::Fbnet(f) => {
            let w = OptimConfig {
                method: Method::Sgd { momentum: 0.9, nesterov: false },
                lr: config.lr,
                weight_decay: 1e-4,
                warmup_steps: 0,
                total_steps: steps,
            };
            let a = OptimConfig {
                method: Method::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
                lr: f.arch_lr,
                weight_decay: 5e-4,
                warmup_steps: 0,
                total_steps: steps,
            };
            (Optimizer::new(w, weights), Optimizer::new(a, arch))
        }
        DnasMethod::Singlepath(s) => {
            let c = OptimConfig {
                method: Method::RmsProp { decay: s.rms_decay, momentum: s.rms_momentum, eps: s.rms_eps },
                lr: config.lr,
                // The released code's 1e-5·Σ L2 on non-BN weights (thresholds are scalars: exempt).
                weight_decay: 1e-5,
                warmup_steps: 0,
                total_steps: steps,
            };
            let mut joint = Optimizer::new(c, weights);
            joint.scale_lr(is_threshold, s.threshold_lr_scale);
            (joint, Optimizer::new(c, arch))
        }
    }
}

impl DnasJob {
    /// Opens a new job in `dir`, or with `resume` continues the one checkpointed there
    /// (its configuration must equal `config`).
    /// Runs on CUDA when available, else on the CPU.
    pub fn open(config: JobConfig, dir: &Path, resume: bool) -> Result<DnasJob, JobError> {
        Self::open_on(config, dir, resume, Device::cuda_if_available())
    }

    /// [`open`](Self::open) on `device`.
    pub fn open_on(config: JobConfig, dir: &Path, resume: bool, device: Device) -> Result<DnasJob, JobError> {
        config.validate()?;
        JobDir::checkpointed(dir, resume)?;
        let Loaded { predictor, net, mut vs, warnings } = load_predictor(&config, device)?;
        let d = settings(&config)?.clone();
        let space = spaces::space(&config.space)?;
        let data = crate::objectives::supernet::load_data(&d.data, Split::Train)?;
        let classes = match &net {
            Supernet::Fbnet { net, .. } => net.space.network(&net.derive()).layers.last().map(|l| l.output.c),
            Supernet::Singlepath { net, .. } => net.full.layers.last().map(|l| l.output.c),
        }
        .unwrap_or(0);
        if data.classes() > classes {
            return Err(JobError::Data(format!(
                "the data has {} classes but the `{}` classifier has {classes}",
                data.classes(),
                config.space
            )));
        }
        let order = data::epoch_order(data.len(), config.seed, usize::MAX);
        let n_val = data.len() / 5;
        let (val_idx, train_idx) = order.split_at(n_val);
        if train_idx.len() < d.batch || val_idx.len() < d.batch {
            return Err(JobError::Data(format!(
                "{} examples split 80/20 leave fewer than one batch of {} in a split; use more data or a smaller --batch",
                data.len(),
                d.batch
            )));
        }
        let steps = d.epochs * (train_idx.len() / d.batch);
        let (mut weights_opt, mut arch_opt) = optimizers(&vs, &d, steps);
        let inputs = job_inputs(&config)?;
        let (mut dir, next_epoch, history) = match JobDir::open::<Epochs, EpochRecord>(dir, &config, inputs, resume)? {
            Opened::New(dir) => (dir, 0, Vec::new()),
            Opened::Resumed { dir, checkpoint, history } => {
                let ep = dir.path().join(&checkpoint.progress.dir);
                let weights = ep.join("weights.safetensors");
                vs.load(&weights).map_err(|source| NnError::Tensors { action: "load", path: weights, source })?;
                weights_opt.load(&ep.join("weights-optimizer.safetensors"))?;
                arch_opt.load(&ep.join("arch-optimizer.safetensors"))?;
                (dir, checkpoint.progress.next_epoch, history)
            }
        };
        for w in &warnings {
            dir.note(&format!("WARNING: {w}"))?;
        }
        Ok(DnasJob {
            config,
            dir,
            vs,
            net,
            predictor,
            space,
            weights_opt,
            arch_opt,
            data,
            train_idx: train_idx.to_vec(),
            val_idx: val_idx.to_vec(),
            next_epoch,
            history,
            samples: Vec::new(),
            warnings,
            device,
        })
    }

    /// The job's training settings.
    pub fn settings(&self) -> &DnasConfig {
        self.config.dnas_config().expect("a differentiable job's configuration")
    }

    /// Appends a line to the job's log.
    pub fn log(&mut self, line: &str) -> Result<(), JobError> {
        self.dir.note(line)
    }

    fn batch(&self, idx: &[usize], rng: &mut StdRng) -> Result<(Tensor, Tensor), NnError> {
        Ok(data::to_device(self.data.batch(idx, self.settings().resolution, true, rng)?, self.device))
    }

    /// Single-Path: the (t5x5, t50c, t100c) thresholds of every searchable layer.
    pub fn thresholds(&self) -> Option<Vec<[f64; 3]>> {
        let Supernet::Singlepath { net, .. } = &self.net else { return None };
        let v = |t: &Tensor| t.double_value(&[]);
        Some(net.thresholds.iter().map(|t| [v(&t.t5x5), v(&t.t50c), v(&t.t100c)]).collect())
    }

    /// The device the job runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Learning rate of the weights at global step `step`: FBNet cosine; Single-Path
    /// ×`lr_decay` every `lr_decay_epochs` epochs (TF's staircase exponential decay).
    fn weights_lr(&self, step: usize) -> f64 {
        match &self.net {
            Supernet::Fbnet { .. } => self.weights_opt.config.lr_at(step),
            Supernet::Singlepath { cfg, .. } => {
                let every = ((self.steps_per_epoch() as f64 * cfg.lr_decay_epochs).round() as usize).max(1);
                self.settings().lr * cfg.lr_decay.powi((step / every) as i32)
            }
        }
    }

    fn steps_per_epoch(&self) -> usize {
        self.train_idx.len() / self.settings().batch
    }

    /// Runs epochs until the configured number, or until `stop_after` epochs of this call.
    pub fn run(&mut self, stop_after: Option<usize>, report: &mut dyn FnMut(&EpochRecord)) -> Result<(), JobError> {
        let mut done = 0;
        while self.next_epoch < self.settings().epochs && stop_after.is_none_or(|s| done < s) {
            let r = self.epoch()?;
            report(&r);
            done += 1;
        }
        if self.next_epoch >= self.settings().epochs {
            self.finish()?;
        }
        Ok(())
    }

    fn derived(&self) -> Genome {
        match &self.net {
            Supernet::Fbnet { net, .. } => net.derive(),
            Supernet::Singlepath { net, .. } => net.decode(),
        }
    }

    /// Mean cross-entropy and top-1 of `forward` (evaluation mode) on the held-out split.
    fn validate(&self, forward: &dyn Fn(&Tensor) -> Tensor) -> Result<(f64, f64), NnError> {
        let b = self.settings().batch;
        let steps = self.val_idx.len() / b;
        let mut rng = StdRng::seed_from_u64(self.config.seed);
        let _guard = tch::no_grad_guard();
        let (mut loss, mut hits) = (0.0, 0i64);
        for s in 0..steps {
            let idx = &self.val_idx[s * b..(s + 1) * b];
            let (x, y) =
                data::to_device(self.data.batch(idx, self.settings().resolution, false, &mut rng)?, self.device);
            let logits = forward(&x);
            loss += logits.cross_entropy_for_logits(&y).double_value(&[]);
            hits += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64).int64_value(&[]);
        }
        let steps = steps.max(1);
        Ok((loss / steps as f64, hits as f64 / (steps * b) as f64))
    }

    /// Validation loss and top-1 of member `g` extracted from the supernet, after its BN
    /// statistics are re-estimated on training batches.
    pub fn evaluate_member(&self, g: &Genome) -> Result<(f64, f64), JobError> {
        Ok(self.evaluate(g)?)
    }

    fn evaluate(&self, g: &Genome) -> Result<(f64, f64), NnError> {
        let vs = VarStore::new(self.device);
        let r = self.settings().resolution;
        let mut model = match &self.net {
            Supernet::Fbnet { net, .. } => net.extract(&vs.root(), g),
            Supernet::Singlepath { net, .. } => net.extract(&vs.root(), g, r),
        };
        let b = self.settings().batch;
        let batches = self.settings().calib_batches.min(self.train_idx.len() / b);
        try_recalibrate_bn_on(&mut model, self.data.as_ref(), &self.train_idx, r, batches, b, self.config.seed)?;
        self.validate(&|x| model.forward_t(x, false))
    }

    /// FBNet's final architectures: [`FBNET_SAMPLES`] members drawn from softmax(θ) by an RNG
    /// seeded with the job's seed, each with its latency under the job's predictor.
    pub fn sample_final(&self) -> Result<Vec<SampledArch>, JobError> {
        let Supernet::Fbnet { net, .. } = &self.net else { return Ok(Vec::new()) };
        let mut rng = StdRng::seed_from_u64(self.config.seed ^ 0x5A4D_504C_4553);
        (0..FBNET_SAMPLES)
            .map(|_| {
                let g = net.sample(&mut rng);
                let latency_ms = self.predictor.predict_ms(&self.space.network(&g))?;
                Ok(SampledArch {
                    arch: self.space.to_json(&g),
                    latency_ms,
                    feasible: latency_ms <= self.config.max_latency_ms,
                })
            })
            .collect()
    }

    /// One epoch: weight (and threshold) steps, then FBNet's θ steps, then the record,
    /// checkpointed.
    pub fn epoch(&mut self) -> Result<EpochRecord, JobError> {
        let rec = self.train_epoch()?;
        self.checkpoint(&rec)?;
        self.log(&format!(
            "epoch {}: train loss {:.4}{} supernet val loss {:.4} expected latency {:.3} ms derived {} at {:.3} ms{}, \
             re-calibrated val loss {:.4} top-1 {:.4} ({:.1}s, derived evaluation {:.1}s)",
            rec.epoch,
            rec.train_loss,
            rec.arch_loss.map_or(String::new(), |a| format!(" arch loss {a:.4}")),
            rec.supernet_val_loss,
            rec.expected_latency_ms,
            rec.arch,
            rec.latency_ms,
            if rec.feasible { "" } else { " (over the target)" },
            rec.derived_val_loss,
            rec.derived_top1,
            rec.seconds,
            rec.derived_eval_seconds
        ))?;
        Ok(rec)
    }

    fn train_epoch(&mut self) -> Result<EpochRecord, JobError> {
        let start = Instant::now();
        let epoch = self.next_epoch;
        let search = epoch >= self.settings().warmup_epochs;
        tch::manual_seed(self.config.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64) as i64);
        let mut rng = StdRng::seed_from_u64(self.config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = self.settings().batch;
        let perm = data::epoch_order(self.train_idx.len(), self.config.seed, epoch);
        let steps = self.steps_per_epoch();
        let temperature = match &mut self.net {
            Supernet::Fbnet { net, cfg, .. } => {
                net.temperature = cfg.tau0 * (-cfg.tau_decay * epoch as f64).exp();
                Some(net.temperature)
            }
            Supernet::Singlepath { net, cfg, .. } => {
                net.indicator_keep = if search { 1.0 } else { cfg.indicator_keep };
                None
            }
        };
        let mut train_loss = 0.0;
        for s in 0..steps {
            let idx: Vec<usize> = perm[s * b..(s + 1) * b].iter().map(|&i| self.train_idx[i]).collect();
            let (x, y) = self.batch(&idx, &mut rng)?;
            let lr = self.weights_lr(epoch * steps + s);
            self.weights_opt.zero_grad();
            self.arch_opt.zero_grad();
            let loss = match &self.net {
                Supernet::Fbnet { net, .. } => net.forward_with_probs(&x, true).0.cross_entropy_for_logits(&y),
                Supernet::Singlepath { net, lut, constant, cfg } => {
                    let ce = net.forward_t(&x, true).cross_entropy_for_logits(&y);
                    if search {
                        ce + net.runtime(lut, *constant).log() * cfg.lambda
                    } else {
                        ce
                    }
                }
            };
            loss.backward();
            self.weights_opt.step(lr);
            train_loss += loss.double_value(&[]);
        }
        train_loss /= steps.max(1) as f64;
        let val_steps = self.val_idx.len() / b;
        let mut arch_loss = None;
        if search {
            if let Supernet::Fbnet { net, lat, cfg } = &self.net {
                let mut total = 0.0;
                for s in 0..val_steps {
                    let (x, y) = self.batch(&self.val_idx[s * b..(s + 1) * b], &mut rng)?;
                    self.weights_opt.zero_grad();
                    self.arch_opt.zero_grad();
                    let (logits, probs) = net.forward_with_probs(&x, true);
                    // LAT of the whole network, calibration included (FBNet's LAT(a)).
                    let lat = lat.expected(&probs);
                    // (ln LAT)^β needs ln LAT > 0; tables in ms sum far above 1 ms over 22 layers.
                    let loss = logits.cross_entropy_for_logits(&y)
                        * cfg.alpha
                        * lat.log().clamp_min(1e-6).pow_tensor_scalar(cfg.beta);
                    loss.backward();
                    self.arch_opt.step(cfg.arch_lr);
                    total += loss.double_value(&[]);
                }
                arch_loss = Some(total / val_steps.max(1) as f64);
            }
        }
        let (supernet_val_loss, _) = self.validate(&|x| match &self.net {
            Supernet::Fbnet { net, .. } => net.forward_with_probs(x, false).0,
            Supernet::Singlepath { net, .. } => net.forward_t(x, false),
        })?;
        let g = self.derived();
        let eval_start = Instant::now();
        let (derived_val_loss, derived_top1) = self.evaluate(&g)?;
        let derived_eval_seconds = eval_start.elapsed().as_secs_f64();
        let expected_latency_ms = match &self.net {
            Supernet::Fbnet { net, lat, .. } => lat.expected(&net.theta.softmax(-1, Kind::Float)).double_value(&[]),
            // The validation pass left the hard indicators (no dropout) of the current thresholds.
            Supernet::Singlepath { net, lut, constant, .. } => net.runtime(lut, *constant).double_value(&[]),
        };
        let latency_ms = self.predictor.predict_ms(&self.space.network(&g))?;
        let rec = EpochRecord {
            epoch,
            temperature,
            train_loss,
            arch_loss,
            supernet_val_loss,
            derived_val_loss,
            derived_top1,
            expected_latency_ms,
            arch: self.space.to_json(&g),
            latency_ms,
            feasible: latency_ms <= self.config.max_latency_ms,
            seconds: start.elapsed().as_secs_f64(),
            derived_eval_seconds,
        };
        Ok(rec)
    }

    /// Appends the epoch's row, saves the weights and optimizer states in `epoch-N/`, then
    /// replaces the checkpoint that names them.
    fn checkpoint(&mut self, rec: &EpochRecord) -> Result<(), JobError> {
        self.dir.append_history(std::slice::from_ref(rec))?;
        self.history.push(rec.clone());
        self.next_epoch = rec.epoch + 1;
        let name = format!("epoch-{}", self.next_epoch);
        let ep = self.dir.path().join(&name);
        fs::create_dir_all(&ep).map_err(|source| JobError::Io { action: "create", path: ep.clone(), source })?;
        let weights = ep.join("weights.safetensors");
        self.vs.save(&weights).map_err(|source| NnError::Tensors { action: "save", path: weights, source })?;
        self.weights_opt.save(&ep.join("weights-optimizer.safetensors"))?;
        self.arch_opt.save(&ep.join("arch-optimizer.safetensors"))?;
        self.dir.checkpoint(Epochs { next_epoch: self.next_epoch, dir: name })?;
        // The previous epoch's files are no longer referenced.
        let old = self.dir.path().join(format!("epoch-{}", rec.epoch));
        if rec.epoch > 0 && old.exists() {
            fs::remove_dir_all(&old).map_err(|source| JobError::Io { action: "remove", path: old, source })?;
        }
        Ok(())
    }

    /// best.json, samples.json (FBNet) and the plots.
    fn finish(&mut self) -> Result<(), JobError> {
        let last = self.history.last().cloned().ok_or_else(|| JobError::Data("no epoch ran".into()))?;
        self.samples = self.sample_final()?;
        let mut best = serde_json::json!({
            "strategy": self.config.strategy_name(),
            "epoch": last.epoch,
            "arch": last.arch,
            "latency_ms": last.latency_ms,
            "latency_predictor": self.config.latency[0].label,
            "max_latency_ms": self.config.max_latency_ms,
            "feasible": last.feasible,
            "expected_latency_ms": last.expected_latency_ms,
            "derived_val_loss": last.derived_val_loss,
            "derived_top1": last.derived_top1,
            "calib_batches": self.settings().calib_batches,
            "supernet_val_loss": last.supernet_val_loss,
        });
        if !self.samples.is_empty() {
            let serialize = |source| JobError::Serialize { what: "the sampled architectures", source };
            best["samples"] = serde_json::to_value(&self.samples).map_err(serialize)?;
            let text = serde_json::to_string_pretty(&self.samples).map_err(serialize)?;
            self.dir.write_file("samples.json", text.as_bytes())?;
            let lines: Vec<String> = self
                .samples
                .iter()
                .enumerate()
                .map(|(i, smp)| {
                    format!(
                        "sample {} of softmax(θ): {} at {:.3} ms{}",
                        i + 1,
                        smp.arch,
                        smp.latency_ms,
                        if smp.feasible { "" } else { " (over the target)" }
                    )
                })
                .collect();
            for line in lines {
                self.log(&line)?;
            }
        }
        self.log(&format!(
            "derived {} at {:.3} ms: validation loss {:.4}, top-1 {:.4} after BN re-calibration on {} batches (supernet: {:.4})",
            last.arch,
            last.latency_ms,
            last.derived_val_loss,
            last.derived_top1,
            self.settings().calib_batches,
            last.supernet_val_loss
        ))?;
        let text =
            serde_json::to_string_pretty(&best).map_err(|source| JobError::Serialize { what: "best.json", source })?;
        self.dir.write_file("best.json", text.as_bytes())?;
        plot(self.dir.path(), &self.history, self.config.max_latency_ms)
    }

    /// The job directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A named, coloured line of (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let xs = series.iter().flat_map(|s| s.2.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(range(xs), range(ys))
        .map_err(err)?;
    chart.configure_mesh().x_desc("epoch").y_desc(y_label).draw().map_err(err)?;
    for (name, color, pts) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(err)?;
    }
    chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

/// `loss.{png,svg}` (weight, θ and validation losses) and `latency.{png,svg}` (expected and
/// derived latency against the target) per epoch.
pub fn plot(dir: &Path, history: &[EpochRecord], target_ms: f64) -> Result<(), JobError> {
    let pts = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history.iter().filter_map(|r| f(r).map(|v| (r.epoch as f64, v))).collect()
    };
    let loss = [
        ("train loss", BLUE, pts(&|r| Some(r.train_loss))),
        ("architecture loss", RED, pts(&|r| r.arch_loss)),
        ("validation CE (supernet)", GREEN, pts(&|r| Some(r.supernet_val_loss))),
        ("validation CE (derived, BN re-calibrated)", MAGENTA, pts(&|r| Some(r.derived_val_loss))),
    ];
    let lat = [
        ("expected latency", BLUE, pts(&|r| Some(r.expected_latency_ms))),
        ("derived architecture", RED, pts(&|r| Some(r.latency_ms))),
        ("target", BLACK, pts(&|_| Some(target_ms))),
    ];
    for (name, title, y, series) in [("loss", "Search loss", "loss", &loss[..]), ("latency", "Latency", "ms", &lat[..])]
    {
        let p = dir.join(format!("{name}.png"));
        draw(BitMapBackend::new(&p, SIZE).into_drawing_area(), title, y, series)?;
        let p = dir.join(format!("{name}.svg"));
        draw(SVGBackend::new(&p, SIZE).into_drawing_area(), title, y, series)?;
    }
    Ok(())
}
