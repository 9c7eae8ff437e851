//! Cost of running a cluster: capital cost amortised over its life, and electricity.
//!
//! Dollars per million output tokens = (capital cost / amortisation seconds + power
//! cost per second) / output tokens per second x 1e6, where the power cost uses load
//! power while busy (`utilization`) and idle power otherwise. Every assumption is a
//! scenario key under `[cost]` with the default below, and is printed with the result.

use serde::{Deserialize, Serialize};

pub const DEFAULT_AMORTIZATION_YEARS: f64 = 3.0;
pub const DEFAULT_ELECTRICITY_USD_PER_KWH: f64 = 0.15;
pub const DEFAULT_UTILIZATION: f64 = 1.0;
const SECONDS_PER_YEAR: f64 = 365.25 * 24.0 * 3600.0;

/// The assumptions behind a cost figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostAssumptions {
    pub amortization_years: f64,
    pub electricity_usd_per_kwh: f64,
    /// Fraction of the time the cluster is busy at the simulated throughput.
    pub utilization: f64,
}

impl Default for CostAssumptions {
    fn default() -> Self {
        CostAssumptions {
            amortization_years: DEFAULT_AMORTIZATION_YEARS,
            electricity_usd_per_kwh: DEFAULT_ELECTRICITY_USD_PER_KWH,
            utilization: DEFAULT_UTILIZATION,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub capex_usd: f64,
    /// Power under load of all nodes.
    pub power_w: f64,
    pub idle_power_w: f64,
    pub usd_per_million_tokens: Option<f64>,
    pub tokens_per_s_per_kusd: Option<f64>,
    pub tokens_per_joule: Option<f64>,
    pub assumptions: CostAssumptions,
    /// Whether every node had a published price (false: capex is a lower bound).
    pub prices_complete: bool,
}

/// Cost figures for a cluster of `capex_usd` drawing `power_w` under load and
/// `idle_power_w` idle, producing `tokens_per_s` output tokens per second while busy.
pub fn cost_report(
    capex_usd: f64,
    power_w: f64,
    idle_power_w: f64,
    tokens_per_s: Option<f64>,
    assumptions: CostAssumptions,
    prices_complete: bool,
) -> CostReport {
    let u = assumptions.utilization;
    let mean_power_w = u * power_w + (1.0 - u) * idle_power_w;
    let usd_per_s = capex_usd / (assumptions.amortization_years * SECONDS_PER_YEAR)
        + mean_power_w / 1000.0 * assumptions.electricity_usd_per_kwh / 3600.0;
    let useful = tokens_per_s.filter(|t| *t > 0.0);
    CostReport {
        capex_usd,
        power_w,
        idle_power_w,
        usd_per_million_tokens: useful.map(|t| usd_per_s / (t * u) * 1e6),
        tokens_per_s_per_kusd: useful
            .filter(|_| capex_usd > 0.0)
            .map(|t| t / (capex_usd / 1000.0)),
        tokens_per_joule: useful.map(|t| t / power_w),
        assumptions,
        prices_complete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_per_million_tokens_by_hand() {
        // $9,499 over 3 years: 9499 / (3 x 31,557,600 s) = 1.00334e-4 $/s.
        // 270 W at $0.15/kWh: 0.27 kW x 0.15 / 3600 = 1.125e-5 $/s.
        // Total 1.11584e-4 $/s at 40 tokens/s: 2.78960e-6 $/token = $2.7896 per million.
        let r = cost_report(
            9499.0,
            270.0,
            10.0,
            Some(40.0),
            CostAssumptions::default(),
            true,
        );
        assert!((r.usd_per_million_tokens.unwrap() - 2.7896).abs() < 1e-3);
        // 40 tokens/s per 9.499 k$ = 4.2110.
        assert!((r.tokens_per_s_per_kusd.unwrap() - 4.2110).abs() < 1e-3);
        // 40 / 270 = 0.148148 tokens per joule.
        assert!((r.tokens_per_joule.unwrap() - 0.148148).abs() < 1e-5);
    }

    #[test]
    fn half_utilisation_doubles_capital_cost_per_token() {
        // At u = 0.5 capital per token doubles; power is 0.5 x 270 + 0.5 x 10 = 140 W.
        // 1.00334e-4 + 0.14 x 0.15 / 3600 = 1.06168e-4 $/s over 20 tokens/s = $5.3084/M.
        let a = CostAssumptions {
            utilization: 0.5,
            ..CostAssumptions::default()
        };
        let r = cost_report(9499.0, 270.0, 10.0, Some(40.0), a, true);
        assert!((r.usd_per_million_tokens.unwrap() - 5.3084).abs() < 1e-3);
    }
}
