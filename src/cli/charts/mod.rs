//! Charts (PNG and SVG) with plotters and an embedded font, so no system font
//! libraries are needed. Each chart module draws one kind of chart into both formats.
//!
//! Reports render charts in memory ([`render_in_memory`]) so that every file of a
//! report can be written atomically, and the SVG embedded in `report.html`.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

pub mod breakdown;
pub mod cdf;
pub mod cost_bars;
pub mod heatmap;
pub mod lines;
pub mod pareto;
pub mod parity;
pub mod roofline;
pub mod timeline;

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The family name charts use; registered once per process.
pub const FONT_FAMILY: &str = "sans-serif";

pub fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Registration only fails for an unparseable font; the bytes are embedded.
        let _ = register_font(FONT_FAMILY, FontStyle::Normal, FONT);
        let _ = register_font(FONT_FAMILY, FontStyle::Bold, FONT);
    });
}

/// Chart size in pixels (PNG) and SVG units.
pub const SIZE: (u32, u32) = (1000, 600);

/// A chart that can draw itself onto any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Converts a plotters error into anyhow.
pub fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart drawing failed: {e:?}")
}

/// Series colours (Tableau 10), in order.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th series colour, cycling.
pub fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A chart drawn into memory: PNG bytes and SVG text.
pub struct Rendered {
    pub png: Vec<u8>,
    pub svg: String,
}

/// Draws `chart` into a PNG and an SVG held in memory.
pub fn render_in_memory(chart: &impl Chart, size: (u32, u32)) -> Result<Rendered> {
    register_embedded_font();
    let (w, h) = size;
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        chart.draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &pixels,
        w,
        h,
        image::ColorType::Rgb8,
    )
    .map_err(|e| anyhow!("PNG encoding failed: {e}"))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        chart.draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Rendered { png, svg })
}

/// The label of the horizontal bar (or row) whose centre is at `y`: bars sit at
/// `k + 0.5` with the first label at the top; other ticks stay blank.
pub fn row_label(labels: &[String], y: f64) -> String {
    let n = labels.len();
    let k = (y - 0.5).round();
    if (y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
        labels[n - 1 - k as usize].clone()
    } else {
        String::new()
    }
}

/// Pixels for a bar chart's row labels, the longest `chars` characters long: about
/// 7.5 px per character at the 14-pt label size, plus a margin.
pub fn label_area_width(chars: usize) -> u32 {
    (chars as u32 * 15 / 2 + 20).max(80)
}

/// Compact number for axis ticks and labels: 3 significant figures, SI suffixes
/// above ten thousand.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 1e12 {
        trim(format!("{:.2}T", v / 1e12))
    } else if a >= 1e9 {
        trim(format!("{:.2}G", v / 1e9))
    } else if a >= 1e6 {
        trim(format!("{:.2}M", v / 1e6))
    } else if a >= 1e4 {
        trim(format!("{:.1}k", v / 1e3))
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        trim(format!("{v:.1}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else if a >= 0.01 {
        trim(format!("{v:.3}"))
    } else {
        format!("{v:.1e}")
    }
}

/// Drops trailing zeros of the decimal part, keeping any suffix.
fn trim(s: String) -> String {
    let (num, suffix) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s.as_str(), ""),
    };
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{suffix}")
}

/// A unit for an axis of seconds: (multiplier, name), chosen so that `max_s` reads
/// between 1 and 1000.
pub fn time_unit(max_s: f64) -> (f64, &'static str) {
    if max_s < 1e-3 {
        (1e6, "us")
    } else if max_s < 1.0 {
        (1e3, "ms")
    } else {
        (1.0, "s")
    }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub enum Mark {
    Line(RGBColor),
    Dashed(RGBColor),
    Box(RGBColor),
    Dot(RGBColor),
    Triangle(RGBColor),
}

/// Legend width in pixels for charts that put their legend beside the plot.
pub const LEGEND_WIDTH: u32 = 230;

/// Draws the chart's title and splits the rest into the plot and, to its right, the
/// legend column.
pub fn titled_with_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(DrawingArea<DB, Shift>, DrawingArea<DB, Shift>)>
where
    DB::ErrorType: 'static,
{
    let area = area.titled(title, (FONT_FAMILY, 22)).map_err(plot_err)?;
    let width = area.dim_in_pixel().0;
    Ok(area.split_horizontally(width.saturating_sub(LEGEND_WIDTH)))
}

/// A log axis from `lo` to `hi` (both positive) with its ticks at 1, 2 and 5 times
/// each power of ten and its light grid lines at 1 to 9 times, starting from the power
/// of ten at or below `lo`. plotters' own log ticks start at the first power of ten in
/// the range (a range from 27,000 had no tick below 100,000), repeat that power when
/// the range spans two decades, and bunch their light lines near each decade.
pub fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let start = 10f64.powf(lo.log10().floor());
    let mut bold = Vec::new();
    let mut light = Vec::new();
    let mut decade = start;
    while decade <= hi {
        for m in 1..10 {
            let v = decade * f64::from(m);
            if v > hi {
                break;
            }
            light.push(v);
            if one_two_five(v) {
                bold.push(v);
            }
        }
        decade *= 10.0;
    }
    (start..hi)
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

/// Whether `x` is 1, 2 or 5 times a power of ten: the ticks labelled on a log axis.
pub fn one_two_five(x: f64) -> bool {
    if x <= 0.0 {
        return false;
    }
    let mantissa = x / 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6 * m)
}

