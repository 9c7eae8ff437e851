//! Validation: predicted against published measurements, with the error shown.
//!
//! The suite (`validation/measurements.csv`, a verbatim copy of the published figures,
//! and `validation/suite.toml`, the mapping) turns each supported row into a scenario
//! and a report key; [`evaluate`] runs every case and [`summarise`] gives the median,
//! p90 and maximum absolute percentage error overall, per split (fit and check), and
//! per device, runtime and phase. Rows that cannot be cases are listed with the reason.

pub mod llama_bench;
pub mod measurements;
pub mod suite;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::Report;
use crate::scenario::Scenario;
pub use crate::stats::{median, quantile};

pub use suite::{build_suite, parse_suite, Case, Metric, Split, SuiteFile, Unmapped};

/// How a scenario is simulated (the analytical model, or the serving engine for
/// serving-mode scenarios); the caller chooses.
pub type Runner<'a> = dyn Fn(&Scenario) -> Result<Report, String> + Sync + 'a;

/// The runner the suite and the runtime fits use: whichever engine the scenario needs.
pub fn run_scenario(scenario: &Scenario) -> Result<Report, String> {
    crate::simulate_scenario(scenario, None).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    pub id: String,
    pub split: Split,
    pub device: String,
    pub runtime: String,
    pub model: String,
    /// The weight format the case runs (`f16`, `q4_0`, ...).
    pub weights: String,
    /// The workload: tokens per prompt and per output, sequences per batch, and for
    /// a serving case its request count (0 otherwise).
    pub prompt_tokens: u64,
    /// Of `prompt_tokens`, those already in the KV cache (a run "at depth").
    pub cached_prompt_tokens: u64,
    pub output_tokens: u64,
    pub batch: u64,
    pub requests: u64,
    pub phase: String,
    pub metric: String,
    pub compared_key: String,
    pub unit: String,
    pub measured: f64,
    pub predicted: Option<f64>,
    /// (predicted - measured) / measured x 100.
    pub error_pct: Option<f64>,
    /// The error as a speed: positive when the model predicts faster than measured
    /// (a higher rate, or a shorter time: measured / predicted - 1 for a duration).
    pub speed_error_pct: Option<f64>,
    /// Why there is no prediction, when there is none.
    pub failure: Option<String>,
    pub source: String,
}

/// Runs one case.
pub fn evaluate_case(case: &Case, run: &Runner) -> CaseResult {
    let outcome = run(&case.scenario).and_then(|report| {
        if !report.memory.fits {
            return Err(report.reason.unwrap_or_else(|| "does not fit".to_string()));
        }
        case.metric
            .value(&report)
            .ok_or_else(|| format!("the report has no `{}`", case.metric.key()))
    });
    let (predicted, failure) = match outcome {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    CaseResult {
        id: case.id.clone(),
        split: case.split,
        device: case.device.clone(),
        runtime: case.runtime.clone(),
        model: case.model.clone(),
        weights: case.scenario.weights.id.clone(),
        prompt_tokens: case.scenario.workload.prompt_tokens,
        cached_prompt_tokens: case.scenario.workload.cached_prompt_tokens,
        output_tokens: case.scenario.workload.output_tokens,
        batch: case.scenario.workload.batch,
        requests: case
            .scenario
            .workload
            .serving
            .as_ref()
            .map_or(0, |s| s.requests),
        phase: case.phase.clone(),
        metric: case.metric_name.clone(),
        compared_key: case.metric.key().to_string(),
        unit: case.unit.clone(),
        measured: case.measured,
        predicted,
        error_pct: predicted.map(|p| percent_over(p, case.measured)),
        // A duration's speed is its inverse: measured / predicted - 1.
        speed_error_pct: predicted.map(|p| {
            if case.metric.is_time() {
                percent_over(case.measured, p)
            } else {
                percent_over(p, case.measured)
            }
        }),
        failure,
        source: case.source.clone(),
    }
}

/// How far `value` is above `reference`, in percent of it.
fn percent_over(value: f64, reference: f64) -> f64 {
    (value - reference) / reference * 100.0
}

impl CaseResult {
    /// The workload in a few characters: `512+128` (prompt + output tokens), then
    /// ` x8` for a batch of 8, or ` 10000 req` for a serving case; a prompt partly
    /// in the cache reads `32768c+2048+1`.
    pub fn workload(&self) -> String {
        let cached = match self.cached_prompt_tokens {
            0 => String::new(),
            c => format!("{c}c+"),
        };
        let tokens = format!(
            "{cached}{}+{}",
            self.prompt_tokens.saturating_sub(self.cached_prompt_tokens),
            self.output_tokens
        );
        if self.requests > 0 {
            format!("{tokens} {} req", self.requests)
        } else if self.batch > 1 {
            format!("{tokens} x{}", self.batch)
        } else {
            tokens
        }
    }
}

/// Runs every case, in parallel, results in case order.
pub fn evaluate(cases: &[Case], run: &Runner) -> Vec<CaseResult> {
    use rayon::prelude::*;
    cases.par_iter().map(|c| evaluate_case(c, run)).collect()
}

/// Error statistics of a set of cases (absolute percentage errors).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorSummary {
    pub n_cases: usize,
    pub median_abs_pct_error: Option<f64>,
    pub p90_abs_pct_error: Option<f64>,
    pub max_abs_pct_error: Option<f64>,
    /// Median signed speed error (`speed_error_pct`): the bias, positive when the
    /// model predicts faster than measured. Taken on speeds so that times (where a
    /// positive error means slower) and rates pool with one meaning.
    pub median_pct_error: Option<f64>,
}

