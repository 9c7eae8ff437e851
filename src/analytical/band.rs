//! Prediction band from the calibration's spread.
//!
//! A calibrated device file carries, per fit, one standard deviation of the relative
//! residuals (`[uncertainty]`: compute, bandwidth, dispatch). The band re-runs the
//! simulation twice: once with every calibrated device's compute, memory and dispatch
//! times each `(1 - sd)` of the fitted value (fast), once `(1 + sd)` (slow). Rates
//! are divided by `1 -/+ sd` so that times, which is what the residuals measured,
//! move by exactly that fraction. All fits move together, so the band is the
//! correlated worst case of a one-sigma miss, not a sum in quadrature. Devices without
//! an `[uncertainty]` table (published specs and priors) are left as they are.

use serde::Serialize;

use super::{simulate, RunError};
use crate::report::Report;
use crate::scenario::Scenario;

/// `[low, high]` for each headline figure, plus the spreads used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    pub method: &'static str,
    /// Devices and their relative sds (compute, bandwidth, dispatch).
    pub devices: Vec<BandDevice>,
    pub ttft_s: Option<[f64; 2]>,
    pub tpot_s: Option<[f64; 2]>,
    pub e2e_s: Option<[f64; 2]>,
    pub prefill_tokens_per_s: Option<[f64; 2]>,
    pub decode_tokens_per_s: Option<[f64; 2]>,
    pub throughput_tokens_per_s: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandDevice {
    pub device: String,
    pub compute_relative_sd: f64,
    pub bandwidth_relative_sd: f64,
    pub dispatch_relative_sd: f64,
}

/// The scenario with every calibrated device `sign` sigma slower (+1) or faster (-1).
fn shifted(scenario: &Scenario, sign: f64) -> Scenario {
    let mut s = scenario.clone();
    for group in &mut s.groups {
        if let Some(u) = group.device.uncertainty {
            let e = &mut group.device.efficiency;
            e.compute_fraction /= 1.0 + sign * u.compute;
            for f in e.compute_fraction_by_dtype.values_mut() {
                *f /= 1.0 + sign * u.compute;
            }
            e.bandwidth_fraction /= 1.0 + sign * u.bandwidth;
            // Part of the matrix-vector fit, whose spread the bandwidth sd includes.
            e.matvec_output_s *= 1.0 + sign * u.bandwidth;
            e.dispatch_overhead_s *= 1.0 + sign * u.dispatch;
        }
    }
    s
}

fn interval(a: Option<f64>, b: Option<f64>) -> Option<[f64; 2]> {
    match (a, b) {
        (Some(a), Some(b)) => Some([a.min(b), a.max(b)]),
        _ => None,
    }
}

/// The one-sigma band of `scenario`'s prediction, or `None` when no device in it was
/// calibrated.
pub fn band(scenario: &Scenario) -> Result<Option<Band>, RunError> {
    let mut devices: Vec<BandDevice> = Vec::new();
    for group in &scenario.groups {
        if let Some(u) = group.device.uncertainty {
            if !devices.iter().any(|d| d.device == group.device.id) {
                devices.push(BandDevice {
                    device: group.device.id.clone(),
                    compute_relative_sd: u.compute,
                    bandwidth_relative_sd: u.bandwidth,
                    dispatch_relative_sd: u.dispatch,
                });
            }
        }
    }
    if devices.is_empty() {
        return Ok(None);
    }
    let fast: Report = simulate(&shifted(scenario, -1.0))?;
    let slow: Report = simulate(&shifted(scenario, 1.0))?;
    Ok(Some(Band {
        method: "one sigma of the calibration fits' relative residuals, all fits shifted \
                 together (fast: times x (1 - sd); slow: times x (1 + sd))",
        devices,
        ttft_s: interval(fast.ttft_s, slow.ttft_s),
        tpot_s: interval(fast.tpot_s, slow.tpot_s),
        e2e_s: interval(fast.e2e_s, slow.e2e_s),
        prefill_tokens_per_s: interval(fast.prefill_tokens_per_s, slow.prefill_tokens_per_s),
        decode_tokens_per_s: interval(fast.decode_tokens_per_s, slow.decode_tokens_per_s),
        throughput_tokens_per_s: interval(
            fast.throughput_tokens_per_s,
            slow.throughput_tokens_per_s,
        ),
    }))
}
