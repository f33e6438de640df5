//! Does the precision a model is deployed in change which architectures are fast (issue 16)?
//! The `fbnet-cifar100` (32x32) and `ofa-mbv3-w1.0` at r 160 lookup tables profiled on this
//! machine's CPU with LiteRT in fp32, fp16 and int8 (`hwnas profile --table --runtime litert
//! --precision P`, int8 with `--int8-io`; journaled under OUT/measurements, so a rerun reuses every
//! measurement), then:
//!
//! - per layer kind, the int8/fp32 and fp16/fp32 latency ratios (geometric mean, range);
//! - over seeded random members of each space priced by the three tables, the rank
//!   correlation (Kendall τ-b) of their latencies across precisions;
//! - whether the members a search would pick differ: the overlap of the 10 fastest, and under
//!   a target at each precision's 20th percentile the member with the highest capacity proxy
//!   (search's training-free accuracy stand-in) and the overlap of the feasible sets;
//! - plots: int8 and fp16 member latency against fp32 (per space), and the per-kind ratios.

use super::Setup;
use crate::cli::profile::Request;
use anyhow::{bail, Context, Result};
use latency::modelfile::Precision;
use latency::profile::{Protocol, RuntimeSpec};
use plotters::coord::Shift;
use plotters::prelude::*;
use predictors::metrics::kendall_tau_b;
use rand::SeedableRng;
use search::objectives::accuracy::CapacityProxy;
use spaces::ir::{Layer, Op};
use spaces::SearchSpace;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::path::Path;

/// The tables: (space, resolution pinned or `None` for the space's own).
const TABLES: [(&str, Option<u32>); 2] = [("fbnet-cifar100", None), ("ofa-mbv3-w1.0", Some(160))];
/// Random members priced per space.
const MEMBERS: usize = 1000;
/// How many of the fastest members are compared across precisions.
const FASTEST: usize = 10;
/// The latency target of the pick: this quantile of the members' latencies, per precision.
const TARGET_QUANTILE: f64 = 0.2;

/// One space's table per precision: layer key → median latency (ms).
pub struct Tables {
    pub space: Box<dyn SearchSpace>,
    /// Every layer the (pinned) space can contain.
    pub layers: Vec<Layer>,
    pub ms: BTreeMap<Precision, HashMap<String, f64>>,
}

/// What the study finds for one space.
pub struct Analysis {
    pub space: String,
    /// (kind, layers measured in every precision, geometric-mean ratio and range per
    /// non-fp32 precision).
    pub kinds: Vec<KindRatio>,
    /// Priced members: one latency per precision (in `Precision::ALL` order).
    pub members: Vec<[f64; 3]>,
    /// Kendall τ-b of member latencies: (a, b, τ).
    pub tau: Vec<(Precision, Precision, f64)>,
    /// How many of the [`FASTEST`] fastest in fp32 are among the fastest in fp16 / int8.
    pub fastest_shared: [usize; 2],
    /// Per precision: the target (ms), the member picked under it (index) and the feasible set.
    pub picks: Vec<Pick>,
    /// Table layers without a measurement in some precision (members using them are skipped).
    pub missing: BTreeMap<Precision, usize>,
}

pub struct KindRatio {
    pub kind: String,
    pub layers: usize,
    /// fp16/fp32 then int8/fp32: (geometric mean, min, max).
    pub ratio: [(f64, f64, f64); 2],
}

pub struct Pick {
    pub precision: Precision,
    pub target_ms: f64,
    pub member: usize,
    pub feasible: BTreeSet<usize>,
}

/// A finer layer kind than the predictors' (int8 kernels differ by kernel size, activation,
/// squeeze-excite and grouping): e.g. `mbconv k5 e hswish se`, `conv k3`, `fc`.
pub fn kind(l: &Layer) -> String {
    let act = |a: &spaces::ir::Act| format!("{a:?}").to_lowercase();
    match &l.op {
        Op::Conv(c) if c.groups > 1 && c.groups == l.input.c => format!("dwconv k{} {}", c.kernel, act(&c.act)),
        Op::Conv(c) => format!("conv k{} {}{}", c.kernel, act(&c.act), if c.se.is_some() { " se" } else { "" }),
        Op::MbConv(m) => format!(
            "mbconv k{}{} {}{}{}",
            m.kernel,
            if m.expand { " expand" } else { "" },
            act(&m.act),
            if m.se.is_some() { " se" } else { "" },
            if m.groups > 1 { format!(" g{}", m.groups) } else { String::new() }
        ),
        Op::Identity => "identity".into(),
        Op::GlobalAvgPool => "pool".into(),
        Op::Dropout { .. } => "dropout".into(),
        Op::Linear(_) => "fc".into(),
    }
}

