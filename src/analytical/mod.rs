//! The analytical model: roofline time per operation with calibrated efficiencies,
//! summed over layers and passes.
//!
//! - [`ops`]: FLOPs and bytes of each operation of a layer for one pass;
//! - [`timing`]: roofline time of an operation on a device under a runtime;
//! - [`pass`]: prefill (chunked) and decode (step by step) over a model shard;
//! - [`memory`]: weights, KV cache, activations and reserves per node.
//!
//! [`simulate`] runs one scenario on one node. Multi-node parallelism and the
//! request-level engine build on the same per-operation costs.

pub mod memory;
pub mod ops;
pub mod pass;
pub mod timing;

use crate::cost::cost_report;
use crate::report::{
    Breakdown, GroupMemory, LayerView, MemoryReport, PhaseBreakdown, Report, WorkloadEcho,
};
use crate::scenario::{Group, Scenario};

use self::ops::Pass;
use self::pass::{decode_time, layer_op_times, prefill_time, PassTime, Shard};
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
    let chunk = group
        .runtime
        .prefill_chunk_tokens
        .map_or(uncached, |c| c.min(uncached));
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

fn phase(t: &PassTime) -> PhaseBreakdown {
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

/// Simulates a scenario with the analytical model.
pub fn simulate(scenario: &Scenario) -> Result<Report, RunError> {
    if scenario.workload.serving.is_some() {
        return Err(RunError::Unsupported(
            "serving mode (`requests`, `arrival_rate_per_s` or `trace`) needs the request-level \
             discrete-event engine, which this build does not have yet"
                .to_string(),
        ));
    }
    if scenario.total_nodes() > 1 || scenario.disaggregation.is_some() {
        return Err(RunError::Unsupported(format!(
            "this build models one node; the scenario uses {} nodes{}",
            scenario.total_nodes(),
            if scenario.disaggregation.is_some() {
                " with prefill/decode disaggregation"
            } else {
                ""
            }
        )));
    }
    let group = &scenario.groups[0];
    let model = &scenario.model;
    let w = &scenario.workload;
    let exec = executor(scenario, group);
    let shard = Shard::whole(model);
    let sequences = w.batch as f64;
    let prompt = w.prompt_tokens as f64;
    let cached = w.cached_prompt_tokens as f64;
    let steps = w.output_tokens as f64;

    let memory = single_node_memory(scenario, group);
    let fits = memory.used_gb <= memory.capacity_gb;
    let reason = (!fits).then(|| shortfall_reason(&memory));

    let capex = group.price_usd.unwrap_or(0.0) * f64::from(group.count);
    let power_w = group.device.load_w * f64::from(group.count);
    let idle_w = group.device.idle_w * f64::from(group.count);
    let echo = WorkloadEcho {
        prompt_tokens: w.prompt_tokens,
        cached_prompt_tokens: w.cached_prompt_tokens,
        output_tokens: w.output_tokens,
        batch: w.batch,
    };
    let base = Report {
        name: scenario.name.clone(),
        model: model.id.clone(),
        weights: scenario.weights.id.clone(),
        kv_cache: scenario.kv_cache.id.clone(),
        runtime: group.runtime.id.clone(),
        seed: w.seed,
        workload: echo,
        ttft_s: None,
        tpot_s: None,
        e2e_s: None,
        prefill_tokens_per_s: None,
        decode_tokens_per_s: None,
        throughput_tokens_per_s: None,
        memory: MemoryReport {
            fits,
            reason: reason.clone(),
            groups: vec![memory],
        },
        reason: reason.clone(),
        breakdown: None,
        cost: cost_report(
            capex,
            power_w,
            idle_w,
            None,
            scenario.cost,
            group.price_usd.is_some(),
        ),
        layers: None,
    };
    if !fits {
        return Ok(base);
    }

    let chunk = group.runtime.prefill_chunk_tokens;
    let prefill = prefill_time(&exec, model, &shard, sequences, prompt, cached, chunk);
    let decode = decode_time(&exec, model, &shard, sequences, prompt, steps);
    let ttft = prefill.total_s();
    let decode_s = decode.total_s();
    let e2e = ttft + decode_s;
    let throughput = sequences * steps / e2e;

    let shown_layer = model
        .moe
        .map_or(0, |moe| moe.dense_layers.min(model.layers - 1));
    let first_chunk = chunk.map_or(prompt - cached, |c| c.min(prompt - cached));
    let prefill_pass = Pass {
        sequences,
        new_tokens: first_chunk,
        context_before: cached,
    };
    let decode_pass = Pass {
        sequences,
        new_tokens: 1.0,
        context_before: prompt + (steps / 2.0).floor(),
    };
    let layers = LayerView {
        layer: shown_layer,
        prefill_context_before: prefill_pass.context_before,
        prefill_new_tokens: prefill_pass.new_tokens,
        decode_context_before: decode_pass.context_before,
        prefill: layer_op_times(&exec, model, shown_layer, &prefill_pass),
        decode: layer_op_times(&exec, model, shown_layer, &decode_pass),
        layer_overhead_s: exec.layer_overhead_s(),
    };

    Ok(Report {
        ttft_s: Some(ttft),
        tpot_s: Some(decode_s / steps),
        e2e_s: Some(e2e),
        prefill_tokens_per_s: Some(sequences * (prompt - cached) / ttft),
        decode_tokens_per_s: Some(sequences * steps / decode_s),
        throughput_tokens_per_s: Some(throughput),
        breakdown: Some(Breakdown {
            prefill: phase(&prefill),
            decode: phase(&decode.scaled(1.0 / steps)),
        }),
        cost: cost_report(
            capex,
            power_w,
            idle_w,
            Some(throughput),
            scenario.cost,
            group.price_usd.is_some(),
        ),
        layers: Some(layers),
        ..base
    })
}
