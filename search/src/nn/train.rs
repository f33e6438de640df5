//! Training and evaluation of fixed networks and supernets.
//!
//! Every step is a pure function of (seed, step): the batch (a seeded per-epoch order), the
//! augmentation, the resolution, the sampled sub-networks and torch's RNG (dropout, Gumbel
//! noise) are all derived from them, and the optimizer state is checkpointed, so a run that
//! is killed and resumed computes exactly what an uninterrupted run computes.

use super::checkpoint::{self, State, ARCH_OPTIMIZER, OPTIMIZER, WEIGHTS};
use super::data::{self, DataSource};
use super::model::Model;
use super::net::{Net, NetSpec};
use super::optim::{Method, OptimConfig, Optimizer};
use super::supernet::fbnet::FbNetSupernet;
use super::supernet::ofa::{Phase, Pick};
use super::NnError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub optim: OptimConfig,
    pub label_smoothing: f64,
    /// Weight of in-place distillation from the largest sub-network (KL on soft targets); 0 = off.
    pub kd_ratio: f64,
    /// Batch resolutions; one is drawn per step (OFA's elastic resolution).
    pub resolutions: Vec<u32>,
    pub seed: u64,
    /// Random sub-networks per OFA step besides the largest and the smallest (sandwich rule).
    pub sandwich_random: usize,
    pub bn_momentum: f64,
    /// FBNet: Adam learning rate of θ, and the epochs during which only weights train.
    pub arch_lr: f64,
    pub arch_warmup_epochs: usize,
    /// Single-Path: epochs with indicator dropout (keep 0.6), as in the paper's first 5 epochs.
    pub indicator_dropout_epochs: usize,
    /// Checkpoint every this many steps (and at the end).
    pub checkpoint_every: usize,
}

impl TrainConfig {
    /// SGD with Nesterov momentum 0.9, cosine schedule with a warm-up epoch's worth of steps
    /// capped at 5 % of training, label smoothing 0.1 and OFA's BN momentum.
    pub fn new(epochs: usize, batch: usize, lr: f64, resolutions: Vec<u32>, steps_per_epoch: usize) -> TrainConfig {
        let total = epochs * steps_per_epoch;
        TrainConfig {
            epochs,
            batch,
            optim: OptimConfig {
                method: Method::Sgd { momentum: 0.9, nesterov: true },
                lr,
                weight_decay: 3e-5,
                warmup_steps: (total / 20).max(1).min(steps_per_epoch.max(1)),
                total_steps: total,
            },
            label_smoothing: 0.1,
            kd_ratio: 1.0,
            resolutions,
            seed: 0,
            sandwich_random: 2,
            bn_momentum: 0.1,
            arch_lr: 0.01,
            arch_warmup_epochs: 0,
            indicator_dropout_epochs: 0,
            checkpoint_every: 500,
        }
    }
}

/// The caller's hook from (network, cross-entropy) to the loss to minimise, e.g. adding
/// λ·log R for Single-Path or multiplying by α·(log LAT)^β for FBNet.
pub type LossHook<'a> = &'a dyn Fn(&Net, &Tensor) -> Tensor;

pub struct Trainer {
    pub vs: VarStore,
    pub net: Net,
    pub spec: NetSpec,
    pub config: TrainConfig,
    pub steps_per_epoch: usize,
    pub step: usize,
    opt: Optimizer,
    arch_opt: Option<Optimizer>,
    sorted_for_expand: bool,
    recent: Vec<f64>,
}

fn trainable(vs: &VarStore, keep: impl Fn(&str) -> bool) -> Vec<(String, Tensor)> {
    vs.variables().into_iter().filter(|(n, t)| t.requires_grad() && keep(n)).collect()
}

