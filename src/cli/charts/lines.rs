//! Line chart: one or more series of (x, y) points joined by lines, with markers.
//! The x axis is numeric, or categorical (one tick per named value, in order) when
//! the values are names such as `driver` and `resident`. The legend sits beside the
//! plot so it never covers a line.

use anyhow::Result;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    compact, log_axis, one_two_five, plot_err, series_color, side_legend, titled_with_legend,
    Chart, Mark, FONT_FAMILY,
};

pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

pub struct LineChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// Names of the x positions 0, 1, 2, ...; `None` for a numeric x axis.
    pub x_categories: Option<Vec<String>>,
    /// Heading of the legend (what distinguishes the series).
    pub legend_heading: Option<String>,
    pub series: Vec<Series>,
}

impl LineChart {
    /// x range: categories sit at k + 0.5 of 0..n; numbers get 5% margins.
    fn x_range(&self) -> (f64, f64) {
        if let Some(c) = &self.x_categories {
            return (0.0, c.len().max(1) as f64);
        }
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let lo = xs.clone().fold(f64::INFINITY, f64::min);
        let hi = xs.fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.05).max(1e-9);
        (lo - pad, hi + pad)
    }

    fn x_of(&self, x: f64) -> f64 {
        if self.x_categories.is_some() {
            x + 0.5
        } else {
            x
        }
    }
}

impl LineChart {
    /// y range of the points: (lowest positive, highest).
    fn y_extent(&self) -> (f64, f64) {
        let ys = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1));
        let lo = ys
            .clone()
            .filter(|y| *y > 0.0)
            .fold(f64::INFINITY, f64::min);
        let hi = ys.fold(0.0, f64::max).max(1e-12);
        (lo, hi)
    }

    /// Series spanning more than 30x are drawn on a log y axis, so that the small
    /// ones do not lie flat on the floor.
    fn log_y(&self) -> bool {
        let (lo, hi) = self.y_extent();
        lo.is_finite() && hi / lo > 30.0
    }

    fn body<DB, Y>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
        legend: &DrawingArea<DB, Shift>,
        log_y: bool,
    ) -> Result<()>
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let categories = self.x_categories.clone().unwrap_or_default();
        let n = categories.len();
        let category_label = |x: &f64| {
            let k = (*x - 0.5).round();
            if (*x - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                categories[k as usize].clone()
            } else {
                String::new()
            }
        };
        // Whole-number data (node counts) get whole-number ticks only.
        let integers = self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .all(|p| p.0.fract() == 0.0);
        let numeric_label = |x: &f64| {
            if integers && x.fract().abs() > 1e-9 {
                String::new()
            } else {
                compact(*x)
            }
        };
        let y_label = |y: &f64| {
            if log_y && !one_two_five(*y) {
                String::new()
            } else {
                compact(*y)
            }
        };
        let y_desc = if log_y {
            format!("{} (log scale)", self.y_desc)
        } else {
            self.y_desc.clone()
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.x_desc.as_str())
            .y_desc(y_desc)
            .y_label_formatter(&y_label)
            .label_style((FONT_FAMILY, 15))
            .axis_desc_style((FONT_FAMILY, 16));
        if self.x_categories.is_some() {
            mesh.x_labels(n * 2 + 1)
                .x_label_formatter(&category_label)
                .disable_x_mesh();
        } else {
            mesh.x_labels(10).x_label_formatter(&numeric_label);
        }
        mesh.draw().map_err(plot_err)?;
        let mut entries = Vec::new();
        for (i, s) in self.series.iter().enumerate() {
            let c = series_color(i);
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| !log_y || p.1 > 0.0)
                .map(|&(x, y)| (self.x_of(x), y))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(plot_err)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(plot_err)?;
            entries.push((s.label.clone(), Mark::Line(c)));
        }
        if self.series.len() > 1 || self.legend_heading.is_some() {
            side_legend(legend, self.legend_heading.as_deref(), &entries)?;
        }
        Ok(())
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (plot, legend) = titled_with_legend(area, &self.title)?;
        let (x0, x1) = self.x_range();
        let (lo, hi) = self.y_extent();
        let mut builder = ChartBuilder::on(&plot);
        builder
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(80);
        if self.log_y() {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, log_axis(lo / 1.5, hi * 1.5))
                .map_err(plot_err)?;
            self.body(&mut chart, &legend, true)
        } else {
            let mut chart = builder
                .build_cartesian_2d(x0..x1, 0.0..hi * 1.1)
                .map_err(plot_err)?;
            self.body(&mut chart, &legend, false)
        }
    }
}
