//! Re-checking the best screened options with the request-level engine: requests
//! arrive as a Poisson process at the plan's rate for `VERIFY_SECONDS`, and at least
//! `VERIFY_MIN_REQUESTS` of them, and the engine's TTFT and TPOT p90 are compared with
//! the targets.
//!
//! The floor on the count is for low rates. Until 2026-11-23 the run was 60 s
//! whatever the rate: at 0.2 requests/s, 12 requests, whose p90 is their second
//! longest and which start on an empty cluster. On the DBRX plan
//! (`scenarios/plans/dbrx-macs-or-sparks.toml`) the top option, two tensor-parallel
//! pairs of M4 Max Mac Studios with llama.cpp's four slots each, passed with TTFT p90
//! 5.4 s from 12 requests; with 1,000 it is 20.6 s (and 21.3 s with 5,000): the
//! slots stay busy and requests queue for them, which 12 requests never show.

use serde::Serialize;

use super::file::Plan;
use super::screen::Screened;
use crate::catalog::Catalog;
use crate::scenario::Scenario;

/// Simulated arrival window of a verification run, at the least.
pub const VERIFY_SECONDS: f64 = 60.0;
/// Requests of a verification run, at the least.
pub const VERIFY_MIN_REQUESTS: u64 = 1000;
/// Seed of the verification runs (printed with the results).
pub const VERIFY_SEED: u64 = 7;

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub description: String,
    pub requests: u64,
    pub seed: u64,
    pub ttft_p90_s: Option<f64>,
    pub tpot_p90_s: Option<f64>,
    pub throughput_tokens_per_s: Option<f64>,
    pub meets_slo: bool,
    /// Why the engine could not run it, when it could not.
    pub failure: Option<String>,
}

/// Requests of a verification run at `rate` requests/s: `VERIFY_SECONDS` of arrivals
/// and at least `VERIFY_MIN_REQUESTS`.
pub fn verify_requests(rate: f64) -> u64 {
    ((rate * VERIFY_SECONDS).ceil() as u64).max(VERIFY_MIN_REQUESTS)
}

/// How a verification run is made, for the table and the report.
pub fn describe(plan: &Plan) -> String {
    format!(
        "{} Poisson arrivals at the target rate, seed {VERIFY_SEED}; a run is at least \
         {VERIFY_SECONDS} s of arrivals and {VERIFY_MIN_REQUESTS} requests",
        verify_requests(plan.requests_per_s)
    )
}

/// The serving scenario text of an option under the plan's load.
pub fn serving_text(plan: &Plan, option: &Screened) -> (String, u64) {
    let requests = verify_requests(plan.requests_per_s);
    let mut text = option.option.scenario_text(plan, None);
    text = text.replace(
        "\n[workload]\n",
        &format!(
            "\n[workload]\nrequests = {requests}\narrival_rate_per_s = {}\nseed = {VERIFY_SEED}\nttft_slo_s = {}\ntpot_slo_s = {}\n",
            plan.requests_per_s, plan.ttft_p90_s, plan.tpot_p90_s
        ),
    );
    (text, requests)
}

pub fn verify(plan: &Plan, option: &Screened, catalog: &Catalog) -> Verified {
    let (text, requests) = serving_text(plan, option);
    let outcome = Scenario::from_toml("plan verification", &text, catalog)
        .map_err(|e| e.to_string())
        .and_then(|s| crate::simulate_scenario(&s, None).map_err(|e| e.to_string()));
    match outcome {
        Ok(report) => {
            let serving = report.serving.as_ref();
            let ttft = serving.map(|v| v.ttft_s.p90);
            let tpot = serving.map(|v| v.tpot_s.p90);
            Verified {
                description: option.description.clone(),
                requests,
                seed: VERIFY_SEED,
                ttft_p90_s: ttft,
                tpot_p90_s: tpot,
                throughput_tokens_per_s: report.throughput_tokens_per_s,
                meets_slo: ttft.is_some_and(|t| t <= plan.ttft_p90_s)
                    && tpot.is_some_and(|t| t <= plan.tpot_p90_s),
                failure: None,
            }
        }
        Err(e) => Verified {
            description: option.description.clone(),
            requests,
            seed: VERIFY_SEED,
            ttft_p90_s: None,
            tpot_p90_s: None,
            throughput_tokens_per_s: None,
            meets_slo: false,
            failure: Some(e),
        },
    }
}
