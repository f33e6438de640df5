//! Learning curves of the latency predictors (issue 13; nn-Meter's metrics, Zhang et al. 2021,
//! Table 5, plus rank correlations): every family fitted on 10 … 1,000 architectures of each
//! real latency dataset, scored on all the other architectures of that dataset, averaged over
//! seeds; a table per dataset, Spearman ρ against training-set size plotted per dataset, and
//! scatter and error plots per family at the largest size.

use super::common::{latency_datasets, score, split_rows, Fitted};
use super::Setup;
use anyhow::Result;
use predictors::dataset::{self, Dataset, LayerSource, NetworkRow};
use predictors::metrics::Metrics;
use predictors::plots::Curve;
use predictors::split::TrainSize;
use predictors::train::{TrainOptions, FAMILIES};
use predictors::LatencyPredictor;
use std::fmt::Write;
use std::time::Instant;

/// Training-set sizes in architectures (`--sizes`).
const SIZES: [usize; 6] = [10, 20, 50, 100, 200, 1000];
/// Seeds per size (`--seeds`), from `--seed` on.
const SEEDS: u64 = 3;
/// Columns of the compact τ / MAPE / ±10 % table: the default family and the baseline it must beat.
const DETAIL: [&str; 2] = ["auto", "flops+memory"];
/// The column the curves plot as the baseline (black, dashed).
const BASELINE: &str = "flops";
/// A dataset profiled by hwnas that no size fits: this share of its architectures trains.
const OWN_TRAIN_FRACTION: f64 = 0.8;

/// One dataset of the study.
struct Study {
    label: String,
    what: String,
    ds: Dataset,
    /// Lookup tables' policy for layers no training network had.
    fallback: Option<&'static str>,
    /// The `transfer` column's source: another device's predictor for the same space.
    source: Option<Source>,
}

/// Architectures of the source device the `transfer` column's source predictor is fitted on.
const SOURCE_NETWORKS: usize = 1000;

/// A predictor of another device, `auto`-fitted on [`SOURCE_NETWORKS`] of its networks.
struct Source {
    label: String,
    predictor: Box<dyn LatencyPredictor>,
}

/// Which other dataset transfers to `label`: the source, HW-NAS-Bench's Pixel 3,
/// for the FBNet devices (the Raspberry Pi 4 for the Pixel 3 itself), and the other GPU at
/// the same batch size for HELP's OFA files.
fn source_label(label: &str) -> Option<String> {
    match label {
        "pixel3" => Some("raspi4".into()),
        "raspi4" | "pixel2" | "samsung_a50" => Some("pixel3".into()),
        gpu => {
            let (device, batch) = gpu.rsplit_once("-b")?;
            let other = match device {
                "2080ti" => "titan_rtx",
                "titan_rtx" => "2080ti",
                _ => return None,
            };
            Some(format!("{other}-b{batch}"))
        }
    }
}

/// One number of a held-out score.
type Metric = fn(&Metrics) -> f64;

type Fit<'a> = Box<dyn Fn(&Dataset, &[&NetworkRow], u64) -> Result<Box<dyn LatencyPredictor>> + 'a>;

/// One column of the tables and one line of the plots: a way to get a predictor from the
/// training rows of a study (and a seed).
struct Column<'a> {
    name: String,
    fit: Fit<'a>,
}

