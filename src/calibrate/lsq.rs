//! Weighted linear least squares with standard errors, with nalgebra.
//!
//! Every calibration model here is linear in its coefficients once written as a time:
//! `t = a + b x` (a fixed cost plus a rate), or `t = a x1 + b x2` for GEMMs. The
//! measured times span several orders of magnitude (a 1 MiB read and a 4 GiB read), so
//! the fits minimise *relative* residuals: weights `1 / t^2`, i.e. every point counts
//! by its percentage error, not its seconds. Without that, the largest transfers
//! decide everything and the fixed cost (latency) is lost in their noise.
//!
//! Reported with each fit:
//!
//! - covariance of the coefficients `s^2 (X' W X)^-1`, `s^2 = sum w r^2 / (n - p)`;
//!   standard errors are the square roots of its diagonal;
//! - R squared of the weighted regression, `1 - sum w r^2 / sum w (y - ybar_w)^2`
//!   with `ybar_w` the weighted mean (what statistics packages report for WLS);
//! - the standard deviation of the relative residuals `(y - yhat) / y`, with `n - p`
//!   degrees of freedom: the prediction band `planner simulate` reports.

use nalgebra::{DMatrix, DVector};

#[derive(Debug, Clone, PartialEq)]
pub struct LinearFit {
    pub coefficients: Vec<f64>,
    /// Covariance matrix of the coefficients, row-major, `p x p`.
    pub covariance: Vec<Vec<f64>>,
    pub r_squared: f64,
    pub n_points: usize,
    pub relative_residual_sd: f64,
}

impl LinearFit {
    pub fn std_error(&self, i: usize) -> f64 {
        self.covariance[i][i].max(0.0).sqrt()
    }

    /// Standard error of a function `g(coefficients)` by the delta method:
    /// `sqrt(grad' C grad)`.
    pub fn std_error_of(&self, gradient: &[f64]) -> f64 {
        let mut var = 0.0;
        for (i, gi) in gradient.iter().enumerate() {
            for (j, gj) in gradient.iter().enumerate() {
                var += gi * self.covariance[i][j] * gj;
            }
        }
        var.max(0.0).sqrt()
    }
}

/// Minimises `sum w_i (y_i - x_i . beta)^2`. `rows` holds the regressors of each point.
/// `None` when there are no more points than coefficients or the design is singular.
pub fn weighted_least_squares(rows: &[Vec<f64>], y: &[f64], w: &[f64]) -> Option<LinearFit> {
    let n = rows.len();
    let p = rows.first()?.len();
    if n <= p || y.len() != n || w.len() != n || p == 0 {
        return None;
    }
    let sqrt_w: Vec<f64> = w.iter().map(|x| x.max(0.0).sqrt()).collect();
    let xw = DMatrix::from_fn(n, p, |i, j| rows[i][j] * sqrt_w[i]);
    let yw = DVector::from_fn(n, |i, _| y[i] * sqrt_w[i]);
    // Normal equations through the SVD of the weighted design: stable for regressors
    // of very different magnitudes (bytes ~1e9 beside ones).
    let scale: Vec<f64> = (0..p)
        .map(|j| xw.column(j).norm().max(f64::MIN_POSITIVE))
        .collect();
    let xs = DMatrix::from_fn(n, p, |i, j| xw[(i, j)] / scale[j]);
    let svd = xs.clone().svd(true, true);
    let max_singular = svd.singular_values.max();
    if max_singular.is_nan()
        || max_singular <= 0.0
        || svd.singular_values.min() <= max_singular * 1e-12
    {
        return None;
    }
    let beta_scaled = svd.solve(&yw, 1e-14).ok()?;
    let beta: Vec<f64> = (0..p).map(|j| beta_scaled[j] / scale[j]).collect();

    let fitted: Vec<f64> = rows
        .iter()
        .map(|r| r.iter().zip(&beta).map(|(x, b)| x * b).sum())
        .collect();
    let ss_res: f64 = (0..n).map(|i| w[i] * (y[i] - fitted[i]).powi(2)).sum();
    let w_sum: f64 = w.iter().sum();
    let y_mean = (0..n).map(|i| w[i] * y[i]).sum::<f64>() / w_sum;
    let ss_tot: f64 = (0..n).map(|i| w[i] * (y[i] - y_mean).powi(2)).sum();
    let dof = (n - p) as f64;
    let s2 = ss_res / dof;

    // (Xs' Xs)^-1 = V S^-2 V'; unscale back to the original coefficients.
    let v_t = svd.v_t.as_ref()?;
    let inv_s2 = svd.singular_values.map(|s| 1.0 / (s * s));
    let mut covariance = vec![vec![0.0; p]; p];
    for (a, row) in covariance.iter_mut().enumerate() {
        for (b, c) in row.iter_mut().enumerate() {
            let mut sum = 0.0;
            for k in 0..p {
                sum += v_t[(k, a)] * inv_s2[k] * v_t[(k, b)];
            }
            *c = s2 * sum / (scale[a] * scale[b]);
        }
    }
    let relative_ss: f64 = (0..n)
        .map(|i| {
            if y[i] != 0.0 {
                ((y[i] - fitted[i]) / y[i]).powi(2)
            } else {
                0.0
            }
        })
        .sum();
    Some(LinearFit {
        coefficients: beta,
        covariance,
        r_squared: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            1.0
        },
        n_points: n,
        relative_residual_sd: (relative_ss / dof).sqrt(),
    })
}

