//! The result of a simulation: the JSON output contract. Field names are a public
//! interface (users script against them): add freely, rename nothing.

use serde::Serialize;

use crate::analytical::timing::OpTime;
use crate::cost::CostReport;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub name: String,
    pub model: String,
    pub weights: String,
    pub kv_cache: String,
    pub runtime: String,
    pub seed: u64,
    pub workload: WorkloadEcho,
    /// Time to the first output token (prefill, plus KV transfer when disaggregated).
    pub ttft_s: Option<f64>,
    /// Decode time per output token per sequence (mean).
    pub tpot_s: Option<f64>,
    /// Time from start to the last output token.
    pub e2e_s: Option<f64>,
    pub prefill_tokens_per_s: Option<f64>,
    pub decode_tokens_per_s: Option<f64>,
    pub throughput_tokens_per_s: Option<f64>,
    pub memory: MemoryReport,
    /// Why the scenario cannot run, when it cannot (same text as `memory.reason`).
    pub reason: Option<String>,
    pub breakdown: Option<Breakdown>,
    pub cost: CostReport,
    /// Per-operation view of one representative layer, for people.
    pub layers: Option<LayerView>,
    /// Serving mode only: the request-level engine's results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<crate::serving::metrics::ServingReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadEcho {
    pub prompt_tokens: u64,
    pub cached_prompt_tokens: u64,
    pub output_tokens: u64,
    pub batch: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    pub fits: bool,
    pub reason: Option<String>,
    pub groups: Vec<GroupMemory>,
}

/// Memory of one node of a group (every node of a group holds the same).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupMemory {
    pub name: String,
    pub device: String,
    pub nodes: u32,
    pub used_gb: f64,
    pub capacity_gb: f64,
    pub weights_gb: f64,
    pub kv_cache_gb: f64,
    pub activations_gb: f64,
    pub reserve_gb: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseBreakdown {
    pub compute_s: f64,
    /// All time messages are in flight.
    pub communication_s: f64,
    /// The part of communication not hidden behind compute.
    pub exposed_communication_s: f64,
    /// Runtime dispatch, host and memory-management overhead.
    pub overhead_s: f64,
    pub total_s: f64,
    pub flops: f64,
    pub bytes: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Breakdown {
    /// The whole prefill.
    pub prefill: PhaseBreakdown,
    /// One decode step (one output token per sequence), averaged over the decode.
    pub decode: PhaseBreakdown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerView {
    /// Layer index shown (the first MoE layer for MoE models).
    pub layer: u32,
    pub prefill_context_before: f64,
    pub prefill_new_tokens: f64,
    pub decode_context_before: f64,
    pub prefill: Vec<OpTime>,
    pub decode: Vec<OpTime>,
    pub layer_overhead_s: f64,
}
