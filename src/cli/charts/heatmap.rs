//! Sensitivity heatmap: a metric over the grid of two swept keys, one cell per
//! combination with its value written in, on a viridis colour scale with a colour
//! bar. Cells the model could not run are left hatched grey.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{plot_err, truncate, Chart, FONT_FAMILY};

pub struct HeatmapChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
    /// `values[row][column]`: row `i` is `y_labels[i]`, drawn top to bottom.
    pub values: Vec<Vec<Option<f64>>>,
    /// What the colour means, e.g. "time per output token (ms)".
    pub value_desc: String,
    /// Text written in each cell.
    pub format: fn(f64) -> String,
}

/// Viridis at eight stops (matplotlib's table).
const VIRIDIS: [(u8, u8, u8); 8] = [
    (68, 1, 84),
    (70, 50, 127),
    (54, 92, 141),
    (39, 127, 142),
    (31, 161, 135),
    (74, 194, 109),
    (159, 218, 58),
    (253, 231, 37),
];

/// Colour of `t` in [0, 1] on the viridis scale.
pub fn viridis(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let i = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Chart for HeatmapChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let area = area
            .titled(&self.title, (FONT_FAMILY, 22))
            .map_err(plot_err)?;
        let width = area.dim_in_pixel().0;
        let (plot, bar) = area.split_horizontally(width.saturating_sub(170));
        let cols = self.x_labels.len().max(1);
        let rows = self.y_labels.len().max(1);
        let known: Vec<f64> = self.values.iter().flatten().flatten().copied().collect();
        let lo = known.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let t_of = |v: f64| if hi > lo { (v - lo) / span } else { 0.5 };
        let x_labels: Vec<String> = self.x_labels.iter().map(|l| truncate(l, 18)).collect();
        let y_labels: Vec<String> = self.y_labels.iter().map(|l| truncate(l, 18)).collect();
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(140)
            .build_cartesian_2d(0.0..cols as f64, 0.0..rows as f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(cols * 2 + 1)
            .y_labels(rows * 2 + 1)
            .x_label_formatter(&|x| {
                let k = (*x - 0.5).round();
                if (*x - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < x_labels.len() {
                    x_labels[k as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| {
                let k = (*y - 0.5).round();
                if (*y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < y_labels.len() {
                    y_labels[rows - 1 - k as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .label_style((FONT_FAMILY, 15))
            .axis_desc_style((FONT_FAMILY, 16))
            .draw()
            .map_err(plot_err)?;
        for (r, row) in self.values.iter().enumerate() {
            let y = (rows - 1 - r) as f64;
            for (c, v) in row.iter().enumerate() {
                let x = c as f64;
                let (fill, text, ink) = match v {
                    Some(v) => {
                        let color = viridis(t_of(*v));
                        // Dark text on the light end of the scale.
                        let light = t_of(*v) > 0.6;
                        (color, (self.format)(*v), if light { BLACK } else { WHITE })
                    }
                    None => (RGBColor(200, 200, 200), "cannot run".to_string(), BLACK),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)],
                        fill.filled(),
                    )))
                    .map_err(plot_err)?;
                let style = TextStyle::from((FONT_FAMILY, 16).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart
                    .draw_series(std::iter::once(Text::new(text, (x + 0.5, y + 0.5), style)))
                    .map_err(plot_err)?;
            }
        }
        // Colour bar: the scale from the lowest value (bottom) to the highest (top).
        let (_, h) = bar.dim_in_pixel();
        let (top, bottom) = (60_i32, h as i32 - 90);
        let steps = 64;
        for i in 0..steps {
            let t0 = i as f64 / steps as f64;
            let y_hi = bottom - ((bottom - top) as f64 * (t0 + 1.0 / steps as f64)) as i32;
            let y_lo = bottom - ((bottom - top) as f64 * t0) as i32;
            bar.draw(&Rectangle::new(
                [(20, y_hi), (50, y_lo)],
                viridis(t0 + 0.5 / steps as f64).filled(),
            ))
            .map_err(plot_err)?;
        }
        let font = TextStyle::from((FONT_FAMILY, 14).into_font());
        if hi.is_finite() {
            bar.draw(&Text::new(
                (self.format)(hi),
                (56, top),
                font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(plot_err)?;
            bar.draw(&Text::new(
                (self.format)(lo),
                (56, bottom),
                font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(plot_err)?;
        }
        for (i, line) in super::wrap(&self.value_desc, 20).iter().enumerate() {
            bar.draw(&Text::new(
                line.clone(),
                (8, top - 44 + i as i32 * 17),
                font.clone(),
            ))
            .map_err(plot_err)?;
        }
        Ok(())
    }
}
