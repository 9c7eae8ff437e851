//! One node running the whole model.

use super::ops::{layer_ops as planner_ops, Pass};
use super::pass::{decode_time, layer_op_times, prefill_time, Shard};
use super::{executor, phase, shortfall_reason, single_node_memory, RunError};
use crate::cost::cost_report;
use crate::report::{Breakdown, LayerView, MemoryReport, Report, WorkloadEcho};
use crate::scenario::Scenario;

/// Simulates a scenario that runs on one node.
pub fn simulate(scenario: &Scenario) -> Result<Report, RunError> {
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
        serving: None,
        cluster: None,
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
    let first_chunk = super::pass::chunk_per_sequence(chunk, sequences, prompt - cached);
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
        layer_overhead_s: exec.dispatch_overhead_s(&planner_ops(model, shown_layer, &decode_pass)),
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