pub fn error_summary<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> ErrorSummary {
    let results: Vec<&CaseResult> = results.into_iter().collect();
    let mut signed: Vec<f64> = results.iter().filter_map(|r| r.speed_error_pct).collect();
    let mut abs: Vec<f64> = results
        .iter()
        .filter_map(|r| r.error_pct)
        .map(f64::abs)
        .collect();
    abs.sort_by(f64::total_cmp);
    signed.sort_by(f64::total_cmp);
    ErrorSummary {
        n_cases: abs.len(),
        median_abs_pct_error: median(&abs),
        p90_abs_pct_error: quantile(&abs, 0.9),
        max_abs_pct_error: abs.last().copied(),
        median_pct_error: median(&signed),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub fit: ErrorSummary,
    pub check: ErrorSummary,
    pub all: ErrorSummary,
    pub by_device: BTreeMap<String, ErrorSummary>,
    pub by_runtime: BTreeMap<String, ErrorSummary>,
    pub by_phase: BTreeMap<String, ErrorSummary>,
}

fn grouped(
    results: &[CaseResult],
    key: impl Fn(&CaseResult) -> String,
) -> BTreeMap<String, ErrorSummary> {
    let mut groups: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        groups.entry(key(r)).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|(k, v)| (k, error_summary(v)))
        .collect()
}

pub fn summarise(results: &[CaseResult]) -> Summary {
    Summary {
        fit: error_summary(results.iter().filter(|r| r.split == Split::Fit)),
        check: error_summary(results.iter().filter(|r| r.split == Split::Check)),
        all: error_summary(results),
        by_device: grouped(results, |r| r.device.clone()),
        by_runtime: grouped(results, |r| r.runtime.clone()),
        by_phase: grouped(results, |r| r.phase.clone()),
    }
}

#[cfg(test)]
mod workload_tests {
    use super::*;

    fn case(prompt: u64, cached: u64, output: u64, batch: u64, requests: u64) -> CaseResult {
        CaseResult {
            id: "X".into(),
            split: Split::Check,
            device: "d".into(),
            runtime: "r".into(),
            model: "m".into(),
            weights: "f16".into(),
            prompt_tokens: prompt,
            cached_prompt_tokens: cached,
            output_tokens: output,
            batch,
            requests,
            phase: "decode".into(),
            metric: "tg128".into(),
            compared_key: "decode_tokens_per_s".into(),
            unit: "tok/s".into(),
            measured: 1.0,
            predicted: None,
            error_pct: None,
            speed_error_pct: None,
            failure: None,
            source: "s".into(),
        }
    }

    #[test]
    fn the_workload_reads_prompt_plus_output_then_batch_or_requests() {
        assert_eq!(case(512, 0, 1, 1, 0).workload(), "512+1");
        assert_eq!(case(512, 0, 32, 8, 0).workload(), "512+32 x8");
        assert_eq!(case(128, 0, 2048, 1, 1000).workload(), "128+2048 1000 req");
        // 2048 new prompt tokens after 32768 in the cache: 34816 in all.
        assert_eq!(case(34816, 32768, 1, 1, 0).workload(), "32768c+2048+1");
    }
}