impl Trainer {
    pub fn new(spec: NetSpec, config: TrainConfig, steps_per_epoch: usize, device: Device) -> Result<Trainer, NnError> {
        if steps_per_epoch == 0 {
            return Err(NnError::FewerThanBatch(config.batch));
        }
        if config.resolutions.is_empty() {
            return Err(NnError::NoResolution);
        }
        tch::manual_seed(config.seed as i64);
        let vs = VarStore::new(device);
        let mut net = Net::build(&vs, &spec)?;
        net.set_bn_momentum(config.bn_momentum);
        let opt = Optimizer::new(config.optim, trainable(&vs, |n| n != FbNetSupernet::THETA));
        let arch_opt = matches!(net, Net::FbNet(_)).then(|| {
            let c = OptimConfig {
                method: Method::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
                lr: config.arch_lr,
                weight_decay: 5e-4,
                warmup_steps: 0,
                total_steps: config.optim.total_steps,
            };
            Optimizer::new(c, trainable(&vs, |n| n == FbNetSupernet::THETA))
        });
        Ok(Trainer {
            vs,
            net,
            spec,
            config,
            steps_per_epoch,
            step: 0,
            opt,
            arch_opt,
            sorted_for_expand: false,
            recent: Vec::new(),
        })
    }

    /// Rebuilds the trainer of the latest checkpoint in `dir` at the step it recorded.
    pub fn resume(dir: &Path, device: Device) -> Result<Trainer, NnError> {
        let (state, step_dir) = checkpoint::latest(dir)?.ok_or_else(|| NnError::NoCheckpoint { dir: dir.into() })?;
        let mut t = Trainer::new(state.net, state.config, state.steps_per_epoch, device)?;
        let weights = step_dir.join(WEIGHTS);
        t.vs.load(&weights).map_err(|source| NnError::Tensors { action: "load", path: weights, source })?;
        t.opt.load(&step_dir.join(OPTIMIZER))?;
        if let Some(a) = &mut t.arch_opt {
            a.load(&step_dir.join(ARCH_OPTIMIZER))?;
        }
        t.step = state.step;
        Ok(t)
    }

