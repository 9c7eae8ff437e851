//! One node running the whole model.

use super::pass::{decode_time, prefill_time, Shard};
use super::{
    executor, layer_view, phase, report_skeleton, shortfall_reason, single_node_memory, RunError,
    Spend,
};
use crate::report::{Breakdown, MemoryReport, Report};
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

    let spend = Spend::of(&[group], None, 0.0);
    let base = report_skeleton(
        scenario,
        group.runtime.id.clone(),
        MemoryReport {
            fits,
            reason,
            groups: vec![memory],
        },
        &spend,
    );
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

    let layers = layer_view(&exec, &exec, model, sequences, prompt, cached, steps, chunk);

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
        cost: spend.report(Some(throughput), scenario.cost),
        layers: Some(layers),
        ..base
    })
}
