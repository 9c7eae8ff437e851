//! The requests of a serving run: from a trace, or generated from the scenario's
//! `[workload]` (Poisson arrivals at `arrival_rate_per_s`, or all at t = 0; prompt and
//! output lengths fixed or drawn from a distribution).
//!
//! Random numbers come from ChaCha12 seeded with the scenario's `seed`: the same on
//! every platform, so the same seed gives the same requests. Arrivals, prompt lengths
//! and output lengths each use their own ChaCha stream, so changing the length
//! distribution does not move the arrivals.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use super::time::{SimTime, ARRIVAL_LIMIT_S};
use crate::scenario::{LengthDistribution, Scenario, Serving};

/// One row of a trace file: when a request arrives and its token counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct TraceRow {
    pub arrival_s: f64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
}

/// A request as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestSpec {
    pub arrival: SimTime,
    pub prompt_tokens: u64,
    /// Tokens generated, the first by the prefill.
    pub output_tokens: u64,
    /// Leading prompt tokens already in the KV cache (prefix hit).
    pub cached_prompt_tokens: u64,
}

/// Why trace rows cannot be used.
pub fn check_trace(rows: &[TraceRow], max_context: u64) -> Result<(), String> {
    if rows.is_empty() {
        return Err("the trace has no rows".to_string());
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i + 1;
        if !(r.arrival_s.is_finite() && (0.0..=ARRIVAL_LIMIT_S).contains(&r.arrival_s)) {
            return Err(format!(
                "row {row}: arrival_s = {}: expected a time from 0 to {ARRIVAL_LIMIT_S:e} s \
                 (the simulator's clock)",
                r.arrival_s
            ));
        }
        if r.prompt_tokens == 0 || r.output_tokens == 0 {
            return Err(format!(
                "row {row}: expected prompt_tokens and output_tokens >= 1"
            ));
        }
        if r.prompt_tokens + r.output_tokens > max_context {
            return Err(format!(
                "row {row}: prompt_tokens + output_tokens = {}: expected at most the model's context of {max_context} tokens",
                r.prompt_tokens + r.output_tokens
            ));
        }
    }
    Ok(())
}

const ARRIVAL_STREAM: u64 = 1;
const PROMPT_STREAM: u64 = 2;
const OUTPUT_STREAM: u64 = 3;

fn rng(seed: u64, stream: u64) -> ChaCha12Rng {
    let mut r = ChaCha12Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// A uniform number in (0, 1): 53 random bits, never exactly 0.
fn unit(r: &mut ChaCha12Rng) -> f64 {
    ((r.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal number (Box-Muller).
fn normal(r: &mut ChaCha12Rng) -> f64 {
    let u1 = unit(r);
    let u2 = unit(r);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A token count from `distribution` with mean `mean`, at least 1 and at most `cap`.
fn draw(distribution: LengthDistribution, mean: u64, cap: u64, r: &mut ChaCha12Rng) -> u64 {
    let value = match distribution {
        LengthDistribution::Fixed => mean as f64,
        LengthDistribution::Uniform { min, max } => {
            let span = max - min + 1;
            (min + r.next_u64() % span) as f64
        }
        LengthDistribution::Exponential => -(mean as f64) * unit(r).ln(),
        LengthDistribution::LogNormal { sigma } => {
            // mean = exp(mu + sigma^2 / 2)
            let mu = (mean as f64).ln() - sigma * sigma / 2.0;
            (mu + sigma * normal(r)).exp()
        }
    };
    (value.round() as u64).clamp(1, cap.max(1))
}

/// The requests of a run, in arrival order.
pub fn requests(
    scenario: &Scenario,
    serving: &Serving,
    trace: Option<&[TraceRow]>,
) -> Vec<RequestSpec> {
    let w = &scenario.workload;
    let max_context = scenario.model.max_context;
    let cached_for = |prompt: u64| w.cached_prompt_tokens.min(prompt - 1);
    if let Some(rows) = trace {
        let mut rows: Vec<TraceRow> = rows.to_vec();
        // Stable: rows with equal arrival times keep the file's order.
        rows.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        let take = usize::try_from(serving.requests).unwrap_or(usize::MAX);
        return rows
            .iter()
            .take(take)
            .map(|r| RequestSpec {
                arrival: SimTime::from_secs(r.arrival_s),
                prompt_tokens: r.prompt_tokens,
                output_tokens: r.output_tokens,
                cached_prompt_tokens: cached_for(r.prompt_tokens),
            })
            .collect();
    }
    let mut arrivals = rng(w.seed, ARRIVAL_STREAM);
    let mut prompts = rng(w.seed, PROMPT_STREAM);
    let mut outputs = rng(w.seed, OUTPUT_STREAM);
    let mut clock_s = 0.0;
    (0..serving.requests)
        .map(|_| {
            if let Some(rate) = serving.arrival_rate_per_s {
                clock_s += -unit(&mut arrivals).ln() / rate;
            }
            let prompt = draw(
                serving.prompt_distribution,
                w.prompt_tokens,
                max_context - 1,
                &mut prompts,
            );
            let output = draw(
                serving.output_distribution,
                w.output_tokens,
                max_context - prompt,
                &mut outputs,
            );
            RequestSpec {
                arrival: SimTime::from_secs(clock_s),
                prompt_tokens: prompt,
                output_tokens: output,
                cached_prompt_tokens: cached_for(prompt),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_and_lognormal_keep_their_mean() {
        // The sample mean of 20,000 draws is within a few percent of the mean
        // (standard error of an exponential: 1000 / sqrt(20000) = 7, 0.7%).
        for d in [
            LengthDistribution::Exponential,
            LengthDistribution::LogNormal { sigma: 0.8 },
        ] {
            let mut r = rng(1, PROMPT_STREAM);
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| draw(d, 1000, 1_000_000, &mut r)).sum();
            let mean = sum as f64 / n as f64;
            assert!((mean - 1000.0).abs() < 40.0, "{d:?}: {mean}");
        }
    }

    #[test]
    fn draws_stay_within_bounds() {
        let mut r = rng(3, OUTPUT_STREAM);
        for _ in 0..1000 {
            let v = draw(
                LengthDistribution::Uniform { min: 10, max: 20 },
                15,
                1000,
                &mut r,
            );
            assert!((10..=20).contains(&v));
            let e = draw(LengthDistribution::Exponential, 500, 600, &mut r);
            assert!((1..=600).contains(&e));
        }
    }

    #[test]
    fn same_seed_same_numbers() {
        let a: Vec<u64> = {
            let mut r = rng(7, ARRIVAL_STREAM);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = rng(7, ARRIVAL_STREAM);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
    }
}
