//! `hwnas search --strategy fbnet|singlepath`: the differentiable searches of `search::dnas`,
//! which train a supernet instead of evaluating sampled members.

use ::search::config::LatencySpec;
use ::search::dnas::{DnasConfig, DnasJob, DnasMethod, EpochRecord, FbNetConfig, SinglePathConfig};
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

/// Whether this invocation is a differentiable search (named, or a resumed one in `out`).
pub fn is_dnas(strategy: Option<&str>, out: &Path, resume: bool) -> bool {
    match strategy {
        Some(s) => matches!(s, "fbnet" | "singlepath"),
        None => resume && read_config(out).is_some(),
    }
}

/// A differentiable search prices the fp32 supernet's paths: a `--latency` predictor fitted
/// on measurements of another precision is refused, unless `allow` (then warned).
pub fn check_precision(latency: &[String], allow: bool) -> Result<()> {
    for arg in latency {
        let file = match arg.split_once('=') {
            Some((l, p)) if !l.is_empty() && !l.contains('/') => p,
            _ => arg,
        };
        // An unreadable file is reported where the job loads it.
        let Ok(p) = predictors::load_predictor(Path::new(file)) else { continue };
        match predictors::check_precision(p.as_ref(), predictors::Precision::Fp32) {
            Err(e) if !allow => return Err(e.context(format!("--latency {arg}"))),
            Err(_) => eprintln!(
                "warning: --latency {arg} was fitted on {} measurements; this search derives fp32 networks \
                 (--allow-precision-mismatch)",
                p.precision()
            ),
            Ok(()) => {}
        }
    }
    Ok(())
}

fn read_config(out: &Path) -> Option<DnasConfig> {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).ok()?).ok()?;
    ::search::inputs::strip(&mut v);
    serde_json::from_value(v).ok()
}

fn build(
    a: &DnasArgs,
    space: Option<&str>,
    strategy: &str,
    latency: &[String],
    max_latency_ms: Option<f64>,
    data: Option<&str>,
    seed: Option<u64>,
) -> Result<DnasConfig> {
    let space = space.context("missing --space")?.to_string();
    let max_latency_ms = max_latency_ms.context("missing --max-latency-ms")?;
    let data =
        data.context("missing --accuracy-data: the data to train the supernet on (synthetic:N:C, cifar10:DIR, …)")?;
    let (label, path) = match latency {
        [] if strategy == "fbnet" => {
            ("local".to_string(), super::local_lut::cached_local_lut(&space, latency::modelfile::Precision::Fp32)?)
        }
        [] => {
            bail!("--strategy singlepath needs --latency with the Pixel 1 model (`hwnas fit --import spnas-pixel1 …`)")
        }
        [one] => match one.split_once('=') {
            Some((l, p)) if !l.is_empty() && !l.contains('/') => (l.to_string(), p.into()),
            _ => (Path::new(one).file_stem().and_then(|s| s.to_str()).unwrap_or("latency").to_string(), one.into()),
        },
        _ => bail!("--strategy {strategy} optimises one latency predictor; give --latency once"),
    };
    let path = std::fs::canonicalize(&path).with_context(|| format!("cannot find {}", path.display()))?;
    let method = match strategy {
        "fbnet" => {
            let d = FbNetConfig::default();
            DnasMethod::Fbnet(FbNetConfig {
                alpha: a.alpha.unwrap_or(d.alpha),
                beta: a.beta.unwrap_or(d.beta),
                tau0: a.tau0.unwrap_or(d.tau0),
                tau_decay: a.tau_decay.unwrap_or(d.tau_decay),
                arch_lr: a.arch_lr.unwrap_or(d.arch_lr),
            })
        }
        _ => {
            let d = SinglePathConfig::default();
            DnasMethod::Singlepath(SinglePathConfig {
                lambda: a.lambda.unwrap_or(d.lambda),
                indicator_keep: a.indicator_keep.unwrap_or(d.indicator_keep),
                threshold_lr_scale: a.threshold_lr_scale.unwrap_or(d.threshold_lr_scale),
                ..d
            })
        }
    };
    let fbnet = strategy == "fbnet";
    let resolution = match a.resolution {
        Some(r) => r,
        None => spaces::space(&space)?.resolutions()[0],
    };
    let batch = a.batch.unwrap_or(64);
    Ok(DnasConfig {
        space,
        method,
        latency: LatencySpec { label, path: path.display().to_string(), measure: None },
        max_latency_ms,
        data: data.to_string(),
        epochs: a.epochs.unwrap_or(if fbnet { 90 } else { 8 }),
        warmup_epochs: a.warmup_epochs.unwrap_or(if fbnet { 10 } else { 5 }),
        batch,
        resolution,
        lr: a.lr.unwrap_or(if fbnet { 0.1 } else { SinglePathConfig::paper_lr(batch) }),
        seed: seed.unwrap_or(0),
        calib_batches: a.calib_batches.unwrap_or(10),
    })
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    a: &DnasArgs,
    space: Option<&str>,
    strategy: Option<&str>,
    latency: &[String],
    max_latency_ms: Option<f64>,
    data: Option<&str>,
    seed: Option<u64>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    let config = match (resume, read_config(out), strategy) {
        // Resuming without the flags: the saved configuration.
        (true, Some(saved), None) => saved,
        (_, _, Some(s)) => build(a, space, s, latency, max_latency_ms, data, seed)?,
        _ => bail!("give --strategy fbnet or singlepath"),
    };
    let mut job = DnasJob::open_on(config, out, resume, ::search::dnas::parse_device(&a.device)?)?;
    println!("device: {:?}", job.device());
    if job.next_epoch > 0 {
        println!("resuming {} at epoch {} of {}", out.display(), job.next_epoch, job.config.epochs);
    }
    let total = job.config.epochs;
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
        job.config.latency.label,
        last.latency_ms,
        job.config.max_latency_ms,
        if last.feasible { "" } else { " — over the target; raise the latency weight" }
    );
    println!(
        "  validation (extracted, BN re-calibrated on {} training batches): cross-entropy {:.4}, top-1 {:.4}",
        job.config.calib_batches, last.derived_val_loss, last.derived_top1
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
