//! `hwnas search --strategy fbnet|singlepath`: the differentiable searches of `search::dnas`,
//! which train a supernet instead of evaluating sampled members.

use ::search::config::{DnasMethod, JobConfig, JobSettings, StrategySpec};
use ::search::dnas::{DnasJob, EpochRecord};
use anyhow::{bail, Context, Result};
use std::path::Path;

#[derive(clap::Args)]
pub struct DnasArgs {
    /// fbnet/singlepath: search epochs [default: fbnet 90, singlepath 8 (the papers')].
    #[arg(long, value_parser = super::numeric::at_least_one)]
    epochs: Option<usize>,
    /// fbnet/singlepath: epochs without the latency term [default: fbnet 10, singlepath 5].
    #[arg(long)]
    warmup_epochs: Option<usize>,
    /// fbnet/singlepath: batch size [default: 64].
    #[arg(long, value_parser = super::numeric::at_least_one)]
    batch: Option<usize>,
    /// fbnet/singlepath: input resolution [default: the space's first].
    #[arg(long, value_parser = super::numeric::resolution)]
    resolution: Option<u32>,
    /// fbnet/singlepath: learning rate of the weights at --batch [default: fbnet 0.1 (SGD,
    /// cosine); singlepath 0.016·batch/256 (the paper's joint RMSProp, ×0.97 every 2.4 epochs)].
    #[arg(long, value_parser = super::numeric::positive_f64)]
    lr: Option<f64>,
    /// fbnet/singlepath: training batches for the derived member's BN re-calibration [default: 10].
    #[arg(long, value_parser = super::numeric::at_least_one)]
    calib_batches: Option<usize>,
    /// fbnet/singlepath: auto (CUDA when libtorch sees a GPU), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// fbnet: α of CE·α·(ln LAT)^β [default: 0.2].
    #[arg(long, value_parser = super::numeric::positive_f64)]
    alpha: Option<f64>,
    /// fbnet: β of CE·α·(ln LAT)^β [default: 0.6].
    #[arg(long, value_parser = super::numeric::non_negative_f64)]
    beta: Option<f64>,
    /// fbnet: initial Gumbel-softmax temperature [default: 5.0].
    #[arg(long, value_parser = super::numeric::positive_f64)]
    tau0: Option<f64>,
    /// fbnet: τ = τ0·exp(−decay·epoch) [default: 0.045].
    #[arg(long, value_parser = super::numeric::non_negative_f64)]
    tau_decay: Option<f64>,
    /// fbnet: Adam learning rate of θ [default: 0.01].
    #[arg(long, value_parser = super::numeric::positive_f64)]
    arch_lr: Option<f64>,
    /// singlepath: λ of CE + λ·ln R, R in ms [default: 20 = the released code's 0.020·10³].
    #[arg(long, value_parser = super::numeric::non_negative_f64)]
    lambda: Option<f64>,
    /// singlepath: keep-probability of the indicator dropout during warm-up [default: 0.6].
    #[arg(long, value_parser = super::numeric::probability)]
    indicator_keep: Option<f64>,
    /// singlepath: multiplier of the thresholds' learning rate in the joint RMSProp [default: 1, the paper's].
    #[arg(long, value_parser = super::numeric::positive_f64)]
    threshold_lr_scale: Option<f64>,
}

impl DnasArgs {
    /// The training schedule the flags give (the rest comes from the config file or the
    /// method's paper, `search::config::DnasMethod::paper_schedule`).
    pub fn schedule(&self) -> JobSettings {
        JobSettings {
            epochs: self.epochs,
            warmup_epochs: self.warmup_epochs,
            batch: self.batch,
            resolution: self.resolution,
            lr: self.lr,
            calib_batches: self.calib_batches,
            ..Default::default()
        }
    }

