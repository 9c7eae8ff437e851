//! Pareto scatter: capital cost against sustainable throughput (log-log) for every
//! option that meets the targets, the Pareto frontier numbered as in the report's
//! table, and the top-ranked option marked.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    compact, log_axis, log_tick, one_two_five, plot_err, side_legend, titled_with_legend, Chart,
    Mark, FONT_FAMILY,
};

pub struct ParetoChart {
    pub title: String,
    /// (capex, throughput) of every option drawn as background.
    pub options: Vec<(f64, f64)>,
    /// (capex, throughput) of the frontier, in the table's order (numbered from 1).
    pub frontier: Vec<(f64, f64)>,
    /// The top-ranked option, with its description for the legend.
    pub best: Option<(f64, f64, String)>,
}

const GREY: RGBColor = RGBColor(170, 170, 170);
const FRONT: RGBColor = RGBColor(31, 119, 180);
const BEST: RGBColor = RGBColor(214, 39, 40);

impl Chart for ParetoChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (plot, legend) = titled_with_legend(area, &self.title)?;
        let all = self
            .options
            .iter()
            .chain(&self.frontier)
            .copied()
            .chain(self.best.iter().map(|b| (b.0, b.1)))
            .filter(|(x, y)| *x > 0.0 && *y > 0.0);
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, 0.0_f64, f64::INFINITY, 0.0_f64);
        for (x, y) in all {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
        }
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(log_axis(x0 / 1.3, x1 * 1.3), log_axis(y0 / 1.5, y1 * 1.5))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("capital cost ($, log scale)")
            .y_desc("sustainable output tokens/s (log scale)")
            .x_label_formatter(&|x| {
                if one_two_five(*x) {
                    format!("${}", compact(*x))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| log_tick(*y))
            .label_style((FONT_FAMILY, 15))
            .axis_desc_style((FONT_FAMILY, 16))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(
                self.options
                    .iter()
                    .filter(|(x, y)| *x > 0.0 && *y > 0.0)
                    .map(|&p| Circle::new(p, 2, GREY.filled())),
            )
            .map_err(plot_err)?;
        let label_style = TextStyle::from((FONT_FAMILY, 12).into_font());
        for (i, &p) in self.frontier.iter().enumerate() {
            if p.0 <= 0.0 || p.1 <= 0.0 {
                continue;
            }
            chart
                .draw_series(std::iter::once(Circle::new(p, 5, FRONT.filled())))
                .map_err(plot_err)?;
            // Numbers alternate right and left of their point so that options at
            // the same cost do not print over each other.
            let (dx, anchor) = if i % 2 == 0 {
                (7, HPos::Left)
            } else {
                (-7, HPos::Right)
            };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(p)
                        + Text::new(
                            format!("{}", i + 1),
                            (dx, 0),
                            label_style.pos(Pos::new(anchor, VPos::Center)),
                        ),
                ))
                .map_err(plot_err)?;
        }
        let mut entries = vec![
            (
                "options meeting the latency targets".to_string(),
                Mark::Dot(GREY),
            ),
            (
                "Pareto frontier (numbered as in the table)".to_string(),
                Mark::Dot(FRONT),
            ),
        ];
        if let Some((x, y, label)) = &self.best {
            chart
                .draw_series(std::iter::once(TriangleMarker::new(
                    (*x, *y),
                    9,
                    BEST.filled(),
                )))
                .map_err(plot_err)?;
            entries.push((format!("top-ranked: {label}"), Mark::Triangle(BEST)));
        }
        side_legend(&legend, None, &entries)?;
        Ok(())
    }
}