fn geo(v: &[f64]) -> (f64, f64, f64) {
    let g = (v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64).exp();
    (g, v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(0.0, f64::max))
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// The analysis of one space's tables over `members` seeded random members.
pub fn analyse(t: &Tables, members: usize, seed: u64) -> Result<Analysis> {
    let space = &*t.space;
    for p in Precision::ALL {
        if !t.ms.contains_key(&p) {
            bail!("{}: no {p} table", space.name());
        }
    }
    let missing: BTreeMap<Precision, usize> = Precision::ALL
        .into_iter()
        .map(|p| (p, t.layers.iter().filter(|l| !t.ms[&p].contains_key(&l.key())).count()))
        .collect();
    // Per kind, over the layers measured in every precision.
    let mut by_kind: BTreeMap<String, [Vec<f64>; 2]> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for l in &t.layers {
        let key = l.key();
        if !seen.insert(key.clone()) {
            continue;
        }
        let Some([f32_, f16, i8_]) = ms_all(t, &key) else { continue };
        let e = by_kind.entry(kind(l)).or_default();
        e[0].push(f16 / f32_);
        e[1].push(i8_ / f32_);
    }
    let kinds = by_kind
        .into_iter()
        .map(|(kind, [h, q])| KindRatio { kind, layers: h.len(), ratio: [geo(&h), geo(&q)] })
        .collect();

    // Members priced by summing their layers in each table; one with an unmeasured layer is skipped.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let proxy = CapacityProxy::new(space);
    let (mut priced, mut capacity) = (Vec::new(), Vec::new());
    for _ in 0..members {
        let g = space.sample(&mut rng);
        let net = space.network(&g);
        let mut sum = [0.0; 3];
        // Untimed layers (dropout) have no table entry and cost nothing, as in the lookup tables.
        let ok = net.layers.iter().filter(|l| l.is_timed()).all(|l| match ms_all(t, &l.key()) {
            Some(ms) => {
                (0..3).for_each(|i| sum[i] += ms[i]);
                true
            }
            None => false,
        });
        if ok {
            priced.push(sum);
            capacity.push(proxy.score(&net));
        }
    }
    if priced.len() < FASTEST * 2 {
        bail!(
            "{}: only {} of {members} members have every layer measured in all three precisions",
            space.name(),
            priced.len()
        );
    }
    let column = |i: usize| priced.iter().map(|m| m[i]).collect::<Vec<f64>>();
    let cols = [column(0), column(1), column(2)];
    let p = Precision::ALL;
    let tau = [(0, 1), (0, 2), (1, 2)].iter().map(|&(a, b)| (p[a], p[b], kendall_tau_b(&cols[a], &cols[b]))).collect();
    let fastest = |i: usize| -> BTreeSet<usize> {
        let mut idx: Vec<usize> = (0..priced.len()).collect();
        idx.sort_by(|&x, &y| cols[i][x].total_cmp(&cols[i][y]));
        idx.into_iter().take(FASTEST).collect()
    };
    let f0 = fastest(0);
    let fastest_shared = [f0.intersection(&fastest(1)).count(), f0.intersection(&fastest(2)).count()];
    let picks = (0..3)
        .map(|i| {
            let target_ms = quantile(&cols[i], TARGET_QUANTILE);
            let feasible: BTreeSet<usize> = (0..priced.len()).filter(|&m| cols[i][m] <= target_ms).collect();
            let member =
                *feasible.iter().max_by(|&&a, &&b| capacity[a].total_cmp(&capacity[b])).expect("the quantile's member");
            Pick { precision: p[i], target_ms, member, feasible }
        })
        .collect();
    Ok(Analysis { space: space.name().to_string(), kinds, members: priced, tau, fastest_shared, picks, missing })
}

fn ms_all(t: &Tables, key: &str) -> Option<[f64; 3]> {
    let get = |p: Precision| t.ms[&p].get(key).copied();
    Some([get(Precision::Fp32)?, get(Precision::Fp16)?, get(Precision::Int8)?])
}

/// Profiles (or reads back from its journal) `space`'s table in `precision` on this CPU with LiteRT.
fn profile(cx: &Setup, space: &dyn SearchSpace, resolution: u32, precision: Precision) -> Result<HashMap<String, f64>> {
    let dir = cx.out.join("measurements").join(format!("{}-r{resolution}-{precision}", space.name()));
    let runtime = RuntimeSpec::litert(&latency::runtime::litert::LitertRuntime::default_python())?;
    let mut request = Request::local_table(space.name(), vec![resolution], precision, runtime, dir.clone());
    // 208 layers per precision, each 10 warm-up and rounds of 50 runs until stable (≤ 5
    // rounds); no cool-down (a host has no phone's thermal budget). Pinned here, so the
    // study's protocol does not move with profile's defaults. Every record is journaled.
    request.protocol =
        Protocol { warmup: 10, runs: 50, max_rounds: 5, cooldown: std::time::Duration::ZERO, ..Protocol::default() };
    crate::cli::profile::profile(&request).with_context(|| format!("profiling {} in {precision}", space.name()))?;
    let ds = predictors::dataset::load(&dir.join("latency.parquet"), Some(space.name()), "latency_ms")?;
    let mut sums: HashMap<String, (f64, usize)> = HashMap::new();
    for l in ds.layers.iter().filter(|l| l.precision == precision) {
        let e = sums.entry(l.key.clone()).or_default();
        e.0 += l.latency_ms;
        e.1 += 1;
    }
    Ok(sums.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect())
}

pub fn run(cx: &Setup) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "# Precision study: LiteRT on this CPU in fp32, fp16 and int8\n")?;
    let mut analyses = Vec::new();
    for (name, pinned) in TABLES {
        let mut space = spaces::space(name)?;
        if let Some(r) = pinned {
            let fixed = BTreeMap::from([("r".to_string(), r.to_string())]);
            space = search::pinned::pin(space, &fixed)?;
        }
        let resolution = space.resolutions()[0];
        let layers = space.layer_table(&[resolution]);
        let mut ms = BTreeMap::new();
        for p in Precision::ALL {
            ms.insert(p, profile(cx, &*space, resolution, p)?);
        }
        let t = Tables { space, layers, ms };
        let a = analyse(&t, cx.population.unwrap_or(MEMBERS), cx.seed)?;
        report(&mut out, &a, resolution)?;
        plot_members(&cx.out, &a)?;
        analyses.push(a);
    }
    plot_kinds(&cx.out, &analyses)?;
    Ok(out)
}

