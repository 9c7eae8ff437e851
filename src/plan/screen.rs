//! Screening one option: will it serve the plan's load within its latency targets,
//! and at what cost?
//!
//! The analytical model gives, for an instance, the time to prefill one request
//! (`P`) and the decode step time at a batch of `B` sequences (`s(B)`). Serving at
//! `λ` requests per second per instance (the plan's rate over the replicas or prefill
//! instances):
//!
//! - prefill keeps the instance busy a fraction `ρ = λ P` of the time (colocated
//!   serving interleaves prefill with decode steps, which wait meanwhile);
//! - the decode batch follows from Little's law, `B = λ (G s(B) / (1 - ρ))`, solved by
//!   fixed-point iteration; if it needs more sequences than the runtime's batch cap or
//!   the memory holds, or `ρ >= 1`, the option is overloaded;
//! - TTFT p90 ~ `P` plus the 90th percentile of the wait behind other prefills, plus
//!   that of the wait for a sequence slot, plus half a decode step. The prefill wait
//!   is an M/D/c queue's ([`super::queue`]): the `c` instances that share the
//!   arrivals (replicas, or prefill instances) behind a router that sends each request
//!   to a free one, each busy `P` per request; exact (Erlang's distribution) for one
//!   instance. The slot wait is another M/D/c queue's: an instance decodes at most
//!   `S` sequences (the runtime's batch cap, or fewer where memory runs out), and a
//!   request holds one of them from admission to its last token, `T = P + G x TPOT`;
//!   at `λ T / S >= 1` the option is overloaded;
//! - TPOT p90 ~ `s(B90) + N90 P / G`: the step at the 90th percentile `B90` of the
//!   number of sequences decoding at once (a Poisson count of mean `B`), plus the
//!   prefills that stall a request's `G` steps, a Poisson count of mean
//!   `λ G s(B) / (1 - ρ)` whose 90th percentile is `N90` (its mean gives back
//!   `s / (1 - ρ)`). Disaggregated decode instances have no prefills to stall them;
//!   their slot wait delays the first decoded token and is spread over the `G`.
//!
//! Until 2026-11-23 TPOT p90 was the mean `s(B) / (1 - ρ)` and TTFT had no slot
//! wait. Runtimes with few slots at low rates showed what that missed: on the DBRX
//! plan (`scenarios/plans/dbrx-macs-or-sparks.toml`, 0.2 requests/s, llama.cpp's
//! four slots, prefills of 2-6 s) the screen's top options held their slots 20 s or
//! more each and had TTFT p90 20-80 s in the engine over 1,000 requests, against 4-5
//! s screened, and TPOT p90 0.53-0.97 of the engine's (a request that shares its
//! decode with more sequences than the mean, or meets more prefills, is slower). With
//! both terms, on that plan's 25 best (re-checked with the engine, 1,000 requests
//! each) TTFT p90 screened over the engine's is 0.97-1.00 for replicas and
//! disaggregated options and 0.41-0.82 for tensor and expert groups, and TPOT p90 0.79-1.22;
//! on the README's plan TTFT is unchanged (slots are not its limit) and TPOT p90 went
//! from 0.73-0.90 of the engine's to 0.80-0.97 (pipelines 1.09-1.19).
//!
//! Until 2026-11-22 the wait was M/D/1 per instance at its share of the rate, its
//! p90 taken as 2.3 times the mean (an exponential's p90). That ignored that a
//! fraction `1 - ρ` of arrivals wait not at all and the rest the longer (25-40% short
//! of M/D/1's p90 at loads of 0.3 to 0.7), and that replicas behind one router pool
//! their queues. Against the engine on the README's plan (25 options re-checked,
//! 2026-11-22), screened TTFT p90 over the engine's went from 0.85-0.94 to 0.99-1.07
//! for single instances, tensor-parallel and disaggregated options, and from 1.25-1.50
//! to 0.94-1.09 for replicas.
//!
//! The option's sustainable throughput (the `max tok/s` column and the frontier's
//! throughput axis) is a property of the option, not of the plan's rate: the rate at
//! which it saturates, decoding at the largest batch that fits (`R` tokens/s) in the
//! time its prefills leave, `G R / (G + R P)` output tokens/s per instance.
//!
//! A disaggregated option has prefill instances (`ρ` from prefill alone, and TTFT
//! with the exposed KV transfer from the analytical model) and decode instances
//! (Little's law with no prefill interference). These are screening estimates; the
//! planner re-checks its best options with the discrete-event engine.
//!
//! Where the screen and the engine still part (traced 2026-11-21 and 2026-11-22 on
//! the README's plan): the engine prefills together the prompts that arrived during
//! an iteration, and a pipelined instance overlaps its stages across them, so a
//! prompt keeps it busy for less than `P`. The screen charges each prompt `P`, one
//! at a time, and so is pessimistic for pipelines: on two B200 stages (sglang fp8)
//! TTFT/TPOT p90 167.0 / 40.6 ms screened, 100.5 / 35.0 ms in the engine, and
//! 140.4 / 42.3 ms in the engine limited to one prompt per prefill iteration
//! (`scheduler.max_batch_tokens = 1024`). Charging each prompt only the first stage's
//! share, `P / stages`, was tried (2026-11-22, not kept): those options then screened
//! 0.84-0.89 of the engine's TTFT p90 and 0.60-0.66 of its TPOT p90, and 14 pipelined
//! options the engine finds far over the targets (TTFT p90 0.5 to 16 s) passed the
//! screen; a pessimistic screen only loses options, an optimistic one ranks wrong ones.

