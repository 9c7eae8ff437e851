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
    /// Multi-node layout, per-layer time parts and the expert-parallel decomposition
    /// (present when the cluster model ran the scenario).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
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
    /// Dispatch overhead of the layer in prefill (on the prefill node).
    pub layer_overhead_s: f64,
    /// The same in decode (on the decode node: another device when disaggregated).
    pub decode_layer_overhead_s: f64,
}

/// One phase of the layer view: its name, operations, new tokens per sequence and
/// tokens already in the cache.
pub struct LayerPhase<'a> {
    pub name: &'static str,
    pub ops: &'a [OpTime],
    pub new_tokens: f64,
    pub context_before: f64,
    /// Dispatch overhead of the layer in this phase.
    pub overhead_s: f64,
}

impl LayerView {
    /// Prefill (its first chunk) and one decode step.
    pub fn phases(&self) -> [LayerPhase<'_>; 2] {
        [
            LayerPhase {
                name: "prefill",
                ops: &self.prefill,
                new_tokens: self.prefill_new_tokens,
                context_before: self.prefill_context_before,
                overhead_s: self.layer_overhead_s,
            },
            LayerPhase {
                name: "decode",
                ops: &self.decode,
                new_tokens: 1.0,
                context_before: self.decode_context_before,
                overhead_s: self.decode_layer_overhead_s,
            },
        ]
    }
}

impl LayerPhase<'_> {
    /// `Layer 0 in decode (1 new token per sequence after 8208 in cache)`.
    pub fn heading(&self, layer: u32) -> String {
        let plural = if self.new_tokens == 1.0 { "" } else { "s" };
        format!(
            "Layer {layer} in {} ({} new token{plural} per sequence after {} in cache)",
            self.name, self.new_tokens, self.context_before
        )
    }
}

/// Time parts of one layer (or one step), as in [`PhaseBreakdown`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TimeParts {
    pub compute_s: f64,
    pub communication_s: f64,
    pub exposed_communication_s: f64,
    pub overhead_s: f64,
    pub total_s: f64,
}

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    /// "single", "tensor" or "expert".
    pub kind: String,
    pub nodes: u32,
    pub first_layer: u32,
    pub layers: u32,
}

/// How a model is spread over the nodes, and what one layer costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterReport {
    pub nodes: u32,
    /// Copies of the model, each serving its share of the batch.
    pub replicas: u32,
    pub tensor: u32,
    pub pipeline: u32,
    pub expert: u32,
    /// Link id, or none for one node.
    pub link: Option<String>,
    pub transport: Option<String>,
    pub latency_us: Option<f64>,
    pub bandwidth_gb_s: Option<f64>,
    /// Host software time per extra message at one end (TCP: half the latency).
    pub per_message_overhead_us: Option<f64>,
    pub topology: String,
    /// "driver" or "resident".
    pub wired_memory: String,
    pub stages: Vec<StageReport>,
    /// The layer of [`Report::layers`], in the first prefill chunk.
    pub layer_prefill: TimeParts,
    /// That layer in a decode step halfway through the output.
    pub layer_decode: TimeParts,
    /// The expert-parallel decomposition, when a stage is expert-parallel.
    pub expert_parallel: Option<ExpertReport>,
}

/// The expert-parallelism study's decomposition of a decode step: time per token =
/// layers x (expert compute + communication + everything else).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpertReport {
    /// Expert ids held by each node of the expert-parallel group.
    pub placement: Vec<Vec<u32>>,
    /// "replicated" (send-to-all exchange) or "split" (all-to-all dispatch and combine).
    pub attention: String,
    pub exchange: String,
    /// Mean distinct experts a node runs per MoE layer in a decode step.
    pub mean_experts_per_node: f64,
    /// Expected distinct experts of the busiest node (the one the layer waits for).
    pub expected_busiest_experts: f64,
    pub moe_layers: u32,
    /// Per MoE layer, decode: the busiest node's expert device time.
    pub expert_compute_s: f64,
    /// Per MoE layer, decode: the exchange of expert outputs.
    pub communication_s: f64,
    /// Per MoE layer, decode: the rest of the step spread over the MoE layers
    /// (attention, routing, dispatch and wiring overheads, the LM head, host work).
    pub everything_else_s: f64,
    /// Of which wiring ("driver processing") per MoE layer.
    pub wiring_s: f64,
    /// moe_layers x (expert_compute_s + communication_s + everything_else_s): the
    /// decode time per step.
    pub time_per_token_s: f64,
    /// The same step as one node's own timers divide it, averaged over the nodes.
    pub node_view: NodeView,
}

/// A decode MoE layer as a node's own timers see it, averaged over the nodes: the
/// device time of its own experts; communication from its first send to the last
/// output received, which holds the exchange and the wait for nodes with more experts
/// than it has; everything else. The three add up to the same layer time as the
/// critical-path decomposition (busiest node's experts + exchange + everything else),
/// which puts the wait under compute instead. A per-node instrumentation, which a
/// decomposition that adds up to the wall time on a node has to be, measures this
/// view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub expert_compute_s: f64,
    pub communication_s: f64,
    /// Of `communication_s`, waiting for the busiest node's experts (and wiring).
    pub waiting_s: f64,
    pub everything_else_s: f64,
}
