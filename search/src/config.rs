//! A search job's configuration, one type for every job: the space, the latency objectives
//! and target, the seed and precision, and how the job searches — a sampling strategy
//! (random, evolution, regularized, nsga2, rl: generations of evaluated members) or a
//! differentiable one (fbnet, singlepath: epochs of supernet training).
//!
//! In a file (a user's `--config`, a job's `config.json`, the checkpoint's copy) the
//! strategy is one tagged object, `"strategy": {"kind": "fbnet", …}`, beside the settings of
//! its kind; the file is read as [`JobSettings`], where every field is optional:
//! [`JobSettings::overlay`] lays explicit settings (the command line's flags) over a file's,
//! and [`JobSettings::resolve`] fills what neither gives from the library's defaults
//! ([`SamplingConfig::default`], [`DnasMethod::paper_schedule`], …) into a [`JobConfig`].
//! Precedence: flags, then the file, then the defaults. Unknown fields are errors naming
//! them, and so are fields of the other kind of search (`population` for `fbnet`), so typos
//! never silently fall back to defaults.
//!
//! Files of older builds read unchanged: a sampling job's config.json was this format
//! already, and a differentiable job's (`"method": {"kind": "fbnet", …}`, one `latency`
//! object) reads through the aliases of [`JobSettings`].

use crate::objectives::supernet::SupernetEval;
use crate::objectives::Reward;
use latency::modelfile::Precision;
use serde::{Deserialize, Deserializer, Serialize};
use spaces::SpaceFamily;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Why a configuration cannot be read or does not describe a job.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required setting that neither the flags nor the file give.
    #[error("missing `{field}`: give --{flag} or put it in --config{hint}")]
    Missing { field: &'static str, flag: &'static str, hint: &'static str },
    /// A setting of the other kind of search (`population` for `fbnet`, `epochs` for `evolution`).
    #[error("`{field}` (--{flag}) does not apply to --strategy {strategy}: {why}")]
    NotApplicable { field: &'static str, flag: &'static str, strategy: &'static str, why: &'static str },
    /// A strategy name that is not one of [`StrategyKind::ALL`].
    #[error("unknown strategy `{0}` (expected evolution, regularized, nsga2, random, rl, fbnet or singlepath)")]
    UnknownStrategy(String),
    /// A value out of its range or a combination that cannot run; the message names the field.
    #[error("{why}")]
    Invalid { field: &'static str, why: String },
    /// Two latency objectives with one label.
    #[error(
        "two latency objectives are labelled `{label}` ({first} and {second}): give each its own label, e.g. \
         --latency {label}_2={second}"
    )]
    DuplicateLabel { label: String, first: String, second: String },
    #[error("unknown space `{space}`")]
    Space {
        space: String,
        #[source]
        source: spaces::ArchError,
    },
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a job configuration")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An [`ConfigError::Invalid`] naming `field`.
pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, why: why.into() }
}

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

impl AccuracySpec {
    /// The accuracy source a file is: a supernet checkpoint directory (`hwnas train`) or an
    /// OFA supernet `.pth`, evaluated on `data` (`max_examples` validation examples per
    /// candidate, all when unset), or an accuracy predictor `.json`. The path is made
    /// absolute, so a resumed job finds it from any directory.
    pub fn for_file(path: &Path, data: Option<&str>, max_examples: Option<usize>) -> Result<AccuracySpec, ConfigError> {
        let p = std::fs::canonicalize(path).unwrap_or_else(|_| path.into()).display().to_string();
        if path.is_dir() || crate::nn::supernet::ofa_checkpoint::is_torch_file(path) {
            let data = data.ok_or_else(|| {
                invalid(
                    "accuracy",
                    format!(
                        "--accuracy {p} is a supernet checkpoint: give --accuracy-data (e.g. cifar10:DIR) to \
                         evaluate on"
                    ),
                )
            })?;
            return Ok(AccuracySpec::Supernet { path: p, eval: SupernetEval::new(data, max_examples) });
        }
        match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
            "json" => Ok(AccuracySpec::Predictor { path: p }),
            other => Err(invalid(
                "accuracy",
                format!(
                    "--accuracy {p}: expected a predictor .json, a supernet checkpoint directory or an OFA supernet \
                     .pth, got `.{other}`"
                ),
            )),
        }
    }
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

/// FBNet DNAS settings (Wu et al. 2019; paper defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FbNetConfig {
    pub alpha: f64,
    pub beta: f64,
    /// Initial Gumbel-softmax temperature τ0.
    pub tau0: f64,
    /// τ = τ0·exp(−tau_decay·epoch).
    pub tau_decay: f64,
    /// Adam learning rate of θ (weight decay 5e-4).
    pub arch_lr: f64,
}

impl Default for FbNetConfig {
    fn default() -> Self {
        FbNetConfig { alpha: 0.2, beta: 0.6, tau0: 5.0, tau_decay: 0.045, arch_lr: 0.01 }
    }
}

/// Single-Path NAS settings (defaults: the released search, `shared/reference/spaces.md` §3).
/// Weights and thresholds share one RMSProp at [`DnasConfig::lr`] (the paper's 0.016 per
/// 256 images), decayed ×`lr_decay` every `lr_decay_epochs` epochs (staircase, no warm-up).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SinglePathConfig {
    /// Weight of ln R (R in ms): the released code's λ·10³ with the documented λ = 0.020.
    pub lambda: f64,
    /// RMSProp decay of the mean square, momentum and ε (inside the square root, TF).
    pub rms_decay: f64,
    pub rms_momentum: f64,
    pub rms_eps: f64,
    /// Learning-rate factor applied every `lr_decay_epochs` epochs.
    pub lr_decay: f64,
    pub lr_decay_epochs: f64,
    /// Keep-probability of dropout on the indicator outputs during the warm-up epochs.
    pub indicator_keep: f64,
    /// Multiplier of the thresholds' learning rate. The paper has one learning rate (1);
    /// a larger value lets a run of a few hundred steps move thresholds that the paper's
    /// 10k-step search moves slowly (σ' of kernel norms far from the threshold is tiny).
    pub threshold_lr_scale: f64,
}

