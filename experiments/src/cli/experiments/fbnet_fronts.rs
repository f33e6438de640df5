//! FBNet (Wu et al. 2019) on HW-NAS-Bench's measured CIFAR-100 FBNet space: a lookup table per
//! device fitted from 200 measured architectures, then evolution and NSGA-II each find a front
//! of capacity proxy against latency; FBNet-A/B/C (their 22 ops in `fbnet-cifar100`) are placed
//! on the same axes.

use super::common::{fit_split, hw_nas_bench, search, SearchSpec};
use super::Setup;
use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use predictors::dataset;
use predictors::split::TrainSize;
use search::history::Record;
use search::objectives::accuracy::CapacityProxy;
use spaces::SearchSpace;
use std::path::Path;

const SPACE: &str = "fbnet-cifar100";
const TRAIN: usize = 200;
const STRATEGIES: [&str; 2] = ["evolution", "nsga2"];
const PRESETS: [&str; 3] = ["fbnet-a", "fbnet-b", "fbnet-c"];

/// A preset's op list as a member of `fbnet-cifar100` (the CIFAR macro has the same 22 layers and ops).
fn preset_in_cifar(space: &dyn SearchSpace, name: &str) -> Result<spaces::Genome> {
    let p = spaces::presets::preset(name)?;
    let v: serde_json::Value = serde_json::from_str(p.json)?;
    let ops = serde_json::json!({ "ops": v["ops"] });
    space.from_json(&ops).with_context(|| format!("{name}'s ops are not a `{SPACE}` member"))
}

/// (latency ms, proxy) points.
type Points = Vec<(f64, f64)>;

fn points(front: &[Record]) -> Points {
    let mut p: Points = front.iter().map(|r| (r.eval.latency_ms[0], r.eval.accuracy)).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

pub fn run(cx: &Setup) -> Result<String> {
    let space = spaces::space(SPACE)?;
    let proxy = CapacityProxy::new(&*space);
    let (population, generations) = (cx.population.unwrap_or(50), cx.generations.unwrap_or(30));
    let mut t = format!(
        "## FBNet on HW-NAS-Bench (`{SPACE}`): Pareto fronts of capacity proxy vs latency\n\n\
         Lookup table per device NNLS-fitted on {TRAIN} measured architectures (seed {seed}); target = median \
         measured latency of the device's 5,000 architectures; population {population}, {generations} generations. \
         Accuracy axis: the capacity proxy (mean of normalised ln MACs, ln params, depth — NOT an accuracy).\n\n\
         | device | target ms | lut held-out MAPE % | strategy / network | evaluated | front size | best proxy | its latency ms |\n\
         |---|---|---|---|---|---|---|---|\n",
        seed = cx.seed
    );
    for (device, csv) in hw_nas_bench(&cx.shared) {
        let ds = dataset::load(&csv, Some(SPACE), "latency_ms")?;
        let fitted = fit_split("lut", &ds, TrainSize::Count(TRAIN), cx.seed)?;
        let lut = cx.out.join(format!("{device}-lut.json"));
        fitted.predictor.save(&lut)?;
        let mut measured: Vec<f64> = ds.networks.iter().map(|r| r.value).collect();
        measured.sort_by(f64::total_cmp);
        let target = measured[measured.len() / 2];
        let mape = 100.0 * fitted.metrics.mape;
        let mut fronts: Vec<(&str, Points)> = Vec::new();
        for strategy in STRATEGIES {
            let spec = SearchSpec {
                space: SPACE,
                latency: vec![(device.to_string(), lut.as_path())],
                target_ms: target,
                strategy,
                population,
                generations,
                seed: cx.seed,
            };
            let (_, o) = search(&spec, &cx.out.join(format!("{device}-{strategy}")))?;
            let (best, best_ms) =
                o.best.as_ref().map_or((f64::NAN, f64::NAN), |b| (b.eval.accuracy, b.eval.latency_ms[0]));
            t += &format!(
                "| {device} | {target:.3} | {mape:.2} | {strategy} | {} | {} | {best:.4} | {best_ms:.3} |\n",
                o.evaluated,
                o.front.len()
            );
            fronts.push((strategy, points(&o.front)));
        }
        let mut presets: Vec<(&str, (f64, f64))> = Vec::new();
        for name in PRESETS {
            let net = space.network(&preset_in_cifar(&*space, name)?);
            let ms = fitted.predictor.predict_ms(&net)?;
            let score = proxy.score(&net);
            t += &format!("| {device} | {target:.3} | {mape:.2} | {name} (preset) | – | – | {score:.4} | {ms:.3} |\n");
            presets.push((name, (ms, score)));
        }
        let title = format!("{device}: {SPACE} fronts (target {target:.2} ms)");
        for ext in ["png", "svg"] {
            let p = cx.out.join(format!("{device}-fronts.{ext}"));
            if ext == "png" {
                draw(BitMapBackend::new(&p, (900, 600)).into_drawing_area(), &title, &fronts, &presets, target)?;
            } else {
                draw(SVGBackend::new(&p, (900, 600)).into_drawing_area(), &title, &fronts, &presets, target)?;
            }
        }
        check_written(&cx.out.join(format!("{device}-fronts.png")))?;
    }
    t += "\nPlots: `pixel3-fronts.{png,svg}`, `raspi4-fronts.{png,svg}`; each search job's history and plots in `DEVICE-STRATEGY/`.\n";
    Ok(t)
}

fn check_written(p: &Path) -> Result<()> {
    if !p.exists() {
        return Err(anyhow!("plot {} was not written", p.display()));
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    fronts: &[(&str, Points)],
    presets: &[(&str, (f64, f64))],
    target: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let all = fronts.iter().flat_map(|f| f.1.iter().copied()).chain(presets.iter().map(|p| p.1));
    let (mut x0, mut x1, mut y0, mut y1) = (target, target, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    let (px, py) = (0.05 * (x1 - x0).max(1e-3), 0.05 * (y1 - y0).max(1e-3));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("predicted latency (ms, lookup table fitted on measurements)")
        .y_desc("capacity proxy (not an accuracy)")
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [BLUE, RED];
    for ((name, pts), color) in fronts.iter().zip(colors) {
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!("{name} front"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
    }
    chart
        .draw_series(presets.iter().map(|(name, p)| {
            EmptyElement::at(*p)
                + TriangleMarker::new((0, 0), 7, BLACK.filled())
                + Text::new(name.to_string(), (8, -8), ("sans-serif", 15))
        }))
        .map_err(|e| err(&e))?
        .label("FBNet-A/B/C")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
    chart
        .draw_series(LineSeries::new([(target, y0 - py), (target, y1 + py)], BLACK.mix(0.4).stroke_width(1)))
        .map_err(|e| err(&e))?
        .label("target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