/// The columns of `study`: every family of [`FAMILIES`], fitted as `hwnas fit` does, then
/// `transfer` (`hwnas fit --from`: the study's [`Source`] adapted to the training rows). This
/// is the one place to add a family-like column: tables, means and plots take every column
/// from this list.
fn columns(study: &Study) -> Vec<Column<'_>> {
    let mut out: Vec<Column<'_>> = FAMILIES
        .iter()
        .map(|&family| Column {
            name: family.to_string(),
            fit: Box::new(move |ds, train, seed| super::common::fit_family(family, ds, train, seed, study.fallback)),
        })
        .collect();
    out.push(Column {
        name: TRANSFER.into(),
        fit: Box::new(move |ds, train, seed| {
            let Some(source) = &study.source else {
                anyhow::bail!("no other device's measurements of this space to transfer from")
            };
            let opts = predictors::train::TrainOptions { seed, ..Default::default() };
            let (p, _) = predictors::train::fit_transfer(ds, train, source.predictor.as_ref(), &opts)?;
            Ok(p)
        }),
    });
    // The lookup tables of one device measured two ways (the own dataset with --layer-table),
    // each from its share of the layer rows, filtered once here. Without single-layer rows
    // `lut` already is the in-network table (`fit_lut`), so no second column fits it again.
    // `fit_lut` directly, not `common::fit_family` (`train::fit`), which would also check the
    // filtered rows' precision and name the family `lut` in a failed fit's message.
    if has_single_layers(&study.ds) {
        let fallback = study.fallback;
        let opts = move |seed| TrainOptions { seed, fallback: fallback.map(Into::into), ..Default::default() };
        if study.ds.has_layers_in_networks() {
            let inside = study.ds.with_layers(|l| matches!(l.source, LayerSource::InNetwork { .. }));
            out.push(Column {
                name: LUT_IN_NETWORKS.into(),
                fit: Box::new(move |_, train, seed| {
                    Ok(Box::new(predictors::train::fit_lut(&inside, train, &opts(seed))?))
                }),
            });
        }
        let alone = study.ds.with_layers(|l| l.source == LayerSource::Alone);
        out.push(Column {
            name: LUT_SINGLE_LAYERS.into(),
            // No training networks: the table as timed, not calibrated.
            fit: Box::new(move |_, _train, seed| Ok(Box::new(predictors::train::fit_lut(&alone, &[], &opts(seed))?))),
        });
    }
    out
}

/// Whether `ds` has layers timed alone (`kind = layer`, `--layer-table`).
fn has_single_layers(ds: &Dataset) -> bool {
    ds.layers.iter().any(|l| l.source == LayerSource::Alone)
}

/// Whether `ds`'s `lut` column is OFA's table: layers timed inside networks, none alone
/// ([`predictors::train::fit_lut`]).
fn lut_is_in_networks(ds: &Dataset) -> bool {
    ds.has_layers_in_networks() && !has_single_layers(ds)
}

/// The column of `hwnas fit --from`.
const TRANSFER: &str = "transfer";
/// OFA's table: each key's mean over the layers timed inside the training networks
/// (`hwnas profile --networks N --per-layer`).
const LUT_IN_NETWORKS: &str = "lut-in-networks";
/// nn-Meter's and HW-NAS-Bench's table: every layer timed alone (`hwnas profile --table`),
/// summed as it is (the `lut` column calibrates it on the training networks).
const LUT_SINGLE_LAYERS: &str = "lut-single-layers";

/// The columns named by `--families` (all when `None`), in the study's order.
fn chosen<'a>(all: Vec<Column<'a>>, wanted: Option<&[String]>) -> Result<Vec<Column<'a>>> {
    let Some(wanted) = wanted else { return Ok(all) };
    // The per-layer tables are columns of an own dataset with single-layer rows only; other
    // datasets go without them.
    let own_only = [LUT_IN_NETWORKS, LUT_SINGLE_LAYERS];
    if let Some(w) = wanted.iter().find(|w| !all.iter().any(|c| c.name == **w) && !own_only.contains(&w.as_str())) {
        let known: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        anyhow::bail!("--families: no column `{w}` (known: {})", known.join(", "));
    }
    Ok(all.into_iter().filter(|c| wanted.contains(&c.name)).collect())
}

/// The held-out metrics of one column at one size, per seed.
#[derive(Default)]
struct Cell {
    metrics: Vec<Metrics>,
    /// (seed, error) of the fits that failed.
    errors: Vec<(u64, String)>,
    seconds: f64,
}