impl Default for SinglePathConfig {
    fn default() -> Self {
        SinglePathConfig {
            lambda: 20.0,
            rms_decay: 0.9,
            rms_momentum: 0.9,
            rms_eps: 1e-3,
            lr_decay: 0.97,
            lr_decay_epochs: 2.4,
            indicator_keep: 0.6,
            threshold_lr_scale: 1.0,
        }
    }
}

impl SinglePathConfig {
    /// The paper's learning rate at batch size `batch`: 0.016 per 256 images.
    pub fn paper_lr(batch: usize) -> f64 {
        0.016 * batch as f64 / 256.0
    }
}

/// A sampling strategy and its parameters.
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
    /// The sampling strategy with its default parameters: `random`, `evolution`,
    /// `regularized`, `nsga2`, `rl`.
    pub fn by_name(name: &str) -> Result<StrategyConfig, ConfigError> {
        match StrategySpec::by_name(name)? {
            StrategySpec::Sampling(s) => Ok(s),
            StrategySpec::Differentiable(m) => {
                Err(invalid("strategy", format!("`{}` is a differentiable search, not a sampling strategy", m.name())))
            }
        }
    }
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
    pub fn kind(&self) -> StrategyKind {
        match self {
            StrategyConfig::Random => StrategyKind::Random,
            StrategyConfig::Evolution(_) => StrategyKind::Evolution,
            StrategyConfig::Regularized(_) => StrategyKind::Regularized,
            StrategyConfig::Nsga2(_) => StrategyKind::Nsga2,
            StrategyConfig::Rl(_) => StrategyKind::Rl,
        }
    }
}

/// A differentiable search method and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DnasMethod {
    Fbnet(FbNetConfig),
    Singlepath(SinglePathConfig),
}

/// The training schedule a differentiable method's paper used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperSchedule {
    pub epochs: usize,
    pub warmup_epochs: usize,
    /// Learning rate of the weights at the batch size asked for.
    pub lr: f64,
}

impl DnasMethod {
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
    pub fn kind(&self) -> StrategyKind {
        match self {
            DnasMethod::Fbnet(_) => StrategyKind::Fbnet,
            DnasMethod::Singlepath(_) => StrategyKind::Singlepath,
        }
    }
    /// FBNet: 90 epochs, the first 10 training weights only, SGD at 0.1 (cosine). Single-Path:
    /// 8 epochs, 5 with λ = 0, the joint RMSProp at 0.016 per 256 images
    /// ([`SinglePathConfig::paper_lr`]).
    pub fn paper_schedule(&self, batch: usize) -> PaperSchedule {
        match self {
            DnasMethod::Fbnet(_) => PaperSchedule { epochs: 90, warmup_epochs: 10, lr: 0.1 },
            DnasMethod::Singlepath(_) => {
                PaperSchedule { epochs: 8, warmup_epochs: 5, lr: SinglePathConfig::paper_lr(batch) }
            }
        }
    }
    /// The spaces the method searches.
    fn searches(&self, family: SpaceFamily) -> bool {
        match self {
            DnasMethod::Fbnet(_) => family == SpaceFamily::FbNet,
            DnasMethod::Singlepath(_) => family == SpaceFamily::SinglePath,
        }
    }
}

/// The seven strategies by name, as `--strategy` and a config's `strategy.kind` name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyKind {
    Random,
    Evolution,
    Regularized,
    Nsga2,
    Rl,
    Fbnet,
    Singlepath,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 7] = [
        StrategyKind::Evolution,
        StrategyKind::Regularized,
        StrategyKind::Nsga2,
        StrategyKind::Random,
        StrategyKind::Rl,
        StrategyKind::Fbnet,
        StrategyKind::Singlepath,
    ];
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Random => "random",
            StrategyKind::Evolution => "evolution",
            StrategyKind::Regularized => "regularized",
            StrategyKind::Nsga2 => "nsga2",
            StrategyKind::Rl => "rl",
            StrategyKind::Fbnet => "fbnet",
            StrategyKind::Singlepath => "singlepath",
        }
    }
    /// Whether the strategy trains a supernet (epochs) rather than sampling members (generations).
    pub fn is_differentiable(self) -> bool {
        matches!(self, StrategyKind::Fbnet | StrategyKind::Singlepath)
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StrategyKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        StrategyKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| ConfigError::UnknownStrategy(s.into()))
    }
}

/// A strategy of either kind with its parameters: the `strategy` object of a config file,
/// tagged by `kind`.
#[derive(Clone, Debug, PartialEq)]
pub enum StrategySpec {
    Sampling(StrategyConfig),
    Differentiable(DnasMethod),
}

impl StrategySpec {
    /// The strategy `name` with its default parameters.
    pub fn by_name(name: &str) -> Result<StrategySpec, ConfigError> {
        Ok(StrategySpec::defaults(name.parse()?))
    }
    pub fn defaults(kind: StrategyKind) -> StrategySpec {
        use StrategySpec::{Differentiable as D, Sampling as S};
        match kind {
            StrategyKind::Random => S(StrategyConfig::Random),
            StrategyKind::Evolution => S(StrategyConfig::Evolution(Default::default())),
            StrategyKind::Regularized => S(StrategyConfig::Regularized(Default::default())),
            StrategyKind::Nsga2 => S(StrategyConfig::Nsga2(Default::default())),
            StrategyKind::Rl => S(StrategyConfig::Rl(Default::default())),
            StrategyKind::Fbnet => D(DnasMethod::Fbnet(Default::default())),
            StrategyKind::Singlepath => D(DnasMethod::Singlepath(Default::default())),
        }
    }
    pub fn kind(&self) -> StrategyKind {
        match self {
            StrategySpec::Sampling(s) => s.kind(),
            StrategySpec::Differentiable(m) => m.kind(),
        }
    }
}