use serde::Serialize;

use super::enumerate::{Layout, PlanOption};
use super::file::Plan;
use super::queue::{mdc_wait_quantile, poisson_quantile};
use crate::catalog::Catalog;
use crate::cost::cost_report;
use crate::report::Report;
use crate::scenario::Scenario;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    Feasible,
    InvalidLayout(String),
    NotModelled(String),
    DoesNotFit(String),
    MissesSlo(String),
    OverBudget,
    /// A node without a published price cannot be costed against the budget.
    NoPrice,
}

#[derive(Debug, Clone, Serialize)]
pub struct Screened {
    pub option: PlanOption,
    pub description: String,
    pub verdict: Verdict,
    pub nodes: u32,
    pub capex_usd: f64,
    pub power_w: f64,
    pub ttft_p90_s: f64,
    pub tpot_p90_s: f64,
    /// Decode batch per instance at the target rate.
    pub batch: f64,
    /// Output tokens per second the option can sustain at most: at the request rate
    /// that saturates it, whatever the plan's rate.
    pub capacity_tokens_per_s: f64,
    pub usd_per_million_tokens: f64,
    pub tokens_per_s_per_kusd: f64,
    pub tokens_per_joule: f64,
}

/// The option's scenario, parsed once through the scenario contract; the screen then
/// only changes its batch.
fn parse(plan: &Plan, option: &PlanOption, catalog: &Catalog) -> Result<Scenario, Verdict> {
    let text = option.scenario_text(plan, Some(replicas(option)));
    Scenario::from_toml("plan option", &text, catalog)
        .map_err(|e| Verdict::InvalidLayout(e.to_string()))
}

struct Instance {
    /// Prefill time of one request (TTFT alone), including any KV transfer.
    prefill_s: f64,
    /// Decode step time at a batch.
    step_s: f64,
    fits: bool,
}

/// Replicas that split a scenario's batch: the cluster model divides `batch` over the
/// replicas of a colocated option, while a disaggregated option decodes the whole
/// batch on one decode node.
fn replicas(option: &PlanOption) -> u64 {
    match &option.layout {
        Layout::Colocated(c) => u64::from(c.replicas().max(1)),
        Layout::Disaggregated(_) => 1,
    }
}

/// One instance running `batch` sequences: the scenario holds `batch` per replica.
fn instance_at(
    base: &Scenario,
    option: &PlanOption,
    batch: u64,
) -> Result<(Report, Instance), Verdict> {
    let mut scenario = base.clone();
    scenario.workload.batch = batch * replicas(option);
    let report =
        crate::analytical::simulate(&scenario).map_err(|e| Verdict::NotModelled(e.to_string()))?;
    let fits = report.memory.fits;
    let instance = Instance {
        prefill_s: report.ttft_s.unwrap_or(f64::INFINITY) / batch as f64,
        step_s: report.tpot_s.unwrap_or(f64::INFINITY),
        fits,
    };
    Ok((report, instance))
}