pub fn run(cx: &Setup) -> Result<String> {
    let sizes = cx.sizes.clone().unwrap_or(SIZES.to_vec());
    if sizes.is_empty() || sizes.contains(&0) {
        anyhow::bail!("--sizes: give training-set sizes of at least 1 architecture, e.g. --sizes 10,20");
    }
    let n_seeds = cx.seeds.unwrap_or(SEEDS);
    if n_seeds == 0 {
        anyhow::bail!("--seeds: at least 1");
    }
    let seeds: Vec<u64> = (cx.seed..cx.seed + n_seeds).collect();
    let studies = studies(cx)?;
    let started = Instant::now();
    let mut t = format!(
        "# Latency predictors: learning curves on real measurements\n\n\
         Each family is fitted on n architectures of a dataset (split by architecture) and scored on all the \
         others; numbers are {}. Lookup tables price layers no training network had by the \
         library's default (the per-kind cost model). Curves: `<dataset>/spearman.png`; scatter and error plots \
         per family at the largest size (seed {}) in `<dataset>/`.\n\n",
        seeds_phrase(&seeds),
        seeds[0]
    );
    let mut timing: Vec<(String, f64)> = Vec::new();
    for study in &studies {
        let columns = chosen(columns(study), cx.families.as_deref())?;
        let n_arch = architectures(&study.ds);
        let mut run_sizes: Vec<usize> = sizes.iter().copied().filter(|&n| n < n_arch).collect();
        if run_sizes.is_empty() {
            run_sizes.push(((OWN_TRAIN_FRACTION * n_arch as f64).round() as usize).clamp(1, n_arch - 1));
        }
        let skipped: Vec<usize> = sizes.iter().copied().filter(|&n| n >= n_arch).collect();
        let dir = cx.out.join(&study.label);
        // cells[size][column]
        let mut cells: Vec<Vec<Cell>> = Vec::new();
        let mut tests = Vec::new();
        for (si, &n) in run_sizes.iter().enumerate() {
            let mut row: Vec<Cell> = columns.iter().map(|_| Cell::default()).collect();
            let mut n_test = 0;
            for &seed in &seeds {
                let s = split_rows(&study.ds, TrainSize::Count(n), seed)?;
                n_test = s.test.len();
                for (c, cell) in columns.iter().zip(&mut row) {
                    let t0 = Instant::now();
                    let fitted = (c.fit)(&study.ds, &s.train, seed).and_then(|p| score(p, &s.test));
                    cell.seconds += t0.elapsed().as_secs_f64();
                    match fitted {
                        Ok(Fitted { metrics, predicted, measured, .. }) => {
                            cell.metrics.push(metrics);
                            if si + 1 == run_sizes.len() && seed == seeds[0] {
                                predictors::plots::write_all(
                                    &dir,
                                    &c.name.replace('+', "-"),
                                    &format!(
                                        "{}: {} fitted on {n} (held out, n = {})",
                                        study.label,
                                        c.name,
                                        measured.len()
                                    ),
                                    &predicted,
                                    &measured,
                                )?;
                            }
                        }
                        Err(e) => cell.errors.push((seed, format!("{e:#}"))),
                    }
                }
            }
            eprintln!(
                "{}: {n} networks, {} seeds: {}",
                study.label,
                seeds.len(),
                columns
                    .iter()
                    .zip(&row)
                    .map(|(c, x)| format!("{} {:.1} s", c.name, x.seconds))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            cells.push(row);
            tests.push(n_test);
        }
        for (c, i) in columns.iter().zip(0..) {
            let s: f64 = cells.iter().map(|r| r[i].seconds).sum();
            match timing.iter_mut().find(|(n, _)| *n == c.name) {
                Some(e) => e.1 += s,
                None => timing.push((c.name.clone(), s)),
            }
        }
        t += &study_tables(study, n_arch, &columns, &run_sizes, &skipped, &tests, &cells);
        let curves: Vec<Curve> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Curve {
                label: c.name.clone(),
                points: run_sizes
                    .iter()
                    .zip(&cells)
                    .map(|(&n, r)| (n as f64, mean(&r[i].metrics, |m| m.spearman).0))
                    .collect(),
                baseline: c.name == BASELINE,
            })
            .collect();
        predictors::plots::log_x_lines(
            &dir,
            "spearman",
            &format!("{}: held-out Spearman ρ, {}", study.label, seeds_phrase(&seeds)),
            ("training networks (log scale)", "Spearman ρ"),
            &curves,
        )?;
    }
    let _ = writeln!(
        t,
        "Fit + scoring time per column, all datasets, sizes and seeds ({:.0} s in all): {}.",
        started.elapsed().as_secs_f64(),
        timing.iter().map(|(n, s)| format!("{n} {s:.1} s")).collect::<Vec<_>>().join(", ")
    );
    Ok(t)
}

