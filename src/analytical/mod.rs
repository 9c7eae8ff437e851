//! The analytical model: roofline time per operation with calibrated efficiencies,
//! summed over layers and passes.
//!
//! - [`ops`]: FLOPs and bytes of each operation of a layer for one pass;
//! - [`timing`]: roofline time of an operation on a device under a runtime;
//! - [`pass`]: prefill (chunked) and decode (step by step) over a model shard;
//! - [`memory`]: weights, KV cache, activations and reserves per node;
//! - [`disaggregated`]: prefill on one group, decode on another, the KV cache sent
//!   in bulk or layer by layer over the network.
//! - [`cluster`]: several nodes ([`stage`], [`tensor`], [`expert`] with [`routing`],
//!   [`pipeline`]), and Apple's memory-management overhead ([`wiring`]);
//! - [`replica`]: one copy of the model over its nodes, timed per pass (the cluster
//!   model) or per batched iteration (the request-level engine).
//! - [`band`]: the prediction band from a calibrated device's fit residuals.
//!
//! [`simulate`] runs one scenario: one node, or prefill/decode disaggregation.
//! Multi-node parallelism and the request-level engine ([`crate::serving`]) build on
//! the same per-operation costs.

pub mod band;
pub mod cluster;
pub mod disaggregated;
pub mod expert;
pub mod memory;
pub mod ops;
pub mod pass;
pub mod pipeline;
pub mod plan;
pub mod replica;
pub mod routing;
pub mod single;
pub mod stage;
pub mod tensor;
#[cfg(test)]
pub(crate) mod test_support;
pub mod timing;
pub mod wiring;

use crate::report::{
    Breakdown, GroupMemory, LayerView, MemoryReport, PhaseBreakdown, Report, WorkloadEcho,
};
use crate::scenario::{Group, Scenario};

use self::pass::PassTime;
use self::timing::Executor;

/// A valid scenario that this model cannot run (exit 3 at the command line).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Unsupported(String),
}

const GB: f64 = 1e9;

/// The executor for `group` under the scenario's formats.
pub fn executor<'a>(scenario: &'a Scenario, group: &'a Group) -> Executor<'a> {
    Executor {
        device: &group.device,
        runtime: *group
            .runtime
            .for_family(&group.device.family)
            .expect("scenario validation checks the runtime supports the device family"),
        weights: &scenario.weights,
        kv_cache: &scenario.kv_cache,
    }
}

/// Memory of one node holding the whole model.
pub fn single_node_memory(scenario: &Scenario, group: &Group) -> GroupMemory {
    node_memory(scenario, group, NodeRole::Both)
}

/// Which phases a node runs, for what it must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Prefill and decode.
    Both,
    /// Prefill only (disaggregated): the prompt's KV cache, until it has been sent.
    Prefill,
    /// Decode only (disaggregated): the whole context's KV cache, and the activations
    /// of a one-token step rather than a prefill chunk's.
    Decode,
}

/// Memory of one node of `group` running the scenario's workload in `role`.
pub fn node_memory(scenario: &Scenario, group: &Group, role: NodeRole) -> GroupMemory {
    let model = &scenario.model;
    let w = &scenario.workload;
    let exec = executor(scenario, group);
    let sequences = w.batch as f64;
    let context = match role {
        NodeRole::Prefill => w.prompt_tokens as f64,
        NodeRole::Both | NodeRole::Decode => (w.prompt_tokens + w.output_tokens) as f64,
    };
    let weights_gb = memory::weights_gb(model, &scenario.weights);
    let kv_cache_gb = sequences
        * memory::kv_elements_per_sequence(model, 0..model.layers, context)
        * scenario.kv_cache.bytes_per_weight()
        / GB;
    let uncached = (w.prompt_tokens - w.cached_prompt_tokens) as f64;
    let chunk = match role {
        NodeRole::Decode => 1.0,
        NodeRole::Both | NodeRole::Prefill => {
            pass::chunk_per_sequence(group.runtime.prefill_chunk_tokens, sequences, uncached)
        }
    };
    let activations_gb = memory::activation_bytes(model, chunk * sequences, sequences) / GB;
    let reserve_gb = exec
        .runtime
        .reserve_gb_on(group.device.reserved_gb, group.memory_gb);
    let used_gb = weights_gb + kv_cache_gb + activations_gb + reserve_gb;
    GroupMemory {
        name: group.name.clone(),
        device: group.device.id.clone(),
        nodes: group.count,
        used_gb,
        capacity_gb: group.memory_gb,
        weights_gb,
        kv_cache_gb,
        activations_gb,
        reserve_gb,
    }
}

