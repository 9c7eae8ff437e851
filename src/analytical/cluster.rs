//! A model spread over several nodes: tensor, pipeline and expert parallelism.
//!
//! The scenario's degrees lay the nodes out as `pipeline` stages of `tensor x expert`
//! nodes each ([`super::plan`], [`super::stage`], [`super::replica`]); a group with
//! more nodes than that holds replicas of the model that split the batch. Each stage
//! runs its layers as a tensor-parallel group ([`super::tensor`], one node being the
//! plain single-node case) or an expert-parallel group ([`super::expert`]); stages
//! compose by [`super::pipeline`]. Every operation is timed by the same
//! [`super::timing::Executor`] as on one node; the network costs come from
//! [`crate::network`]; Apple's memory-management overhead from [`super::wiring`].
//!
//! Tensor and expert parallelism within one stage together are not modelled.

use super::ops::{layer_ops, routed_experts_op, OpKind, Pass, ACTIVATION_BYTES};
use super::pipeline::{decode_round, prefill_makespan};
use super::plan::Plan;
use super::replica::{Replica, StageModel};
use super::stage::{kv_split, StageKind, StageTime};
use super::tensor::split_op;
use super::{report_skeleton, shortfall_reason, timed_report, RunError, RunTimes, Spend};
use crate::report::{
    Breakdown, ClusterReport, ExpertReport, LayerView, MemoryReport, NodeView, PhaseBreakdown,
    Report, StageReport, TimeParts,
};
use crate::scenario::{AttentionLayout, Scenario, WiredMemory};

fn phase(t: &StageTime) -> PhaseBreakdown {
    PhaseBreakdown {
        compute_s: t.compute_s,
        communication_s: t.communication_s,
        exposed_communication_s: t.exposed_communication_s,
        overhead_s: t.overhead_s,
        total_s: t.total_s(),
        flops: t.flops,
        bytes: t.bytes,
    }
}

fn parts(t: &StageTime) -> TimeParts {
    TimeParts {
        compute_s: t.compute_s,
        communication_s: t.communication_s,
        exposed_communication_s: t.exposed_communication_s,
        overhead_s: t.overhead_s,
        total_s: t.total_s(),
    }
}