/// The real datasets in shared/data, then `--data` if given.
fn studies(cx: &Setup) -> Result<Vec<Study>> {
    let mut out = Vec::new();
    // The own dataset first: refused before the long real-data fits if it cannot be studied.
    let own = match &cx.data {
        Some(path) => {
            let mut ds = dataset::load(path, None, "latency_ms")?;
            if let Some(table) = &cx.layer_table {
                let t = dataset::load(table, None, "latency_ms")?;
                let alone: Vec<_> = t.layers.into_iter().filter(|l| l.source == LayerSource::Alone).collect();
                if alone.is_empty() {
                    anyhow::bail!(
                        "{}: no single-layer rows (`kind = layer`): profile the table with `hwnas profile --table …                          --out DIR` and pass DIR/latency.parquet",
                        table.display()
                    );
                }
                ds.layers.extend(alone);
            }
            if architectures(&ds) < 2 {
                anyhow::bail!(
                    "{}: {} whole-network rows ({} single-layer rows); a predictor study needs measured networks: \
                     profile them with `hwnas profile --networks N … --out DIR` and pass DIR/latency.parquet",
                    path.display(),
                    ds.networks.len(),
                    ds.layers.len()
                );
            }
            // A table of single-layer measurements refuses unseen layers by default; the few
            // profiled networks rarely cover every layer of the held-out ones.
            let fallback = if ds.layers.is_empty() { None } else { Some("cost-model") };
            let what = match &cx.layer_table {
                Some(t) => format!("profiled by hwnas, {}; single layers {}", path.display(), t.display()),
                None => format!("profiled by hwnas, {}", path.display()),
            };
            Some(Study { label: "own".into(), what, ds, fallback, source: None })
        }
        None => None,
    };
    for d in latency_datasets(&cx.shared)? {
        out.push(Study { ds: d.load()?, label: d.label, what: d.what, fallback: None, source: None });
    }
    let wants_transfer = cx.families.as_ref().is_none_or(|f| f.iter().any(|f| f == TRANSFER));
    if wants_transfer {
        let sources: Vec<Option<Source>> = out
            .iter()
            .map(|study| {
                let Some(from) = source_label(&study.label) else { return Ok(None) };
                let Some(other) = out.iter().find(|o| o.label == from) else { return Ok(None) };
                let s = split_rows(&other.ds, TrainSize::Count(SOURCE_NETWORKS), 0)?;
                let predictor = super::common::fit_family("auto", &other.ds, &s.train, 0, None)?;
                Ok(Some(Source { label: other.label.clone(), predictor }))
            })
            .collect::<Result<_>>()?;
        for (study, source) in out.iter_mut().zip(sources) {
            study.source = source;
        }
    }
    out.extend(own);
    Ok(out)
}

/// Distinct architectures (what a split counts).
fn architectures(ds: &Dataset) -> usize {
    ds.networks.iter().map(|r| r.arch_id.as_str()).collect::<std::collections::BTreeSet<_>>().len()
}

/// Mean of `f` over the seeds whose value is finite, and how many those are.
fn mean(ms: &[Metrics], f: impl Fn(&Metrics) -> f64) -> (f64, usize) {
    let v: Vec<f64> = ms.iter().map(f).filter(|x| x.is_finite()).collect();
    (if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }, v.len())
}

/// A mean over seeds as printed: `–` when no seed has a value, the count when some lack one
/// (a failed fit, or a constant prediction whose rank correlation is undefined).
fn fmt_mean(cell: &Cell, n_seeds: usize, f: impl Fn(&Metrics) -> f64, digits: usize) -> String {
    let (m, k) = mean(&cell.metrics, f);
    match k {
        0 => "–".to_string(),
        k if k == n_seeds => format!("{m:.digits$}"),
        k => format!("{m:.digits$} ({k}/{n_seeds})"),
    }
}

