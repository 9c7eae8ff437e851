//! Fitting a runtime profile's efficiency parameters to end-to-end measurements.
//!
//! The free parameters (named per runtime in `validation/suite.toml`, `[[fit]]`) are
//! either per device family (`family_params`) or one value shared by every family the
//! fit cases cover (`joint_params`). They are fitted by Levenberg-Marquardt on the log
//! of predicted / measured over the fit half's cases of that runtime, so every case
//! weighs by its relative error. Parameters are fitted in log space (they are all
//! positive). Standard errors come from the Gauss-Newton covariance
//! `s^2 (J^T J)^-1` with `s^2 = SSR / (n - p)`, mapped back to value space.

use std::collections::BTreeSet;

use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use crate::runtime::{RuntimeEfficiency, RuntimeFile};
use crate::scenario::Scenario;
use crate::sourced::Sourced;
use crate::validate::{Case, Runner, Split};

/// A runtime efficiency parameter that can be fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    ComputeFraction,
    BandwidthFraction,
    AttentionFraction,
    DispatchScale,
    PerStepOverheadUs,
    GemmHalfRows,
    AttentionHalfRows,
    OverlapFraction,
}

impl Param {
    /// Every fittable parameter, in the order the error messages list them.
    pub const ALL: [Param; 8] = [
        Param::ComputeFraction,
        Param::BandwidthFraction,
        Param::AttentionFraction,
        Param::DispatchScale,
        Param::PerStepOverheadUs,
        Param::GemmHalfRows,
        Param::AttentionHalfRows,
        Param::OverlapFraction,
    ];

    pub fn from_name(name: &str) -> Option<Param> {
        Param::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The parameters' names as a list for messages: "a, b, ... or z".
    pub fn names() -> String {
        let names: Vec<&str> = Param::ALL.iter().map(|p| p.name()).collect();
        let (last, rest) = names.split_last().expect("parameters");
        format!("{} or {last}", rest.join(", "))
    }

    pub fn name(self) -> &'static str {
        match self {
            Param::ComputeFraction => "compute_fraction",
            Param::BandwidthFraction => "bandwidth_fraction",
            Param::AttentionFraction => "attention_fraction",
            Param::DispatchScale => "dispatch_scale",
            Param::PerStepOverheadUs => "per_step_overhead_us",
            Param::GemmHalfRows => "gemm_half_rows",
            Param::AttentionHalfRows => "attention_half_rows",
            Param::OverlapFraction => "overlap_fraction",
        }
    }

    fn set(self, e: &mut RuntimeEfficiency, v: f64) {
        match self {
            Param::ComputeFraction => e.compute_fraction = v,
            Param::BandwidthFraction => e.bandwidth_fraction = v,
            Param::AttentionFraction => e.attention_fraction = v,
            Param::DispatchScale => e.dispatch_scale = v,
            Param::PerStepOverheadUs => e.per_step_overhead_s = v * 1e-6,
            Param::GemmHalfRows => e.gemm_half_rows = Some(v),
            Param::AttentionHalfRows => e.attention_half_rows = Some(v),
            Param::OverlapFraction => e.overlap_fraction = v,
        }
    }

    /// Upper bound. A runtime's compute and bandwidth fractions multiply the device's
    /// achievable fractions (0.75 to 0.90 in the catalog); past about 1.15 the product
    /// would exceed the specification, which no software does.
    fn max(self) -> f64 {
        match self {
            Param::BandwidthFraction => 1.15,
            Param::ComputeFraction | Param::AttentionFraction => 1.25,
            Param::OverlapFraction => 1.0,
            _ => f64::INFINITY,
        }
    }

    /// The bound `value` sits at, if any: the upper bound when within 1% of it, zero
    /// when within 0.1% of the upper bound (of the starting value, for unbounded
    /// parameters) above it.
    fn bound_at(self, value: f64) -> Option<f64> {
        let max = self.max();
        let scale = if max.is_finite() { max } else { self.start() };
        if max.is_finite() && value >= 0.99 * max {
            Some(max)
        } else if value <= 1e-3 * scale {
            Some(0.0)
        } else {
            None
        }
    }

    /// Where every fit starts, whatever the profile on disk holds, so that a fit
    /// reproduces byte for byte: mid-range for fractions, neutral elsewhere.
    fn start(self) -> f64 {
        match self {
            Param::ComputeFraction | Param::BandwidthFraction | Param::AttentionFraction => 0.8,
            Param::OverlapFraction => 0.5,
            Param::DispatchScale => 1.0,
            Param::PerStepOverheadUs => 1000.0,
            Param::GemmHalfRows | Param::AttentionHalfRows => 16.0,
        }
    }