/// Simulates a scenario on a cluster (also a single node, which gives the same
/// answer as [`super::single::simulate`] plus the memory-management overhead).
pub fn simulate(scenario: &Scenario) -> Result<Report, RunError> {
    let model = &scenario.model;
    let w = &scenario.workload;
    let layout = &scenario.layout;
    let par = scenario.parallelism;
    let plan = Plan::new(scenario)?;
    let p = plan.stages.len();
    let stages = &plan.stages;
    let link = plan.link;
    let sequences = plan.sequences;
    let uncached = plan.uncached;
    let total_nodes = plan.total_nodes;
    let replicas = plan.replicas;
    let nodes = plan.nodes(scenario);
    let groups = plan.group_memory(scenario);
    let short = groups
        .iter()
        .filter(|g| g.used_gb > g.capacity_gb)
        .max_by(|a, b| (a.used_gb - a.capacity_gb).total_cmp(&(b.used_gb - b.capacity_gb)));
    let fits = short.is_none();
    let reason = short.map(shortfall_reason);

    let all_groups: Vec<&crate::scenario::Group> = scenario.groups.iter().collect();
    let spend = Spend::of(&all_groups, scenario.network.as_ref(), total_nodes as f64);
    let runtime_ids: Vec<String> = {
        let mut ids: Vec<String> = scenario
            .groups
            .iter()
            .map(|g| g.runtime.id.clone())
            .collect();
        ids.dedup();
        ids
    };
    let base = report_skeleton(
        scenario,
        runtime_ids.join("+"),
        MemoryReport {
            fits,
            reason,
            groups,
        },
        &spend,
    );
    if !fits {
        return Ok(base);
    }

    // Timing.
    let topology = layout.topology;
    let replica = Replica::new(scenario, &plan, &nodes);
    let models = &replica.models;
    let stage_pass =
        |s: usize, pass: &Pass, logits_rows: f64| replica.stage_pass(s, pass, logits_rows);
    let d = model.hidden_size as f64;
    let hop = |bytes: f64| link.map_or(0.0, |l| l.message_time(bytes));

    // Prefill: chunks flowing through the stages.
    let prompt = w.prompt_tokens as f64;
    let cached = w.cached_prompt_tokens as f64;
    let chunk = plan.chunk;
    let mut chunk_times = Vec::new();
    let mut chunk_hops = Vec::new();
    let mut done = 0.0;
    let mut first_chunk = None;
    while done < uncached {
        let new_tokens = chunk.min(uncached - done);
        let last = done + new_tokens >= uncached;
        let pass = Pass {
            sequences,
            new_tokens,
            context_before: cached + done,
        };
        first_chunk.get_or_insert(pass);
        let logits_rows = if last { sequences } else { 0.0 };
        chunk_times.push(
            (0..p)
                .map(|s| stage_pass(s, &pass, logits_rows))
                .collect::<Vec<_>>(),
        );
        chunk_hops.push(hop(pass.tokens() * d * ACTIVATION_BYTES));
        done += new_tokens;
    }
    let prefill = prefill_makespan(&chunk_times, &chunk_hops);

    // Decode: micro-batches chasing each other round the stages.
    let steps = w.output_tokens as f64;
    let microbatches = (sequences as usize).min(p).max(1);
    let per_microbatch = (sequences / microbatches as f64).ceil();
    let decode_pass = |s: f64| Pass {
        sequences: per_microbatch,
        new_tokens: 1.0,
        context_before: prompt + s,
    };
    let decode = super::pass::sum_steps(steps, |s| {
        let pass = decode_pass(s);
        let times: Vec<StageTime> = (0..p)
            .map(|st| stage_pass(st, &pass, per_microbatch))
            .collect();
        decode_round(
            &times,
            microbatches,
            hop(per_microbatch * d * ACTIVATION_BYTES),
            hop(per_microbatch * 4.0),
        )
    });

    let times = RunTimes {
        sequences: w.batch as f64,
        new_tokens: uncached,
        steps,
        ttft_s: prefill.total_s(),
        decode_s: decode.total_s(),
    };
    let step = decode.scaled(1.0 / steps);

    // Views of one layer: the first MoE layer, in the stage that runs it.
    let shown = model.first_moe_layer().unwrap_or(0);
    let shown_stage = stages
        .iter()
        .position(|s| s.layers.contains(&shown))
        .unwrap_or(0);
    let prefill_pass = first_chunk.unwrap_or(Pass {
        sequences,
        new_tokens: 1.0,
        context_before: cached,
    });
    let mid_decode = decode_pass((steps / 2.0).floor());
    let lead = &nodes[stages[shown_stage].nodes[0]];
    let mla = lead.exec.runtime.mla_prefill;
    let op_view = |pass: &Pass| {
        let mut ops = layer_ops(model, shown, pass, mla);
        match (&models[shown_stage], stages[shown_stage].kind) {
            (StageModel::Expert(g), _) => {
                let local = Pass {
                    sequences: g.sequences_on(0, pass.sequences),
                    ..*pass
                };
                ops = layer_ops(model, shown, &local, mla);
                if model.is_moe_layer(shown) {
                    // The busiest node's expected experts and the rows they take.
                    // Each expert's mean rows (tokens x k / E) overstated them where
                    // experts are replicated: a pick goes to one replica.
                    let phase = g.expert_phase(pass);
                    for op in ops.iter_mut().filter(|op| op.kind == OpKind::RoutedExperts) {
                        *op = routed_experts_op(
                            model,
                            phase.busiest_rows.max(phase.busiest_experts),
                            phase.busiest_experts,
                        );
                    }
                }
            }
            (StageModel::Tensor(_), kind) => {
                let degree = match kind {
                    StageKind::Tensor(t) => t as f64,
                    StageKind::Expert(_) => 1.0,
                };
                ops = ops
                    .iter()
                    .map(|op| split_op(op, degree, kv_split(model, kind)))
                    .collect();
            }
        }
        ops.iter().map(|op| lead.exec.time(op)).collect::<Vec<_>>()
    };
    let layers = LayerView {
        layer: shown,
        prefill_context_before: prefill_pass.context_before,
        prefill_new_tokens: prefill_pass.new_tokens,
        decode_context_before: mid_decode.context_before,
        prefill: op_view(&prefill_pass),
        decode: op_view(&mid_decode),
        layer_overhead_s: lead.exec.dispatch_overhead_s(&super::ops::layer_ops(
            model,
            shown,
            &prefill_pass,
            mla,
        )),
        decode_layer_overhead_s: lead.exec.dispatch_overhead_s(&super::ops::layer_ops(
            model,
            shown,
            &mid_decode,
            mla,
        )),
    };

    let expert_parallel = match &models[shown_stage] {
        StageModel::Expert(g) => {
            let phase = g.expert_phase(&mid_decode);
            let local = g.local_part(shown, &mid_decode);
            let dispatch = g
                .nodes
                .iter()
                .map(|n| {
                    n.exec.dispatch_overhead_s(&super::ops::layer_ops(
                        model,
                        shown,
                        &mid_decode,
                        n.exec.runtime.mla_prefill,
                    ))
                })
                .fold(0.0, f64::max);
            let moe_layers = (stages[shown_stage].layers.clone())
                .filter(|&l| model.is_moe_layer(l))
                .count() as u32;
            let time_per_token = step.total_s();
            let per_layer = time_per_token / f64::from(moe_layers.max(1));
            Some(ExpertReport {
                placement: g.placement.node_experts.clone(),
                attention: match layout.attention {
                    AttentionLayout::Replicated => "replicated",
                    AttentionLayout::Split => "split",
                }
                .to_string(),
                exchange: match layout.attention {
                    AttentionLayout::Replicated => "send_to_all",
                    AttentionLayout::Split => "all_to_all",
                }
                .to_string(),
                mean_experts_per_node: phase.mean_experts,
                expected_busiest_experts: phase.busiest_experts,
                moe_layers,
                expert_compute_s: phase.expert_compute_s,
                communication_s: phase.exchange_s,
                everything_else_s: per_layer - phase.expert_compute_s - phase.exchange_s,
                wiring_s: (local.overhead_s - dispatch).max(0.0) + phase.expert_wiring_s,
                time_per_token_s: time_per_token,
                node_view: {
                    let waiting = (phase.expert_compute_s + phase.expert_wiring_s)
                        - (phase.mean_node_compute_s + phase.mean_node_wiring_s);
                    let communication = phase.exchange_s + waiting;
                    NodeView {
                        expert_compute_s: phase.mean_node_compute_s,
                        communication_s: communication,
                        waiting_s: waiting,
                        everything_else_s: per_layer - phase.mean_node_compute_s - communication,
                    }
                },
            })
        }
        StageModel::Tensor(_) => None,
    };

    let network = scenario.network.as_ref();
    let cluster = ClusterReport {
        nodes: total_nodes as u32,
        replicas: replicas as u32,
        tensor: par.tensor,
        pipeline: par.pipeline,
        expert: par.expert,
        link: network.map(|n| n.link.id.clone()),
        transport: network.map(|n| format!("{:?}", n.link.transport).to_lowercase()),
        latency_us: network.map(|n| n.latency_us),
        bandwidth_gb_s: network.map(|n| n.bandwidth_gb_s),
        per_message_overhead_us: link.map(|l| l.per_message_overhead_s() * 1e6),
        topology: topology.name().to_string(),
        wired_memory: match layout.wired_memory {
            WiredMemory::Driver => "driver",
            WiredMemory::Resident => "resident",
        }
        .to_string(),
        stages: stages
            .iter()
            .map(|s| StageReport {
                kind: s.kind.name().to_string(),
                nodes: s.nodes.len() as u32,
                first_layer: s.layers.start,
                layers: s.layers.end - s.layers.start,
            })
            .collect(),
        layer_prefill: parts(&models[shown_stage].layer_time(shown, &prefill_pass)),
        layer_decode: parts(&models[shown_stage].layer_time(shown, &mid_decode)),
        expert_parallel,
    };

    let breakdown = Breakdown {
        prefill: phase(&prefill),
        decode: phase(&step),
    };
    Ok(Report {
        layers: Some(layers),
        cluster: Some(cluster),
        ..timed_report(base, scenario, &spend, times, breakdown)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytical::single;
    use crate::analytical::test_support::{dbrx, scenario};

    #[test]
    fn one_node_agrees_with_the_single_node_model() {
        let sc = scenario(
            r#"
[model]
preset = "llama-3.1-8b"
weights = "f16"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "m3-ultra-80c"
memory_gb = 256
[workload]
prompt_tokens = 4096
output_tokens = 200
batch = 2
"#,
        );
        let ours = simulate(&sc).unwrap();
        let theirs = single::simulate(&sc).unwrap();
        for (a, b) in [
            (ours.ttft_s, theirs.ttft_s),
            (ours.tpot_s, theirs.tpot_s),
            (ours.decode_tokens_per_s, theirs.decode_tokens_per_s),
        ] {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!((a - b).abs() < 1e-9 * b, "{a} vs {b}");
        }
        let (a, b) = (&ours.memory.groups[0], &theirs.memory.groups[0]);
        assert!((a.used_gb - b.used_gb).abs() < 1e-9, "{a:?} vs {b:?}");
    }

    #[test]
    fn two_node_dbrx_holds_half_the_experts_and_all_the_rest() {
        // Per node: 40 x 88,080,384 attention + 40 x 6144 x 16 router + 81 x 6144
        // norms + 2 x 100,352 x 6144 embedding and LM head + 8 experts x 40 layers x
        // 198,180,864 = 68,178,647,040 parameters x 2 bytes = 136.357 GB.
        let r = simulate(&dbrx(2, "")).unwrap();
        let g = &r.memory.groups[0];
        assert!((g.weights_gb - 136.357_294_08).abs() < 1e-6, "{g:?}");
        assert!(r.memory.fits);
    }

    #[test]
    fn tensor_and_expert_in_one_stage_is_reported_unsupported() {
        let sc = scenario(
            r#"
[model]
preset = "dbrx"
weights = "bf16"
[[cluster.groups]]
device = "m2-ultra-76c"
memory_gb = 192
count = 4
[cluster.network]
link = "ethernet-10g"
[parallelism]
expert = 2
tensor = 2
[workload]
prompt_tokens = 64
output_tokens = 4
"#,
        );
        assert!(matches!(simulate(&sc), Err(RunError::Unsupported(_))));
    }
}