/// A log axis tick's label: the compact number on 1-2-5 ticks, nothing elsewhere.
pub fn log_tick(v: f64) -> String {
    if one_two_five(v) {
        compact(v)
    } else {
        String::new()
    }
}

/// Splits `label` into lines of at most `width` characters at spaces.
pub fn wrap(label: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    // Words longer than a line (dotted scenario keys) are cut into pieces.
    let pieces = label.split(' ').flat_map(|word| {
        let chars: Vec<char> = word.chars().collect();
        chars
            .chunks(width.max(1))
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
    });
    for word in pieces {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Shortens `label` to `max` characters with an ellipsis.
pub fn truncate(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(max.saturating_sub(1)).collect();
        s.push('\u{2026}');
        s
    }
}

/// Draws a legend down `area` (a strip beside the plot): an optional heading, then
/// one entry per line, long labels wrapped.
pub fn side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: Option<&str>,
    entries: &[(String, Mark)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let font = (FONT_FAMILY, 14).into_font();
    let mut y = 30;
    if let Some(h) = heading {
        for line in wrap(h, 26) {
            area.draw(&Text::new(
                line,
                (8, y),
                font.clone().style(FontStyle::Bold),
            ))
            .map_err(plot_err)?;
            y += 18;
        }
        y += 6;
    }
    for (label, mark) in entries {
        let cy = y + 6;
        match *mark {
            Mark::Line(c) => area
                .draw(&PathElement::new(
                    vec![(8, cy), (34, cy)],
                    c.stroke_width(3),
                ))
                .map_err(plot_err)?,
            Mark::Dashed(c) => {
                for x in [8, 20] {
                    area.draw(&PathElement::new(
                        vec![(x, cy), (x + 8, cy)],
                        c.stroke_width(2),
                    ))
                    .map_err(plot_err)?;
                }
            }
            Mark::Box(c) => area
                .draw(&Rectangle::new([(10, cy - 7), (32, cy + 7)], c.filled()))
                .map_err(plot_err)?,
            Mark::Dot(c) => area
                .draw(&Circle::new((21, cy), 5, c.filled()))
                .map_err(plot_err)?,
            Mark::Triangle(c) => area
                .draw(&TriangleMarker::new((21, cy), 7, c.filled()))
                .map_err(plot_err)?,
        }
        for (i, line) in wrap(label, 22).iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (42, y + i as i32 * 17),
                font.clone(),
            ))
            .map_err(plot_err)?;
        }
        y += 17 * wrap(label, 22).len().max(1) as i32 + 8;
    }
    Ok(())
}

/// Draws `chart` into a PNG at `png` and an SVG at `svg`.
pub fn render_both(chart: &impl Chart, png: &Path, svg: &Path, size: (u32, u32)) -> Result<()> {
    register_embedded_font();
    {
        let root = BitMapBackend::new(png, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        chart.draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    {
        let root = SVGBackend::new(svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        chart.draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_axis_ticks_every_one_two_five_from_the_decade_below() {
        // A plan's capital costs from 27,000 to 700,000 dollars: plotters' own ticks
        // began at 100,000 and gave it twice; the axis starts at 10,000.
        let axis = log_axis(27_000.0, 700_000.0);
        assert_eq!(
            axis.key_points(plotters::coord::ranged1d::BoldPoints(100)),
            vec![1e4, 2e4, 5e4, 1e5, 2e5, 5e5],
        );
        // Light grid lines at 1-9 times each power of ten, 10,000 to 700,000.
        assert_eq!(axis.light_points().len(), 9 + 7);
        assert_eq!(axis.range(), 1e4..7e5);
    }
}
