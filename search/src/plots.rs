//! Plots of a finished job, each as PNG and SVG: search progress (objective per generation
//! and the best feasible so far) and accuracy against latency with the Pareto front.

use crate::history::Record;
use plotters::coord::Shift;
use plotters::prelude::*;
use predictors::PlotError;
use std::path::Path;

/// Pixel size of every search plot (job and differentiable-search plots alike).
pub(crate) const SIZE: (u32, u32) = (900, 600);

/// plotters' error as the source of a [`PlotError`] (the one plot error of `predictors` and `search`).
pub(crate) fn err<E: std::error::Error + Send + Sync + 'static>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(Box::new(e))
}

/// Padded range of `values` (a unit range around a single value).
pub(crate) fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - pad)..(hi + pad)
}

/// Best feasible objective after each generation (None until the first feasible member).
pub fn best_so_far(history: &[Record], generations: usize) -> Vec<Option<f64>> {
    let mut best: Option<f64> = None;
    let mut out = vec![None; generations];
    let mut rows = history.iter().peekable();
    for (g, slot) in out.iter_mut().enumerate() {
        while let Some(r) = rows.next_if(|r| r.generation == g) {
            if let (true, Some(o)) = (r.eval.feasible, r.eval.objective) {
                best = Some(best.map_or(o, |b: f64| b.max(o)));
            }
        }
        *slot = best;
    }
    out
}

fn draw_progress<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    history: &[Record],
    objective: &str,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let generations = history.iter().map(|r| r.generation + 1).max().unwrap_or(1);
    let points: Vec<(f64, f64)> = history
        .iter()
        .filter_map(|r| r.eval.objective.filter(|_| r.eval.feasible).map(|o| (r.generation as f64, o)))
        .collect();
    let best: Vec<(f64, f64)> = best_so_far(history, generations)
        .into_iter()
        .enumerate()
        .filter_map(|(g, b)| b.map(|b| (g as f64, b)))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption("Search progress", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(range([0.0, generations as f64].into_iter()), range(points.iter().map(|p| p.1)))
        .map_err(err)?;
    chart.configure_mesh().x_desc("generation").y_desc(objective).draw().map_err(err)?;
    chart
        .draw_series(points.iter().map(|&p| Circle::new(p, 2, RGBColor(150, 150, 150).filled())))
        .map_err(err)?
        .label("feasible candidates")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RGBColor(150, 150, 150).filled()));
    chart
        .draw_series(LineSeries::new(best, BLUE.stroke_width(2)))
        .map_err(err)?
        .label("best feasible so far")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

fn draw_scatter<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    history: &[Record],
    front: &[Record],
    target_ms: f64,
    accuracy: &str,
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let xs = history.iter().map(|r| r.eval.latency_ms[0]).chain([target_ms]);
    let ys = history.iter().map(|r| r.eval.accuracy);
    let (xr, yr) = (range(xs), range(ys));
    let mut chart = ChartBuilder::on(&root)
        .caption("Accuracy vs latency", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(xr, yr.clone())
        .map_err(err)?;
    chart.configure_mesh().x_desc("predicted latency (ms)").y_desc(accuracy).draw().map_err(err)?;
    let dot = |r: &Record, c: RGBColor| Circle::new((r.eval.latency_ms[0], r.eval.accuracy), 2, c.filled());
    chart
        .draw_series(history.iter().filter(|r| !r.eval.feasible).map(|r| dot(r, RGBColor(200, 200, 200))))
        .map_err(err)?
        .label("infeasible")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RGBColor(200, 200, 200).filled()));
    chart
        .draw_series(history.iter().filter(|r| r.eval.feasible).map(|r| dot(r, RGBColor(90, 140, 220))))
        .map_err(err)?
        .label("feasible")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RGBColor(90, 140, 220).filled()));
    let line: Vec<(f64, f64)> = front.iter().map(|r| (r.eval.latency_ms[0], r.eval.accuracy)).collect();
    chart
        .draw_series(LineSeries::new(line.clone(), RED.stroke_width(2)))
        .map_err(err)?
        .label("Pareto front (feasible)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart.draw_series(line.into_iter().map(|p| Circle::new(p, 4, RED.filled()))).map_err(err)?;
    chart
        .draw_series(LineSeries::new(vec![(target_ms, yr.start), (target_ms, yr.end)], BLACK.stroke_width(1)))
        .map_err(err)?
        .label("latency target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
    root.present().map_err(err)
}

/// Writes `progress.{png,svg}` and `pareto.{png,svg}` into `dir`.
pub fn write_all(
    dir: &Path,
    history: &[Record],
    front: &[Record],
    target_ms: f64,
    objective: &str,
    accuracy: &str,
) -> Result<(), PlotError> {
    let p = dir.join("progress.png");
    draw_progress(BitMapBackend::new(&p, SIZE).into_drawing_area(), history, objective)?;
    let p = dir.join("progress.svg");
    draw_progress(SVGBackend::new(&p, SIZE).into_drawing_area(), history, objective)?;
    let p = dir.join("pareto.png");
    draw_scatter(BitMapBackend::new(&p, SIZE).into_drawing_area(), history, front, target_ms, accuracy)?;
    let p = dir.join("pareto.svg");
    draw_scatter(SVGBackend::new(&p, SIZE).into_drawing_area(), history, front, target_ms, accuracy)?;
    Ok(())
}
