//! Fronts of capacity proxy (or a predicted accuracy) against latency, with named reference networks and target lines,
//! as PNG and SVG.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use search::history::Record;
use std::path::Path;

/// (latency ms, proxy) points.
pub type Points = Vec<(f64, f64)>;

/// A job's front as points sorted by latency.
pub fn points(front: &[Record]) -> Points {
    let mut p: Points = front.iter().map(|r| (r.eval.latency_ms[0], r.eval.accuracy)).collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

/// Writes `{stem}.png` and `{stem}.svg`.
pub fn write_fronts(
    stem: &Path,
    title: &str,
    x_desc: &str,
    fronts: &[(String, Points)],
    markers: &[(String, (f64, f64))],
    targets: &[f64],
) -> Result<()> {
    write_fronts_with(stem, title, x_desc, "capacity proxy (not an accuracy)", fronts, markers, targets)
}

/// [`write_fronts`] with another y axis (e.g. a predicted accuracy).
pub fn write_fronts_with(
    stem: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    fronts: &[(String, Points)],
    markers: &[(String, (f64, f64))],
    targets: &[f64],
) -> Result<()> {
    let axes = (x_desc, y_desc);
    let png = stem.with_extension("png");
    draw(BitMapBackend::new(&png, (900, 600)).into_drawing_area(), title, axes, fronts, markers, targets)?;
    let svg = stem.with_extension("svg");
    draw(SVGBackend::new(&svg, (900, 600)).into_drawing_area(), title, axes, fronts, markers, targets)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    fronts: &[(String, Points)],
    markers: &[(String, (f64, f64))],
    targets: &[f64],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let all = fronts.iter().flat_map(|f| f.1.iter().copied()).chain(markers.iter().map(|p| p.1));
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in all.chain(targets.iter().map(|&t| (t, f64::NAN))) {
        (x0, x1) = (x0.min(x), x1.max(x));
        if y.is_finite() {
            (y0, y1) = (y0.min(y), y1.max(y));
        }
    }
    if !(x0.is_finite() && y0.is_finite()) {
        return Err(anyhow!("plotting {title}: nothing to plot"));
    }
    let (px, py) = (0.05 * (x1 - x0).max(1e-3), 0.05 * (y1 - y0).max(1e-3));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).draw().map_err(|e| err(&e))?;
    for (i, (name, pts)) in fronts.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
    }
    if !markers.is_empty() {
        chart
            .draw_series(markers.iter().map(|(name, p)| {
                EmptyElement::at(*p)
                    + TriangleMarker::new((0, 0), 7, BLACK.filled())
                    + Text::new(name.clone(), (8, -8), ("sans-serif", 15))
            }))
            .map_err(|e| err(&e))?
            .label("reference networks")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
    }
    for &t in targets {
        chart
            .draw_series(LineSeries::new([(t, y0 - py), (t, y1 + py)], BLACK.mix(0.4).stroke_width(1)))
            .map_err(|e| err(&e))?;
    }
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
