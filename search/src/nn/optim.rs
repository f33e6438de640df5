//! SGD (momentum, Nesterov), Adam and RMSProp over named variables, with a cosine
//! learning-rate schedule after linear warm-up. Written here rather than using `tch::nn::Optimizer`
//! because that one cannot save its momentum buffers, and a resumed run must continue
//! exactly where a killed one stopped.

use super::NnError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Method {
    Sgd {
        momentum: f64,
        nesterov: bool,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    /// TensorFlow 1's `RMSPropOptimizer` (what Single-Path NAS and MnasNet train with), not
    /// PyTorch's: the mean square starts at 1 (PyTorch: 0), ε sits inside the square root
    /// (PyTorch: outside), and the learning rate enters the momentum buffer
    /// (mom = momentum·mom + lr·g/√(ms + ε); w −= mom), so a learning-rate change acts
    /// through the buffer gradually. tch's `nn::RmsProp` is PyTorch's.
    #[serde(rename = "rmsprop")]
    RmsProp {
        decay: f64,
        momentum: f64,
        eps: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimConfig {
    pub method: Method,
    /// Peak learning rate (reached after warm-up).
    pub lr: f64,
    /// L2 weight decay, applied to conv/linear weights only (not BN, biases or thresholds).
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl OptimConfig {
    /// Linear warm-up from lr/warmup to lr, then cosine decay to 0 at `total_steps`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
        0.5 * self.lr * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

/// The optimizer: per-variable state kept by name so it can be saved and restored.
pub struct Optimizer {
    pub config: OptimConfig,
    vars: Vec<(String, Tensor)>,
    state: BTreeMap<String, Tensor>,
    /// Per-variable learning-rate multipliers (absent = 1).
    lr_scale: BTreeMap<String, f64>,
    /// Number of updates applied (Adam's bias correction).
    pub updates: i64,
}

impl Optimizer {
    /// Optimises `vars` (name, trainable tensor) pairs.
    pub fn new(config: OptimConfig, mut vars: Vec<(String, Tensor)>) -> Optimizer {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        Optimizer { config, vars, state: BTreeMap::new(), lr_scale: BTreeMap::new(), updates: 0 }
    }

    /// Multiplies the learning rate of the variables whose name satisfies `select` by `factor`.
    pub fn scale_lr(&mut self, select: impl Fn(&str) -> bool, factor: f64) {
        for (name, _) in &self.vars {
            if select(name) {
                self.lr_scale.insert(name.clone(), factor);
            }
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, v) in &mut self.vars {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// One update at learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.updates += 1;
        let c = self.config;
        for (name, v) in &mut self.vars {
            let g = v.grad();
            // PyTorch's zero_grad(set_to_none) semantics: a variable no sub-network used this
            // step (all-zero gradient) gets no momentum or decay update. Deciding this from the
            // gradient itself, not from history, keeps resumed runs identical to straight ones.
            if !g.defined() || g.ne(0.0).any().int64_value(&[]) == 0 {
                continue;
            }
            let mut g = g.shallow_clone();
            if c.weight_decay > 0.0 && v.dim() > 1 {
                g += c.weight_decay * &*v;
            }
            let lr = lr * self.lr_scale.get(name.as_str()).copied().unwrap_or(1.0);
            let update = match c.method {
                Method::Sgd { momentum, nesterov } => {
                    if momentum == 0.0 {
                        g * lr
                    } else {
                        let buf = self.state.entry(format!("{name}.momentum")).or_insert_with(|| g.zeros_like());
                        let _ = buf.g_mul_scalar_(momentum).g_add_(&g);
                        if nesterov {
                            (g + momentum * &*buf) * lr
                        } else {
                            &*buf * lr
                        }
                    }
                }
                Method::Adam { beta1, beta2, eps } => {
                    let m = self.state.entry(format!("{name}.exp_avg")).or_insert_with(|| g.zeros_like());
                    let _ = m.g_mul_scalar_(beta1).g_add_(&((1.0 - beta1) * &g));
                    let m = m.shallow_clone();
                    let s = self.state.entry(format!("{name}.exp_avg_sq")).or_insert_with(|| g.zeros_like());
                    let _ = s.g_mul_scalar_(beta2).g_add_(&((1.0 - beta2) * &g * &g));
                    let bc1 = 1.0 - beta1.powi(self.updates as i32);
                    let bc2 = 1.0 - beta2.powi(self.updates as i32);
                    (m / bc1) / ((&*s / bc2).sqrt() + eps) * lr
                }
                Method::RmsProp { decay, momentum, eps } => {
                    let ms = self.state.entry(format!("{name}.ms")).or_insert_with(|| g.ones_like());
                    let _ = ms.g_mul_scalar_(decay).g_add_(&((1.0 - decay) * &g * &g));
                    let step = &g * lr / (&*ms + eps).sqrt();
                    let mom = self.state.entry(format!("{name}.mom")).or_insert_with(|| g.zeros_like());
                    let _ = mom.g_mul_scalar_(momentum).g_add_(&step);
                    // The buffer already holds the learning rate.
                    mom.shallow_clone()
                }
            };
            let _ = v.g_sub_(&update);
        }
    }

    /// Writes the optimizer state (buffers + update count) as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), NnError> {
        let count = Tensor::from_slice(&[self.updates]);
        let mut named: Vec<(&str, &Tensor)> = self.state.iter().map(|(k, v)| (k.as_str(), v)).collect();
        named.push(("__updates__", &count));
        Tensor::write_safetensors(&named, path).map_err(|source| NnError::Tensors {
            action: "write",
            path: path.into(),
            source,
        })
    }

    /// Restores the state written by [`save`](Self::save) onto this optimizer's device.
    pub fn load(&mut self, path: &Path) -> Result<(), NnError> {
        let device = self.vars.first().map(|v| v.1.device()).unwrap_or(tch::Device::Cpu);
        let named = Tensor::read_safetensors(path).map_err(|source| NnError::Tensors {
            action: "read",
            path: path.into(),
            source,
        })?;
        self.state.clear();
        for (k, t) in named {
            if k == "__updates__" {
                self.updates = t.int64_value(&[0]);
            } else if self.vars.iter().any(|(n, _)| k.starts_with(n.as_str())) {
                self.state.insert(k, t.to_device(device));
            } else {
                return Err(NnError::StrayOptimizerState { path: path.into(), key: k });
            }
        }
        Ok(())
    }
}
