//! Stacked latency breakdown: for each item (a scenario, an option, a grid point) a
//! horizontal bar of compute + exposed communication + overhead, which add up to the
//! phase's time. Communication hidden behind compute is not drawn (it costs no time).
//! One panel per phase (the whole prefill, one decode step), each with its own time
//! unit, stacked top to bottom.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    compact, label_area_width, plot_err, row_label, side_legend, time_unit, titled_with_legend,
    truncate, Chart, Mark, FONT_FAMILY,
};
use planner::report::PhaseBreakdown;

pub struct Bar {
    pub label: String,
    pub parts: PhaseBreakdown,
}

pub struct Panel {
    pub title: String,
    pub bars: Vec<Bar>,
}

pub struct BreakdownChart {
    pub title: String,
    pub panels: Vec<Panel>,
}

pub const COMPUTE: RGBColor = RGBColor(31, 119, 180);
pub const COMMUNICATION: RGBColor = RGBColor(255, 127, 14);
pub const OVERHEAD: RGBColor = RGBColor(127, 127, 127);

/// Longest bar label drawn, in characters.
const LABEL_CHARS: usize = 44;

impl BreakdownChart {
    /// Pixels for the bar labels of every panel.
    fn label_width(&self) -> u32 {
        let chars = self
            .panels
            .iter()
            .flat_map(|p| p.bars.iter().map(|b| b.label.chars().count()))
            .max()
            .unwrap_or(8)
            .min(LABEL_CHARS);
        label_area_width(chars)
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    label_width: u32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let n = panel.bars.len().max(1);
    let max_s = panel
        .bars
        .iter()
        .map(|b| b.parts.compute_s + b.parts.exposed_communication_s + b.parts.overhead_s)
        .fold(0.0, f64::max)
        .max(1e-12);
    let (scale, unit) = time_unit(max_s);
    let labels: Vec<String> = panel
        .bars
        .iter()
        .map(|b| truncate(&b.label, LABEL_CHARS))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT_FAMILY, 17))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..max_s * scale * 1.08, 0.0..n as f64)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| row_label(&labels, *y))
        .x_label_formatter(&|x| compact(*x))
        .x_desc(format!("time ({unit})"))
        .label_style((FONT_FAMILY, 14))
        .axis_desc_style((FONT_FAMILY, 15))
        .draw()
        .map_err(plot_err)?;
    for (i, b) in panel.bars.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let p = &b.parts;
        let mut x = 0.0;
        for (value, color) in [
            (p.compute_s, COMPUTE),
            (p.exposed_communication_s, COMMUNICATION),
            (p.overhead_s, OVERHEAD),
        ] {
            let w = value * scale;
            if w > 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x, y + 0.2), (x + w, y + 0.8)],
                        color.filled(),
                    )))
                    .map_err(plot_err)?;
            }
            x += w;
        }
    }
    Ok(())
}

impl Chart for BreakdownChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (plots, legend) = titled_with_legend(area, &self.title)?;
        let label_width = self.label_width();
        let panels = plots.split_evenly((self.panels.len().max(1), 1));
        for (panel, sub) in self.panels.iter().zip(&panels) {
            draw_panel(sub, panel, label_width)?;
        }
        side_legend(
            &legend,
            None,
            &[
                ("compute".to_string(), Mark::Box(COMPUTE)),
                (
                    "communication (exposed, not hidden behind compute)".to_string(),
                    Mark::Box(COMMUNICATION),
                ),
                (
                    "overhead (dispatch, host, memory management)".to_string(),
                    Mark::Box(OVERHEAD),
                ),
            ],
        )?;
        Ok(())
    }
}
