//! Fitting the compute curve through the planner's own roofline.
//!
//! The planner times a GEMM of `m` token rows as
//! `max(flops (m + h) / (P m), a + bytes / B)`: compute at `P m / (m + h)` or memory
//! at the fitted bandwidth, whichever is slower ([`crate::analytical::timing`]). With
//! the memory side fixed by the bandwidth fit, `P` and `h` are fitted to the GEMM
//! rows of a data type by least squares on relative residuals. The `max`
//! makes the model non-linear, so the fit is a search: for each `h` on a grid
//! (0, then 0.01 to 4096 rows, log-spaced) the best `P` by golden-section search on
//! `ln P`, then the best pair. Standard errors come from the Jacobian of the relative
//! residuals at the optimum (central differences): covariance `s^2 (J'J)^-1`,
//! `s^2 = sum r^2 / (n - 2)`.

use nalgebra::Matrix2;

/// One measured GEMM: FLOPs, token rows, bytes and time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmPoint {
    pub flops: f64,
    pub rows: f64,
    pub bytes: f64,
    pub time_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RooflineFit {
    /// FLOP/s at full size.
    pub peak: f64,
    pub peak_std_error: f64,
    pub half_rows: f64,
    pub half_rows_std_error: f64,
    pub r_squared: f64,
    pub n_points: usize,
    pub relative_sd: f64,
    /// Points whose fitted time is the compute side.
    pub compute_bound_points: usize,
}

/// The planner's time for `p` with compute `peak m / (m + half_rows)` and memory
/// `memory_time(bytes)`.
pub fn roofline_time(
    p: &GemmPoint,
    peak: f64,
    half_rows: f64,
    memory_time: &dyn Fn(f64) -> f64,
) -> f64 {
    let compute = p.flops * (p.rows + half_rows) / (peak * p.rows);
    compute.max(memory_time(p.bytes))
}

fn sum_sq(points: &[GemmPoint], peak: f64, half: f64, mem: &dyn Fn(f64) -> f64) -> f64 {
    points
        .iter()
        .map(|p| ((p.time_s - roofline_time(p, peak, half, mem)) / p.time_s).powi(2))
        .sum()
}

/// Golden-section search for the `ln peak` minimising the residuals at `half`.
fn best_peak(points: &[GemmPoint], half: f64, mem: &dyn Fn(f64) -> f64) -> (f64, f64) {
    // Bracket from the points themselves: every compute rate implied by a point, with
    // room on both sides.
    let rates: Vec<f64> = points
        .iter()
        .map(|p| p.flops * (p.rows + half) / (p.rows * p.time_s))
        .collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min).ln() - 2.0;
    let hi = rates.iter().copied().fold(0.0, f64::max).ln() + 2.0;
    let f = |x: f64| sum_sq(points, x.exp(), half, mem);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..200 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
        if (b - a).abs() < 1e-10 {
            break;
        }
    }
    let x = (a + b) / 2.0;
    (x.exp(), f(x))
}

fn weighted_r_squared(points: &[GemmPoint], ss: f64) -> f64 {
    let w: Vec<f64> = points.iter().map(|p| 1.0 / (p.time_s * p.time_s)).collect();
    let w_sum: f64 = w.iter().sum();
    let mean = points
        .iter()
        .zip(&w)
        .map(|(p, w)| w * p.time_s)
        .sum::<f64>()
        / w_sum;
    let ss_tot: f64 = points
        .iter()
        .zip(&w)
        .map(|(p, w)| w * (p.time_s - mean).powi(2))
        .sum();
    if ss_tot > 0.0 {
        1.0 - ss / ss_tot
    } else {
        1.0
    }
}

fn compute_bound(
    points: &[GemmPoint],
    peak: f64,
    half: f64,
    memory_time: &dyn Fn(f64) -> f64,
) -> usize {
    points
        .iter()
        .filter(|p| p.flops * (p.rows + half) / (peak * p.rows) >= memory_time(p.bytes))
        .count()
}