/// OFA's search: evolution.
impl Default for StrategySpec {
    fn default() -> Self {
        StrategySpec::Sampling(StrategyConfig::Evolution(Default::default()))
    }
}

impl Serialize for StrategySpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StrategySpec::Sampling(c) => c.serialize(s),
            StrategySpec::Differentiable(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StrategySpec {
    /// Dispatches on `kind`, so that errors are those of the strategy named (an unknown
    /// field is named) rather than untagged's "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        let kind = v.get("kind").and_then(|k| k.as_str()).ok_or_else(|| D::Error::missing_field("kind"))?;
        let kind: StrategyKind = kind.parse().map_err(D::Error::custom)?;
        Ok(if kind.is_differentiable() {
            StrategySpec::Differentiable(serde_json::from_value(v).map_err(D::Error::custom)?)
        } else {
            StrategySpec::Sampling(serde_json::from_value(v).map_err(D::Error::custom)?)
        })
    }
}

fn default_max_tries() -> usize {
    100_000
}

/// Default of [`SamplingConfig::max_infeasible_generations`].
pub const MAX_INFEASIBLE_GENERATIONS: usize = 20;

/// Default proposal cap per member of jobs that time candidates on a device: rejection
/// sampling with the predictor default (100 000 per generation) could keep a phone busy for days.
pub const MEASURED_TRIES_PER_MEMBER: usize = 10;

/// A sampling search: generations of members proposed by the strategy and evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    pub strategy: StrategyConfig,
    pub accuracy: AccuracySpec,
    pub population: usize,
    /// Generations after the initial population (generation 0).
    pub generations: usize,
    /// Cap on proposals per generation when rejection-sampling feasible candidates.
    pub max_tries: usize,
    /// Genes held at one choice: gene name (`r`, `ks[3]`) or family (`ks`) → choice label
    /// (see `search::pinned`).
    pub fixed: BTreeMap<String, String>,
    /// Stop (with an error saying why) after this many generations in a row without a
    /// feasible member: the target is unreachable, or nearly so, under the latency source.
    /// 0: never stop early. Not applied to `rl`, whose MnasNet reward trades latency for
    /// accuracy and may keep members over the target by design.
    pub max_infeasible_generations: usize,
}

/// OFA's search: evolution, population 100, 500 generations, the capacity proxy for accuracy.
impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            strategy: StrategyConfig::Evolution(Default::default()),
            accuracy: AccuracySpec::CapacityProxy,
            population: 100,
            generations: 500,
            max_tries: default_max_tries(),
            fixed: BTreeMap::new(),
            max_infeasible_generations: MAX_INFEASIBLE_GENERATIONS,
        }
    }
}

/// A differentiable search: the space's supernet trained for some epochs, the architecture
/// with it.
#[derive(Clone, Debug, PartialEq)]
pub struct DnasConfig {
    pub method: DnasMethod,
    /// `synthetic:N:CLASSES`, `cifar10:DIR`, `cifar100:DIR` or `imagefolder:DIR` (training split).
    pub data: String,
    pub epochs: usize,
    /// Epochs without the latency term (FBNet: weights only; Single-Path: λ = 0).
    pub warmup_epochs: usize,
    pub batch: usize,
    /// Input resolution of the search.
    pub resolution: u32,
    /// Learning rate of the weights at this batch size. FBNet: SGD (momentum 0.9, weight
    /// decay 1e-4), cosine over the run. Single-Path: the joint RMSProp of weights and
    /// thresholds (L2 1e-5), staircase decay; the paper's is [`SinglePathConfig::paper_lr`].
    pub lr: f64,
    /// Training batches on which the derived member's BN statistics are re-estimated.
    pub calib_batches: usize,
}

/// Batch size of a differentiable search unless one is given.
pub const DNAS_BATCH: usize = 64;
/// Training batches of the derived member's BN re-calibration unless a number is given.
pub const CALIB_BATCHES: usize = 10;

impl DnasConfig {
    /// `method` on `data` at `resolution` with its paper's schedule at batch [`DNAS_BATCH`].
    pub fn paper(method: DnasMethod, data: impl Into<String>, resolution: u32) -> DnasConfig {
        let s = method.paper_schedule(DNAS_BATCH);
        DnasConfig {
            method,
            data: data.into(),
            epochs: s.epochs,
            warmup_epochs: s.warmup_epochs,
            batch: DNAS_BATCH,
            resolution,
            lr: s.lr,
            calib_batches: CALIB_BATCHES,
        }
    }
}

/// How a job searches.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchConfig {
    Sampling(SamplingConfig),
    Differentiable(DnasConfig),
}

const MEASURED_DNAS: &str =
    "differentiable searches need a latency lookup table (their latency term is Σ p·LUT), not device:";

/// The input resolutions a differentiable search accepts.
pub const MIN_RESOLUTION: u32 = 8;
pub const MAX_RESOLUTION: u32 = 1024;

/// A search job's configuration, saved resolved in its directory (`config.json`, and in
/// the checkpoint) in the format of [`JobSettings`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "JobSettings", into = "JobSettings")]
pub struct JobConfig {
    pub space: String,
    /// Latency objectives; the first one carries the constraint (a differentiable search has one).
    pub latency: Vec<LatencySpec>,
    pub max_latency_ms: f64,
    pub seed: u64,
    /// The precision the searched models are deployed in (fp32, fp16, int8; configs of
    /// older builds: fp32). Latency predictors must have been fitted on measurements of it
    /// (`predictors::check_precision`), and measured objectives time models written in it.
    /// Differentiable searches train and derive fp32 networks.
    pub precision: Precision,
    /// Price the job's models with predictors fitted on another precision anyway (said in the
    /// job's log): e.g. an fp32 table as a stand-in until int8 measurements exist.
    pub allow_precision_mismatch: bool,
    pub search: SearchConfig,
}

