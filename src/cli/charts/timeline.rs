//! Gantt chart of the first requests of a serving run: one row per (device or link,
//! request), bars for prefill, KV transfer and decode.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{plot_err, row_label, Chart, FONT_FAMILY};
use planner::serving::{Phase, Timeline};

pub struct TimelineChart<'a> {
    pub title: String,
    pub timeline: &'a Timeline,
}

fn color(phase: Phase) -> RGBColor {
    match phase {
        Phase::Prefill => RGBColor(31, 119, 180),
        Phase::Transfer => RGBColor(255, 127, 14),
        Phase::Decode => RGBColor(44, 160, 44),
    }
}

fn label(phase: Phase) -> &'static str {
    match phase {
        Phase::Prefill => "prefill",
        Phase::Transfer => "KV transfer",
        Phase::Decode => "decode",
    }
}

impl TimelineChart<'_> {
    /// Rows in display order: by resource, then request.
    fn rows(&self) -> Vec<(usize, usize)> {
        let mut rows: Vec<(usize, usize)> = self
            .timeline
            .spans
            .iter()
            .map(|s| (s.resource, s.request))
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }
}

impl Chart for TimelineChart<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let rows = self.rows();
        let n = rows.len().max(1);
        let end = self
            .timeline
            .spans
            .iter()
            .map(|s| s.end_s)
            .fold(0.0, f64::max)
            .max(1e-9);
        let names: Vec<String> = rows
            .iter()
            .map(|&(resource, request)| {
                format!("{}  r{}", self.timeline.resources[resource], request)
            })
            .collect();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT_FAMILY, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..end * 1.02, 0.0..n as f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| row_label(&names, *y))
            .x_desc("time (s)")
            .label_style((FONT_FAMILY, 13))
            .axis_desc_style((FONT_FAMILY, 14))
            .draw()
            .map_err(plot_err)?;
        let row_of = |resource: usize, request: usize| {
            rows.iter()
                .position(|&r| r == (resource, request))
                .unwrap_or(0)
        };
        for phase in [Phase::Prefill, Phase::Transfer, Phase::Decode] {
            let c = color(phase);
            let bars: Vec<_> = self
                .timeline
                .spans
                .iter()
                .filter(|s| s.phase == phase)
                .map(|s| {
                    let y = (n - 1 - row_of(s.resource, s.request)) as f64;
                    // At least a hair wide, so sub-pixel messages stay visible.
                    let x1 = s.end_s.max(s.start_s + end * 0.001);
                    Rectangle::new([(s.start_s, y + 0.2), (x1, y + 0.8)], c.filled())
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(plot_err)?
                .label(label(phase))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT_FAMILY, 13))
            .draw()
            .map_err(plot_err)?;
        Ok(())
    }
}
