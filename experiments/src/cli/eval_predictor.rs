//! `hwnas eval-predictor`: score a saved predictor on a dataset.

use anyhow::{bail, Result};
use predictors::compare::markdown_table;
use predictors::dataset::{self, NetworkRow};
use predictors::{eval, load_predictor, plots};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A predictor file (any family).
    #[arg(long)]
    predictor: PathBuf,
    /// Measurements (CSV or Parquet) with `arch` and `latency_ms`.
    #[arg(long)]
    data: PathBuf,
    /// Space of rows without a `space` column.
    #[arg(long)]
    space: Option<String>,
    /// Print {n, rmse_ms, mape, within_5pct, within_10pct, kendall_tau, spearman} as JSON.
    #[arg(long)]
    json: bool,
    /// Write the scatter plot and error histogram (PNG and SVG) here.
    #[arg(long)]
    plots: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let p = load_predictor(&a.predictor)?;
    let ds = dataset::load(&a.data, a.space.as_deref(), "latency_ms")?;
    if ds.networks.is_empty() {
        bail!("{}: no network rows to evaluate on", a.data.display());
    }
    let rows: Vec<&NetworkRow> = ds.networks.iter().collect();
    let (m, pred) = eval::evaluate(p.as_ref(), &rows)?;
    if let Some(dir) = &a.plots {
        let measured: Vec<f64> = rows.iter().map(|r| r.value).collect();
        let stem = format!("eval_{}", p.family().replace('+', "-"));
        let written =
            plots::write_all(dir, &stem, &format!("{} on {}", p.family(), a.data.display()), &pred, &measured)?;
        for w in written {
            eprintln!("wrote {}", w.display());
        }
    }
    if a.json {
        let mut v = serde_json::to_value(m)?;
        v["family"] = p.family().into();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let title = format!("{} on {}", a.predictor.display(), a.data.display());
        print!("{}", markdown_table(&title, &[(p.family().to_string(), m)]));
    }
    Ok(())
}