    /// Sets the method parameters the flags give on `strategy`, which must be their method.
    pub fn set_method_parameters(&self, strategy: &mut StrategySpec) -> Result<()> {
        let fbnet = [("--alpha", self.alpha), ("--beta", self.beta), ("--tau0", self.tau0)]
            .into_iter()
            .chain([("--tau-decay", self.tau_decay), ("--arch-lr", self.arch_lr)])
            .filter_map(|(flag, v)| v.map(|v| (flag, v)));
        let singlepath = [("--lambda", self.lambda), ("--indicator-keep", self.indicator_keep)]
            .into_iter()
            .chain([("--threshold-lr-scale", self.threshold_lr_scale)])
            .filter_map(|(flag, v)| v.map(|v| (flag, v)));
        for (flag, v) in fbnet {
            let StrategySpec::Differentiable(DnasMethod::Fbnet(f)) = strategy else {
                bail!("{flag} applies to --strategy fbnet only");
            };
            match flag {
                "--alpha" => f.alpha = v,
                "--beta" => f.beta = v,
                "--tau0" => f.tau0 = v,
                "--tau-decay" => f.tau_decay = v,
                _ => f.arch_lr = v,
            }
        }
        for (flag, v) in singlepath {
            let StrategySpec::Differentiable(DnasMethod::Singlepath(s)) = strategy else {
                bail!("{flag} applies to --strategy singlepath only");
            };
            match flag {
                "--lambda" => s.lambda = v,
                "--indicator-keep" => s.indicator_keep = v,
                _ => s.threshold_lr_scale = v,
            }
        }
        Ok(())
    }
}

/// Runs (or resumes) the differentiable search `config` in `out` and prints its result.
pub fn run(config: JobConfig, a: &DnasArgs, out: &Path, resume: bool) -> Result<()> {
    let mut job = DnasJob::open_on(config, out, resume, ::search::dnas::parse_device(&a.device)?)?;
    for w in &job.warnings {
        eprintln!("warning: {w}");
    }
    println!("device: {:?}", job.device());
    let total = job.settings().epochs;
    if job.next_epoch > 0 {
        println!("resuming {} at epoch {} of {total}", out.display(), job.next_epoch);
    }
    let report = |r: &EpochRecord| {
        println!(
            "epoch {:>3}/{total}: loss {:.4}{} expected latency {:.3} ms, derived {:.3} ms{}, val loss {:.4} top-1 {:.3} (supernet {:.4}) ({:.1}s)",
            r.epoch + 1,
            r.train_loss,
            r.arch_loss.map_or(String::new(), |l| format!(" (θ {l:.4})")),
            r.expected_latency_ms,
            r.latency_ms,
            if r.feasible { "" } else { " > target" },
            r.derived_val_loss,
            r.derived_top1,
            r.supernet_val_loss,
            r.seconds
        );
    };
    job.run(None, &mut { report })?;
    let last = job.history.last().context("no epoch ran")?;
    println!("job directory: {}", out.display());
    println!("derived architecture: {}", last.arch);
    println!(
        "  latency ({}): {:.4} ms (target {} ms){}",
        job.config.latency[0].label,
        last.latency_ms,
        job.config.max_latency_ms,
        if last.feasible { "" } else { " — over the target; raise the latency weight" }
    );
    println!(
        "  validation (extracted, BN re-calibrated on {} training batches): cross-entropy {:.4}, top-1 {:.4}",
        job.settings().calib_batches,
        last.derived_val_loss,
        last.derived_top1
    );
    println!("  validation cross-entropy of the supernet (derived path, supernet BN): {:.4}", last.supernet_val_loss);
    if !job.samples.is_empty() {
        println!("{} architectures sampled from softmax(θ) (samples.json):", job.samples.len());
        for (i, s) in job.samples.iter().enumerate() {
            println!("  {}. {:.4} ms{}  {}", i + 1, s.latency_ms, if s.feasible { "" } else { " > target" }, s.arch);
        }
    }
    Ok(())
}
