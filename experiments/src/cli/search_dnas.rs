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

    /// Sets the method parameters the flags give on `strategy`, which must be their method:
    /// the first flag of another method is refused, fbnet's before singlepath's.
    pub fn set_method_parameters(&self, strategy: &mut StrategySpec) -> Result<()> {
        let fbnet = [
            ("--alpha", self.alpha),
            ("--beta", self.beta),
            ("--tau0", self.tau0),
            ("--tau-decay", self.tau_decay),
            ("--arch-lr", self.arch_lr),
        ];
        let singlepath = [
            ("--lambda", self.lambda),
            ("--indicator-keep", self.indicator_keep),
            ("--threshold-lr-scale", self.threshold_lr_scale),
        ];
        let refuse = |flags: &[(&str, Option<f64>)], method: &str| match flags.iter().find(|(_, v)| v.is_some()) {
            Some((flag, _)) => bail!("{flag} applies to --strategy {method} only"),
            None => Ok(()),
        };
        let set = |field: &mut f64, v: Option<f64>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        match strategy {
            StrategySpec::Differentiable(DnasMethod::Fbnet(f)) => {
                refuse(&singlepath, "singlepath")?;
                set(&mut f.alpha, self.alpha);
                set(&mut f.beta, self.beta);
                set(&mut f.tau0, self.tau0);
                set(&mut f.tau_decay, self.tau_decay);
                set(&mut f.arch_lr, self.arch_lr);
            }
            StrategySpec::Differentiable(DnasMethod::Singlepath(s)) => {
                refuse(&fbnet, "fbnet")?;
                set(&mut s.lambda, self.lambda);
                set(&mut s.indicator_keep, self.indicator_keep);
                set(&mut s.threshold_lr_scale, self.threshold_lr_scale);
            }
            StrategySpec::Sampling(_) => {
                refuse(&fbnet, "fbnet")?;
                refuse(&singlepath, "singlepath")?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::search::config::{FbNetConfig, SinglePathConfig, StrategyKind};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        dnas: DnasArgs,
    }

    /// `strategy`'s defaults with the method flags `args` set on them.
    fn set(strategy: StrategyKind, args: &[&str]) -> Result<StrategySpec> {
        let a = Cli::try_parse_from(std::iter::once("hwnas").chain(args.iter().copied())).unwrap().dnas;
        let mut spec = StrategySpec::defaults(strategy);
        a.set_method_parameters(&mut spec).map(|()| spec)
    }

    #[test]
    fn method_flags_set_their_method_and_are_refused_for_another() {
        let fbnet = ["--alpha", "0.3", "--beta", "0.7", "--tau0", "4", "--tau-decay", "0.05", "--arch-lr", "0.02"];
        let StrategySpec::Differentiable(DnasMethod::Fbnet(f)) = set(StrategyKind::Fbnet, &fbnet).unwrap() else {
            panic!("fbnet stays fbnet");
        };
        assert_eq!(f, FbNetConfig { alpha: 0.3, beta: 0.7, tau0: 4.0, tau_decay: 0.05, arch_lr: 0.02 });
        let singlepath = ["--lambda", "5", "--indicator-keep", "0.5", "--threshold-lr-scale", "2"];
        let StrategySpec::Differentiable(DnasMethod::Singlepath(s)) =
            set(StrategyKind::Singlepath, &singlepath).unwrap()
        else {
            panic!("singlepath stays singlepath");
        };
        let want = SinglePathConfig { lambda: 5.0, indicator_keep: 0.5, threshold_lr_scale: 2.0, ..Default::default() };
        assert_eq!(s, want);
        // Unset flags leave the defaults.
        assert_eq!(set(StrategyKind::Fbnet, &[]).unwrap(), StrategySpec::defaults(StrategyKind::Fbnet));
        assert_eq!(set(StrategyKind::Random, &[]).unwrap(), StrategySpec::defaults(StrategyKind::Random));

        let refused = |strategy, args: &[&str]| set(strategy, args).unwrap_err().to_string();
        assert_eq!(
            refused(StrategyKind::Singlepath, &["--arch-lr", "0.1"]),
            "--arch-lr applies to --strategy fbnet only"
        );
        assert_eq!(
            refused(StrategyKind::Fbnet, &["--alpha", "0.3", "--indicator-keep", "0.5"]),
            "--indicator-keep applies to --strategy singlepath only"
        );
        // Sampling strategies take neither; fbnet's flags are named first.
        assert_eq!(
            refused(StrategyKind::Evolution, &["--threshold-lr-scale", "2", "--tau0", "4", "--beta", "1"]),
            "--beta applies to --strategy fbnet only"
        );
        assert_eq!(refused(StrategyKind::Rl, &["--lambda", "1"]), "--lambda applies to --strategy singlepath only");
    }
}