pub(crate) fn phase(t: &PassTime) -> PhaseBreakdown {
    PhaseBreakdown {
        compute_s: t.compute_s,
        communication_s: 0.0,
        exposed_communication_s: 0.0,
        overhead_s: t.overhead_s,
        total_s: t.total_s(),
        flops: t.flops,
        bytes: t.bytes,
    }
}

/// What the nodes of some groups cost to own and run: capital (nodes, plus link ports
/// for `linked_nodes` of them), power under load and idle, and whether every node has
/// a published price. One place for every engine's cost figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spend {
    pub capex_usd: f64,
    pub power_w: f64,
    pub idle_w: f64,
    pub prices_complete: bool,
}

impl Spend {
    pub fn of(
        groups: &[&Group],
        network: Option<&crate::scenario::Network>,
        linked_nodes: f64,
    ) -> Spend {
        let link_price = network.map_or(0.0, |n| n.link.price_usd_per_node) * linked_nodes;
        Spend {
            capex_usd: groups
                .iter()
                .map(|g| g.price_usd.unwrap_or(0.0) * f64::from(g.count))
                .sum::<f64>()
                + link_price,
            power_w: groups
                .iter()
                .map(|g| g.device.load_w * f64::from(g.count))
                .sum(),
            idle_w: groups
                .iter()
                .map(|g| g.device.idle_w * f64::from(g.count))
                .sum(),
            prices_complete: groups.iter().all(|g| g.price_usd.is_some()),
        }
    }

    /// The cost figures at `throughput` output tokens per second (none: capital and
    /// power only).
    pub fn report(
        &self,
        throughput: Option<f64>,
        assumptions: crate::cost::CostAssumptions,
    ) -> crate::cost::CostReport {
        crate::cost::cost_report(
            self.capex_usd,
            self.power_w,
            self.idle_w,
            throughput,
            assumptions,
            self.prices_complete,
        )
    }
}

/// A report with the scenario's identity, memory and capital cost, and no timings:
/// what a scenario that cannot run reports, and what each engine fills in.
pub fn report_skeleton(
    scenario: &Scenario,
    runtime: String,
    memory: MemoryReport,
    spend: &Spend,
) -> Report {
    let w = &scenario.workload;
    Report {
        name: scenario.name.clone(),
        model: scenario.model.id.clone(),
        weights: scenario.weights.id.clone(),
        kv_cache: scenario.kv_cache.id.clone(),
        runtime,
        seed: w.seed,
        workload: WorkloadEcho {
            prompt_tokens: w.prompt_tokens,
            cached_prompt_tokens: w.cached_prompt_tokens,
            output_tokens: w.output_tokens,
            batch: w.batch,
        },
        ttft_s: None,
        tpot_s: None,
        e2e_s: None,
        prefill_tokens_per_s: None,
        decode_tokens_per_s: None,
        throughput_tokens_per_s: None,
        reason: memory.reason.clone(),
        memory,
        breakdown: None,
        cost: spend.report(None, scenario.cost),
        layers: None,
        serving: None,
        cluster: None,
    }
}

/// What a run took, in the units a report's rates come from.
#[derive(Debug, Clone, Copy)]
pub struct RunTimes {
    /// Sequences in the batch (over all replicas).
    pub sequences: f64,
    /// Prompt tokens each sequence prefills (the uncached part).
    pub new_tokens: f64,
    /// Decode steps (output tokens per sequence).
    pub steps: f64,
    pub ttft_s: f64,
    /// All decode steps together.
    pub decode_s: f64,
}

