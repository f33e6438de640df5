//! `hwnas fit`: fit a latency predictor on part of a dataset (split by architecture),
//! report held-out metrics, save it; `--predictor all` compares every family on one
//! split; `--import` converts a published table into a predictor file.

use anyhow::{bail, Context, Result};
use predictors::compare::markdown_table;
use predictors::dataset::{self, NetworkRow};
use predictors::metrics::Metrics;
use predictors::split::{split, TrainSize};
use predictors::train::{self, TrainOptions, FAMILIES};
use predictors::{eval, plots};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Measurements: CSV or Parquet with `arch` + `latency_ms` (network rows) and/or
    /// `kind=layer`, `key`, `latency_ms` (single-layer rows); for --import, the table file.
    #[arg(long)]
    data: PathBuf,
    /// Space of rows without a `space` column (e.g. fbnet-cifar100 for the HW-NAS-Bench CSVs).
    #[arg(long)]
    space: Option<String>,
    /// auto (cross-validation on the training rows picks the family and its shrinkage), lut, kernel, mlp, flops, flops+memory, all (fit each on the same split and compare), or
    /// accuracy (OFA-style MLP on the gene one-hot, from an `accuracy` column).
    #[arg(long, default_value = "auto")]
    predictor: String,
    /// Share of architectures to train on (default 0.8 unless --train-count).
    #[arg(long, conflicts_with = "train_count")]
    train_fraction: Option<f64>,
    /// Number of architectures to train on.
    #[arg(long)]
    train_count: Option<usize>,
    /// k-fold cross-validation over architectures instead of one split: prints the pooled
    /// held-out metrics of every fold (each architecture predicted once, by the fold that left it out).
    #[arg(long, conflicts_with_all = ["train_fraction", "train_count", "out", "plots"])]
    folds: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to save the predictor (a directory with `--predictor all`: one FAMILY.json each).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Lookup tables: what to do for a layer missing from the table (cost-model, macs-linear,
    /// error). Default: tables fitted to networks use the cost model their entries were shrunk
    /// toward; tables of single-layer measurements refuse unknown layers.
    #[arg(long)]
    fallback: Option<String>,
    /// Lookup tables fitted to networks: no free intercept.
    #[arg(long)]
    no_intercept: bool,
    /// Lookup tables fitted to networks: ridge weight of the per-key level, relative to its mean squared column norm (how far an entry may move from the cost model).
    #[arg(long, default_value_t = 1e-9)]
    ridge: f64,
    /// Write held-out scatter and error-histogram plots (PNG and SVG) here.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Print metrics as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// A new device from a few measurements: adapt this predictor of another device (a
    /// lookup table, e.g. fitted on HW-NAS-Bench's Pixel 3) to --data — `auto`'s selection
    /// over scale/offset calibration of the source plus residual models on top of it.
    #[arg(long, conflicts_with = "folds")]
    from: Option<PathBuf>,
    /// Convert a published table instead of fitting: spnas-pixel1, ofa-yaml, or ofa-accuracy
    /// (OFA's accuracy predictor `acc_predictor.pth`; --space ofa-mbv3-w1.2 by default).
    #[arg(long)]
    import: Option<String>,
    /// ofa-yaml: the table's input resolution (default: read from `{R}_lookup_table.yaml`).
    #[arg(long)]
    resolution: Option<u32>,
    /// Fit on the rows measured in this precision (fp32, fp16, int8; the `precision` column,
    /// missing = fp32), which the predictor file records. Needed when the data mix precisions.
    #[arg(long)]
    precision: Option<predictors::Precision>,
}

