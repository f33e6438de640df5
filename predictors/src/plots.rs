//! Predicted-vs-measured scatter plots and relative-error histograms, as PNG and SVG.

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Writes `{stem}_scatter.{png,svg}` and `{stem}_errors.{png,svg}` into `dir`; returns the paths.
pub fn write_all(dir: &Path, stem: &str, title: &str, predicted: &[f64], measured: &[f64]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
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

fn plot_err<E: std::error::Error + Send + Sync + 'static>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow::anyhow!("drawing plot: {e}")
}

fn scatter<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    predicted: &[f64],
    measured: &[f64],
) -> Result<()>
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
) -> Result<()>
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