    /// Fitting coordinate: log for unbounded parameters, logit of value / max for
    /// bounded ones (so a bound is approached smoothly and never crossed).
    fn to_theta(self, v: f64) -> f64 {
        let max = self.max();
        if max.is_finite() {
            let x = (v / max).clamp(1e-6, 0.995);
            (x / (1.0 - x)).ln()
        } else {
            v.max(1e-6).ln()
        }
    }

    fn value_of_theta(self, t: f64) -> f64 {
        let max = self.max();
        if max.is_finite() {
            max / (1.0 + (-t).exp())
        } else {
            t.exp()
        }
    }

    /// Writes `value` as this parameter's entry of a profile's family.
    fn write(self, f: &mut crate::runtime::RuntimeFamilyFile, value: Sourced<f64>) {
        match self {
            Param::GemmHalfRows => f.gemm_half_rows = Some(value),
            Param::AttentionHalfRows => f.attention_half_rows = Some(value),
            Param::OverlapFraction => f.overlap_fraction = Some(value),
            Param::ComputeFraction => f.compute_fraction = value,
            Param::BandwidthFraction => f.bandwidth_fraction = value,
            Param::AttentionFraction => f.attention_fraction = value,
            Param::DispatchScale => f.dispatch_scale = value,
            Param::PerStepOverheadUs => f.per_step_overhead_us = value,
        }
    }
}