impl JobConfig {
    /// A sampling job with the library's defaults ([`SamplingConfig::default`]) but `strategy`.
    pub fn sampling(
        space: &str,
        latency: Vec<LatencySpec>,
        max_latency_ms: f64,
        strategy: StrategyConfig,
    ) -> JobConfig {
        JobConfig {
            space: space.into(),
            latency,
            max_latency_ms,
            seed: 0,
            precision: Precision::Fp32,
            allow_precision_mismatch: false,
            search: SearchConfig::Sampling(SamplingConfig { strategy, ..Default::default() }),
        }
    }

    /// A differentiable job of `method` with its paper's schedule ([`DnasConfig::paper`]) on
    /// `data` at the space's first resolution.
    pub fn differentiable(
        space: &str,
        latency: LatencySpec,
        max_latency_ms: f64,
        method: DnasMethod,
        data: &str,
    ) -> Result<JobConfig, ConfigError> {
        let resolution = space_of(space)?.resolutions()[0];
        Ok(JobConfig {
            space: space.into(),
            latency: vec![latency],
            max_latency_ms,
            seed: 0,
            precision: Precision::Fp32,
            allow_precision_mismatch: false,
            search: SearchConfig::Differentiable(DnasConfig::paper(method, data, resolution)),
        })
    }

    /// The strategy's name (`evolution`, `fbnet`, …).
    pub fn strategy_name(&self) -> &'static str {
        self.strategy_kind().name()
    }

    pub fn strategy_kind(&self) -> StrategyKind {
        match &self.search {
            SearchConfig::Sampling(s) => s.strategy.kind(),
            SearchConfig::Differentiable(d) => d.method.kind(),
        }
    }

    /// The sampling settings, if the job samples.
    pub fn sampling_config(&self) -> Option<&SamplingConfig> {
        match &self.search {
            SearchConfig::Sampling(s) => Some(s),
            SearchConfig::Differentiable(_) => None,
        }
    }

    /// The sampling settings, to change them (panics on a differentiable job: a caller's bug).
    pub fn sampling_mut(&mut self) -> &mut SamplingConfig {
        match &mut self.search {
            SearchConfig::Sampling(s) => s,
            SearchConfig::Differentiable(d) => panic!("a {} job has no sampling settings", d.method.name()),
        }
    }

    /// The training settings, if the job is differentiable.
    pub fn dnas_config(&self) -> Option<&DnasConfig> {
        match &self.search {
            SearchConfig::Differentiable(d) => Some(d),
            SearchConfig::Sampling(_) => None,
        }
    }

    /// The training settings, to change them (panics on a sampling job: a caller's bug).
    pub fn dnas_mut(&mut self) -> &mut DnasConfig {
        match &mut self.search {
            SearchConfig::Differentiable(d) => d,
            SearchConfig::Sampling(s) => panic!("a {} job has no training settings", s.strategy.name()),
        }
    }

    /// Fills parameters whose defaults depend on others (saved resolved in config.json).
    pub fn resolve(&mut self) {
        if let SearchConfig::Sampling(s) = &mut self.search {
            let quarter = (s.population / 4).max(1);
            if let StrategyConfig::Regularized(r) = &mut s.strategy {
                r.sample_size.get_or_insert(quarter);
                r.children_per_generation.get_or_insert(quarter);
            }
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.latency.is_empty() {
            return Err(invalid("latency", "a search job needs at least one latency predictor"));
        }
        for (i, l) in self.latency.iter().enumerate() {
            if let Some(other) = self.latency[..i].iter().find(|o| o.label == l.label) {
                return Err(ConfigError::DuplicateLabel {
                    label: l.label.clone(),
                    first: other.path.clone(),
                    second: l.path.clone(),
                });
            }
        }
        match &self.search {
            SearchConfig::Sampling(s) => self.validate_sampling(s),
            SearchConfig::Differentiable(d) => self.validate_dnas(d),
        }
    }

    fn validate_sampling(&self, s: &SamplingConfig) -> Result<(), ConfigError> {
        if !(self.max_latency_ms > 0.0 && self.max_latency_ms.is_finite()) {
            return Err(invalid(
                "max_latency_ms",
                format!("max_latency_ms must be a positive number, got {}", self.max_latency_ms),
            ));
        }
        if s.population < 2 {
            return Err(invalid("population", format!("population must be at least 2, got {}", s.population)));
        }
        if s.max_tries == 0 {
            return Err(invalid("max_tries", "max_tries must be positive"));
        }
        match &s.strategy {
            StrategyConfig::Evolution(e) => {
                for (name, v) in [
                    ("parent_ratio", e.parent_ratio),
                    ("mutation_ratio", e.mutation_ratio),
                    ("mutate_prob", e.mutate_prob),
                    ("resolution_mutate_prob", e.resolution_mutate_prob),
                ] {
                    if !(0.0..=1.0).contains(&v) {
                        return Err(invalid("strategy", format!("evolution.{name} must be in [0, 1], got {v}")));
                    }
                }
                if (e.parent_ratio * s.population as f64).round() < 1.0 {
                    return Err(invalid("strategy", "evolution.parent_ratio × population keeps no parent"));
                }
            }
            StrategyConfig::Regularized(r) => {
                let ok = |v: Option<usize>| v.is_none_or(|v| (1..=s.population).contains(&v));
                if !ok(r.sample_size) {
                    return Err(invalid(
                        "strategy",
                        format!("regularized.sample_size must be in 1..={}, got {:?}", s.population, r.sample_size),
                    ));
                }
                if !ok(r.children_per_generation) {
                    return Err(invalid(
                        "strategy",
                        format!("regularized.children_per_generation must be in 1..={}", s.population),
                    ));
                }
            }
            StrategyConfig::Rl(r) => {
                if r.learning_rate.is_nan()
                    || r.learning_rate <= 0.0
                    || !(0.0..1.0).contains(&r.baseline_decay)
                    || r.epochs == 0
                {
                    return Err(invalid(
                        "strategy",
                        "rl: learning_rate > 0, baseline_decay in [0, 1) and epochs >= 1 are required",
                    ));
                }
                if r.hidden == 0 {
                    return Err(invalid("strategy", "rl.hidden must be at least 1"));
                }
                if !(r.clip > 0.0 && r.clip < 1.0) {
                    return Err(invalid("strategy", format!("rl.clip must be in (0, 1), got {}", r.clip)));
                }
                if !(r.entropy_weight >= 0.0 && r.entropy_weight.is_finite()) {
                    return Err(invalid(
                        "strategy",
                        format!("rl.entropy_weight must be a non-negative number, got {}", r.entropy_weight),
                    ));
                }
            }
            StrategyConfig::Random | StrategyConfig::Nsga2(_) => {}
        }
        Ok(())
    }

    fn validate_dnas(&self, d: &DnasConfig) -> Result<(), ConfigError> {
        let name = d.method.name();
        let space_ok = spaces::is_family(&self.space, |f| d.method.searches(f));
        if !space_ok {
            return Err(invalid(
                "space",
                format!(
                    "strategy {name} cannot search space `{}` (fbnet: fbnet or fbnet-cifar100; singlepath: singlepath)",
                    self.space
                ),
            ));
        }
        if self.latency.len() != 1 {
            return Err(invalid(
                "latency",
                format!("--strategy {name} optimises one latency predictor; give --latency once"),
            ));
        }
        if self.latency[0].measure.is_some() {
            return Err(invalid("latency", MEASURED_DNAS));
        }
        if self.precision != Precision::Fp32 {
            return Err(invalid(
                "precision",
                format!(
                    "differentiable searches (fbnet, singlepath) train and derive fp32 networks; --precision {} \
                     does not apply",
                    self.precision
                ),
            ));
        }
        if d.epochs == 0 {
            return Err(invalid("epochs", "epochs (--epochs) must be at least 1, got 0"));
        }
        if d.batch == 0 {
            return Err(invalid("batch", "batch (--batch) must be at least 1, got 0"));
        }
        if !(MIN_RESOLUTION..=MAX_RESOLUTION).contains(&d.resolution) {
            return Err(invalid(
                "resolution",
                format!(
                    "resolution (--resolution) must be in {MIN_RESOLUTION}..={MAX_RESOLUTION}, got {}",
                    d.resolution
                ),
            ));
        }
        if d.warmup_epochs >= d.epochs {
            return Err(invalid(
                "warmup_epochs",
                format!("warm-up ({} epochs) leaves no search epoch of {}", d.warmup_epochs, d.epochs),
            ));
        }
        for (field, flag, v) in [("max_latency_ms", "--max-latency-ms", self.max_latency_ms), ("lr", "--lr", d.lr)] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(invalid(
                    field,
                    format!("{field} ({flag}) must be a finite number greater than 0, got {v}"),
                ));
            }
        }
        match &d.method {
            DnasMethod::Fbnet(f) => {
                if !(f.alpha > 0.0 && f.beta >= 0.0 && f.tau0 > 0.0 && f.arch_lr > 0.0) {
                    return Err(invalid(
                        "strategy",
                        "fbnet: alpha > 0, beta >= 0, tau0 > 0 and arch_lr > 0 are required",
                    ));
                }
            }
            DnasMethod::Singlepath(s) => {
                if !(s.lambda >= 0.0 && s.threshold_lr_scale > 0.0 && s.rms_eps > 0.0 && s.lr_decay_epochs > 0.0) {
                    return Err(invalid(
                        "strategy",
                        "singlepath: lambda >= 0, threshold_lr_scale > 0, rms_eps > 0 and lr_decay_epochs > 0 are \
                         required",
                    ));
                }
                let unit = |x: f64| x > 0.0 && x <= 1.0;
                let fraction = |x: f64| (0.0..1.0).contains(&x);
                if !(unit(s.indicator_keep) && unit(s.lr_decay) && fraction(s.rms_decay) && fraction(s.rms_momentum)) {
                    return Err(invalid(
                        "strategy",
                        "singlepath: indicator_keep and lr_decay in (0, 1], rms_decay and rms_momentum in [0, 1) \
                         are required",
                    ));
                }
            }
        }
        if d.calib_batches == 0 {
            return Err(invalid(
                "calib_batches",
                "calib_batches must be positive (BN re-calibration of the derived member)",
            ));
        }
        Ok(())
    }
}

