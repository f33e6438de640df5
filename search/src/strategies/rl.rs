//! MnasNet-style reinforcement learning (Tan et al., CVPR 2019): a controller samples
//! architectures, each is rewarded with ACC·(LAT/T)^w, and the controller is trained by
//! policy gradient with a moving-average baseline — REINFORCE, or PPO's clipped surrogate
//! (MnasNet used PPO; its controller code is unpublished).
//!
//! The controller is a factorised policy: one softmax over each gene's choices (the
//! per-gene-logits variant of an RNN controller, as in ENAS-style ablations). Its gradient
//! is closed-form, ∂ log π(a) / ∂θ_g = onehot(a_g) − softmax(θ_g), so training needs no
//! autograd and stays bit-reproducible for a seed on any thread count; Adam updates θ.

use super::{Ctx, Strategy};
use crate::config::{PolicyGradient, RlConfig};
use crate::evaluate::Evaluation;
use anyhow::Result;
use rand::rngs::StdRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spaces::{Genome, SearchSpace};

#[derive(Clone, Serialize, Deserialize)]
struct Controller {
    logits: Vec<Vec<f64>>,
    adam_m: Vec<Vec<f64>>,
    adam_v: Vec<Vec<f64>>,
    adam_t: u64,
    baseline: Option<f64>,
}

pub struct Reinforce {
    config: RlConfig,
    target_ms: f64,
    c: Controller,
}

const ADAM_B1: f64 = 0.9;
const ADAM_B2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

fn softmax(logits: &[f64]) -> Vec<f64> {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

impl Reinforce {
    pub fn new(config: RlConfig, space: &dyn SearchSpace, target_ms: f64) -> Self {
        let zeros: Vec<Vec<f64>> = space.genes().iter().map(|g| vec![0.0; g.cardinality()]).collect();
        let c = Controller { logits: zeros.clone(), adam_m: zeros.clone(), adam_v: zeros, adam_t: 0, baseline: None };
        Reinforce { config, target_ms, c }
    }

    /// Current choice probabilities of every gene.
    pub fn probabilities(&self) -> Vec<Vec<f64>> {
        self.c.logits.iter().map(|l| softmax(l)).collect()
    }

    fn log_prob(&self, actions: &[u8]) -> f64 {
        self.c.logits.iter().zip(actions).map(|(l, &a)| softmax(l)[a as usize].ln()).sum()
    }

    /// One Adam ascent step on J = mean_i w_i · log π(a_i) where w_i is the gradient weight
    /// of sample i (its advantage, scaled by the PPO ratio where the surrogate is unclipped).
    fn ascend(&mut self, batch: &[Vec<u8>], weights: &[f64]) {
        let n = batch.len() as f64;
        self.c.adam_t += 1;
        let t = self.c.adam_t as i32;
        let lr = self.config.learning_rate;
        for g in 0..self.c.logits.len() {
            let p = softmax(&self.c.logits[g]);
            let mut grad = vec![0.0; p.len()];
            for (a, &w) in batch.iter().zip(weights) {
                for (k, gk) in grad.iter_mut().enumerate() {
                    let onehot = if a[g] as usize == k { 1.0 } else { 0.0 };
                    *gk += w * (onehot - p[k]) / n;
                }
            }
            for (k, gk) in grad.into_iter().enumerate() {
                let m = &mut self.c.adam_m[g][k];
                let v = &mut self.c.adam_v[g][k];
                *m = ADAM_B1 * *m + (1.0 - ADAM_B1) * gk;
                *v = ADAM_B2 * *v + (1.0 - ADAM_B2) * gk * gk;
                let (mh, vh) = (*m / (1.0 - ADAM_B1.powi(t)), *v / (1.0 - ADAM_B2.powi(t)));
                self.c.logits[g][k] += lr * mh / (vh.sqrt() + ADAM_EPS);
            }
        }
    }
}

impl Strategy for Reinforce {
    fn step(&mut self, _generation: usize, rng: &mut StdRng, ctx: &mut Ctx) -> Result<Vec<Evaluation>> {
        let space = &*ctx.ev.space;
        let probs = self.probabilities();
        let mut actions = Vec::with_capacity(ctx.population);
        let mut genomes = Vec::with_capacity(ctx.population);
        for _ in 0..ctx.population {
            let a: Vec<u8> = probs
                .iter()
                .map(|p| {
                    let u: f64 = rng.random();
                    let mut acc = 0.0;
                    p.iter()
                        .position(|&pk| {
                            acc += pk;
                            u < acc
                        })
                        .unwrap_or(p.len() - 1) as u8
                })
                .collect();
            let mut g = Genome(a.clone());
            space.canonicalize(&mut g);
            actions.push(a);
            genomes.push(g);
        }
        let mut evals = ctx.ev.evaluate(genomes)?;
        let rewards: Vec<f64> =
            evals.iter().map(|e| self.config.reward.value(e.accuracy, e.latency_ms[0], self.target_ms)).collect();
        for (e, &r) in evals.iter_mut().zip(&rewards) {
            e.objective = Some(r);
        }
        let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
        let baseline = self.c.baseline.unwrap_or(mean);
        let adv: Vec<f64> = rewards.iter().map(|r| r - baseline).collect();
        match self.config.algorithm {
            PolicyGradient::Reinforce => self.ascend(&actions, &adv),
            PolicyGradient::Ppo => {
                let old: Vec<f64> = actions.iter().map(|a| self.log_prob(a)).collect();
                let eps = self.config.clip;
                for _ in 0..self.config.epochs {
                    // ∂/∂θ of min(r·A, clip(r, 1−ε, 1+ε)·A) is r·A·∂log π where the unclipped term is
                    // the minimum, and 0 where clipping binds.
                    let w: Vec<f64> = actions
                        .iter()
                        .zip(&old)
                        .zip(&adv)
                        .map(|((a, &lo), &adv_i)| {
                            let r = (self.log_prob(a) - lo).exp();
                            let clipped = (adv_i > 0.0 && r > 1.0 + eps) || (adv_i < 0.0 && r < 1.0 - eps);
                            if clipped {
                                0.0
                            } else {
                                r * adv_i
                            }
                        })
                        .collect();
                    self.ascend(&actions, &w);
                }
            }
        }
        let d = self.config.baseline_decay;
        self.c.baseline = Some(match self.c.baseline {
            None => mean,
            Some(b) => d * b + (1.0 - d) * mean,
        });
        let best = probs.iter().map(|p| p.iter().cloned().fold(0.0, f64::max)).sum::<f64>() / probs.len() as f64;
        (ctx.log)(format!("rl: mean reward {mean:.4}, baseline {baseline:.4}, mean max-probability {best:.3}"));
        Ok(evals)
    }

    fn state(&self) -> Result<Value> {
        Ok(serde_json::to_value(&self.c)?)
    }
    fn restore(&mut self, state: Value) -> Result<()> {
        self.c = serde_json::from_value(state)?;
        Ok(())
    }
}
