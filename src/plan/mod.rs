//! The capacity planner: enumerate cluster options for a model and workload, screen
//! each with the analytical model, keep those that fit, meet the latency targets and
//! the budget, rank them by cost per token, and find the Pareto frontier of capital
//! cost against throughput and latency.
//!
//! - [`file`]: the plan file (model, formats, workload, SLOs, budget, search space);
//! - [`enumerate`]: the options: device and memory variant, node count, link, tensor x
//!   pipeline x expert degrees with the remaining nodes as replicas, weight format,
//!   runtime, and prefill/decode splits across two device types;
//! - [`screen`]: one option's serving estimate under the target load;
//! - [`queue`]: the M/D/1 and M/D/c waiting times the screen queues prefills with;
//! - [`pareto`]: the frontier.

pub mod enumerate;
pub mod file;
pub mod pareto;
mod queue;
pub mod screen;
pub mod verify;

use rayon::prelude::*;
use serde::Serialize;

use crate::catalog::Catalog;

pub use enumerate::{enumerate, PlanOption};
pub use file::{parse_plan, Plan};
pub use screen::{screen, Screened, Verdict};

/// Counts of options rejected, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rejections {
    pub invalid_layout: usize,
    pub not_modelled: usize,
    pub does_not_fit: usize,
    pub misses_slo: usize,
    pub over_budget: usize,
    pub no_price: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanResult {
    pub plan: String,
    pub options_evaluated: usize,
    pub feasible: usize,
    pub rejections: Rejections,
    /// Feasible options, cheapest per token first; among equal costs, the largest
    /// sustainable throughput, then the shortest TTFT p90.
    pub ranked: Vec<Screened>,
    /// Indices into `ranked` of the Pareto frontier (capex, capacity, TTFT p90), over
    /// every option that fits and meets the SLOs (budget ignored).
    pub pareto: Vec<Screened>,
    /// The best options re-checked with the request-level engine.
    pub verified: Vec<verify::Verified>,
}

/// What [`run_plan`] reports as it goes, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// The screen starts on this many options.
    Screening { options: usize },
    /// One more option screened, from any worker thread.
    Screened,
    /// The request-level engine starts on the option ranked `rank` (from 1).
    Verifying { rank: usize, description: &'a str },
}

/// Screens every option in parallel, then verifies the best with the request-level
/// engine, calling `progress` at each step.
pub fn run_plan(
    plan: &Plan,
    catalog: &Catalog,
    progress: &(dyn Fn(Progress) + Sync),
) -> PlanResult {
    let options = enumerate(plan, catalog);
    progress(Progress::Screening {
        options: options.len(),
    });
    let mut screened: Vec<Screened> = options
        .par_iter()
        .map(|o| {
            let s = screen(o, plan, catalog);
            progress(Progress::Screened);
            s
        })
        .collect();
    // Same order every run, whatever the thread schedule.
    screened.sort_by_key(|s| s.option.key());
    let mut rejections = Rejections::default();
    for s in &screened {
        match &s.verdict {
            Verdict::Feasible => {}
            Verdict::InvalidLayout(_) => rejections.invalid_layout += 1,
            Verdict::NotModelled(_) => rejections.not_modelled += 1,
            Verdict::DoesNotFit(_) => rejections.does_not_fit += 1,
            Verdict::MissesSlo(_) => rejections.misses_slo += 1,
            Verdict::OverBudget => rejections.over_budget += 1,
            Verdict::NoPrice => rejections.no_price += 1,
        }
    }
    let mut ranked: Vec<Screened> = screened
        .iter()
        .filter(|s| s.verdict == Verdict::Feasible)
        .cloned()
        .collect();
    // Cost per token at the target rate depends on the hardware alone (its capital
    // and power over the tokens the plan serves), so options on the same nodes tie:
    // of those, the one that sustains more (headroom over the target), then the one
    // with the shorter TTFT p90, comes first.
    ranked.sort_by(|a, b| {
        a.usd_per_million_tokens
            .total_cmp(&b.usd_per_million_tokens)
            .then(a.capex_usd.total_cmp(&b.capex_usd))
            .then(b.capacity_tokens_per_s.total_cmp(&a.capacity_tokens_per_s))
            .then(a.ttft_p90_s.total_cmp(&b.ttft_p90_s))
            .then(a.option.key().cmp(&b.option.key()))
    });
    // Re-check the best options with the request-level engine, in rank order, until
    // `verify_top` pass (trying at most ten times as many). The engine's verdict
    // overrides the screen's estimate: options it finds missing an SLO leave the
    // ranking, so the top option is one the engine confirmed.
    let mut verified: Vec<verify::Verified> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    for (i, s) in ranked.iter().take(10 * plan.verify_top.max(1)).enumerate() {
        if verified.iter().filter(|v| v.meets_slo).count() >= plan.verify_top {
            break;
        }
        progress(Progress::Verifying {
            rank: i + 1,
            description: &s.description,
        });
        let v = verify::verify(plan, s, catalog);
        if !v.meets_slo {
            dropped.push(s.option.key());
        }
        verified.push(v);
    }
    rejections.misses_slo += dropped.len();
    ranked.retain(|s| !dropped.contains(&s.option.key()));
    // The frontier of the options that fit and meet the targets (budget ignored),
    // less those the engine just found missing them.
    let meets: Vec<&Screened> = screened
        .iter()
        .filter(|s| matches!(s.verdict, Verdict::Feasible | Verdict::OverBudget))
        .filter(|s| !dropped.contains(&s.option.key()))
        .collect();
    let objectives: Vec<Vec<f64>> = meets
        .iter()
        .map(|s| vec![s.capex_usd, -s.capacity_tokens_per_s, s.ttft_p90_s])
        .collect();
    let pareto = pareto::pareto_front(&objectives)
        .into_iter()
        .map(|i| meets[i].clone())
        .collect();
    PlanResult {
        verified,
        plan: plan.name.clone(),
        options_evaluated: screened.len(),
        feasible: ranked.len(),
        rejections,
        ranked,
        pareto,
    }
}