/// Least squares on relative residuals: weights `1 / y^2`.
pub fn relative_least_squares(rows: &[Vec<f64>], y: &[f64]) -> Option<LinearFit> {
    if y.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    let w: Vec<f64> = y.iter().map(|v| 1.0 / (v * v)).collect();
    weighted_least_squares(rows, y, &w)
}

/// Fixed cost plus rate, `y = a + b x`, on relative residuals.
pub fn affine_relative(x: &[f64], y: &[f64]) -> Option<LinearFit> {
    let rows: Vec<Vec<f64>> = x.iter().map(|x| vec![1.0, *x]).collect();
    relative_least_squares(&rows, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn exact_line_is_recovered_with_zero_error() {
        // y = 2 + 3x at x = 0, 1, 2, 3: a = 2, b = 3, no residual, R^2 = 1.
        let rows: Vec<Vec<f64>> = (0..4).map(|x| vec![1.0, x as f64]).collect();
        let y = [2.0, 5.0, 8.0, 11.0];
        let fit = weighted_least_squares(&rows, &y, &[1.0; 4]).unwrap();
        assert!(close(fit.coefficients[0], 2.0, 1e-12));
        assert!(close(fit.coefficients[1], 3.0, 1e-12));
        assert!(fit.std_error(1) < 1e-9);
        assert!(close(fit.r_squared, 1.0, 1e-12));
    }

    #[test]
    fn ordinary_least_squares_matches_the_textbook_formulas() {
        // Points (0,1) (1,3) (2,2) (3,5), unit weights.
        // xbar = 1.5, ybar = 2.75, Sxx = 2.25+0.25+0.25+2.25 = 5,
        // Sxy = (-1.5)(-1.75) + (-0.5)(0.25) + (0.5)(-0.75) + (1.5)(2.25) = 5.5.
        // b = 5.5/5 = 1.1, a = 2.75 - 1.1 x 1.5 = 1.1.
        // Residuals -0.1, 0.8, -1.3, 0.6: SSres = 0.01+0.64+1.69+0.36 = 2.7.
        // SStot = 3.0625+0.0625+0.5625+5.0625 = 8.75: R^2 = 1 - 2.7/8.75 = 0.6914286.
        // s^2 = 2.7/2 = 1.35; se(b) = sqrt(1.35/5) = 0.5196152;
        // se(a) = sqrt(1.35 (1/4 + 1.5^2/5)) = sqrt(0.945) = 0.9721111.
        let rows: Vec<Vec<f64>> = (0..4).map(|x| vec![1.0, x as f64]).collect();
        let fit = weighted_least_squares(&rows, &[1.0, 3.0, 2.0, 5.0], &[1.0; 4]).unwrap();
        assert!(close(fit.coefficients[0], 1.1, 1e-10));
        assert!(close(fit.coefficients[1], 1.1, 1e-10));
        assert!(close(fit.r_squared, 0.6914286, 1e-6));
        assert!(close(fit.std_error(1), 0.5196152, 1e-6));
        assert!(close(fit.std_error(0), 0.9721111, 1e-6));
        assert_eq!(fit.n_points, 4);
    }

    #[test]
    fn relative_weights_recover_latency_and_bandwidth() {
        // t = 10 us + bytes / 1 GB/s, for 1 kB .. 1 GB: exact, so a = 1e-5, b = 1e-9.
        let x: Vec<f64> = (3..=9).map(|e| 10f64.powi(e)).collect();
        let y: Vec<f64> = x.iter().map(|b| 1e-5 + b * 1e-9).collect();
        let fit = affine_relative(&x, &y).unwrap();
        assert!(close(fit.coefficients[0], 1e-5, 1e-9));
        assert!(close(fit.coefficients[1], 1e-9, 1e-9));
        assert!(fit.relative_residual_sd < 1e-9);
    }

    #[test]
    fn relative_residual_sd_of_a_plus_minus_ten_percent_pattern() {
        // Fit y = b (one coefficient, regressor 1) to y = 1.1 and y = 0.9, weights 1/y^2.
        // Minimising (1.1 - b)^2/1.21 + (0.9 - b)^2/0.81 gives
        // b = (1/1.1 + 1/0.9) / (1/1.21 + 1/0.81) = 2.0202020 / 2.0610141 = 0.9801980.
        // Relative residuals: (1.1 - 0.980198)/1.1 = 0.108911, (0.9 - 0.980198)/0.9 =
        // -0.089109; sd with 1 degree of freedom = sqrt(0.011862 + 0.007940) = 0.140719.
        let fit = relative_least_squares(&[vec![1.0], vec![1.0]], &[1.1, 0.9]).unwrap();
        assert!(close(fit.coefficients[0], 0.9801980, 1e-6));
        assert!(close(fit.relative_residual_sd, 0.140719, 1e-4));
    }

    #[test]
    fn delta_method_for_a_reciprocal() {
        // g = 1/b with b = 1.1, se(b) = 0.5196: se(g) = se(b)/b^2 = 0.5196152/1.21.
        let rows: Vec<Vec<f64>> = (0..4).map(|x| vec![1.0, x as f64]).collect();
        let fit = weighted_least_squares(&rows, &[1.0, 3.0, 2.0, 5.0], &[1.0; 4]).unwrap();
        let b = fit.coefficients[1];
        let se = fit.std_error_of(&[0.0, -1.0 / (b * b)]);
        assert!(close(se, 0.5196152 / 1.21, 1e-6));
    }

    #[test]
    fn too_few_points_or_a_singular_design_give_none() {
        assert!(affine_relative(&[1.0, 2.0], &[1.0, 2.0]).is_none());
        assert!(affine_relative(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }
}