/// The largest batch from `known.0` (which fits, with step time `known.1`) up to the
/// runtime's `max_batch` that fits in memory, and its decode step time. Memory grows
/// with the batch, so the cap is tried first, then bisection.
fn largest_fitting_batch(
    scenario: &Scenario,
    option: &PlanOption,
    known: (f64, f64),
    max_batch: u32,
) -> Result<(f64, f64), Verdict> {
    let at = |b: f64| instance_at(scenario, option, b as u64).map(|(_, inst)| inst);
    let (mut lo, mut lo_step_s) = known;
    let cap = f64::from(max_batch);
    if cap > lo {
        let top = at(cap)?;
        if top.fits {
            return Ok((cap, top.step_s));
        }
        let mut hi = cap;
        while hi - lo > 1.0 {
            let mid = ((lo + hi) / 2.0).floor();
            let inst = at(mid)?;
            if inst.fits {
                (lo, lo_step_s) = (mid, inst.step_s);
            } else {
                hi = mid;
            }
        }
    }
    Ok((lo, lo_step_s))
}

fn rejected(option: &PlanOption, verdict: Verdict) -> Screened {
    Screened {
        description: option.describe(),
        option: option.clone(),
        verdict,
        nodes: 0,
        capex_usd: 0.0,
        power_w: 0.0,
        ttft_p90_s: f64::INFINITY,
        tpot_p90_s: f64::INFINITY,
        batch: 0.0,
        capacity_tokens_per_s: 0.0,
        usd_per_million_tokens: f64::INFINITY,
        tokens_per_s_per_kusd: 0.0,
        tokens_per_joule: 0.0,
    }
}