/// The Markdown of one space.
pub fn report(out: &mut String, a: &Analysis, resolution: u32) -> Result<()> {
    writeln!(out, "## {} at r {resolution}\n", a.space)?;
    let missing: Vec<String> = a.missing.iter().filter(|(_, &n)| n > 0).map(|(p, n)| format!("{n} in {p}")).collect();
    if !missing.is_empty() {
        writeln!(out, "Layers without a measurement: {} (members using them are left out).\n", missing.join(", "))?;
    }
    writeln!(out, "| layer kind | layers | fp16/fp32 (geo. mean, range) | int8/fp32 (geo. mean, range) |")?;
    writeln!(out, "|---|---:|---|---|")?;
    for k in &a.kinds {
        let cell = |(g, lo, hi): (f64, f64, f64)| format!("{g:.2} ({lo:.2}–{hi:.2})");
        writeln!(out, "| {} | {} | {} | {} |", k.kind, k.layers, cell(k.ratio[0]), cell(k.ratio[1]))?;
    }
    let n = a.members.len();
    writeln!(out, "\nMember latencies ({n} random members, sums of the tables): Kendall τ-b")?;
    for (x, y, t) in &a.tau {
        writeln!(out, "- {x} vs {y}: τ = {t:.3}")?;
    }
    writeln!(
        out,
        "- of the {FASTEST} fastest in fp32, {} are among the {FASTEST} fastest in fp16 and {} in int8",
        a.fastest_shared[0], a.fastest_shared[1]
    )?;
    writeln!(out, "\n| precision | target ({}th pct.) | feasible | highest capacity proxy under it | its fp32 / fp16 / int8 ms | feasible also in fp32 |", (TARGET_QUANTILE * 100.0) as u32)?;
    writeln!(out, "|---|---:|---:|---|---|---:|")?;
    let fp32 = &a.picks[0].feasible;
    for p in &a.picks {
        let m = a.members[p.member];
        let same = if p.member == a.picks[0].member { "same as fp32" } else { "differs from fp32" };
        writeln!(
            out,
            "| {} | {:.3} ms | {} | member {} ({same}) | {:.3} / {:.3} / {:.3} | {:.0} % |",
            p.precision,
            p.target_ms,
            p.feasible.len(),
            p.member,
            m[0],
            m[1],
            m[2],
            100.0 * p.feasible.intersection(fp32).count() as f64 / p.feasible.len() as f64
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn plot_err<E: std::error::Error + Send + Sync + 'static>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing plot: {e}")
}

/// `precision_members_{space}.{png,svg}`: fp16 and int8 member latency against fp32.
fn plot_members(dir: &Path, a: &Analysis) -> Result<()> {
    let png = dir.join(format!("precision_members_{}.png", a.space));
    let svg = dir.join(format!("precision_members_{}.svg", a.space));
    members_chart(&BitMapBackend::new(&png, (800, 700)).into_drawing_area(), a)?;
    members_chart(&SVGBackend::new(&svg, (800, 700)).into_drawing_area(), a)?;
    Ok(())
}

fn members_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, a: &Analysis) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(plot_err)?;
    let all = a.members.iter().flatten().cloned();
    let lo = all.clone().fold(f64::INFINITY, f64::min) * 0.95;
    let hi = all.fold(0.0, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: member latency by precision (LiteRT, this CPU)", a.space), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(plot_err)?;
    chart.configure_mesh().x_desc("fp32 (ms)").y_desc("fp16 / int8 (ms)").draw().map_err(plot_err)?;
    chart.draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.stroke_width(1))).map_err(plot_err)?;
    for (i, colour, label) in [(1, BLUE, "fp16"), (2, RED, "int8")] {
        chart
            .draw_series(a.members.iter().map(|m| Circle::new((m[0], m[i]), 2, colour.mix(0.5).filled())))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, colour.filled()));
    }
    chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw().map_err(plot_err)?;
    area.present().map_err(plot_err)?;
    Ok(())
}