/// Fits `peak` and `half_rows`; `None` with fewer than three points.
pub fn fit_roofline(points: &[GemmPoint], memory_time: &dyn Fn(f64) -> f64) -> Option<RooflineFit> {
    let n = points.len();
    if n < 3
        || points
            .iter()
            .any(|p| !(p.time_s > 0.0 && p.rows > 0.0 && p.flops > 0.0))
    {
        return None;
    }
    let mut grid = vec![0.0];
    grid.extend((0..=120).map(|i| 0.01 * 10f64.powf(i as f64 * 5.61 / 120.0)));
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for &half in &grid {
        let (peak, ss) = best_peak(points, half, memory_time);
        if ss < best.0 {
            best = (ss, peak, half);
        }
    }
    // Refine `half` between the neighbouring grid points.
    let (_, mut peak, mut half) = best;
    let idx = grid.iter().position(|h| *h == half).unwrap_or(0);
    let (mut a, mut b) = (
        grid[idx.saturating_sub(1)],
        grid[(idx + 1).min(grid.len() - 1)],
    );
    for _ in 0..60 {
        let m1 = a + (b - a) / 3.0;
        let m2 = b - (b - a) / 3.0;
        if best_peak(points, m1, memory_time).1 < best_peak(points, m2, memory_time).1 {
            b = m2;
        } else {
            a = m1;
        }
    }
    let refined = (a + b) / 2.0;
    let (refined_peak, refined_ss) = best_peak(points, refined, memory_time);
    if refined_ss < best.0 {
        peak = refined_peak;
        half = refined;
    }
    let ss = sum_sq(points, peak, half, memory_time);

    // Jacobian of the relative residuals by central differences.
    let residual = |i: usize, pk: f64, h: f64| {
        let p = &points[i];
        (p.time_s - roofline_time(p, pk, h, memory_time)) / p.time_s
    };
    let dp = peak * 1e-5;
    let dh = (half * 1e-4).max(1e-4);
    let mut jtj = Matrix2::zeros();
    for i in 0..n {
        let jp = (residual(i, peak + dp, half) - residual(i, peak - dp, half)) / (2.0 * dp);
        let jh = if half > dh {
            (residual(i, peak, half + dh) - residual(i, peak, half - dh)) / (2.0 * dh)
        } else {
            (residual(i, peak, half + dh) - residual(i, peak, half)) / dh
        };
        jtj[(0, 0)] += jp * jp;
        jtj[(0, 1)] += jp * jh;
        jtj[(1, 0)] += jp * jh;
        jtj[(1, 1)] += jh * jh;
    }
    let s2 = ss / (n - 2).max(1) as f64;
    let (peak_se, half_se) = match jtj.try_inverse() {
        Some(inv) => {
            let inv: Matrix2<f64> = inv;
            (
                (s2 * inv[(0, 0)]).max(0.0).sqrt(),
                (s2 * inv[(1, 1)]).max(0.0).sqrt(),
            )
        }
        // Every point memory-bound or the half point at its bound: one parameter is
        // not determined by the data.
        None => (f64::NAN, f64::NAN),
    };
    Some(RooflineFit {
        peak,
        peak_std_error: peak_se,
        half_rows: half,
        half_rows_std_error: half_se,
        r_squared: weighted_r_squared(points, ss),
        n_points: n,
        relative_sd: (ss / (n - 2).max(1) as f64).sqrt(),
        compute_bound_points: compute_bound(points, peak, half, memory_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_peak_and_half_rows_from_exact_roofline_times() {
        // Memory: 10 us + bytes / 20 GB/s. Compute: 100 GFLOP/s x m / (m + 6).
        // Shapes 4096 x 4096 fp32 at m = 1 .. 1024: m = 1 moves 67 MB (3.4 ms) and
        // needs 33.6 MFLOP x 7 / 100 GFLOP/s = 2.3 ms: memory-bound; m = 64 needs
        // 2.15 GFLOP x 70/64 / 1e11 = 23.5 ms against 3.5 ms: compute-bound.
        let mem = |b: f64| 10e-6 + b / 20e9;
        let points: Vec<GemmPoint> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0, 1024.0]
            .iter()
            .map(|&m: &f64| {
                let flops = 2.0 * m * 4096.0 * 4096.0;
                let bytes = 4.0 * (2.0 * m * 4096.0 + 4096.0 * 4096.0);
                let mut p = GemmPoint {
                    flops,
                    rows: m,
                    bytes,
                    time_s: 0.0,
                };
                p.time_s = roofline_time(&p, 100e9, 6.0, &mem);
                p
            })
            .collect();
        let fit = fit_roofline(&points, &mem).unwrap();
        assert!((fit.peak / 100e9 - 1.0).abs() < 1e-4, "{fit:?}");
        assert!((fit.half_rows - 6.0).abs() < 1e-2, "{fit:?}");
        assert!(fit.r_squared > 0.999_99);
        assert!(fit.relative_sd < 1e-4);
    }

    #[test]
    fn planner_time_is_the_slower_side() {
        // 1 GFLOP at m = 4, half 4: compute 1e9 x 8 / (1e11 x 4) = 20 ms; memory 5 ms.
        let p = GemmPoint {
            flops: 1e9,
            rows: 4.0,
            bytes: 1e8,
            time_s: 1.0,
        };
        let t = roofline_time(&p, 1e11, 4.0, &|b| b / 2e10);
        assert!((t - 0.02).abs() < 1e-12);
    }
}