pub fn run(a: Args) -> Result<()> {
    if let Some(kind) = a.import.as_deref() {
        if let Some(p) = a.precision.filter(|p| *p != predictors::Precision::Fp32) {
            bail!("--import {kind}: published tables are fp32 measurements; --precision {p} does not apply");
        }
        return crate::cli::fit_import::run(kind, &a.data, a.space.as_deref(), a.resolution, a.out.as_deref());
    }
    if a.predictor == "accuracy" {
        if a.precision.is_some() {
            bail!("--precision selects latency measurements; accuracy does not depend on it here");
        }
        return fit_accuracy(&a);
    }
    let mut ds = dataset::load(&a.data, a.space.as_deref(), "latency_ms")?;
    if let Some(p) = a.precision {
        ds.select_precision(p)?;
    }
    let precision = ds.precision()?;
    if ds.networks.len() < 2 {
        bail!(
            "{}: {} network rows; fitting and scoring need at least 2 architectures",
            a.data.display(),
            ds.networks.len()
        );
    }
    let mut opts = TrainOptions { fallback: a.fallback.clone(), seed: a.seed, ..Default::default() };
    opts.lut.intercept = !a.no_intercept;
    opts.lut.ridge = a.ridge;
    let from = match &a.from {
        Some(path) if a.predictor != "auto" => {
            bail!(
                "--from {} adapts a predictor with `auto`'s selection; drop --predictor {}",
                path.display(),
                a.predictor
            )
        }
        Some(path) => Some(
            predictors::document::load_predictor(path)
                .with_context(|| format!("reading the --from predictor {}", path.display()))?,
        ),
        None => None,
    };
    let families: Vec<&str> = if a.predictor == "all" { FAMILIES.to_vec() } else { vec![a.predictor.as_str()] };
    if let Some(k) = a.folds {
        return cross_validate(&a, &ds, &families, &opts, k);
    }
    let s = split(&ds.networks, train_size(&a), a.seed)?;
    let train: Vec<&NetworkRow> = s.train.iter().map(|&i| &ds.networks[i]).collect();
    let test: Vec<&NetworkRow> = s.test.iter().map(|&i| &ds.networks[i]).collect();
    let measured: Vec<f64> = test.iter().map(|r| r.value).collect();
    let mut results: Vec<(String, Metrics)> = Vec::new();
    for family in &families {
        let started = std::time::Instant::now();
        let (p, selection) = if let Some(from) = &from {
            let (p, sel) =
                train::fit_transfer(&ds, &train, from.as_ref(), &opts).context("adapting the --from predictor")?;
            (p, Some(sel))
        } else if *family == "auto" {
            let (p, sel) = train::fit_auto(&ds, &train, &opts).context("fitting `auto`")?;
            (p, Some(sel))
        } else {
            (train::fit(family, &ds, &train, &opts).with_context(|| format!("fitting `{family}`"))?, None)
        };
        let fit_s = started.elapsed().as_secs_f64();
        if let (Some(sel), false) = (&selection, a.json) {
            print_selection(sel);
        }
        let (m, pred) = eval::evaluate(p.as_ref(), &test)?;
        if !a.json {
            eprintln!("fitted {family} on {} {precision} rows in {fit_s:.2} s", train.len());
        }
        if let Some(out) = &a.out {
            let path = if a.predictor == "all" {
                std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
                out.join(format!("{}.json", family.replace('+', "-")))
            } else {
                out.clone()
            };
            p.save(&path)?;
            if let Some(sel) = &selection {
                predictors::document::attach(&path, "selection", serde_json::to_value(sel)?)?;
            }
            if !a.json {
                eprintln!("saved {}", path.display());
            }
        }
        if let Some(dir) = &a.plots {
            let stem = family.replace('+', "-");
            plots::write_all(dir, &stem, &format!("{family} (held out, n = {})", test.len()), &pred, &measured)?;
        }
        results.push((family.to_string(), m));
    }
    if a.json {
        let obj: serde_json::Map<String, serde_json::Value> =
            results.iter().map(|(f, m)| (f.clone(), serde_json::to_value(m).unwrap())).collect();
        let doc = serde_json::json!({"train_architectures": train.len(), "test_rows": test.len(), "seed": a.seed, "held_out": obj});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let title = format!(
            "Held-out metrics: {} (train {} rows / test {} rows, split by architecture, seed {})",
            a.data.display(),
            train.len(),
            test.len(),
            a.seed
        );
        print!("{}", markdown_table(&title, &results));
    }
    Ok(())
}

