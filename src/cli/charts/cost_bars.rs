//! Cost-efficiency bars: one horizontal bar per item (tokens/s per $1,000 of capital,
//! or any other figure where longer is better), its value written at the end of the
//! bar with an optional note such as the ratio to the first item.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    compact, label_area_width, plot_err, row_label, series_color, truncate, Chart, FONT_FAMILY,
};

pub struct CostBar {
    pub label: String,
    pub value: f64,
    /// Written after the value, e.g. "0.66x the first".
    pub note: String,
}

pub struct CostBarsChart {
    pub title: String,
    pub x_desc: String,
    pub bars: Vec<CostBar>,
}

const LABEL_CHARS: usize = 46;

impl Chart for CostBarsChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let n = self.bars.len().max(1);
        let max = self
            .bars
            .iter()
            .map(|b| b.value)
            .fold(0.0, f64::max)
            .max(1e-12);
        let labels: Vec<String> = self
            .bars
            .iter()
            .map(|b| truncate(&b.label, LABEL_CHARS))
            .collect();
        let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(8);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT_FAMILY, 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(label_area_width(chars))
            // Room after the longest bar for its value and note.
            .build_cartesian_2d(0.0..max * 1.45, 0.0..n as f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| row_label(&labels, *y))
            .x_label_formatter(&|x| compact(*x))
            .x_desc(self.x_desc.as_str())
            .label_style((FONT_FAMILY, 14))
            .axis_desc_style((FONT_FAMILY, 16))
            .draw()
            .map_err(plot_err)?;
        for (i, b) in self.bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let c = series_color(i);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.18), (b.value, y + 0.82)],
                    c.filled(),
                )))
                .map_err(plot_err)?;
            let text = if b.note.is_empty() {
                compact(b.value)
            } else {
                format!("{}  ({})", compact(b.value), b.note)
            };
            let style = TextStyle::from((FONT_FAMILY, 14).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (b.value + max * 0.015, y + 0.5),
                    style,
                )))
                .map_err(plot_err)?;
        }
        Ok(())
    }
}
