//! A search job's configuration: the JSON file a user writes (or the CLI builds), saved
//! fully resolved in the job directory. Unknown fields are errors, so typos do not
//! silently fall back to defaults.

use crate::objectives::Reward;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A latency objective: a predictor file, or live measurement on a device, and the label
/// its history column gets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    pub label: String,
    /// Predictor file (JSON, loaded by `predictors::load_predictor`), or a description for
    /// in-memory predictors; for a measured objective, the directory of its measurement
    /// journal (jobs pointed at the same directory share their measurements).
    pub path: String,
    /// Time every candidate on this device instead of predicting its latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<latency::profile::DeviceSpec>,
}

/// Where accuracy numbers come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AccuracySpec {
    /// An accuracy predictor file.
    Predictor { path: String },
    /// A trained supernet checkpoint directory (weight-sharing evaluation).
    Supernet { path: String, eval: crate::objectives::supernet::SupernetEval },
    /// The training-free capacity proxy (see `objectives::accuracy::CapacityProxy`).
    CapacityProxy,
}

/// OFA's evolutionary search (once-for-all `EvolutionFinder`), defaults from its tutorial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvolutionConfig {
    /// Fraction of the population kept as parents each generation.
    pub parent_ratio: f64,
    /// Per-gene resampling probability of a mutation (OFA's `arch_mutate_prob`).
    pub mutate_prob: f64,
    /// Resampling probability of the resolution gene (OFA's `resolution_mutate_prob`).
    pub resolution_mutate_prob: f64,
    /// Fraction of the children made by mutation; the rest by crossover.
    pub mutation_ratio: f64,
}

impl Default for EvolutionConfig {
    fn default() -> Self {
        EvolutionConfig { parent_ratio: 0.25, mutate_prob: 0.1, resolution_mutate_prob: 0.5, mutation_ratio: 0.5 }
    }
}

/// Regularized (aging) evolution, Real et al. AAAI 2019.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegularizedConfig {
    /// Tournament size S; unset: population / 4 (the paper's P = 100, S = 25).
    pub sample_size: Option<usize>,
    /// Children per generation (the paper's parallel workers), each replacing the oldest
    /// member; unset: population / 4.
    pub children_per_generation: Option<usize>,
}

/// NSGA-II, Deb et al. 2002, with constrained domination on the latency target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Nsga2Config {
    pub crossover_prob: f64,
    pub mutate_prob: f64,
}

