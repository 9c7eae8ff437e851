//! Roofline of one device with the workload's operating points.
//!
//! The roof is `min(peak FLOP/s, intensity x bandwidth)` on log-log axes: the spec
//! sheet's roof solid, the achievable one (the device's and runtime's fractions)
//! dashed. Each point is one operation of the report's layer view: its arithmetic
//! intensity (FLOPs / bytes moved) against the FLOP/s it achieves in the model
//! (FLOPs / its time). Colour tells the operation, shape the phase (prefill
//! circles, decode triangles); a point far below the roof is bound by something
//! the roof does not draw (fixed per-transfer latency, dequantisation, small-GEMM
//! efficiency).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    compact, log_axis, log_tick, plot_err, series_color, side_legend, titled_with_legend, Chart,
    Mark, FONT_FAMILY,
};

/// One operation at one operating point.
pub struct OpPoint {
    pub op: String,
    /// 0 for prefill (drawn as circles), 1 for decode (triangles).
    pub phase: usize,
    pub intensity: f64,
    pub flop_s: f64,
}

pub struct RooflineChart {
    pub title: String,
    /// The arithmetic the compute roof is for, e.g. "bf16".
    pub dtype: String,
    pub peak_flop_s: f64,
    pub bandwidth_b_s: f64,
    pub achievable_flop_s: f64,
    pub achievable_bandwidth_b_s: f64,
    /// The phases drawn, as (0 prefill or 1 decode, legend text).
    pub phases: Vec<(usize, String)>,
    pub points: Vec<OpPoint>,
}

impl RooflineChart {
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let ridge = self.peak_flop_s / self.bandwidth_b_s;
        let pts = self
            .points
            .iter()
            .filter(|p| p.intensity > 0.0 && p.flop_s > 0.0);
        let x_lo = pts
            .clone()
            .map(|p| p.intensity)
            .fold(ridge / 100.0, f64::min)
            / 3.0;
        let x_hi = pts.clone().map(|p| p.intensity).fold(ridge, f64::max) * 5.0;
        let y_lo = pts
            .map(|p| p.flop_s)
            .fold(self.bandwidth_b_s * x_lo, f64::min)
            / 3.0;
        let y_hi = self.peak_flop_s * 3.0;
        ((x_lo, x_hi), (y_lo, y_hi))
    }
}

impl Chart for RooflineChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (plot, legend) = titled_with_legend(area, &self.title)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(log_axis(x0, x1), log_axis(y0, y1))
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity (FLOP per byte moved, log scale)")
            .y_desc("FLOP/s (log scale)")
            .x_label_formatter(&|x| log_tick(*x))
            .y_label_formatter(&|y| log_tick(*y))
            .label_style((FONT_FAMILY, 15))
            .axis_desc_style((FONT_FAMILY, 16))
            .draw()
            .map_err(plot_err)?;
        let roof = |peak: f64, bw: f64| {
            let ridge = peak / bw;
            vec![(x0, x0 * bw), (ridge, peak), (x1, peak)]
        };
        let black = RGBColor(0, 0, 0);
        chart
            .draw_series(LineSeries::new(
                roof(self.peak_flop_s, self.bandwidth_b_s),
                black.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(DashedLineSeries::new(
                roof(self.achievable_flop_s, self.achievable_bandwidth_b_s),
                8,
                6,
                black.mix(0.6).stroke_width(2),
            ))
            .map_err(plot_err)?;
        let mut ops: Vec<String> = Vec::new();
        for p in &self.points {
            if !ops.contains(&p.op) {
                ops.push(p.op.clone());
            }
        }
        let color_of = |op: &str| series_color(ops.iter().position(|o| o == op).unwrap_or(0));
        // Operations often share an operating point (in batch-1 decode every matmul
        // sits at about one FLOP per byte): earlier operations are drawn larger and
        // every marker is outlined, so coincident points show as concentric rings.
        for p in self
            .points
            .iter()
            .filter(|p| p.intensity > 0.0 && p.flop_s > 0.0)
        {
            let k = ops.iter().position(|o| *o == p.op).unwrap_or(0) as i32;
            let size = (13 - 2 * k).max(4);
            let c = color_of(&p.op);
            let at = (p.intensity, p.flop_s);
            if p.phase == 0 {
                chart
                    .draw_series([
                        Circle::new(at, size, c.filled()),
                        Circle::new(at, size, BLACK.stroke_width(1)),
                    ])
                    .map_err(plot_err)?;
            } else {
                chart
                    .draw_series([
                        TriangleMarker::new(at, size + 4, BLACK.filled()),
                        TriangleMarker::new(at, size + 2, c.filled()),
                    ])
                    .map_err(plot_err)?;
            }
        }
        let grey = RGBColor(90, 90, 90);
        let mut entries = vec![
            (
                format!(
                    "spec roof: {} TFLOP/s {}, {} GB/s",
                    compact(self.peak_flop_s / 1e12),
                    self.dtype,
                    compact(self.bandwidth_b_s / 1e9)
                ),
                Mark::Line(black),
            ),
            (
                format!(
                    "achievable: {} TFLOP/s, {} GB/s",
                    compact(self.achievable_flop_s / 1e12),
                    compact(self.achievable_bandwidth_b_s / 1e9)
                ),
                Mark::Dashed(grey),
            ),
        ];
        for (shape, phase) in &self.phases {
            entries.push((
                phase.clone(),
                if *shape == 0 {
                    Mark::Dot(grey)
                } else {
                    Mark::Triangle(grey)
                },
            ));
        }
        for op in &ops {
            entries.push((op.clone(), Mark::Box(color_of(op))));
        }
        side_legend(&legend, None, &entries)?;
        Ok(())
    }
}