/// One free parameter: for one family, or shared (`family = None`).
#[derive(Debug, Clone, PartialEq)]
pub struct FreeParam {
    pub family: Option<String>,
    pub param: Param,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FittedParam {
    /// Whether the value sits at the parameter's bound (then its std error is 0).
    pub at_bound: bool,
    /// Device family, or "all" for a parameter shared by every family.
    pub family: String,
    pub parameter: String,
    pub value: f64,
    pub std_error: f64,
    /// Where the fit started.
    pub start: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeFit {
    pub runtime: String,
    pub params: Vec<FittedParam>,
    pub n_points: usize,
    /// R squared of log predicted against log measured.
    pub r_squared: f64,
    /// Standard deviation of the log residuals (about the relative error).
    pub residual_std: f64,
    pub iterations: usize,
    pub case_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no fit-half cases for runtime `{0}`")]
    NoCases(String),
    #[error("unknown parameter `{0}` (expected {names})", names = Param::names())]
    UnknownParam(String),
    #[error("case {id} cannot be predicted: {reason}")]
    Prediction { id: String, reason: String },
    #[error("{0} points cannot determine {1} parameters")]
    TooFewPoints(usize, usize),
}

/// Sets the free parameters `values` on every group of `scenario` that runs `runtime`.
fn apply(scenario: &Scenario, runtime: &str, free: &[FreeParam], values: &[f64]) -> Scenario {
    let mut s = scenario.clone();
    for group in s.groups.iter_mut().filter(|g| g.runtime.id == runtime) {
        let family = group.device.family.clone();
        for (p, v) in free.iter().zip(values) {
            if p.family.as_deref().is_some_and(|f| f != family) {
                continue;
            }
            for (name, eff) in group.runtime.families.iter_mut() {
                if p.family.is_none() || *name == family {
                    p.param.set(eff, *v);
                }
            }
        }
    }
    s
}

fn log_residuals(
    cases: &[&Case],
    runtime: &str,
    free: &[FreeParam],
    values: &[f64],
    run: &Runner,
) -> Result<DVector<f64>, FitError> {
    use rayon::prelude::*;
    // Cases are independent: run them in parallel, collected in order.
    let residuals: Vec<Result<f64, FitError>> = cases
        .par_iter()
        .map(|case| {
            let scenario = apply(&case.scenario, runtime, free, values);
            let predicted = run(&scenario)
                .and_then(|report| {
                    case.metric
                        .value(&report)
                        .ok_or_else(|| "no value".to_string())
                })
                .map_err(|reason| FitError::Prediction {
                    id: case.id.clone(),
                    reason,
                })?;
            Ok((predicted / case.measured).ln())
        })
        .collect();
    let mut r = DVector::zeros(cases.len());
    for (i, x) in residuals.into_iter().enumerate() {
        r[i] = x?;
    }
    Ok(r)
}

/// What [`fit_runtime`] reports as it goes (`planner calibrate --runtime` shows it:
/// the fit of every profile takes half a minute on two cores).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FitProgress {
    /// The fit starts from the parameters' priors: `rms` is the RMS log error there.
    Start {
        cases: usize,
        params: usize,
        rms: f64,
    },
    /// An iteration of Levenberg-Marquardt ended with RMS log error `rms`.
    Iteration { iteration: usize, rms: f64 },
}

/// Fits `family_params` and `joint_params` of `runtime` to the fit-half cases,
/// reporting each iteration to `progress`.
pub fn fit_runtime(
    runtime: &str,
    family_params: &std::collections::BTreeMap<String, Vec<String>>,
    joint_params: &[String],
    cases: &[Case],
    run: &Runner,
    progress: &dyn Fn(FitProgress),
) -> Result<RuntimeFit, FitError> {
    let fit_cases: Vec<&Case> = cases
        .iter()
        .filter(|c| c.split == Split::Fit && c.runtime == runtime)
        .collect();
    if fit_cases.is_empty() {
        return Err(FitError::NoCases(runtime.to_string()));
    }
    let families: BTreeSet<String> = fit_cases
        .iter()
        .flat_map(|c| c.scenario.groups.iter().map(|g| g.device.family.clone()))
        .collect();
    let parse = |n: &String| Param::from_name(n).ok_or_else(|| FitError::UnknownParam(n.clone()));
    let mut free = Vec::new();
    for family in &families {
        for name in family_params.get(family).into_iter().flatten() {
            free.push(FreeParam {
                family: Some(family.clone()),
                param: parse(name)?,
            });
        }
    }
    for name in joint_params {
        free.push(FreeParam {
            family: None,
            param: parse(name)?,
        });
    }
    let n = fit_cases.len();
    let p = free.len();
    if n <= p {
        return Err(FitError::TooFewPoints(n, p));
    }
    let prior: Vec<f64> = free.iter().map(|fp| fp.param.start()).collect();

    // Levenberg-Marquardt in log space.
    let to_values = |theta: &DVector<f64>| -> Vec<f64> {
        theta
            .iter()
            .zip(&free)
            .map(|(t, fp)| fp.param.value_of_theta(*t))
            .collect()
    };
    let mut theta = DVector::from_iterator(
        p,
        prior.iter().zip(&free).map(|(v, fp)| fp.param.to_theta(*v)),
    );
    let mut r = log_residuals(&fit_cases, runtime, &free, &to_values(&theta), run)?;
    let mut cost = r.norm_squared();
    let rms = |cost: f64| (cost / n as f64).sqrt();
    progress(FitProgress::Start {
        cases: n,
        params: p,
        rms: rms(cost),
    });
    let mut lambda = 1e-3;
    let mut iterations = 0;
    let step = 1e-4;
    let jacobian = |theta: &DVector<f64>, r: &DVector<f64>| -> Result<DMatrix<f64>, FitError> {
        let mut j = DMatrix::zeros(n, p);
        for k in 0..p {
            let mut t = theta.clone();
            t[k] += step;
            let rk = log_residuals(&fit_cases, runtime, &free, &to_values(&t), run)?;
            j.set_column(k, &((rk - r) / step));
        }
        Ok(j)
    };
    for _ in 0..100 {
        iterations += 1;
        let j = jacobian(&theta, &r)?;
        let jtj = j.transpose() * &j;
        let gradient = j.transpose() * &r;
        let mut improved = false;
        for _ in 0..20 {
            let mut a = jtj.clone();
            for k in 0..p {
                a[(k, k)] += lambda * jtj[(k, k)].max(1e-12);
            }
            let Some(delta) = a.lu().solve(&(-&gradient)) else {
                lambda *= 10.0;
                continue;
            };
            let candidate = &theta + &delta;
            let rc = log_residuals(&fit_cases, runtime, &free, &to_values(&candidate), run)?;
            let c = rc.norm_squared();
            if c < cost {
                theta = candidate;
                r = rc;
                let gain = cost - c;
                cost = c;
                lambda = (lambda / 10.0).max(1e-9);
                improved = gain > 1e-12 * cost.max(1e-12);
                break;
            }
            lambda *= 10.0;
        }
        progress(FitProgress::Iteration {
            iteration: iterations,
            rms: rms(cost),
        });
        if !improved {
            break;
        }
    }

    let values = to_values(&theta);
    let j = jacobian(&theta, &r)?;
    let s2 = cost / (n - p) as f64;
    // A parameter pinned at a bound has no information left: its column is zero and
    // the pseudo-inverse gives it no variance rather than failing.
    let covariance = (j.transpose() * &j)
        .pseudo_inverse(1e-12)
        .unwrap_or_else(|_| DMatrix::zeros(p, p));
    let logs: Vec<f64> = fit_cases.iter().map(|c| c.measured.ln()).collect();
    let mean = logs.iter().sum::<f64>() / n as f64;
    let total: f64 = logs.iter().map(|l| (l - mean).powi(2)).sum();
    let params = free
        .iter()
        .enumerate()
        .map(|(k, fp)| FittedParam {
            at_bound: fp.param.bound_at(values[k]).is_some(),
            family: fp.family.clone().unwrap_or_else(|| "all".to_string()),
            parameter: fp.param.name().to_string(),
            value: values[k],
            // d value / d theta: value for log; value (1 - value / max) for logit.
            std_error: {
                let max = fp.param.max();
                let slope = if max.is_finite() {
                    values[k] * (1.0 - values[k] / max)
                } else {
                    values[k]
                };
                slope * (s2 * covariance[(k, k)]).max(0.0).sqrt()
            },
            start: prior[k],
        })
        .collect();
    Ok(RuntimeFit {
        runtime: runtime.to_string(),
        params,
        n_points: n,
        r_squared: if total > 0.0 { 1.0 - cost / total } else { 1.0 },
        residual_std: s2.sqrt(),
        iterations,
        case_ids: fit_cases.iter().map(|c| c.id.clone()).collect(),
    })
}

/// The runtime profile text with the fit written in, as `planner calibrate --runtime
/// ... --write` commits it.
pub fn render_profile(
    file: &RuntimeFile,
    fit: &RuntimeFit,
    command: &str,
) -> Result<String, toml::ser::Error> {
    let updated = apply_fit_to_file(file, fit, command);
    let body = toml::to_string_pretty(&updated)?;
    Ok(format!(
        "# Generated by `{command}`:\n# the fitted values are rewritten by that command; edit the other fields by hand.\n# Fit: {} cases, R^2 {:.3}, residual std {:.3} (log), cases {}.\n\n{body}",
        fit.n_points,
        fit.r_squared,
        fit.residual_std,
        fit.case_ids.join(" ")
    ))
}

/// Rounds to four significant digits, so committed profiles read cleanly and
/// regenerate byte for byte.
pub fn round4(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 3 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// The runtime file with the fitted values and their sources written in.
pub fn apply_fit_to_file(file: &RuntimeFile, fit: &RuntimeFit, command: &str) -> RuntimeFile {
    let mut out = file.clone();
    for fp in &fit.params {
        let Some(param) = Param::from_name(&fp.parameter) else {
            continue;
        };
        for (family, entry) in out.families.iter_mut() {
            if fp.family != "all" && &fp.family != family {
                continue;
            }
            let shared = if fp.family == "all" {
                ", shared by all families"
            } else {
                ""
            };
            let error = match param.bound_at(fp.value) {
                Some(bound) => format!("at its bound {bound}"),
                None => format!("std error {}", round4(fp.std_error)),
            };
            // A parameter pinned at zero comes back from the log coordinate as 1e-20 or
            // so: write the bound itself.
            let value = if fp.value.abs() < 1e-9 {
                0.0
            } else {
                round4(fp.value)
            };
            param.write(
                entry,
                Sourced {
                    value,
                    source: format!(
                        "fitted from {} fit-half cases{shared} by `{command}`: {error}, R^2 {:.3} over the fit",
                        fit.n_points,
                        fit.r_squared
                    ),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_at_a_bound_are_reported_at_one() {
        // Bounded: bandwidth fraction in [0, 1.15]; 0.99 x 1.15 = 1.1385.
        assert!(Param::BandwidthFraction.bound_at(1.15).is_some());
        assert!(Param::BandwidthFraction.bound_at(1.14).is_some());
        assert!(Param::BandwidthFraction.bound_at(1.02).is_none());
        assert!(Param::BandwidthFraction.bound_at(0.0005).is_some());
        // Unbounded above: only zero (within 0.1% of the start, 16 rows) is a bound.
        assert!(Param::GemmHalfRows.bound_at(24.0).is_none());
        assert!(Param::GemmHalfRows.bound_at(1e6).is_none());
        assert!(Param::GemmHalfRows.bound_at(0.01).is_some());
        // 0.1% of the 1000 us start is 1 us.
        assert!(Param::PerStepOverheadUs.bound_at(0.0).is_some());
        assert!(Param::PerStepOverheadUs.bound_at(5.0).is_none());
    }

    #[test]
    fn round4_keeps_four_significant_digits() {
        assert_eq!(round4(0.123456), 0.1235);
        assert_eq!(round4(1234.56), 1235.0);
        assert_eq!(round4(0.0), 0.0);
    }
}