/// Every candidate's cross-validated scores, the choice, and a warning when nothing ranks.
fn print_selection(sel: &predictors::auto::Selection) {
    eprintln!(
        "auto: {}-fold CV (x{}) on {} training architectures:",
        sel.folds,
        predictors::auto::REPEATS,
        sel.training_architectures
    );
    for s in &sel.scores {
        let mark = if s.candidate == sel.chosen { "*" } else { " " };
        eprintln!(
            " {mark} {:<52} CV rmse {:>9.4} ms  Spearman {:>6.3}  within ±10% {:>5.1}%",
            s.candidate.describe(),
            s.cv.rmse_ms,
            s.cv.spearman,
            100.0 * s.cv.within_10pct
        );
    }
    eprintln!("auto: chose {} (simplest within one standard error of the lowest CV error)", sel.chosen.describe());
    if !sel.predictable {
        eprintln!(
            "auto: WARNING: the chosen predictor does not rank held-out networks meaningfully (CV Spearman below {}): \
             these measurements cannot be predicted from the architecture; re-measure (batch size, warm-up, \
             repeats) before searching with this predictor",
            predictors::auto::MIN_USEFUL_SPEARMAN
        );
    }
}

fn train_size(a: &Args) -> TrainSize {
    match (a.train_fraction, a.train_count) {
        (_, Some(n)) => TrainSize::Count(n),
        (Some(f), None) => TrainSize::Fraction(f),
        (None, None) => TrainSize::Fraction(0.8),
    }
}

/// `--predictor accuracy`: the accuracy MLP on (arch, accuracy) rows of one space.
fn fit_accuracy(a: &Args) -> Result<()> {
    use predictors::accuracy::{AccuracyPredictor, MlpAccuracyPredictor};
    let ds = dataset::load(&a.data, a.space.as_deref(), "accuracy")?;
    let Some(first) = ds.networks.first() else { bail!("{}: no architecture rows", a.data.display()) };
    if let Some(r) = ds.networks.iter().find(|r| r.space != first.space) {
        bail!("accuracy rows mix spaces `{}` and `{}`; fit one space at a time", first.space, r.space);
    }
    let space = spaces::space(&first.space)?;
    let s = split(&ds.networks, train_size(a), a.seed)?;
    let genomes: Vec<&spaces::Genome> = s.train.iter().map(|&i| &ds.networks[i].genome).collect();
    let y: Vec<f64> = s.train.iter().map(|&i| ds.networks[i].value).collect();
    let cfg = predictors::mlp::MlpConfig { seed: a.seed, ..Default::default() };
    let p = MlpAccuracyPredictor::fit(&ds.source, space.as_ref(), &genomes, &y, &cfg)?;
    let pred =
        s.test.iter().map(|&i| p.predict(space.as_ref(), &ds.networks[i].genome)).collect::<Result<Vec<_>, _>>()?;
    let truth: Vec<f64> = s.test.iter().map(|&i| ds.networks[i].value).collect();
    let m = Metrics::compute(&pred, &truth);
    if let Some(out) = &a.out {
        p.save(out)?;
        eprintln!("saved {} (weights beside it)", out.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        let title = format!(
            "Held-out accuracy prediction ({} train / {} test rows; RMSE in accuracy units)",
            s.train.len(),
            s.test.len()
        );
        print!("{}", markdown_table(&title, &[("accuracy-mlp".into(), m)]));
    }
    Ok(())
}

/// `--folds k`: every architecture is predicted once, by the model of the fold that held it out.
fn cross_validate(a: &Args, ds: &dataset::Dataset, families: &[&str], opts: &TrainOptions, k: usize) -> Result<()> {
    let folds = predictors::split::k_fold(&ds.networks, k, a.seed)?;
    let mut results = Vec::new();
    for family in families {
        let (mut pred, mut truth) = (Vec::new(), Vec::new());
        for f in &folds {
            let train: Vec<&NetworkRow> = f.train.iter().map(|&i| &ds.networks[i]).collect();
            let test: Vec<&NetworkRow> = f.test.iter().map(|&i| &ds.networks[i]).collect();
            let p = train::fit(family, ds, &train, opts).with_context(|| format!("fitting `{family}`"))?;
            pred.extend(eval::predict_rows(p.as_ref(), &test)?);
            truth.extend(test.iter().map(|r| r.value));
        }
        results.push((family.to_string(), Metrics::compute(&pred, &truth)));
    }
    if a.json {
        let obj: serde_json::Map<String, serde_json::Value> =
            results.iter().map(|(f, m)| (f.clone(), serde_json::to_value(m).unwrap())).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"folds": k, "seed": a.seed, "held_out": obj}))?
        );
    } else {
        let title = format!("{k}-fold cross-validation over architectures: {} (seed {})", a.data.display(), a.seed);
        print!("{}", markdown_table(&title, &results));
    }
    Ok(())
}
