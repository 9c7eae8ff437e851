//! Serving metrics: per-request latencies and their distribution, throughput,
//! goodput under service-level objectives, utilisation and queue lengths.
//!
//! Definitions (as vLLM's and TensorRT-LLM's benchmarks use them):
//!
//! - TTFT: arrival to first output token (with disaggregation, to the moment the
//!   decode instance holds the KV cache and the first token, as the contract says);
//! - TPOT: (last token - first token) / (output tokens - 1), per request;
//! - ITL: every gap between consecutive tokens of a request, pooled over requests;
//! - end-to-end: arrival to last token;
//! - percentiles by nearest rank: the p-th of n sorted values is the
//!   ceil(p/100 x n)-th. ITL gaps (one per output token, tens of millions in a long
//!   run) go into a log histogram of 0.5% bins instead of being kept.
//! - goodput: requests (and their output tokens) that met every objective set, per
//!   second of makespan.

use serde::Serialize;

/// Mean and percentiles of one latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stats {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The p-th percentile (0 < p <= 100) of sorted values, by nearest rank.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    crate::stats::quantile(sorted, p / 100.0).unwrap_or(0.0)
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        if values.is_empty() {
            return Stats::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Stats {
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: nearest_rank(&sorted, 50.0),
            p90: nearest_rank(&sorted, 90.0),
            p99: nearest_rank(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Bins per natural-log unit: 200 makes each bin 0.5% wide.
const BINS_PER_E: f64 = 200.0;

/// A histogram of durations (nanoseconds) in logarithmic bins, for percentiles of
/// very many values in fixed memory. The mean is exact.
#[derive(Debug, Clone, Default)]
pub struct LogHistogram {
    counts: Vec<u64>,
    zeros: u64,
    total: u64,
    sum_ns: f64,
    min_ns: u64,
    max_ns: u64,
}

impl LogHistogram {
    pub fn record(&mut self, ns: u64) {
        self.min_ns = if self.total == 0 {
            ns
        } else {
            self.min_ns.min(ns)
        };
        self.total += 1;
        self.sum_ns += ns as f64;
        self.max_ns = self.max_ns.max(ns);
        if ns == 0 {
            self.zeros += 1;
            return;
        }
        let bin = ((ns as f64).ln() * BINS_PER_E) as usize;
        if bin >= self.counts.len() {
            self.counts.resize(bin + 1, 0);
        }
        self.counts[bin] += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// Nearest-rank percentile, reported at the bin's geometric centre (seconds),
    /// within the smallest and largest values recorded (a bin's centre can lie beyond
    /// them: a p99 of 1.309 s over gaps of at most 1.306 s).
    fn percentile_s(&self, p: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        if rank <= self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (bin, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let centre = ((bin as f64 + 0.5) / BINS_PER_E).exp();
                return centre.clamp(self.min_ns as f64, self.max_ns as f64) * 1e-9;
            }
        }
        self.max_ns as f64 * 1e-9
    }

    pub fn stats(&self) -> Stats {
        if self.total == 0 {
            return Stats::default();
        }
        Stats {
            mean: self.sum_ns / self.total as f64 * 1e-9,
            p50: self.percentile_s(50.0),
            p90: self.percentile_s(90.0),
            p99: self.percentile_s(99.0),
            max: self.max_ns as f64 * 1e-9,
        }
    }
}

/// One request's life, for the per-request CSV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    pub id: usize,
    pub arrival_s: f64,
    pub prompt_tokens: u64,
    pub cached_prompt_tokens: u64,
    pub output_tokens: u64,
    pub completed: bool,
    pub first_token_s: Option<f64>,
    pub finish_s: Option<f64>,
    pub ttft_s: Option<f64>,
    pub tpot_s: Option<f64>,
    pub e2e_s: Option<f64>,
    pub preemptions: u32,
    pub prefill_instance: Option<String>,
    pub decode_instance: Option<String>,
    /// Disaggregation: from the first KV message leaving to the last arriving.
    pub kv_transfer_s: Option<f64>,
    /// Disaggregation: the part of the transfer after the prefill had finished.
    pub kv_exposed_s: Option<f64>,
}

/// Objectives and how many requests met them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Goodput {
    pub ttft_slo_s: Option<f64>,
    pub tpot_slo_s: Option<f64>,
    pub requests_within_slo: u64,
    /// Of all requests, rejected ones included.
    pub fraction_within_slo: f64,
    pub requests_per_s: f64,
    pub tokens_per_s: f64,
}

/// How busy an instance was.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceUse {
    pub name: String,
    pub group: String,
    pub role: String,
    pub utilization: f64,
    pub iterations: u64,
    pub preemptions: u64,
    pub kv_blocks: u64,
    pub peak_kv_blocks: u64,
    /// Time-weighted mean of requests waiting for admission.
    pub mean_waiting: f64,
    pub max_waiting: u64,
    pub mean_running: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkUse {
    pub name: String,
    pub utilization: f64,
    pub gigabytes: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KvTransferStats {
    pub mode: &'static str,
    pub transfer_s: Stats,
    pub exposed_s: Stats,
}

/// The contract's `serving` object, and more.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServingReport {
    pub requests: u64,
    pub requests_completed: u64,
    /// Requests whose prompt and output could never fit an instance's KV cache.
    pub requests_rejected: u64,
    /// Mean prompt and output lengths of the requests run (drawn from the
    /// distributions or read from the trace; the scenario's `prompt_tokens` and
    /// `output_tokens` are then only parameters, or unused).
    pub mean_prompt_tokens: f64,
    pub mean_output_tokens: f64,
    pub makespan_s: f64,
    pub ttft_s: Stats,
    pub tpot_s: Stats,
    pub itl_s: Stats,
    pub e2e_s: Stats,
    pub throughput_tokens_per_s: f64,
    pub prompt_tokens_per_s: f64,
    pub requests_per_s: f64,
    pub goodput: Goodput,
    pub preemptions: u64,
    pub instances: Vec<InstanceUse>,
    pub links: Vec<LinkUse>,
    pub kv_transfer: Option<KvTransferStats>,
    pub events: u64,
}

/// Queue lengths of one instance at the start of an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueueSample {
    pub time_s: f64,
    pub instance: usize,
    pub waiting: u32,
    pub running: u32,
}

