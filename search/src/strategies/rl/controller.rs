//! The RL controller: an LSTM that emits one choice per gene, trained by policy gradient.
//!
//! Structure (Zoph & Le 2017, NASNet 2018, kept by ENAS 2018 and, per its paper, MnasNet):
//! one LSTM layer of `hidden` units (NASNet and ENAS use 100) unrolled over the genes; at
//! step g a softmax classifier reads the hidden state and picks gene g's choice, whose
//! embedding is the next step's input. The first input is a learned start vector (ENAS's
//! `g_emb`). Genes have different cardinalities, so every gene has its own embedding table
//! and its own output head. Parameters start uniform in [−0.1, 0.1] (ENAS) — drawn from
//! the job's generator, not torch's.
//!
//! Training (MnasNet and NASNet used PPO; no hyper-parameters are published for MnasNet):
//! advantage = reward − b with b an exponential moving average of batch mean rewards
//! (NASNet's baseline, decay 0.95), then either one REINFORCE step on −A·log π(a) or
//! `epochs` full-batch steps on PPO's clipped surrogate −min(ρA, clip(ρ, 1 ± ε)A)
//! (Schulman et al. 2017), both with an entropy bonus. libtorch computes the unrolled
//! forward pass and its gradients in f64; Adam runs here on the flat parameter vectors, so
//! the whole state — weights, both Adam moments, step count and baseline — is plain f64
//! numbers that serialise exactly (as hex of their bytes) and resume bit for bit.

use crate::config::{PolicyGradient, RlConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// ENAS's initialisation range for every controller parameter.
const INIT_RANGE: f64 = 0.1;
const ADAM_B1: f64 = 0.9;
const ADAM_B2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;
const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// One parameter tensor with its Adam moments, flattened row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Param {
    name: String,
    shape: Vec<i64>,
    #[serde(with = "hex_f64")]
    value: Vec<f64>,
    #[serde(with = "hex_f64")]
    adam_m: Vec<f64>,
    #[serde(with = "hex_f64")]
    adam_v: Vec<f64>,
}