/// Screens one option.
pub fn screen(option: &PlanOption, plan: &Plan, catalog: &Catalog) -> Screened {
    let scenario = match parse(plan, option, catalog) {
        Ok(s) => s,
        Err(v) => return rejected(option, v),
    };
    let (report1, single) = match instance_at(&scenario, option, 1) {
        Ok(x) => x,
        Err(v) => return rejected(option, v),
    };
    if !single.fits {
        let reason = report1
            .reason
            .clone()
            .unwrap_or_else(|| "does not fit".to_string());
        return rejected(option, Verdict::DoesNotFit(reason));
    }
    let nodes = scenario.total_nodes();
    let g = plan.output_tokens as f64;
    let (prefill_instances, decode_instances, max_batch) = match &option.layout {
        Layout::Colocated(c) => {
            let r = f64::from(c.replicas());
            (r, r, scenario.max_batch)
        }
        Layout::Disaggregated(d) => (
            f64::from(d.prefill_nodes),
            f64::from(d.decode_nodes),
            scenario.max_batch,
        ),
    };
    let colocated = matches!(option.layout, Layout::Colocated(_));
    let lambda_p = plan.requests_per_s / prefill_instances;
    let lambda_d = plan.requests_per_s / decode_instances;
    // The prefill of one request (the disaggregated TTFT includes the exposed KV
    // transfer; the prefill instance is busy for the compute part only, which the
    // report's prefill breakdown gives).
    let prefill_busy_s = report1.breakdown.map_or(single.prefill_s, |b| {
        b.prefill.total_s.min(single.prefill_s)
    });
    let rho = lambda_p * prefill_busy_s;
    if rho >= 1.0 {
        let mut s = rejected(
            option,
            Verdict::MissesSlo(format!("prefill overloaded: {:.0}% busy", rho * 100.0)),
        );
        s.nodes = nodes;
        return s;
    }
    let decode_share = if colocated { 1.0 - rho } else { 1.0 };

    // Little's law fixed point for the decode batch.
    let mut batch = 1.0_f64;
    let mut step_s = single.step_s;
    let mut memory_short = None;
    for _ in 0..8 {
        let wanted = (lambda_d * g * step_s / decode_share).max(1.0);
        let next = wanted.ceil().min(f64::from(max_batch));
        if (next - batch).abs() < 0.5 && batch > 1.0 {
            break;
        }
        batch = next;
        match instance_at(&scenario, option, batch as u64) {
            Ok((_, inst)) if inst.fits => step_s = inst.step_s,
            Ok((report, _)) => {
                memory_short = report.reason.clone();
                break;
            }
            Err(v) => return rejected(option, v),
        }
        if wanted > f64::from(max_batch) {
            break;
        }
    }
    let needed = lambda_d * g * step_s / decode_share;
    // Sustainable throughput. An instance decodes at most `R` tokens/s: the largest
    // batch the runtime and memory allow over its step time. Colocated, each request
    // also holds the instance for its prefill `P`, so at `λ` requests/s decode has
    // `1 - λ P` of the time: `λ G = R (1 - λ P)` gives `λ_max = R / (G + R P)`,
    // whatever the plan's own rate. Disaggregated, prefill and decode instances
    // saturate separately: `λ_max = min(n_p / P, n_d R / G)`. The load's batch fits
    // unless memory ran short; batch 1 always fits here.
    let known = if memory_short.is_none() {
        (batch, step_s)
    } else {
        (1.0, single.step_s)
    };
    let (slots, decode_rate) = match largest_fitting_batch(&scenario, option, known, max_batch) {
        Ok((top, top_step_s)) => (top, top / top_step_s),
        Err(v) => return rejected(option, v),
    };
    let capacity = if colocated {
        decode_instances * g * decode_rate / (g + decode_rate * prefill_busy_s)
    } else {
        (g * prefill_instances / prefill_busy_s).min(decode_instances * decode_rate)
    };
    let mut s = rejected(option, Verdict::Feasible);
    s.nodes = nodes;
    s.batch = batch;
    s.capacity_tokens_per_s = capacity;
    // Each request holds one of an instance's `slots` sequences (its batch cap) from
    // admission to its last token; arrivals that find them all taken wait for one.
    let tpot_mean_s = step_s / decode_share;
    let hold_s = if colocated {
        single.prefill_s + g * tpot_mean_s
    } else {
        g * step_s
    };
    let slot_load = lambda_d * hold_s / slots;
    let slot_wait = if slot_load < 1.0 {
        mdc_wait_quantile(slots as u32, slot_load, hold_s, 0.9)
    } else {
        f64::INFINITY
    };
    // The sequences decoding at once vary about their mean `needed` (a Poisson count
    // for Poisson arrivals): TPOT p90 takes the step at that count's 90th percentile.
    let busy_batch = poisson_quantile(needed, 0.9).clamp(1.0, slots);
    let busy_step_s = if busy_batch > batch {
        match instance_at(&scenario, option, busy_batch as u64) {
            Ok((_, inst)) if inst.fits => inst.step_s,
            Ok(_) => step_s,
            Err(v) => return rejected(option, v),
        }
    } else {
        step_s
    };
    // Colocated, the prefills that arrive while a request decodes stall it: a
    // Poisson count, whose 90th percentile sets TPOT p90 (its mean gives the mean
    // step / (1 - rho)).
    s.tpot_p90_s = if colocated {
        let stalls = poisson_quantile(lambda_p * g * tpot_mean_s, 0.9);
        busy_step_s + stalls * prefill_busy_s / g
    } else {
        busy_step_s + slot_wait / g
    };
    let prefill_wait = mdc_wait_quantile(prefill_instances as u32, rho, prefill_busy_s, 0.9);
    let wait = if colocated {
        prefill_wait + slot_wait + step_s / 2.0
    } else {
        prefill_wait
    };
    s.ttft_p90_s = single.prefill_s + wait;
    let capex = report1.cost.capex_usd;
    let served = plan.requests_per_s * g;
    let cost = cost_report(
        capex,
        report1.cost.power_w,
        report1.cost.idle_power_w,
        Some(served),
        plan.cost,
        report1.cost.prices_complete,
    );
    s.capex_usd = capex;
    s.power_w = report1.cost.power_w;
    s.usd_per_million_tokens = cost.usd_per_million_tokens.unwrap_or(f64::INFINITY);
    s.tokens_per_s_per_kusd = cost.tokens_per_s_per_kusd.unwrap_or(0.0);
    s.tokens_per_joule = cost.tokens_per_joule.unwrap_or(0.0);
    s.verdict = if let Some(reason) = memory_short {
        Verdict::DoesNotFit(format!(
            "at the batch the load needs ({batch:.0}): {reason}"
        ))
    } else if needed > batch + 1e-9 {
        Verdict::MissesSlo(format!(
            "overloaded: needs a batch of {needed:.0}, at most {batch:.0}"
        ))
    } else if s.ttft_p90_s > plan.ttft_p90_s {
        Verdict::MissesSlo(format!(
            "TTFT p90 {:.2} s > {} s",
            s.ttft_p90_s, plan.ttft_p90_s
        ))
    } else if s.tpot_p90_s > plan.tpot_p90_s {
        Verdict::MissesSlo(format!(
            "TPOT p90 {:.3} s > {} s",
            s.tpot_p90_s, plan.tpot_p90_s
        ))
    } else if !report1.cost.prices_complete {
        Verdict::NoPrice
    } else if plan.budget_usd.is_some_and(|b| capex > b) {
        Verdict::OverBudget
    } else {
        Verdict::Feasible
    };
    s
}
