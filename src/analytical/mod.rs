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

use crate::report::{GroupMemory, PhaseBreakdown, Report};
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
    let model = &scenario.model;
    let w = &scenario.workload;
    let exec = executor(scenario, group);
    let sequences = w.batch as f64;
    let context = (w.prompt_tokens + w.output_tokens) as f64;
    let weights_gb = model.total_params() as f64 * scenario.weights.bytes_per_weight() / GB;
    let kv_cache_gb = sequences
        * memory::kv_elements_per_sequence(model, 0..model.layers, context)
        * scenario.kv_cache.bytes_per_weight()
        / GB;
    let uncached = (w.prompt_tokens - w.cached_prompt_tokens) as f64;
    let chunk = pass::chunk_per_sequence(group.runtime.prefill_chunk_tokens, sequences, uncached);
    let activations_gb = memory::activation_bytes(model, chunk * sequences, sequences) / GB;
    let reserve_gb = group.device.reserved_gb + exec.runtime.reserve_gb;
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

/// The sentence that says what is short and by how much.
pub fn shortfall_reason(memory: &GroupMemory) -> String {
    format!(
        "does not fit: group `{}` ({}) needs {:.1} GB per node (weights {:.1} GB, KV cache {:.1} GB, \
         activations {:.1} GB, reserve {:.1} GB) but has {:.0} GB: {:.1} GB short",
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
            "serving mode (`requests`, `arrival_rate_per_s` or `trace`) needs the request-level \
             discrete-event engine, which this build does not have yet"
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