/// f64 vectors as the hex digits of their little-endian bytes: exact by construction, and
/// much cheaper to write and parse than decimal numbers — a controller holds ~10^5
/// parameters and the job checkpoints it every generation.
mod hex_f64 {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    const DIGITS: &[u8; 16] = b"0123456789abcdef";

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(16 * v.len());
        for b in v.iter().flat_map(|x| x.to_le_bytes()) {
            out.push(DIGITS[(b >> 4) as usize] as char);
            out.push(DIGITS[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 16 != 0 {
            return Err(D::Error::custom("hex-encoded f64 values need 16 digits each"));
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            _ => Err(D::Error::custom(format!("`{}` is not a lower-case hex digit", c as char))),
        };
        text.as_bytes()
            .chunks(16)
            .map(|digits| {
                let mut le = [0u8; 8];
                for (i, byte) in le.iter_mut().enumerate() {
                    *byte = (nibble(digits[2 * i])? << 4) | nibble(digits[2 * i + 1])?;
                }
                Ok(f64::from_le_bytes(le))
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Controller {
    cardinalities: Vec<usize>,
    hidden: usize,
    /// `start`, `lstm.{w_ih,w_hh,b_ih,b_hh}` (torch's LSTMCell layout, gates i, f, g, o),
    /// then per gene g: `embed.g` (not for the last gene) and `head.g.{w,b}`.
    params: Vec<Param>,
    adam_steps: u64,
    baseline: Option<f64>,
}

/// A batch drawn from the controller.
pub struct Batch {
    /// One choice per gene, per architecture.
    pub actions: Vec<Vec<u8>>,
    /// Mean over architectures and genes of the largest choice probability.
    pub mean_max_probability: f64,
    /// Mean entropy (nats) of one architecture's choices.
    pub entropy: f64,
}

/// What one update did.
pub struct Update {
    pub mean_reward: f64,
    /// The baseline the advantages were taken against (before this batch moved it).
    pub baseline: f64,
}

/// Runs `f` with libtorch on one thread in this thread, restoring the previous setting
/// (libtorch's OpenMP and MKL thread counts are per calling thread). The controller's
/// tensors are tiny: a thread team costs more than it saves — on a loaded two-core
/// machine its spinning workers made a 32 × 31 job take 77–109 s instead of 8 s — and
/// one thread makes every result independent of the machine's thread settings.
fn single_threaded<T>(f: impl FnOnce() -> T) -> T {
    let before = tch::get_num_threads();
    if before == 1 {
        return f();
    }
    tch::set_num_threads(1);
    let out = f();
    tch::set_num_threads(before);
    out
}

/// The parameters as torch tensors, in `Controller::params` order.
struct Net {
    all: Vec<Tensor>,
    n_genes: usize,
}

impl Net {
    fn start(&self) -> &Tensor {
        &self.all[0]
    }
    fn lstm(&self) -> (&Tensor, &Tensor, &Tensor, &Tensor) {
        (&self.all[1], &self.all[2], &self.all[3], &self.all[4])
    }
    fn embed(&self, g: usize) -> &Tensor {
        &self.all[5 + g]
    }
    fn head(&self, g: usize) -> (&Tensor, &Tensor) {
        let base = 5 + self.n_genes - 1 + 2 * g;
        (&self.all[base], &self.all[base + 1])
    }
}

/// Log-probabilities and entropies of a batch, summed over genes (shape [B]).
struct Unrolled {
    log_prob: Tensor,
    entropy: Tensor,
}

impl Controller {
    /// A fresh controller for genes of the given cardinalities, initialised from `rng`.
    pub fn new(cardinalities: Vec<usize>, hidden: usize, rng: &mut StdRng) -> Controller {
        assert!(!cardinalities.is_empty() && hidden > 0, "a controller needs genes and hidden units");
        let h = hidden as i64;
        let mut shapes: Vec<(String, Vec<i64>)> = vec![
            ("start".into(), vec![1, h]),
            ("lstm.w_ih".into(), vec![4 * h, h]),
            ("lstm.w_hh".into(), vec![4 * h, h]),
            ("lstm.b_ih".into(), vec![4 * h]),
            ("lstm.b_hh".into(), vec![4 * h]),
        ];
        let n = cardinalities.len();
        for (g, &k) in cardinalities.iter().enumerate().take(n - 1) {
            shapes.push((format!("embed.{g}"), vec![k as i64, h]));
        }
        for (g, &k) in cardinalities.iter().enumerate() {
            shapes.push((format!("head.{g}.w"), vec![k as i64, h]));
            shapes.push((format!("head.{g}.b"), vec![k as i64]));
        }
        // Its own stream, so the sampling stream does not depend on the parameter count.
        let mut init = StdRng::seed_from_u64(rng.random());
        let params = shapes
            .into_iter()
            .map(|(name, shape)| {
                let len = shape.iter().product::<i64>() as usize;
                let value = (0..len).map(|_| init.random_range(-INIT_RANGE..INIT_RANGE)).collect();
                Param { name, shape, value, adam_m: vec![0.0; len], adam_v: vec![0.0; len] }
            })
            .collect();
        Controller { cardinalities, hidden, params, adam_steps: 0, baseline: None }
    }

    pub fn cardinalities(&self) -> &[usize] {
        &self.cardinalities
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Number of trainable numbers.
    pub fn parameter_count(&self) -> usize {
        self.params.iter().map(|p| p.value.len()).sum()
    }

    /// Checks a deserialised controller against its own layout (a corrupt checkpoint must
    /// fail here, not inside libtorch).
    pub fn check(&self) -> Result<(), super::StrategyError> {
        let mut rng = StdRng::seed_from_u64(0);
        let fresh = Controller::new(self.cardinalities.clone(), self.hidden, &mut rng);
        let same = fresh.params.len() == self.params.len()
            && fresh.params.iter().zip(&self.params).all(|(a, b)| {
                a.name == b.name
                    && a.shape == b.shape
                    && b.value.len() == a.value.len()
                    && b.adam_m.len() == a.value.len()
                    && b.adam_v.len() == a.value.len()
                    && b.value.iter().chain(&b.adam_m).chain(&b.adam_v).all(|x| x.is_finite())
            });
        if !same {
            return Err(super::StrategyError::RlLayout);
        }
        Ok(())
    }

    fn net(&self, requires_grad: bool) -> Net {
        let all = self
            .params
            .iter()
            .map(|p| Tensor::from_slice(&p.value).view(p.shape.as_slice()).set_requires_grad(requires_grad))
            .collect();
        Net { all, n_genes: self.cardinalities.len() }
    }

    /// Unrolls the LSTM over the genes for `batch` architectures; `pick(g, probabilities)`
    /// returns gene g's choices ([B], int64) given its softmax ([B, k]).
    fn unroll(&self, net: &Net, batch: i64, mut pick: impl FnMut(usize, &Tensor) -> Tensor) -> Unrolled {
        let h0 = Tensor::zeros([batch, self.hidden as i64], F64);
        let (mut h, mut c) = (h0.shallow_clone(), h0);
        let mut x = net.start().expand([batch, self.hidden as i64], false);
        let (mut log_probs, mut entropies) = (Vec::new(), Vec::new());
        let (w_ih, w_hh, b_ih, b_hh) = net.lstm();
        for g in 0..self.cardinalities.len() {
            (h, c) = x.lstm_cell(&[&h, &c], w_ih, w_hh, Some(b_ih), Some(b_hh));
            let (w, b) = net.head(g);
            let logp = h.linear(w, Some(b)).log_softmax(-1, Kind::Double);
            let chosen = pick(g, &logp.exp().detach());
            log_probs.push(logp.gather(1, &chosen.unsqueeze(1), false).squeeze_dim(1));
            entropies.push(-(logp.exp() * &logp).sum_dim_intlist(-1, false, Kind::Double));
            if g + 1 < self.cardinalities.len() {
                x = net.embed(g).index_select(0, &chosen);
            }
        }
        let total = |v: &[Tensor]| Tensor::stack(v, 1).sum_dim_intlist(1, false, Kind::Double);
        Unrolled { log_prob: total(&log_probs), entropy: total(&entropies) }
    }

    /// Samples `n` architectures, drawing every choice from `rng` (inverse CDF), gene by
    /// gene for the whole batch.
    pub fn sample(&self, n: usize, rng: &mut StdRng) -> Batch {
        single_threaded(|| {
            let net = self.net(false);
            let mut actions = vec![Vec::with_capacity(self.cardinalities.len()); n];
            let mut max_p = 0.0;
            let un = tch::no_grad(|| {
                self.unroll(&net, n as i64, |_, probs| {
                    let rows = Vec::<Vec<f64>>::try_from(probs).expect("f64 probabilities");
                    let mut chosen = Vec::with_capacity(n);
                    for (row, a) in rows.iter().zip(actions.iter_mut()) {
                        let u: f64 = rng.random();
                        let mut acc = 0.0;
                        let k = row
                            .iter()
                            .position(|&p| {
                                acc += p;
                                u < acc
                            })
                            .unwrap_or(row.len() - 1);
                        max_p += row.iter().cloned().fold(0.0, f64::max);
                        a.push(k as u8);
                        chosen.push(k as i64);
                    }
                    Tensor::from_slice(&chosen)
                })
            });
            let entropy = f64::try_from(un.entropy.mean(Kind::Double)).expect("scalar");
            Batch { mean_max_probability: max_p / (n * self.cardinalities.len()) as f64, entropy, actions }
        })
    }

    /// The most likely architecture (argmax at every step) and the probability of each of its choices.
    pub fn greedy(&self) -> (Vec<u8>, Vec<f64>) {
        single_threaded(|| {
            let net = self.net(false);
            let (mut arch, mut probs) = (Vec::new(), Vec::new());
            tch::no_grad(|| {
                self.unroll(&net, 1, |_, p| {
                    let row = Vec::<f64>::try_from(p.squeeze_dim(0)).expect("f64 probabilities");
                    let k = (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best });
                    arch.push(k as u8);
                    probs.push(row[k]);
                    Tensor::from_slice(&[k as i64])
                })
            });
            (arch, probs)
        })
    }

    /// Log-probabilities (and entropies) of given architectures under the current weights.
    fn evaluate(&self, net: &Net, actions: &[Vec<u8>]) -> Unrolled {
        let per_gene: Vec<Tensor> = (0..self.cardinalities.len())
            .map(|g| Tensor::from_slice(&actions.iter().map(|a| a[g] as i64).collect::<Vec<_>>()))
            .collect();
        self.unroll(net, actions.len() as i64, |g, _| per_gene[g].shallow_clone())
    }

    /// One Adam descent step on `loss(unrolled)`.
    fn descend(&mut self, actions: &[Vec<u8>], config: &RlConfig, loss: impl Fn(&Unrolled) -> Tensor) {
        let net = self.net(true);
        let un = self.evaluate(&net, actions);
        let total = loss(&un) - config.entropy_weight * un.entropy.mean(Kind::Double);
        total.backward();
        self.adam_steps += 1;
        let t = self.adam_steps as i32;
        let (c1, c2) = (1.0 - ADAM_B1.powi(t), 1.0 - ADAM_B2.powi(t));
        let lr = config.learning_rate;
        for (p, tensor) in self.params.iter_mut().zip(&net.all) {
            let grad = Vec::<f64>::try_from(tensor.grad().flatten(0, -1)).expect("f64 gradient");
            for (i, g) in grad.into_iter().enumerate() {
                let (m, v) = (&mut p.adam_m[i], &mut p.adam_v[i]);
                *m = ADAM_B1 * *m + (1.0 - ADAM_B1) * g;
                *v = ADAM_B2 * *v + (1.0 - ADAM_B2) * g * g;
                p.value[i] -= lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
            }
        }
    }

    /// Trains on one batch of sampled architectures and their rewards.
    pub fn update(&mut self, actions: &[Vec<u8>], rewards: &[f64], config: &RlConfig) -> Update {
        single_threaded(|| {
            assert_eq!(actions.len(), rewards.len());
            let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
            let baseline = self.baseline.unwrap_or(mean);
            let adv = Tensor::from_slice(&rewards.iter().map(|r| r - baseline).collect::<Vec<_>>());
            match config.algorithm {
                PolicyGradient::Reinforce => {
                    self.descend(actions, config, |un| -(&adv * &un.log_prob).mean(Kind::Double));
                }
                PolicyGradient::Ppo => {
                    let old = tch::no_grad(|| self.evaluate(&self.net(false), actions).log_prob);
                    let eps = config.clip;
                    for _ in 0..config.epochs {
                        self.descend(actions, config, |un| {
                            let ratio = (&un.log_prob - &old).exp();
                            let clipped = ratio.clamp(1.0 - eps, 1.0 + eps);
                            -(&ratio * &adv).minimum(&(clipped * &adv)).mean(Kind::Double)
                        });
                    }
                }
            }
            let d = config.baseline_decay;
            self.baseline = Some(match self.baseline {
                None => mean,
                Some(b) => d * b + (1.0 - d) * mean,
            });
            Update { mean_reward: mean, baseline }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_reward(arch: &[u8], target: &[u8]) -> f64 {
        arch.iter().zip(target).filter(|(a, t)| a == t).count() as f64 / target.len() as f64
    }

    #[test]
    fn the_controller_learns_a_hidden_architecture() {
        // Reward = fraction of genes matching a hidden architecture; genes of mixed
        // cardinality. PPO with the defaults must find it and concentrate on it.
        let cards = vec![9, 9, 3, 2, 7, 9, 4, 9, 5, 9, 9, 6];
        let target: Vec<u8> = cards.iter().enumerate().map(|(g, &k)| ((g * 5 + 1) % k) as u8).collect();
        let config = RlConfig::default();
        let mut rng = StdRng::seed_from_u64(3);
        let mut c = Controller::new(cards.clone(), config.hidden, &mut rng);
        let first = c.sample(32, &mut rng);
        let first_mean = first.actions.iter().map(|a| toy_reward(a, &target)).sum::<f64>() / 32.0;
        for _ in 0..40 {
            let b = c.sample(32, &mut rng);
            let r: Vec<f64> = b.actions.iter().map(|a| toy_reward(a, &target)).collect();
            c.update(&b.actions, &r, &config);
        }
        let last = c.sample(32, &mut rng);
        let last_mean = last.actions.iter().map(|a| toy_reward(a, &target)).sum::<f64>() / 32.0;
        let (greedy, probs) = c.greedy();
        assert_eq!(greedy, target, "first mean reward {first_mean:.3}, last {last_mean:.3}");
        assert!(last_mean > 0.9 && first_mean < 0.4, "first {first_mean:.3}, last {last_mean:.3}");
        assert!(last.mean_max_probability > 0.9, "{}", last.mean_max_probability);
        assert!(probs.iter().all(|&p| p > 0.5), "{probs:?}");
    }

    #[test]
    fn ppo_and_reinforce_both_learn_and_serialise_exactly() {
        for algorithm in [PolicyGradient::Reinforce, PolicyGradient::Ppo] {
            let config = RlConfig { algorithm, ..Default::default() };
            let cards = vec![4, 4, 4, 4];
            let mut rng = StdRng::seed_from_u64(1);
            let mut c = Controller::new(cards, 16, &mut rng);
            for _ in 0..5 {
                let b = c.sample(8, &mut rng);
                let r: Vec<f64> = b.actions.iter().map(|a| a.iter().map(|&x| x as f64).sum::<f64>()).collect();
                c.update(&b.actions, &r, &config);
            }
            let text = serde_json::to_string(&c).unwrap();
            let back: Controller = serde_json::from_str(&text).unwrap();
            assert_eq!(back, c);
            back.check().unwrap();
            // Identical state continues identically.
            let (mut a, mut b) = (c.clone(), back);
            let (mut ra, mut rb) = (StdRng::seed_from_u64(9), StdRng::seed_from_u64(9));
            for _ in 0..3 {
                let (sa, sb) = (a.sample(8, &mut ra), b.sample(8, &mut rb));
                assert_eq!(sa.actions, sb.actions);
                let r: Vec<f64> = sa.actions.iter().map(|x| x[0] as f64).collect();
                a.update(&sa.actions, &r, &config);
                b.update(&sb.actions, &r, &config);
            }
            assert_eq!(a, b);
        }
    }

    #[test]
    fn a_corrupt_state_is_refused() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut c = Controller::new(vec![3, 2], 8, &mut rng);
        c.check().unwrap();
        let mut short = c.clone();
        short.params[2].value.pop();
        assert!(short.check().is_err());
        c.params[1].adam_v[0] = f64::NAN;
        assert!(c.check().is_err());
        let mut v = serde_json::to_value(&c).unwrap();
        let digits = v["params"][0]["value"].as_str().unwrap().to_string();
        v["params"][0]["value"] = digits[1..].into();
        assert!(serde_json::from_value::<Controller>(v.clone()).is_err(), "odd digit count");
        v["params"][0]["value"] = digits.replace('a', "x").into();
        assert!(serde_json::from_value::<Controller>(v).is_err(), "not hex");
    }
}