fn seeds_phrase(seeds: &[u64]) -> String {
    match seeds {
        [s] => format!("seed {s}"),
        _ => format!("means over seeds {}", list(seeds)),
    }
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn study_tables(
    study: &Study,
    n_arch: usize,
    columns: &[Column],
    sizes: &[usize],
    skipped: &[usize],
    tests: &[usize],
    cells: &[Vec<Cell>],
) -> String {
    let n_seeds = cells.first().and_then(|r| r.first()).map_or(0, |c| c.metrics.len() + c.errors.len());
    let mut t = format!("## {}: {} ({n_arch} architectures)\n\n", study.label, study.what);
    if !skipped.is_empty() {
        let _ = writeln!(t, "Sizes {} skipped: not fewer than the dataset's architectures.\n", list(skipped));
    }
    if study.fallback.is_some() {
        let _ = writeln!(t, "This dataset has per-layer rows: its tables price unseen layers by the cost model.\n");
    }
    if columns.iter().any(|c| c.name == LUT_IN_NETWORKS || c.name == LUT_SINGLE_LAYERS) {
        let _ = writeln!(
            t,
            "`{LUT_IN_NETWORKS}`: each key's mean over the layers timed inside the training networks (OFA's \
             table); `{LUT_SINGLE_LAYERS}`: every layer timed alone, summed as timed (`lut` calibrates it on the \
             training networks).\n"
        );
    } else if lut_is_in_networks(&study.ds) && columns.iter().any(|c| c.name == "lut") {
        let _ = writeln!(
            t,
            "`lut`: each key's mean over the layers timed inside the training networks (OFA's table; the dataset \
             has no single-layer rows).\n"
        );
    }
    if let Some(src) = &study.source {
        let _ = writeln!(
            t,
            "`{TRANSFER}` adapts {}'s `auto` predictor ({SOURCE_NETWORKS} of its networks, seed 0) to the training \
             networks, as `hwnas fit --from` does.\n",
            src.label
        );
    }
    t += "Held-out Spearman ρ:\n\n| train | test |";
    for c in columns {
        let _ = write!(t, " {} |", c.name);
    }
    t += "\n|---|---|";
    t += &"---|".repeat(columns.len());
    t += "\n";
    for ((n, n_test), row) in sizes.iter().zip(tests).zip(cells) {
        let _ = write!(t, "| {n} | {n_test} |");
        for cell in row {
            let _ = write!(t, " {} |", fmt_mean(cell, n_seeds, |m| m.spearman, 3));
        }
        t += "\n";
    }
    // The own dataset's two tables are what it is studied for: their errors are shown too.
    let lut_detail = lut_is_in_networks(&study.ds) || columns.iter().any(|c| c.name == LUT_IN_NETWORKS);
    let detail: Vec<usize> = DETAIL
        .iter()
        .chain(&["lut", LUT_IN_NETWORKS, LUT_SINGLE_LAYERS])
        .filter(|d| **d != "lut" || lut_detail)
        .filter_map(|d| columns.iter().position(|c| c.name == *d))
        .collect();
    if !detail.is_empty() {
        let names = detail.iter().map(|&i| columns[i].name.as_str()).collect::<Vec<_>>().join(" / ");
        let _ = write!(t, "\n{names}, held out:\n\n| train | Kendall τ | MAPE % | ±10 % |\n|---|---|---|---|\n");
        for (n, row) in sizes.iter().zip(cells) {
            let cols: [(Metric, usize); 3] =
                [(|m| m.kendall_tau, 3), (|m| 100.0 * m.mape, 2), (|m| 100.0 * m.within_10pct, 1)];
            let _ = write!(t, "| {n} |");
            for (f, digits) in cols {
                let v: Vec<String> = detail.iter().map(|&i| fmt_mean(&row[i], n_seeds, f, digits)).collect();
                let _ = write!(t, " {} |", v.join(" / "));
            }
            t += "\n";
        }
    }
    let errors: Vec<String> = sizes
        .iter()
        .zip(cells)
        .flat_map(|(n, row)| {
            columns.iter().zip(row).flat_map(move |(c, cell)| {
                cell.errors.iter().map(move |(seed, e)| format!("- {} at {n}, seed {seed}: {e}", c.name))
            })
        })
        .collect();
    if !errors.is_empty() {
        let _ = write!(t, "\nFits that failed (left out of the means):\n\n{}\n", errors.join("\n"));
    }
    t += "\n";
    t
}