    pub fn total_steps(&self) -> usize {
        self.config.epochs * self.steps_per_epoch
    }

    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch
    }

    /// Writes a checkpoint of the current step into `dir`.
    pub fn save(&mut self, dir: &Path) -> Result<(), NnError> {
        std::fs::create_dir_all(dir).map_err(|source| NnError::Io { action: "create", path: dir.into(), source })?;
        let sd = checkpoint::step_dir(dir, self.step)?;
        let weights = sd.join(WEIGHTS);
        self.vs.save(&weights).map_err(|source| NnError::Tensors { action: "save", path: weights, source })?;
        self.opt.save(&sd.join(OPTIMIZER))?;
        if let Some(a) = &self.arch_opt {
            a.save(&sd.join(ARCH_OPTIMIZER))?;
        }
        let recent_loss = (!self.recent.is_empty()).then(|| self.recent.iter().sum::<f64>() / self.recent.len() as f64);
        self.recent.clear();
        let state = State {
            net: self.spec.clone(),
            config: self.config.clone(),
            step: self.step,
            epoch: self.epoch(),
            steps_per_epoch: self.steps_per_epoch,
            recent_loss,
            dir: sd.file_name().expect("step dir name").to_string_lossy().to_string(),
        };
        checkpoint::commit(dir, &state)
    }

    fn step_rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.config.seed ^ (self.step as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The batch of the current step.
    fn batch(&self, data: &dyn DataSource, rng: &mut StdRng) -> Result<(Tensor, Tensor, u32), NnError> {
        let (epoch, pos, b) = (self.epoch(), self.step % self.steps_per_epoch, self.config.batch);
        let order = data::epoch_order(data.len(), self.config.seed, epoch);
        let r = self.config.resolutions[rng.random_range(0..self.config.resolutions.len())];
        let (x, y) = data::to_device(data.batch(&order[pos * b..(pos + 1) * b], r, true, rng)?, self.vs.device());
        Ok((x, y, r))
    }

    fn ce(&self, logits: &Tensor, y: &Tensor) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, self.config.label_smoothing)
    }

    /// One optimizer step on the current batch; returns the mean loss of the sub-networks run.
    pub fn train_step(&mut self, data: &dyn DataSource, hook: Option<LossHook>) -> Result<f64, NnError> {
        let mut rng = self.step_rng();
        tch::manual_seed((self.config.seed.wrapping_add(self.step as u64)) as i64);
        let (x, y, _) = self.batch(data, &mut rng)?;
        let lr = self.config.optim.lr_at(self.step);
        let epoch = self.epoch();
        let progress = self.step as f64 / self.total_steps().max(1) as f64;
        self.opt.zero_grad();
        if let Some(a) = &mut self.arch_opt {
            a.zero_grad();
        }
        let finish = |t: &Trainer, ce: Tensor| match hook {
            Some(h) => h(&t.net, &ce),
            None => ce,
        };
        let mut losses = Vec::new();
        match &mut self.net {
            Net::Ofa(s) => {
                let phase = Phase::at(progress);
                if matches!(phase, Phase::Expand { .. }) && !self.sorted_for_expand {
                    s.sort_channels();
                    self.sorted_for_expand = true;
                }
                let mut picks = vec![Pick::Largest];
                if phase != Phase::Full {
                    picks.push(Pick::Smallest);
                    picks.extend(std::iter::repeat_n(Pick::Random, self.config.sandwich_random));
                }
                let archs: Vec<_> = picks.iter().map(|&p| s.sample(phase, p, &mut rng)).collect();
                let mut teacher: Option<Tensor> = None;
                for g in archs {
                    let Net::Ofa(s) = &mut self.net else { unreachable!() };
                    s.active = g;
                    let logits = s.forward_t(&x, true);
                    let mut loss = self.ce(&logits, &y);
                    if let Some(t) = &teacher {
                        let kl = (t.exp() * (t - logits.log_softmax(-1, Kind::Float))).sum_dim_intlist(
                            -1,
                            false,
                            Kind::Float,
                        );
                        loss += self.config.kd_ratio * kl.mean(Kind::Float);
                    } else if self.config.kd_ratio > 0.0 {
                        teacher = Some(logits.detach().log_softmax(-1, Kind::Float));
                    }
                    let loss = finish(self, loss);
                    loss.backward();
                    losses.push(loss.double_value(&[]));
                }
            }
            Net::SinglePath(s) => {
                s.indicator_keep = if epoch < self.config.indicator_dropout_epochs { 0.6 } else { 1.0 };
                let logits = s.forward_t(&x, true);
                let loss = finish(self, self.ce(&logits, &y));
                loss.backward();
                losses.push(loss.double_value(&[]));
            }
            Net::FbNet(s) => {
                s.temperature = 5.0 * (-0.045 * epoch as f64).exp();
                let logits = s.forward_t(&x, true);
                let loss = finish(self, self.ce(&logits, &y));
                loss.backward();
                losses.push(loss.double_value(&[]));
            }
            Net::Fixed(m) => {
                let logits = tch::nn::ModuleT::forward_t(m, &x, true);
                let loss = finish(self, self.ce(&logits, &y));
                loss.backward();
                losses.push(loss.double_value(&[]));
            }
        }
        self.opt.step(lr);
        if let Some(a) = &mut self.arch_opt {
            if epoch >= self.config.arch_warmup_epochs {
                a.step(a.config.lr);
            }
        }
        self.step += 1;
        let mean = losses.iter().sum::<f64>() / losses.len() as f64;
        self.recent.push(mean);
        Ok(mean)
    }

    /// Trains until the configured epochs are done or `stop_at` steps are reached,
    /// checkpointing into `dir` (if given). Returns the loss of every step run.
    pub fn train(
        &mut self,
        data: &dyn DataSource,
        dir: Option<&Path>,
        stop_at: Option<usize>,
        hook: Option<LossHook>,
    ) -> Result<Vec<f64>, NnError> {
        let end = stop_at.unwrap_or(usize::MAX).min(self.total_steps());
        let bar = super::progress(self.total_steps() as u64, "train");
        bar.set_position(self.step as u64);
        let mut losses = Vec::new();
        while self.step < end {
            let loss = self.train_step(data, hook)?;
            if !loss.is_finite() {
                return Err(NnError::Diverged { step: self.step, loss });
            }
            losses.push(loss);
            bar.inc(1);
            bar.set_message(format!("epoch {} loss {loss:.4}", self.epoch()));
            if let Some(d) = dir {
                if self.step.is_multiple_of(self.config.checkpoint_every) || self.step == end {
                    self.save(d)?;
                }
            }
        }
        bar.finish_and_clear();
        Ok(losses)
    }
}

