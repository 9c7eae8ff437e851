//! Parity chart: predicted against measured on log-log axes, fit and check halves in
//! different colours, with the y = x line and a +/-25% band.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{log_axis, log_tick, plot_err, Chart, FONT_FAMILY};
use planner::validate::{CaseResult, Split};

pub struct ParityChart {
    /// (measured, predicted, split)
    points: Vec<(f64, f64, Split)>,
}

impl ParityChart {
    pub fn from_cases(cases: &[CaseResult]) -> ParityChart {
        ParityChart {
            points: cases
                .iter()
                .filter_map(|c| c.predicted.map(|p| (c.measured, p, c.split)))
                .filter(|(m, p, _)| *m > 0.0 && *p > 0.0)
                .collect(),
        }
    }
}

impl Chart for ParityChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let lo = self
            .points
            .iter()
            .map(|(m, p, _)| m.min(*p))
            .fold(f64::INFINITY, f64::min)
            .max(1e-3)
            / 2.0;
        let hi = self
            .points
            .iter()
            .map(|(m, p, _)| m.max(*p))
            .fold(0.0, f64::max)
            .max(lo * 10.0)
            * 2.0;
        let mut chart = ChartBuilder::on(area)
            .caption(
                "Predicted against measured (log-log; tokens/s or seconds)",
                (FONT_FAMILY, 24),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(log_axis(lo, hi), log_axis(lo, hi))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("measured")
            .y_desc("predicted")
            .x_label_formatter(&|x| log_tick(*x))
            .y_label_formatter(&|y| log_tick(*y))
            .label_style((FONT_FAMILY, 14))
            .axis_desc_style((FONT_FAMILY, 16))
            .draw()
            .map_err(plot_err)?;
        let line = |factor: f64| {
            (0..=100).map(move |i| {
                let x = lo * (hi / lo).powf(i as f64 / 100.0);
                (x, x * factor)
            })
        };
        chart
            .draw_series(LineSeries::new(line(1.0), BLACK.stroke_width(1)))
            .map_err(plot_err)?
            .label("predicted = measured")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        for (i, factor) in [1.25, 0.75].into_iter().enumerate() {
            let series = chart
                .draw_series(LineSeries::new(line(factor), BLACK.mix(0.3)))
                .map_err(plot_err)?;
            if i == 0 {
                series
                    .label("+/-25%")
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.3)));
            }
        }
        for (split, color, label) in [
            (Split::Fit, BLUE, "fit half"),
            (Split::Check, RED, "check half"),
        ] {
            chart
                .draw_series(
                    self.points
                        .iter()
                        .filter(|(_, _, s)| *s == split)
                        .map(|(m, p, _)| Circle::new((*m, *p), 4, color.filled())),
                )
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT_FAMILY, 16))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(plot_err)?;
        Ok(())
    }
}