impl Default for Nsga2Config {
    fn default() -> Self {
        Nsga2Config { crossover_prob: 0.9, mutate_prob: 0.1 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyGradient {
    Reinforce,
    /// PPO with the clipped surrogate (Schulman et al. 2017), as MnasNet used.
    Ppo,
}

/// MnasNet-style controller: an LSTM that emits one choice per gene (NASNet/ENAS
/// controller), trained on ACC·(LAT/T)^w. Defaults and their sources: `strategies::rl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RlConfig {
    pub algorithm: PolicyGradient,
    /// MnasNet exponents; `Reward::SOFT` (α = β = −0.07) or `Reward::HARD` (α = 0, β = −1).
    pub reward: Reward,
    /// Adam step size of the controller.
    pub learning_rate: f64,
    /// Moving-average baseline: b ← decay·b + (1 − decay)·mean reward.
    pub baseline_decay: f64,
    /// PPO clip range ε.
    pub clip: f64,
    /// PPO optimisation epochs per batch.
    pub epochs: usize,
    /// LSTM hidden units (also the width of the choice embeddings).
    pub hidden: usize,
    /// Weight of the policy-entropy bonus in the controller's loss.
    pub entropy_weight: f64,
}

impl Default for RlConfig {
    fn default() -> Self {
        RlConfig {
            algorithm: PolicyGradient::Ppo,
            reward: Reward::SOFT,
            learning_rate: 0.005,
            baseline_decay: 0.95,
            clip: 0.2,
            epochs: 4,
            hidden: 100,
            entropy_weight: 1e-4,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StrategyConfig {
    Random,
    Evolution(EvolutionConfig),
    Regularized(RegularizedConfig),
    Nsga2(Nsga2Config),
    Rl(RlConfig),
}

impl StrategyConfig {
    /// The strategy with its default parameters: `random`, `evolution`, `regularized`, `nsga2`, `rl`.
    pub fn by_name(name: &str) -> Result<StrategyConfig> {
        Ok(match name {
            "random" => StrategyConfig::Random,
            "evolution" => StrategyConfig::Evolution(Default::default()),
            "regularized" => StrategyConfig::Regularized(Default::default()),
            "nsga2" => StrategyConfig::Nsga2(Default::default()),
            "rl" => StrategyConfig::Rl(Default::default()),
            _ => bail!("unknown strategy `{name}` (expected evolution, regularized, nsga2, random or rl)"),
        })
    }
    pub fn name(&self) -> &'static str {
        match self {
            StrategyConfig::Random => "random",
            StrategyConfig::Evolution(_) => "evolution",
            StrategyConfig::Regularized(_) => "regularized",
            StrategyConfig::Nsga2(_) => "nsga2",
            StrategyConfig::Rl(_) => "rl",
        }
    }
}

fn default_max_tries() -> usize {
    100_000
}

/// Default of [`JobConfig::max_infeasible_generations`].
pub const MAX_INFEASIBLE_GENERATIONS: usize = 20;

fn default_max_infeasible_generations() -> usize {
    MAX_INFEASIBLE_GENERATIONS
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub space: String,
    /// Latency objectives; the first one carries the constraint.
    pub latency: Vec<LatencySpec>,
    pub max_latency_ms: f64,
    pub accuracy: AccuracySpec,
    pub strategy: StrategyConfig,
    pub population: usize,
    /// Generations after the initial population (generation 0).
    pub generations: usize,
    pub seed: u64,
    /// Cap on proposals per generation when rejection-sampling feasible candidates.
    #[serde(default = "default_max_tries")]
    pub max_tries: usize,
    /// Genes held at one choice: gene name (`r`, `ks[3]`) or family (`ks`) → choice label
    /// (see `search::pinned`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fixed: BTreeMap<String, String>,
    /// Stop (with an error saying why) after this many generations in a row without a
    /// feasible member: the target is unreachable, or nearly so, under the latency source.
    /// 0: never stop early. Not applied to `rl`, whose MnasNet reward trades latency for
    /// accuracy and may keep members over the target by design.
    #[serde(default = "default_max_infeasible_generations")]
    pub max_infeasible_generations: usize,
    /// The precision the searched models are deployed in (fp32, fp16, int8; configs of
    /// older builds: fp32). Latency predictors must have been fitted on measurements of it
    /// (`predictors::check_precision`), and measured objectives time models written in it.
    #[serde(default)]
    pub precision: latency::modelfile::Precision,
    /// Price the job's models with predictors fitted on another precision anyway (said in the
    /// job's log): e.g. an fp32 table as a stand-in until int8 measurements exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_precision_mismatch: bool,
}

impl JobConfig {
    /// Fills parameters whose defaults depend on others (saved resolved in config.json).
    pub fn resolve(&mut self) {
        let quarter = (self.population / 4).max(1);
        if let StrategyConfig::Regularized(r) = &mut self.strategy {
            r.sample_size.get_or_insert(quarter);
            r.children_per_generation.get_or_insert(quarter);
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.latency.is_empty() {
            bail!("a search job needs at least one latency predictor");
        }
        for (i, l) in self.latency.iter().enumerate() {
            if let Some(other) = self.latency[..i].iter().find(|o| o.label == l.label) {
                bail!(
                    "two latency objectives are labelled `{}` ({} and {}): give each its own label, e.g. \
                     --latency {}_2={}",
                    l.label,
                    other.path,
                    l.path,
                    l.label,
                    l.path
                );
            }
        }
        if !(self.max_latency_ms > 0.0 && self.max_latency_ms.is_finite()) {
            bail!("max_latency_ms must be a positive number, got {}", self.max_latency_ms);
        }
        if self.population < 2 {
            bail!("population must be at least 2, got {}", self.population);
        }
        if self.max_tries == 0 {
            bail!("max_tries must be positive");
        }
        match &self.strategy {
            StrategyConfig::Evolution(e) => {
                for (name, v) in [
                    ("parent_ratio", e.parent_ratio),
                    ("mutation_ratio", e.mutation_ratio),
                    ("mutate_prob", e.mutate_prob),
                    ("resolution_mutate_prob", e.resolution_mutate_prob),
                ] {
                    if !(0.0..=1.0).contains(&v) {
                        bail!("evolution.{name} must be in [0, 1], got {v}");
                    }
                }
                if (e.parent_ratio * self.population as f64).round() < 1.0 {
                    bail!("evolution.parent_ratio × population keeps no parent");
                }
            }
            StrategyConfig::Regularized(r) => {
                let ok = |v: Option<usize>| v.is_none_or(|v| (1..=self.population).contains(&v));
                if !ok(r.sample_size) {
                    bail!("regularized.sample_size must be in 1..={}, got {:?}", self.population, r.sample_size);
                }
                if !ok(r.children_per_generation) {
                    bail!("regularized.children_per_generation must be in 1..={}", self.population);
                }
            }
            StrategyConfig::Rl(r) => {
                if r.learning_rate.is_nan()
                    || r.learning_rate <= 0.0
                    || !(0.0..1.0).contains(&r.baseline_decay)
                    || r.epochs == 0
                {
                    bail!("rl: learning_rate > 0, baseline_decay in [0, 1) and epochs >= 1 are required");
                }
                if r.hidden == 0 {
                    bail!("rl.hidden must be at least 1");
                }
                if !(r.clip > 0.0 && r.clip < 1.0) {
                    bail!("rl.clip must be in (0, 1), got {}", r.clip);
                }
                if !(r.entropy_weight >= 0.0 && r.entropy_weight.is_finite()) {
                    bail!("rl.entropy_weight must be a non-negative number, got {}", r.entropy_weight);
                }
            }
            StrategyConfig::Random | StrategyConfig::Nsga2(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(strategy: StrategyConfig) -> JobConfig {
        JobConfig {
            space: "fbnet-cifar100".into(),
            latency: vec![LatencySpec { label: "dev".into(), path: "lut.json".into(), measure: None }],
            max_latency_ms: 10.0,
            accuracy: AccuracySpec::CapacityProxy,
            strategy,
            population: 8,
            generations: 2,
            seed: 0,
            max_tries: 100,
            fixed: Default::default(),
            max_infeasible_generations: MAX_INFEASIBLE_GENERATIONS,
            precision: Default::default(),
            allow_precision_mismatch: false,
        }
    }

    #[test]
    fn bad_strategy_settings_are_refused_before_the_job_starts() {
        assert!(job(StrategyConfig::by_name("rl").unwrap()).validate().is_ok());
        let rl = |f: fn(&mut RlConfig)| {
            let mut c = RlConfig::default();
            f(&mut c);
            job(StrategyConfig::Rl(c)).validate().unwrap_err().to_string()
        };
        assert!(rl(|c| c.hidden = 0).contains("rl.hidden"));
        assert!(rl(|c| c.clip = 1.5).contains("rl.clip"));
        assert!(rl(|c| c.entropy_weight = f64::NAN).contains("rl.entropy_weight"));
        assert!(rl(|c| c.learning_rate = 0.0).contains("learning_rate"));
        let e = job(StrategyConfig::Evolution(EvolutionConfig { parent_ratio: 1.5, ..Default::default() }));
        assert!(e.validate().unwrap_err().to_string().contains("parent_ratio"));
        assert!(job(StrategyConfig::Random).validate().is_ok());
    }

    #[test]
    fn two_latency_objectives_with_one_label_are_refused_naming_it() {
        let mut j = job(StrategyConfig::Random);
        j.latency.push(LatencySpec { label: "dev".into(), path: "other.json".into(), measure: None });
        let err = j.validate().unwrap_err().to_string();
        assert!(err.contains("`dev`") && err.contains("other.json"), "{err}");
    }

    #[test]
    fn a_saved_config_without_the_early_stop_reads_with_its_default() {
        let mut v = serde_json::to_value(job(StrategyConfig::Random)).unwrap();
        v.as_object_mut().unwrap().remove("max_infeasible_generations");
        let c: JobConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c.max_infeasible_generations, MAX_INFEASIBLE_GENERATIONS);
    }

    #[test]
    fn a_saved_config_without_a_precision_is_an_fp32_job() {
        use latency::modelfile::Precision;
        let mut v = serde_json::to_value(job(StrategyConfig::Random)).unwrap();
        assert_eq!(v["precision"], "fp32", "a config says its precision");
        assert!(v.get("allow_precision_mismatch").is_none(), "written only when set");
        v.as_object_mut().unwrap().remove("precision");
        let c: JobConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!((c.precision, c.allow_precision_mismatch), (Precision::Fp32, false));
        assert_eq!(c, job(StrategyConfig::Random), "an old job's config equals the same job's today (resume)");
        v["precision"] = "int8".into();
        v["allow_precision_mismatch"] = true.into();
        let c: JobConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!((c.precision, c.allow_precision_mismatch), (Precision::Int8, true));
        v["precision"] = "int4".into();
        assert!(serde_json::from_value::<JobConfig>(v).unwrap_err().to_string().contains("int4"));
    }
}
