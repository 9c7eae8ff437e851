//! One node running the whole model.

use super::pass::{decode_time, prefill_time, Shard};
use super::{
    executor, layer_view, phase, report_skeleton, shortfall_reason, single_node_memory,
    timed_report, RunError, RunTimes, Spend,
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
    let layers = layer_view(&exec, &exec, model, sequences, prompt, cached, steps, chunk);
    let times = RunTimes {
        sequences,
        new_tokens: prompt - cached,
        steps,
        ttft_s: prefill.total_s(),
        decode_s: decode.total_s(),
    };
    let breakdown = Breakdown {
        prefill: phase(&prefill),
        decode: phase(&decode.scaled(1.0 / steps)),
    };
    Ok(Report {
        layers: Some(layers),
        ..timed_report(base, scenario, &spend, times, breakdown)
    })
}