/// `base` with the latencies, rates, breakdown and cost at the run's throughput.
pub fn timed_report(
    base: Report,
    scenario: &Scenario,
    spend: &Spend,
    t: RunTimes,
    breakdown: Breakdown,
) -> Report {
    let e2e = t.ttft_s + t.decode_s;
    let throughput = t.sequences * t.steps / e2e;
    Report {
        ttft_s: Some(t.ttft_s),
        tpot_s: Some(t.decode_s / t.steps),
        e2e_s: Some(e2e),
        prefill_tokens_per_s: Some(t.sequences * t.new_tokens / t.ttft_s),
        decode_tokens_per_s: Some(t.sequences * t.steps / t.decode_s),
        throughput_tokens_per_s: Some(throughput),
        breakdown: Some(breakdown),
        cost: spend.report(Some(throughput), scenario.cost),
        ..base
    }
}

/// The per-operation view of one representative layer (the first MoE layer of a MoE
/// model): the prefill's first chunk on `prefill`, and a decode step halfway through
/// the output on `decode`.
#[allow(clippy::too_many_arguments)]
pub fn layer_view(
    prefill: &Executor,
    decode: &Executor,
    model: &crate::model::Model,
    sequences: f64,
    prompt: f64,
    cached: f64,
    steps: f64,
    chunk: Option<f64>,
) -> LayerView {
    let layer = model.first_moe_layer().unwrap_or(0);
    let prefill_pass = ops::Pass {
        sequences,
        new_tokens: pass::chunk_per_sequence(chunk, sequences, prompt - cached),
        context_before: cached,
    };
    let decode_pass = ops::Pass {
        sequences,
        new_tokens: 1.0,
        context_before: prompt + (steps / 2.0).floor(),
    };
    LayerView {
        layer,
        prefill_context_before: prefill_pass.context_before,
        prefill_new_tokens: prefill_pass.new_tokens,
        decode_context_before: decode_pass.context_before,
        prefill: pass::layer_op_times(prefill, model, layer, &prefill_pass),
        decode: pass::layer_op_times(decode, model, layer, &decode_pass),
        layer_overhead_s: prefill.dispatch_overhead_s(&ops::layer_ops(
            model,
            layer,
            &prefill_pass,
            prefill.runtime.mla_prefill,
        )),
        decode_layer_overhead_s: decode.dispatch_overhead_s(&ops::layer_ops(
            model,
            layer,
            &decode_pass,
            decode.runtime.mla_prefill,
        )),
    }
}

/// The sentence that says what is short and by how much.
pub fn shortfall_reason(memory: &GroupMemory) -> String {
    format!(
        "does not fit: group `{}` ({}) needs {:.1} GB per node (weights {:.1} GB, KV cache {:.2} GB, \
         activations {:.2} GB, reserve {:.1} GB) but has {:.0} GB: {:.1} GB short",
        memory.name,
        memory.device,
        memory.used_gb,
        memory.weights_gb,
        memory.kv_cache_gb,
        memory.activations_gb,
        memory.reserve_gb,
        memory.capacity_gb,
        memory.used_gb - memory.capacity_gb
    )
}

/// Simulates a scenario with the analytical model: one node, a multi-node cluster
/// (tensor, pipeline, expert parallelism), or prefill/decode disaggregation.
/// Serving mode (requests arriving over time) is the discrete-event engine's job.
pub fn simulate(scenario: &Scenario) -> Result<Report, RunError> {
    if scenario.workload.serving.is_some() {
        return Err(RunError::Unsupported(
            "serving mode (`requests`, `arrival_rate_per_s` or `trace`) runs in the \
             request-level discrete-event engine (planner::simulate_scenario), not the \
             analytical model"
                .to_string(),
        ));
    }
    if let Some(d) = scenario.disaggregation {
        return disaggregated::simulate(scenario, d);
    }
    if scenario.total_nodes() > 1
        || scenario.parallelism.product() > 1
        || scenario.layout.wired_memory == crate::scenario::WiredMemory::Driver
    {
        return cluster::simulate(scenario);
    }
    single::simulate(scenario)
}