fn space_of(name: &str) -> Result<Box<dyn spaces::SearchSpace>, ConfigError> {
    spaces::space(name).map_err(|source| ConfigError::Space { space: name.into(), source })
}

/// A job configuration as a file or the command line gives it: every field optional (see
/// the module documentation for the precedence). It is also the format a [`JobConfig`] is
/// saved in, so a job's config.json is a valid `--config`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// A list; older differentiable jobs saved one object.
    #[serde(default, deserialize_with = "one_or_many", skip_serializing_if = "Option::is_none")]
    pub latency: Option<Vec<LatencySpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracySpec>,
    /// Older differentiable jobs saved it as `method`.
    #[serde(default, alias = "method", skip_serializing_if = "Option::is_none")]
    pub strategy: Option<StrategySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generations: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tries: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_infeasible_generations: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_precision_mismatch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_epochs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calib_batches: Option<usize>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<LatencySpec>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<LatencySpec>),
        One(Box<LatencySpec>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::Many(v)) => Some(v),
        Some(OneOrMany::One(s)) => Some(vec![*s]),
    })
}

impl JobSettings {
    /// A config file (a user's, or a job's config.json: the input fingerprints it keeps
    /// under `inputs` are the job's to check, not settings).
    pub fn read(path: &Path) -> Result<JobSettings, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        let mut v: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path: shown.clone(), source })?;
        crate::inputs::strip(&mut v);
        serde_json::from_value(v).map_err(|source| ConfigError::Parse { path: shown, source })
    }

    /// These settings with every field that `over` gives replaced by `over`'s.
    pub fn overlay(self, over: JobSettings) -> JobSettings {
        JobSettings {
            space: over.space.or(self.space),
            latency: over.latency.or(self.latency),
            max_latency_ms: over.max_latency_ms.or(self.max_latency_ms),
            accuracy: over.accuracy.or(self.accuracy),
            strategy: over.strategy.or(self.strategy),
            population: over.population.or(self.population),
            generations: over.generations.or(self.generations),
            seed: over.seed.or(self.seed),
            max_tries: over.max_tries.or(self.max_tries),
            fixed: over.fixed.or(self.fixed),
            max_infeasible_generations: over.max_infeasible_generations.or(self.max_infeasible_generations),
            precision: over.precision.or(self.precision),
            allow_precision_mismatch: over.allow_precision_mismatch.or(self.allow_precision_mismatch),
            data: over.data.or(self.data),
            epochs: over.epochs.or(self.epochs),
            warmup_epochs: over.warmup_epochs.or(self.warmup_epochs),
            batch: over.batch.or(self.batch),
            resolution: over.resolution.or(self.resolution),
            lr: over.lr.or(self.lr),
            calib_batches: over.calib_batches.or(self.calib_batches),
        }
    }

    /// The strategy these settings name (evolution when none).
    pub fn strategy_kind(&self) -> StrategyKind {
        self.strategy.as_ref().map_or(StrategyKind::Evolution, StrategySpec::kind)
    }

    /// The strategy, to change its parameters (set to the default, evolution, when none).
    pub fn strategy_mut(&mut self) -> &mut StrategySpec {
        self.strategy.get_or_insert_with(StrategySpec::default)
    }

    /// The job these settings describe, with the library's defaults for what they leave
    /// out; refuses missing required settings, settings of the other kind of search and
    /// values out of range, naming them.
    pub fn resolve(self) -> Result<JobConfig, ConfigError> {
        let strategy = self.strategy.clone().unwrap_or_default();
        let kind = strategy.kind();
        let space = self.space.clone().ok_or(ConfigError::Missing { field: "space", flag: "space", hint: "" })?;
        let latency = self.latency.clone().ok_or(ConfigError::Missing {
            field: "latency",
            flag: "latency",
            hint: if kind == StrategyKind::Singlepath {
                " (singlepath prices with the Pixel 1 model: `hwnas fit --import spnas-pixel1 …`)"
            } else {
                ""
            },
        })?;
        let max_latency_ms = self.max_latency_ms.ok_or(ConfigError::Missing {
            field: "max_latency_ms",
            flag: "max-latency-ms",
            hint: "",
        })?;
        let search = match strategy {
            StrategySpec::Sampling(strategy) => {
                self.refuse_fields(
                    kind,
                    &[
                        ("data", self.data.is_some()),
                        ("epochs", self.epochs.is_some()),
                        ("warmup_epochs", self.warmup_epochs.is_some()),
                        ("batch", self.batch.is_some()),
                        ("resolution", self.resolution.is_some()),
                        ("lr", self.lr.is_some()),
                        ("calib_batches", self.calib_batches.is_some()),
                    ],
                    "it samples members; the supernet training settings are those of fbnet and singlepath",
                )?;
                let d = SamplingConfig::default();
                let population = self.population.unwrap_or(d.population);
                let measured = latency.iter().any(|l| l.measure.is_some());
                let max_tries = self.max_tries.unwrap_or(if measured {
                    MEASURED_TRIES_PER_MEMBER * population
                } else {
                    d.max_tries
                });
                SearchConfig::Sampling(SamplingConfig {
                    strategy,
                    accuracy: self.accuracy.clone().unwrap_or(d.accuracy),
                    population,
                    generations: self.generations.unwrap_or(d.generations),
                    max_tries,
                    fixed: self.fixed.clone().unwrap_or(d.fixed),
                    max_infeasible_generations: self.max_infeasible_generations.unwrap_or(d.max_infeasible_generations),
                })
            }
            StrategySpec::Differentiable(method) => {
                self.refuse_fields(
                    kind,
                    &[
                        ("accuracy", self.accuracy.is_some()),
                        ("population", self.population.is_some()),
                        ("generations", self.generations.is_some()),
                        ("max_tries", self.max_tries.is_some()),
                        ("fixed", self.fixed.is_some()),
                        ("max_infeasible_generations", self.max_infeasible_generations.is_some()),
                    ],
                    "it trains a supernet for --epochs on --accuracy-data instead of sampling generations",
                )?;
                if latency.iter().any(|l| l.measure.is_some()) {
                    return Err(invalid("latency", MEASURED_DNAS));
                }
                let data = self.data.clone().ok_or(ConfigError::Missing {
                    field: "data",
                    flag: "accuracy-data",
                    hint: " (the data to train the supernet on: synthetic:N:C, cifar10:DIR, …)",
                })?;
                let batch = self.batch.unwrap_or(DNAS_BATCH);
                let paper = method.paper_schedule(batch);
                let resolution = match self.resolution {
                    Some(r) => r,
                    None => space_of(&space)?.resolutions()[0],
                };
                SearchConfig::Differentiable(DnasConfig {
                    method,
                    data,
                    epochs: self.epochs.unwrap_or(paper.epochs),
                    warmup_epochs: self.warmup_epochs.unwrap_or(paper.warmup_epochs),
                    batch,
                    resolution,
                    lr: self.lr.unwrap_or(paper.lr),
                    calib_batches: self.calib_batches.unwrap_or(CALIB_BATCHES),
                })
            }
        };
        let mut config = JobConfig {
            space,
            latency,
            max_latency_ms,
            seed: self.seed.unwrap_or(0),
            precision: self.precision.unwrap_or_default(),
            allow_precision_mismatch: self.allow_precision_mismatch.unwrap_or(false),
            search,
        };
        config.resolve();
        config.validate()?;
        Ok(config)
    }

    fn refuse_fields(
        &self,
        kind: StrategyKind,
        given: &[(&'static str, bool)],
        why: &'static str,
    ) -> Result<(), ConfigError> {
        match given.iter().find(|(_, set)| *set) {
            Some(&(field, _)) => {
                Err(ConfigError::NotApplicable { field, flag: flag_of(field), strategy: kind.name(), why })
            }
            None => Ok(()),
        }
    }
}

/// The `hwnas search` flag of a setting.
fn flag_of(field: &'static str) -> &'static str {
    match field {
        "data" => "accuracy-data",
        "warmup_epochs" => "warmup-epochs",
        "calib_batches" => "calib-batches",
        "max_tries" => "max-tries",
        "fixed" => "fix",
        "max_infeasible_generations" => "max-infeasible-generations",
        other => other,
    }
}

impl TryFrom<JobSettings> for JobConfig {
    type Error = ConfigError;
    fn try_from(s: JobSettings) -> Result<JobConfig, ConfigError> {
        s.resolve()
    }
}

impl From<JobConfig> for JobSettings {
    /// Every setting given (the file says what the job ran with), `fixed` and
    /// `allow_precision_mismatch` only when set.
    fn from(c: JobConfig) -> JobSettings {
        let mut s = JobSettings {
            space: Some(c.space),
            latency: Some(c.latency),
            max_latency_ms: Some(c.max_latency_ms),
            seed: Some(c.seed),
            precision: Some(c.precision),
            allow_precision_mismatch: c.allow_precision_mismatch.then_some(true),
            ..Default::default()
        };
        match c.search {
            SearchConfig::Sampling(x) => {
                s.strategy = Some(StrategySpec::Sampling(x.strategy));
                s.accuracy = Some(x.accuracy);
                s.population = Some(x.population);
                s.generations = Some(x.generations);
                s.max_tries = Some(x.max_tries);
                s.fixed = (!x.fixed.is_empty()).then_some(x.fixed);
                s.max_infeasible_generations = Some(x.max_infeasible_generations);
            }
            SearchConfig::Differentiable(d) => {
                s.strategy = Some(StrategySpec::Differentiable(d.method));
                s.data = Some(d.data);
                s.epochs = Some(d.epochs);
                s.warmup_epochs = Some(d.warmup_epochs);
                s.batch = Some(d.batch);
                s.resolution = Some(d.resolution);
                s.lr = Some(d.lr);
                s.calib_batches = Some(d.calib_batches);
            }
        }
        s
    }
}

/// The settings in which `saved` and `given` differ, as dotted paths (`seed`,
/// `strategy.alpha`, `latency[0].path`), each with both values when they are short.
pub fn differences(saved: &JobConfig, given: &JobConfig) -> Vec<String> {
    let (a, b) = (serde_json::to_value(saved).unwrap_or_default(), serde_json::to_value(given).unwrap_or_default());
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    out
}

fn diff(at: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    if a == b {
        return;
    }
    let join = |k: &str| if at.is_empty() { k.to_string() } else { format!("{at}.{k}") };
    match (a, b) {
        // Objects of one kind (the same strategy, accuracy source) differ in their fields.
        (Value::Object(x), Value::Object(y)) if x.get("kind") == y.get("kind") => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            let null = Value::Null;
            for k in keys {
                diff(&join(k), x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff(&format!("{at}[{i}]"), p, q, out);
            }
        }
        _ => {
            let short = |v: &Value| {
                let s = if v.is_null() { "unset".to_string() } else { v.to_string() };
                (s.len() <= 40).then_some(s)
            };
            match (short(a), short(b)) {
                (Some(x), Some(y)) => out.push(format!("{at} ({x} saved, {y} given)")),
                _ => out.push(at.to_string()),
            }
        }
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
            seed: 0,
            precision: Default::default(),
            allow_precision_mismatch: false,
            search: SearchConfig::Sampling(SamplingConfig {
                strategy,
                accuracy: AccuracySpec::CapacityProxy,
                population: 8,
                generations: 2,
                max_tries: 100,
                fixed: Default::default(),
                max_infeasible_generations: MAX_INFEASIBLE_GENERATIONS,
            }),
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
        assert_eq!(c.sampling_config().unwrap().max_infeasible_generations, MAX_INFEASIBLE_GENERATIONS);
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

    /// A sampling job's config.json of the build before the one job framework, verbatim.
    const OLD_SAMPLING: &str = r#"{
  "space": "fbnet-cifar100",
  "latency": [{"label": "pixel3", "path": "/data/pixel3.json"}],
  "max_latency_ms": 12.5,
  "accuracy": {"kind": "capacity-proxy"},
  "strategy": {"kind": "regularized", "sample_size": 3, "children_per_generation": 3},
  "population": 12,
  "generations": 6,
  "seed": 11,
  "max_tries": 20000,
  "fixed": {"ops[0]": "k5_e6"},
  "max_infeasible_generations": 20,
  "precision": "fp32",
  "inputs": []
}"#;

    /// A differentiable job's config.json of the build before the one job framework, verbatim
    /// (its own format: `method`, one `latency` object, no precision).
    const OLD_DNAS: &str = r#"{
  "space": "fbnet-cifar100",
  "method": {"kind": "fbnet", "alpha": 0.2, "beta": 0.6, "tau0": 5.0, "tau_decay": 0.045, "arch_lr": 0.05},
  "latency": {"label": "pixel3", "path": "/data/pixel3-lut.json"},
  "max_latency_ms": 12.0,
  "data": "synthetic:80:10",
  "epochs": 5,
  "warmup_epochs": 1,
  "batch": 8,
  "resolution": 32,
  "lr": 0.1,
  "seed": 0,
  "calib_batches": 10,
  "inputs": [{"role": "latency predictor `pixel3`", "path": "/data/pixel3-lut.json", "sha256": "00", "bytes": 1, "method": "file"}]
}"#;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("hwnas-config-{name}-{}.json", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn config_files_of_older_builds_of_both_kinds_read_as_todays_jobs() {
        let p = write("old-sampling", OLD_SAMPLING);
        let c = JobSettings::read(&p).unwrap().resolve().unwrap();
        let _ = std::fs::remove_file(&p);
        let s = c.sampling_config().unwrap();
        assert_eq!((c.strategy_name(), s.population, s.generations, c.seed), ("regularized", 12, 6, 11));
        assert_eq!(s.fixed["ops[0]"], "k5_e6");
        // Saved again, it is the same file (less the fingerprints, which the job adds).
        let mut want: serde_json::Value = serde_json::from_str(OLD_SAMPLING).unwrap();
        crate::inputs::strip(&mut want);
        assert_eq!(serde_json::to_value(&c).unwrap(), want);

        let p = write("old-dnas", OLD_DNAS);
        let c = JobSettings::read(&p).unwrap().resolve().unwrap();
        let _ = std::fs::remove_file(&p);
        assert_eq!(c.strategy_name(), "fbnet");
        assert_eq!(c.latency.len(), 1);
        assert_eq!((c.latency[0].label.as_str(), c.precision), ("pixel3", Precision::Fp32));
        let d = c.dnas_config().unwrap();
        assert_eq!((d.epochs, d.warmup_epochs, d.batch, d.resolution, d.lr, d.calib_batches), (5, 1, 8, 32, 0.1, 10));
        let DnasMethod::Fbnet(f) = &d.method else { panic!("{d:?}") };
        assert_eq!(f.arch_lr, 0.05);
        // Today's format names the strategy under `strategy`, with the same settings.
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["strategy"]["kind"], "fbnet");
        assert!(v.get("method").is_none());
        assert_eq!(serde_json::from_value::<JobConfig>(v).unwrap(), c);
        // An old checkpoint's copy (no calib_batches: older still) reads with the default.
        let mut v: serde_json::Value = serde_json::from_str(OLD_DNAS).unwrap();
        crate::inputs::strip(&mut v);
        v.as_object_mut().unwrap().remove("calib_batches");
        assert_eq!(serde_json::from_value::<JobConfig>(v).unwrap(), c);
    }

    #[test]
    fn flags_override_the_file_and_the_defaults_fill_the_rest() {
        let file: JobSettings = serde_json::from_str(
            r#"{"space": "fbnet-cifar100", "latency": [{"label": "a", "path": "a.json"}], "max_latency_ms": 5,
                "population": 20, "seed": 3}"#,
        )
        .unwrap();
        let flags = JobSettings { seed: Some(4), generations: Some(7), ..Default::default() };
        let c = file.overlay(flags).resolve().unwrap();
        let s = c.sampling_config().unwrap();
        assert_eq!((c.seed, s.population, s.generations), (4, 20, 7), "flags win over the file");
        assert_eq!(s.strategy, StrategyConfig::Evolution(Default::default()), "the library's default strategy");
        assert_eq!(s.max_tries, SamplingConfig::default().max_tries);

        // A differentiable job takes its paper's schedule; Single-Path's rate follows the batch.
        let dnas = |kind: &str, batch: Option<usize>| {
            JobSettings {
                space: Some(if kind == "fbnet" { "fbnet-cifar100" } else { "singlepath" }.into()),
                latency: Some(vec![LatencySpec { label: "t".into(), path: "t.json".into(), measure: None }]),
                max_latency_ms: Some(10.0),
                strategy: Some(StrategySpec::by_name(kind).unwrap()),
                data: Some("synthetic:8:2".into()),
                batch,
                ..Default::default()
            }
            .resolve()
        };
        let f = dnas("fbnet", None).unwrap();
        let d = f.dnas_config().unwrap();
        assert_eq!((d.epochs, d.warmup_epochs, d.batch, d.lr, d.calib_batches), (90, 10, 64, 0.1, 10));
        assert_eq!(d.resolution, spaces::space("fbnet-cifar100").unwrap().resolutions()[0]);
        let sp = dnas("singlepath", Some(8)).unwrap();
        let d = sp.dnas_config().unwrap();
        assert_eq!((d.epochs, d.warmup_epochs, d.lr), (8, 5, SinglePathConfig::paper_lr(8)));
    }

    #[test]
    fn unknown_and_inapplicable_fields_are_refused_naming_them() {
        let err = serde_json::from_str::<JobSettings>(r#"{"space": "x", "populaton": 3}"#).unwrap_err().to_string();
        assert!(err.contains("populaton"), "{err}");
        let err = serde_json::from_str::<JobSettings>(r#"{"strategy": {"kind": "fbnet", "alhpa": 3}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("alhpa"), "{err}");
        let err =
            serde_json::from_str::<JobSettings>(r#"{"strategy": {"kind": "annealing"}}"#).unwrap_err().to_string();
        assert!(err.contains("annealing"), "{err}");
        let base = || JobSettings {
            space: Some("fbnet-cifar100".into()),
            latency: Some(vec![LatencySpec { label: "t".into(), path: "t.json".into(), measure: None }]),
            max_latency_ms: Some(10.0),
            ..Default::default()
        };
        let err = JobSettings { epochs: Some(3), ..base() }.resolve().unwrap_err().to_string();
        assert!(err.contains("`epochs`") && err.contains("evolution"), "{err}");
        let fb = JobSettings {
            strategy: Some(StrategySpec::by_name("fbnet").unwrap()),
            data: Some("synthetic:8:2".into()),
            population: Some(10),
            ..base()
        };
        let err = fb.resolve().unwrap_err().to_string();
        assert!(err.contains("`population`") && err.contains("fbnet"), "{err}");
        let err = JobSettings { space: None, ..base() }.resolve().unwrap_err().to_string();
        assert!(err.contains("missing `space`") && err.contains("--space"), "{err}");
    }

    #[test]
    fn differences_name_the_settings_that_changed() {
        let a = job(StrategyConfig::Random);
        let mut b = a.clone();
        b.seed = 5;
        b.latency[0].path = "other.json".into();
        let d = differences(&a, &b);
        assert_eq!(d, vec!["latency[0].path (\"lut.json\" saved, \"other.json\" given)", "seed (0 saved, 5 given)"]);
        assert!(differences(&a, &a).is_empty());
    }
}