/// Time-weighted means of waiting and running over `samples` of one instance up to
/// `end_s`.
pub fn queue_means(samples: &[QueueSample], instance: usize, end_s: f64) -> (f64, f64, u64) {
    let mine: Vec<&QueueSample> = samples.iter().filter(|s| s.instance == instance).collect();
    let mut waiting = 0.0;
    let mut running = 0.0;
    let mut max_waiting = 0;
    for (i, s) in mine.iter().enumerate() {
        let until = mine.get(i + 1).map_or(end_s, |n| n.time_s);
        let dt = (until - s.time_s).max(0.0);
        waiting += f64::from(s.waiting) * dt;
        running += f64::from(s.running) * dt;
        max_waiting = max_waiting.max(u64::from(s.waiting));
    }
    if end_s > 0.0 {
        (waiting / end_s, running / end_s, max_waiting)
    } else {
        (0.0, 0.0, max_waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_by_hand() {
        // 1..=10: p50 is the 5th value (5), p90 the 9th (9), p99 the 10th (10).
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Stats::of(&v);
        assert_eq!(
            (s.p50, s.p90, s.p99, s.mean, s.max),
            (5.0, 9.0, 10.0, 5.5, 10.0)
        );
    }

    #[test]
    fn histogram_percentiles_within_half_a_percent() {
        // 1,000 gaps of 1..=1000 us: p50 is 500 us, p99 990 us (bins are 0.5% wide).
        let mut h = LogHistogram::default();
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let s = h.stats();
        assert!((s.p50 / 500e-6 - 1.0).abs() < 0.005, "{}", s.p50);
        assert!((s.p99 / 990e-6 - 1.0).abs() < 0.005, "{}", s.p99);
        // Mean exact: 500.5 us.
        assert!((s.mean - 500.5e-6).abs() < 1e-12);
    }

    #[test]
    fn histogram_percentiles_stay_within_the_values_recorded() {
        // Every gap 1.306 s: one bin, whose centre is not 1.306 s; every percentile
        // must be 1.306 s, not above the largest gap (nor below the smallest).
        let mut h = LogHistogram::default();
        for _ in 0..100 {
            h.record(1_306_000_000);
        }
        let s = h.stats();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (1.306, 1.306, 1.306, 1.306));
    }
}
