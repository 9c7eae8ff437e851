//! Charts (PNG and SVG) with plotters and an embedded font, so no system font
//! libraries are needed. Each chart module draws one kind of chart into both formats.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

pub mod parity;
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