/// Top-1 / top-5 accuracy (fractions) and mean cross-entropy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    pub top1: f64,
    pub top5: f64,
    pub loss: f64,
    pub examples: usize,
}

/// Evaluates `forward` (eval mode) on the first `max_examples` examples of `data`.
pub fn try_evaluate(
    forward: &dyn Fn(&Tensor) -> Tensor,
    data: &dyn DataSource,
    resolution: u32,
    batch: usize,
    max_examples: Option<usize>,
    device: Device,
) -> Result<Accuracy, NnError> {
    let n = max_examples.unwrap_or(usize::MAX).min(data.len());
    let bar = super::progress(n.div_ceil(batch) as u64, "eval");
    let mut rng = StdRng::seed_from_u64(0);
    let (mut c1, mut c5, mut loss) = (0i64, 0i64, 0f64);
    let _guard = tch::no_grad_guard();
    for start in (0..n).step_by(batch) {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let (x, y) = data::to_device(data.batch(&idx, resolution, false, &mut rng)?, device);
        let logits = forward(&x);
        let k = logits.size()[1].min(5);
        let top = logits.topk(k, -1, true, true).1;
        let hit = top.eq_tensor(&y.unsqueeze(1));
        c1 += hit.narrow(1, 0, 1).sum(Kind::Int64).int64_value(&[]);
        c5 += hit.sum(Kind::Int64).int64_value(&[]);
        loss += logits.cross_entropy_for_logits(&y).double_value(&[]) * idx.len() as f64;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = n.max(1) as f64;
    Ok(Accuracy { top1: c1 as f64 / n, top5: c5 as f64 / n, loss: loss / n, examples: n as usize })
}

/// Re-estimates the BN statistics of a (sub-)network on `batches` training batches: the
/// running statistics are reset and replaced by the average over those batches, since a
/// sub-network's activations differ from the supernet's whose statistics it inherited.
pub fn try_recalibrate_bn(
    model: &mut Model,
    data: &dyn DataSource,
    resolution: u32,
    batches: usize,
    batch: usize,
    seed: u64,
) -> Result<(), NnError> {
    let order = data::epoch_order(data.len(), seed, usize::MAX);
    try_recalibrate_bn_on(model, data, &order, resolution, batches, batch, seed)
}

/// [`try_recalibrate_bn`] on the examples `order` of `data` (e.g. a training split), in that order.
pub fn try_recalibrate_bn_on(
    model: &mut Model,
    data: &dyn DataSource,
    order: &[usize],
    resolution: u32,
    batches: usize,
    batch: usize,
    seed: u64,
) -> Result<(), NnError> {
    let _guard = tch::no_grad_guard();
    for w in &mut model.tensors {
        for (name, t) in w.iter_mut() {
            if name.ends_with("running_mean") {
                let _ = t.zero_();
            } else if name.ends_with("running_var") {
                let _ = t.fill_(1.0);
            }
        }
    }
    let saved = model.bn_momentum;
    let device = model.tensors.iter().flat_map(|w| w.values()).next().map(|t| t.device()).unwrap_or(Device::Cpu);
    let bar = super::progress(batches as u64, "bn-calib");
    let mut rng = StdRng::seed_from_u64(seed);
    for (i, idx) in order.chunks_exact(batch).take(batches).enumerate() {
        // Momentum 1/(i+1) makes the running value the plain mean over the batches seen.
        model.bn_momentum = 1.0 / (i + 1) as f64;
        let (x, _) = data::to_device(data.batch(idx, resolution, false, &mut rng)?, device);
        let _ = tch::nn::ModuleT::forward_t(model, &x, true);
        bar.inc(1);
    }
    bar.finish_and_clear();
    model.bn_momentum = saved;
    Ok(())
}

/// Checkpoint directory helper for callers: the latest step directory, if any.
pub fn latest_weights(dir: &Path) -> Result<Option<PathBuf>, NnError> {
    Ok(checkpoint::latest(dir)?.map(|(_, d)| d.join(WEIGHTS)))
}
