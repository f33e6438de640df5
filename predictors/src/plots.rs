//! Predicted-vs-measured scatter plots, relative-error histograms and curves against a
//! logarithmic axis (learning curves), as PNG and SVG.

use crate::PlotError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Writes `{stem}_scatter.{png,svg}` and `{stem}_errors.{png,svg}` into `dir`; returns the paths.
pub fn write_all(
    dir: &Path,
    stem: &str,
    title: &str,
    predicted: &[f64],
    measured: &[f64],
) -> Result<Vec<PathBuf>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::CreateDir { dir: dir.into(), source })?;
    let mut out = Vec::new();
    for ext in ["png", "svg"] {
        let scatter_path = dir.join(format!("{stem}_scatter.{ext}"));
        let hist_path = dir.join(format!("{stem}_errors.{ext}"));
        if ext == "png" {
            scatter(&BitMapBackend::new(&scatter_path, (800, 700)).into_drawing_area(), title, predicted, measured)?;
            histogram(&BitMapBackend::new(&hist_path, (800, 500)).into_drawing_area(), title, predicted, measured)?;
        } else {
            scatter(&SVGBackend::new(&scatter_path, (800, 700)).into_drawing_area(), title, predicted, measured)?;
            histogram(&SVGBackend::new(&hist_path, (800, 500)).into_drawing_area(), title, predicted, measured)?;
        }
        out.push(scatter_path);
        out.push(hist_path);
    }
    Ok(out)
}

/// One line of [`log_x_lines`]: its (x, y) points in order; a baseline is drawn black and dashed.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub baseline: bool,
}

/// Writes `{stem}.png` and `{stem}.svg` into `dir`: the curves against a logarithmic x axis
/// (e.g. held-out Spearman ρ against training-set size), one colour each (earlier ones wider),
/// with a legend.
/// Non-finite points are left out. Returns the paths.
pub fn log_x_lines(
    dir: &Path,
    stem: &str,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    curves: &[Curve],
) -> Result<Vec<PathBuf>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::CreateDir { dir: dir.into(), source })?;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    lines(&BitMapBackend::new(&png, (900, 600)).into_drawing_area(), title, x_desc, y_desc, curves)?;
    lines(&SVGBackend::new(&svg, (900, 600)).into_drawing_area(), title, x_desc, y_desc, curves)?;
    Ok(vec![png, svg])
}

fn lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(plot_err)?;
    let finite: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|c| c.points.iter().copied().filter(|(x, y)| x.is_finite() && *x > 0.0 && y.is_finite()).collect())
        .collect();
    let all = || finite.iter().flatten();
    let (x_lo, x_hi) = all().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (y_lo, y_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (x_lo, x_hi, y_lo, y_hi) = if x_lo.is_finite() { (x_lo, x_hi, y_lo, y_hi) } else { (1.0, 10.0, 0.0, 1.0) };
    let pad = 0.05 * (y_hi - y_lo).max(0.02);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x_lo / 1.25..x_hi * 1.25).log_scale(), y_lo - pad..y_hi + pad)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(plot_err)?;
    let mut colour = 0;
    for (i, (c, points)) in curves.iter().zip(&finite).enumerate() {
        // Earlier curves are wider, so that a curve equal to a later one still shows beneath it.
        let width = 2 + 3 * (curves.len() - 1 - i) as u32 / curves.len().max(2) as u32;
        let style = if c.baseline {
            BLACK.stroke_width(width)
        } else {
            colour += 1;
            Palette99::pick(colour - 1).stroke_width(width)
        };
        let series = if c.baseline {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), 10, 6, style))
        } else {
            chart.draw_series(LineSeries::new(points.iter().copied(), style))
        };
        series
            .map_err(plot_err)?
            .label(c.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled()))).map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    area.present().map_err(plot_err)?;
    Ok(())
}

fn plot_err<E: std::error::Error + Send + Sync + 'static>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(Box::new(e))
}

fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    predicted: &[f64],
    measured: &[f64],
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(plot_err)?;
    let lo = predicted.iter().chain(measured).cloned().fold(f64::INFINITY, f64::min);
    let hi = predicted.iter().chain(measured).cloned().fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.05 * (hi - lo).max(1e-9);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title}: predicted vs measured"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(plot_err)?;
    chart.configure_mesh().x_desc("measured (ms)").y_desc("predicted (ms)").draw().map_err(plot_err)?;
    for (f, style) in [(1.0, BLACK.stroke_width(1)), (1.1, RED.stroke_width(1)), (0.9, RED.stroke_width(1))] {
        chart.draw_series(LineSeries::new([(lo, lo * f), (hi, hi * f)], style)).map_err(plot_err)?;
    }
    chart
        .draw_series(measured.iter().zip(predicted).map(|(&m, &p)| Circle::new((m, p), 2, BLUE.mix(0.5).filled())))
        .map_err(plot_err)?;
    area.present().map_err(plot_err)?;
    Ok(())
}

fn histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    predicted: &[f64],
    measured: &[f64],
) -> Result<(), PlotError>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(plot_err)?;
    let errs: Vec<f64> = predicted.iter().zip(measured).map(|(p, m)| 100.0 * (p - m) / m).collect();
    let span = errs.iter().fold(1e-6f64, |a, e| a.max(e.abs())).min(100.0) * 1.05;
    let bins = 60usize;
    let width = 2.0 * span / bins as f64;
    let mut counts = vec![0u32; bins];
    for e in &errs {
        let b = (((e + span) / width) as isize).clamp(0, bins as isize - 1) as usize;
        counts[b] += 1;
    }
    let top = *counts.iter().max().unwrap_or(&1) as f64 * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title}: relative error"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-span..span, 0.0..top)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("(predicted − measured) / measured (%)")
        .y_desc("networks")
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = -span + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], BLUE.mix(0.6).filled())
        }))
        .map_err(plot_err)?;
    area.present().map_err(plot_err)?;
    Ok(())
}
