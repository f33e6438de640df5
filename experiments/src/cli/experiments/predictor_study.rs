//! nn-Meter-style predictor comparison (Zhang et al. 2021, Table 5: RMSE and the share of
//! networks predicted within ±10 %): every family fitted on the same measured dataset and
//! scored on the same held-out architectures, with scatter and error plots per family.

use super::common::{fit_split, hw_nas_bench, Fitted};
use super::Setup;
use anyhow::Result;
use predictors::compare::markdown_table;
use predictors::dataset;
use predictors::split::TrainSize;
use predictors::train::FAMILIES;

/// HW-NAS-Bench: 200 architectures train, the other 4,800 test (the README's comparison).
const BENCH_TRAIN: usize = 200;
/// A dataset profiled by hwnas: 80 % of its architectures train.
const OWN_TRAIN_FRACTION: f64 = 0.8;

pub fn run(cx: &Setup) -> Result<String> {
    // (label, data, split, lookup-table fallback)
    let mut studies: Vec<(String, dataset::Dataset, TrainSize, &str)> = Vec::new();
    for (label, path) in hw_nas_bench(&cx.shared) {
        studies.push((
            label.to_string(),
            dataset::load(&path, Some("fbnet-cifar100"), "latency_ms")?,
            TrainSize::Count(BENCH_TRAIN),
            "error",
        ));
    }
    if let Some(path) = &cx.data {
        let ds = dataset::load(path, None, "latency_ms")?;
        // Checked before the long HW-NAS-Bench fits: a `--table` profile has layer rows only.
        if ds.networks.len() < 2 {
            anyhow::bail!(
                "{}: {} whole-network rows ({} single-layer rows); a predictor study needs measured networks: \
                 profile them with `hwnas profile --networks N … --out DIR` and pass DIR/latency.parquet",
                path.display(),
                ds.networks.len(),
                ds.layers.len()
            );
        }
        // A few profiled networks rarely cover every layer of the held-out ones: the table prices
        // such layers linearly in MACs and memory (stated in the title).
        studies.push(("own".to_string(), ds, TrainSize::Fraction(OWN_TRAIN_FRACTION), "macs-linear"));
    }
    let mut t = String::new();
    for (label, ds, size, fallback) in &studies {
        let dir = cx.out.join(label);
        let mut rows = Vec::new();
        let mut train_rows = 0;
        for family in FAMILIES {
            let started = std::time::Instant::now();
            let Fitted { metrics, predicted, measured, train_rows: n, .. } =
                fit_split(family, ds, *size, cx.seed, fallback)?;
            eprintln!("{label}: {family} fitted and scored in {:.1} s", started.elapsed().as_secs_f64());
            train_rows = n;
            let stem = family.replace('+', "-");
            predictors::plots::write_all(
                &dir,
                &stem,
                &format!("{label}: {family} (held out, n = {})", measured.len()),
                &predicted,
                &measured,
            )?;
            rows.push((family.to_string(), metrics));
        }
        let n_test = rows.first().map_or(0, |r| r.1.n);
        let title = format!(
            "## {label}: {} — train {train_rows} / test {n_test} architectures (split by architecture, seed {}; lut fallback {fallback}); plots in {label}/",
            ds.source, cx.seed
        );
        t += &markdown_table(&title, &rows);
        t += "\n";
    }
    Ok(t)
}
