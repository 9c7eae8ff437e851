//! Empirical cumulative distributions of per-request latencies (TTFT and TPOT of a
//! serving run): one panel per latency, side by side, each a step line from the
//! sorted values with its p50, p90 and p99 marked.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{compact, plot_err, series_color, time_unit, Chart, FONT_FAMILY};
use planner::serving::metrics::nearest_rank;

pub struct CdfPanel {
    pub title: String,
    /// Values in seconds, any order.
    pub values: Vec<f64>,
}

pub struct CdfChart {
    pub title: String,
    pub panels: Vec<CdfPanel>,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &CdfPanel,
    color: RGBColor,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut v = panel.values.clone();
    v.sort_by(f64::total_cmp);
    let max = v.last().copied().unwrap_or(1.0).max(1e-12);
    let min = v.first().copied().unwrap_or(0.0).max(0.0);
    let (scale, unit) = time_unit(max);
    // A narrow distribution far from zero gets an axis around it, not from zero.
    let spread = (max - min).max(max * 0.02);
    let lo = if min > 0.3 * max {
        (min - 0.1 * spread).max(0.0)
    } else {
        0.0
    };
    let hi = max + 0.05 * spread.max(max - lo);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT_FAMILY, 18))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(lo * scale..hi * scale, 0.0..1.02)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(format!("latency ({unit})"))
        .y_desc("fraction of requests")
        .x_label_formatter(&|x| compact(*x))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FONT_FAMILY, 14))
        .axis_desc_style((FONT_FAMILY, 15))
        .draw()
        .map_err(plot_err)?;
    let n = v.len();
    if n == 0 {
        return Ok(());
    }
    // A step line through (v_i, i/n); long runs are thinned to at most ~2,000 steps,
    // which keeps the SVG small without changing what the eye sees.
    let stride = (n / 2000).max(1);
    let mut pts = vec![(v[0] * scale, 0.0)];
    let mut i = 0;
    while i < n {
        let j = (i + stride).min(n);
        pts.push((v[i] * scale, i as f64 / n as f64));
        pts.push((v[j - 1] * scale, j as f64 / n as f64));
        i = j;
    }
    chart
        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
        .map_err(plot_err)?;
    let font = TextStyle::from((FONT_FAMILY, 13).into_font());
    let middle = (lo + hi) / 2.0 * scale;
    for p in [50.0, 90.0, 99.0] {
        let x = nearest_rank(&v, p) * scale;
        let q = p / 100.0;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x, 0.0), (x, q)],
                4,
                4,
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(Circle::new((x, q), 3, BLACK.filled())))
            .map_err(plot_err)?;
        // Labels point inwards, so none runs off the plot.
        let (dx, anchor) = if x > middle {
            (-6, HPos::Right)
        } else {
            (6, HPos::Left)
        };
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x, q))
                    + Text::new(
                        format!("p{p:.0} {} {unit}", compact(x)),
                        (dx, 4),
                        font.pos(Pos::new(anchor, VPos::Top)),
                    ),
            ))
            .map_err(plot_err)?;
    }
    Ok(())
}

impl Chart for CdfChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = area
            .titled(&self.title, (FONT_FAMILY, 22))
            .map_err(plot_err)?;
        let panels = area.split_evenly((1, self.panels.len().max(1)));
        for (i, (panel, sub)) in self.panels.iter().zip(&panels).enumerate() {
            draw_panel(sub, panel, series_color(i))?;
        }
        Ok(())
    }
}