/// `precision_kinds.{png,svg}`: int8/fp32 ratio per layer kind, every space.
fn plot_kinds(dir: &Path, analyses: &[Analysis]) -> Result<()> {
    let png = dir.join("precision_kinds.png");
    let svg = dir.join("precision_kinds.svg");
    let rows: Vec<(String, f64, f64)> = analyses
        .iter()
        .flat_map(|a| a.kinds.iter().map(move |k| (format!("{}: {}", a.space, k.kind), k.ratio[0].0, k.ratio[1].0)))
        .collect();
    let h = 120 + 26 * rows.len() as u32;
    kinds_chart(&BitMapBackend::new(&png, (1000, h)).into_drawing_area(), &rows)?;
    kinds_chart(&SVGBackend::new(&svg, (1000, h)).into_drawing_area(), &rows)?;
    Ok(())
}

fn kinds_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, rows: &[(String, f64, f64)]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(plot_err)?;
    let top = rows.iter().map(|r| r.1.max(r.2)).fold(1.0, f64::max) * 1.1;
    let n = rows.len().max(1);
    // One segment per row, labelled at its centre; fp16's bar fills its lower half, int8's the upper.
    let mut chart = ChartBuilder::on(area)
        .caption("latency relative to fp32, per layer kind (geometric mean)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..top, (0..n).into_segmented())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(i) => rows.get(*i).map_or(String::new(), |r| r.0.clone()),
            _ => String::new(),
        })
        .x_desc("latency / fp32 latency")
        .draw()
        .map_err(plot_err)?;
    for (colour, label, pick) in [(BLUE, "fp16", 1usize), (RED, "int8", 2)] {
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let (v, lo, hi) = if pick == 1 {
                    (r.1, SegmentValue::Exact(i), SegmentValue::CenterOf(i))
                } else {
                    (r.2, SegmentValue::CenterOf(i), SegmentValue::Exact(i + 1))
                };
                Rectangle::new([(0.0, lo), (v, hi)], colour.mix(0.7).filled())
            }))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(n))],
            BLACK.stroke_width(1),
        ))
        .map_err(plot_err)?;
    chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw().map_err(plot_err)?;
    area.present().map_err(plot_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthetic tables of fbnet-cifar100: fp16 = fp32 exactly (ranks identical), int8 = fp32
    /// except that 3x3 kernels get 4x cheaper and 5x5 ones 2x dearer (ranks change).
    fn synthetic() -> Tables {
        synthetic_of(spaces::space("fbnet-cifar100").unwrap())
    }

    fn synthetic_of(space: Box<dyn SearchSpace>) -> Tables {
        let layers = space.layer_table(&space.resolutions());
        let mut ms: BTreeMap<Precision, HashMap<String, f64>> = BTreeMap::new();
        for l in &layers {
            let base = 0.01 + l.macs() as f64 * 1e-7;
            let k = match &l.op {
                Op::MbConv(m) => m.kernel,
                _ => 0,
            };
            let int8 = match k {
                3 => base / 4.0,
                5 => base * 2.0,
                _ => base,
            };
            for (p, v) in [(Precision::Fp32, base), (Precision::Fp16, base), (Precision::Int8, int8)] {
                ms.entry(p).or_default().insert(l.key(), v);
            }
        }
        Tables { space, layers, ms }
    }

    #[test]
    fn the_analysis_finds_the_ratios_the_ranks_and_the_picks_of_synthetic_tables() {
        let t = synthetic();
        let a = analyse(&t, 300, 0).unwrap();
        assert_eq!(a.members.len(), 300);
        assert!(a.missing.values().all(|&n| n == 0));
        let ratio = |k: &str| a.kinds.iter().find(|r| r.kind.starts_with(k)).map(|r| r.ratio).unwrap();
        let k3 = ratio("mbconv k3 expand");
        assert!((k3[0].0 - 1.0).abs() < 1e-12 && (k3[1].0 - 0.25).abs() < 1e-12, "{k3:?}");
        assert!((ratio("mbconv k5 expand")[1].0 - 2.0).abs() < 1e-12);
        let tau = |x: Precision, y: Precision| a.tau.iter().find(|t| t.0 == x && t.1 == y).unwrap().2;
        assert!((tau(Precision::Fp32, Precision::Fp16) - 1.0).abs() < 1e-12, "identical tables rank identically");
        let t8 = tau(Precision::Fp32, Precision::Int8);
        assert!(t8 < 0.9, "int8's kernel-size reversal reorders members: τ = {t8}");
        assert_eq!(a.fastest_shared[0], FASTEST);
        assert_eq!(a.picks[1].member, a.picks[0].member, "fp16 picks as fp32 does");
        assert_eq!(a.picks[1].feasible, a.picks[0].feasible);
        let mut md = String::new();
        report(&mut md, &a, 32).unwrap();
        assert!(md.contains("fp32 vs int8: τ =") && md.contains("| mbconv k3 expand"), "{md}");
        let dir = std::env::temp_dir().join(format!("hwnas-precision-study-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        plot_members(&dir, &a).unwrap();
        plot_kinds(&dir, std::slice::from_ref(&a)).unwrap();
        assert!(
            dir.join("precision_kinds.png").is_file() && dir.join("precision_members_fbnet-cifar100.svg").is_file()
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn members_with_untimed_layers_are_priced() {
        // OFA members end in a dropout, which no table times (and which costs nothing).
        let fixed = BTreeMap::from([("r".to_string(), "160".to_string())]);
        let space = search::pinned::pin(spaces::space("ofa-mbv3-w1.0").unwrap(), &fixed).unwrap();
        let t = synthetic_of(space);
        let a = analyse(&t, 40, 0).unwrap();
        assert_eq!(a.members.len(), 40);
        assert!(a.members.iter().all(|m| m.iter().all(|&ms| ms > 0.0)));
    }

    #[test]
    fn a_missing_table_or_too_few_priced_members_is_refused() {
        let mut t = synthetic();
        t.ms.remove(&Precision::Fp16);
        assert!(analyse(&t, 50, 0).err().unwrap().to_string().contains("no fp16 table"));
        let mut t = synthetic();
        let k3: BTreeSet<String> =
            t.layers.iter().filter(|l| kind(l).starts_with("mbconv k3")).map(Layer::key).collect();
        t.ms.get_mut(&Precision::Int8).unwrap().retain(|k, _| !k3.contains(k));
        let e = analyse(&t, 50, 0).err().unwrap().to_string();
        assert!(e.contains("every layer measured"), "{e}");
    }
}
