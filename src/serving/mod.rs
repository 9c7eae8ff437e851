//! The request-level engine: a discrete-event simulation of requests arriving at a
//! cluster, batched and scheduled per instance as serving engines do, with optional
//! prefill/decode disaggregation and KV-cache transfer over the network.
//!
//! - [`time`]: integer-nanosecond simulated time and the (time, sequence) event queue;
//! - [`workload`]: requests from a trace or generated with a seeded ChaCha generator;
//! - [`instance`]: one instance's scheduler (continuous or static batching, paged KV
//!   cache, chunked prefill, preemption by recomputation);
//! - [`router`]: round robin or least loaded;
//! - [`link`]: network links sharing bandwidth among concurrent transfers;
//! - [`metrics`]: TTFT, TPOT, ITL, end-to-end, goodput, utilisation, queues;
//! - [`engine`]: the event loop.
//!
//! An instance is one copy of the model on `tensor x pipeline x expert` nodes of a
//! group, laid out as the cluster model lays out a replica
//! ([`crate::analytical::plan::Plan`]); a group of `count` nodes holds
//! `count / (tensor x pipeline x expert)` instances behind the router. Every
//! iteration's time comes from the cluster model's stage functions for a batch
//! ([`crate::analytical::replica::Replica::iteration_time`]: tensor-parallel layers
//! with their all-reduces, expert-parallel layers with their exchanges, pipeline
//! stages with their hops; on one node, the batched pass
//! [`crate::analytical::pass::batch_pass_time`]): one cost path for both engines.
//! For one request alone the two engines agree (a test checks it within 1%, on one
//! node and with tensor, pipeline and expert parallelism). Each node keeps its share
//! of the weights and of every token's KV; an instance holds as many KV blocks as its
//! tightest node has room for. Disaggregated instances run on one node each.
//!
//! Output tokens: a request's prefill emits its first output token and each decode
//! iteration one more, so `output_tokens = N` takes N - 1 decode iterations (as vLLM
//! and TensorRT-LLM count). The analytical model follows llama-bench instead and runs
//! `output_tokens` decode steps after the prefill.

pub mod engine;
pub mod instance;
pub mod link;
pub mod metrics;
pub mod router;
pub mod time;
pub mod workload;

use serde::Serialize;

use self::engine::{Engine, IterationCost, KvPlan};
use self::instance::{Instance, InstanceConfig, KvLayers, Role};
use self::link::Link;
use self::metrics::{
    queue_means, Goodput, InstanceUse, KvTransferStats, LinkUse, QueueSample, RequestRecord,
    ServingReport, Stats,
};
use self::router::Router;
use self::time::{SimTime, ARRIVAL_LIMIT_S};
use self::workload::{requests, TraceRow};
use crate::analytical::disaggregated::KvHandover;
use crate::analytical::pass::Shard;
use crate::analytical::plan::Plan;
use crate::analytical::replica::Replica;
use crate::analytical::stage::{MemoryInputs, Node};
use crate::analytical::{report_skeleton, RunError, Spend};
use crate::report::{GroupMemory, MemoryReport, Report};
use crate::scenario::{Group, KvTransfer, Scenario, Serving};

const GB: f64 = 1e9;

/// Requests drawn in the timeline chart.
pub const TIMELINE_REQUESTS: usize = 8;

/// What a resource was doing for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Prefill,
    Transfer,
    Decode,
}

/// A stretch of time a resource spent on a request (consecutive iterations merged).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    /// Index into [`Timeline::resources`].
    pub resource: usize,
    pub request: usize,
    pub phase: Phase,
    pub start_s: f64,
    pub end_s: f64,
}

/// The first requests' activity per device and link, for the Gantt chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Instance names, then link names.
    pub resources: Vec<String>,
    pub spans: Vec<Span>,
}

/// Everything a serving run produces.
#[derive(Debug, Clone)]
pub struct ServingRun {
    pub report: Report,
    pub requests: Vec<RequestRecord>,
    pub queue: Vec<QueueSample>,
    pub timeline: Timeline,
}

/// A kind of instance: `copies` identical instances of the model, each on nodes of
/// the groups `group_of` names (one entry per node).
struct InstanceKind {
    role: Role,
    name: String,
    group_of: Vec<usize>,
    copies: u32,
}

/// The instances of the scenario: each `tensor x pipeline x expert` nodes of a group
/// (one node when the degrees are 1); a scenario whose groups together make one
/// replica (a pipeline over different devices) is one instance.
fn instance_kinds(scenario: &Scenario) -> Vec<InstanceKind> {
    let per_instance = scenario.parallelism.product();
    let kind = |role: Role, g: usize| {
        let group = &scenario.groups[g];
        InstanceKind {
            role,
            name: group.name.clone(),
            group_of: vec![g; per_instance as usize],
            copies: group.count / per_instance,
        }
    };
    match scenario.disaggregation {
        Some(d) => vec![
            kind(Role::Prefill, d.prefill_group),
            kind(Role::Decode, d.decode_group),
        ],
        None if per_instance > 1 && scenario.groups.len() > 1 => {
            // Scenario validation: the groups' nodes together make one replica.
            let group_of = scenario
                .groups
                .iter()
                .enumerate()
                .flat_map(|(g, group)| std::iter::repeat_n(g, group.count as usize))
                .collect();
            let names: Vec<&str> = scenario.groups.iter().map(|g| g.name.as_str()).collect();
            vec![InstanceKind {
                role: Role::Unified,
                name: names.join("+"),
                group_of,
                copies: 1,
            }]
        }
        None => (0..scenario.groups.len())
            .map(|g| kind(Role::Unified, g))
            .collect(),
    }
}

/// The memory of one group's nodes in a kind of instance, for the report.
struct InstanceGroupMemory {
    /// Its fullest node, without the KV cache.
    memory: GroupMemory,
    /// The instances of the kind.
    instances: std::ops::Range<usize>,
    /// KV bytes of one block on that node.
    block_bytes: f64,
}

/// Memory of an instance and the KV blocks it holds. Each node keeps its share of
/// the weights (the cluster model's [`Plan`] layout), the activations of one
/// iteration's token budget and the reserves; what is left holds the node's share of
/// the KV cache. A block is `block_tokens` tokens of every sequence's KV, so the
/// instance holds as many blocks as its tightest node: on `t` tensor-parallel nodes
/// each keeping `1/t` of every token's KV, `t` times one node's free memory.
struct InstanceMemory {
    /// Per group of the instance: its fullest node (KV not counted yet), and the KV
    /// bytes one block takes on that node.
    groups: Vec<(GroupMemory, f64)>,
    blocks: u64,
    /// The node that limits the blocks, for the reason when none fit.
    tightest: GroupMemory,
}

fn instance_memory(
    scenario: &Scenario,
    plan: &Plan,
    token_budget: u64,
    max_batch: u64,
    block_tokens: u64,
) -> InstanceMemory {
    let model = &scenario.model;
    let tokens = token_budget.min(model.max_context * max_batch) as f64;
    let logits_rows = max_batch.min(token_budget) as f64;
    // No KV (context 0): what is left is cut into blocks.
    let inputs = MemoryInputs {
        model,
        weight_bytes: scenario.weights.bytes_per_weight(),
        kv_bytes: scenario.kv_cache.bytes_per_weight(),
        sequences: logits_rows,
        context: 0.0,
        chunk: tokens / logits_rows,
        attention: scenario.layout.attention,
    };
    let nodes = plan.memory_with(scenario, &inputs);
    let kv_token = plan.kv_bytes_per_token(scenario);
    let report = |n: usize| {
        let group = &scenario.groups[plan.group_of[n]];
        let m = &nodes[n];
        GroupMemory {
            name: group.name.clone(),
            device: group.device.id.clone(),
            nodes: group.count,
            used_gb: m.used_gb(),
            capacity_gb: group.memory_gb,
            weights_gb: m.weights_gb,
            kv_cache_gb: 0.0,
            activations_gb: m.activations_gb,
            reserve_gb: m.reserve_gb,
        }
    };
    let node_blocks = |n: usize| {
        let free_gb = scenario.groups[plan.group_of[n]].memory_gb - nodes[n].used_gb();
        if free_gb > 0.0 {
            (free_gb * GB / (kv_token[n] * block_tokens as f64)).floor() as u64
        } else {
            0
        }
    };
    let tightest = (0..nodes.len())
        .min_by_key(|&n| node_blocks(n))
        .expect("an instance has nodes");
    let mut groups: Vec<(GroupMemory, f64)> = Vec::new();
    let mut seen: Vec<usize> = Vec::new();
    for (n, &g) in plan.group_of.iter().enumerate() {
        let fullest = (0..nodes.len())
            .filter(|&m| plan.group_of[m] == g)
            .max_by(|&a, &b| nodes[a].used_gb().total_cmp(&nodes[b].used_gb()))
            .unwrap_or(n);
        if !seen.contains(&g) {
            seen.push(g);
            groups.push((report(fullest), kv_token[fullest] * block_tokens as f64));
        }
    }
    InstanceMemory {
        groups,
        blocks: node_blocks(tightest),
        tightest: report(tightest),
    }
}

/// Runs a serving scenario. `trace` holds the rows of the scenario's trace file when
/// it names one (the caller reads the file).
pub fn simulate(scenario: &Scenario, trace: Option<&[TraceRow]>) -> Result<ServingRun, RunError> {
    let serving: &Serving = scenario.workload.serving.as_ref().ok_or_else(|| {
        RunError::Unsupported(
            "not a serving scenario: set workload.requests, arrival_rate_per_s or trace"
                .to_string(),
        )
    })?;
    if scenario.parallelism.product() > 1 && scenario.disaggregation.is_some() {
        return Err(RunError::Unsupported(
            "prefill/decode disaggregation runs each prefill and decode instance on one node; \
             tensor, pipeline and expert parallelism within disaggregated instances are not \
             modelled"
                .to_string(),
        ));
    }
    if serving.trace.is_some() && trace.is_none() {
        return Err(RunError::Unsupported(
            "the scenario names a trace but no trace rows were given".to_string(),
        ));
    }
    if let Some(rows) = trace {
        workload::check_trace(rows, scenario.model.max_context).map_err(RunError::Unsupported)?;
    }
    let specs = requests(scenario, serving, trace);
    // The scenario's check bounds the expected span of random arrivals; a draw can
    // still overshoot it.
    let limit = SimTime::from_secs(ARRIVAL_LIMIT_S);
    if let Some(last) = specs.last().filter(|s| s.arrival > limit) {
        return Err(RunError::Unsupported(format!(
            "the arrivals drawn at workload.arrival_rate_per_s run to {:.3e} s, past the \
             simulator's clock limit of {ARRIVAL_LIMIT_S:e} s: raise the rate",
            last.arrival.as_secs()
        )));
    }
    let sched = serving.scheduler;
    let max_batch = u64::from(scenario.max_batch);

    // Instances: the layout of each kind on its nodes, its memory and KV blocks.
    let kinds = instance_kinds(scenario);
    let mut plans = Vec::with_capacity(kinds.len());
    for kind in &kinds {
        plans.push(Plan::on_nodes(scenario, kind.group_of.clone())?);
    }
    let node_sets: Vec<Vec<Node>> = plans.iter().map(|p| p.nodes(scenario)).collect();
    let mut instances = Vec::new();
    let mut costs = Vec::new();
    let mut memories: Vec<InstanceGroupMemory> = Vec::new();
    let mut reasons = Vec::new();
    for ((kind, plan), nodes) in kinds.iter().zip(&plans).zip(&node_sets) {
        let first_group = &scenario.groups[kind.group_of[0]];
        let token_budget = sched
            .max_batch_tokens
            .or(first_group.runtime.prefill_chunk_tokens.map(|c| c as u64))
            .unwrap_or(u64::MAX)
            .max(1);
        let memory = instance_memory(
            scenario,
            plan,
            token_budget,
            max_batch,
            sched.kv_block_tokens,
        );
        if memory.blocks == 0 {
            let m = &memory.tightest;
            reasons.push(format!(
                "does not fit: group `{}` ({}) has {:.0} GB per node, and weights {:.1} GB + activations {:.1} GB + reserve {:.1} GB leave no room for the KV cache",
                m.name, m.device, m.capacity_gb, m.weights_gb, m.activations_gb, m.reserve_gb
            ));
        }
        for (group, block_bytes) in memory.groups {
            memories.push(InstanceGroupMemory {
                memory: group,
                instances: instances.len()..instances.len() + kind.copies as usize,
                block_bytes,
            });
        }
        let replica = Replica::new(scenario, plan, nodes);
        if let Some(why) = replica.unbatchable() {
            return Err(RunError::Unsupported(why));
        }
        for n in 0..kind.copies {
            let name = if kind.copies == 1 {
                kind.name.clone()
            } else {
                format!("{}-{}", kind.name, n)
            };
            instances.push(Instance::new(
                name,
                kind.group_of[0],
                InstanceConfig {
                    role: kind.role,
                    max_batch,
                    token_budget,
                    chunked_prefill: sched.chunked_prefill,
                    batching: sched.batching,
                    static_batch: scenario.workload.batch,
                    block_tokens: sched.kv_block_tokens,
                    total_blocks: memory.blocks,
                    kv_layers: KvLayers::of(&scenario.model),
                    reserve_output: sched.reserve_output,
                },
            ));
            costs.push(IterationCost {
                replica: Replica::new(scenario, plan, nodes),
                exec: nodes[0].exec,
                model: &scenario.model,
                shard: Shard::whole(&scenario.model),
            });
        }
    }

    let mut used: Vec<usize> = Vec::new();
    for g in kinds.iter().flat_map(|k| k.group_of.iter().copied()) {
        if !used.contains(&g) {
            used.push(g);
        }
    }
    let used_groups: Vec<&Group> = used.iter().map(|&g| &scenario.groups[g]).collect();
    // Nodes of instances that span several nodes pay for their link, as in the
    // cluster model.
    let linked_nodes: f64 = kinds
        .iter()
        .filter(|k| k.group_of.len() > 1)
        .map(|k| (k.group_of.len() as u32 * k.copies) as f64)
        .sum();
    let spend = Spend::of(&used_groups, scenario.network.as_ref(), linked_nodes);
    let runtime = used_groups
        .iter()
        .map(|g| g.runtime.id.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let base = |memory: MemoryReport, throughput: Option<f64>| Report {
        cost: spend.report(throughput, scenario.cost),
        ..report_skeleton(scenario, runtime.clone(), memory, &spend)
    };
    if !reasons.is_empty() {
        let reason = reasons.join("; ");
        let report = base(
            MemoryReport {
                fits: false,
                reason: Some(reason.clone()),
                groups: memories.into_iter().map(|m| m.memory).collect(),
            },
            None,
        );
        return Ok(ServingRun {
            report,
            requests: Vec::new(),
            queue: Vec::new(),
            timeline: Timeline {
                resources: Vec::new(),
                spans: Vec::new(),
            },
        });
    }

    // Routers and links.
    let of_role = |role: Role| -> Vec<usize> {
        instances
            .iter()
            .enumerate()
            .filter(|(_, inst)| inst.config.role == role)
            .map(|(i, _)| i)
            .collect()
    };
    let (entry_router, decode_router) = match scenario.disaggregation {
        Some(_) => (
            Router::new(sched.router, of_role(Role::Prefill)),
            Some(Router::new(sched.router, of_role(Role::Decode))),
        ),
        None => (
            Router::new(sched.router, (0..instances.len()).collect()),
            None,
        ),
    };
    let mut links = Vec::new();
    let mut link_of = vec![None; instances.len()];
    let kv = match (scenario.disaggregation, &scenario.network) {
        (Some(d), Some(network)) => {
            let link = crate::network::LinkModel::from_network(network);
            for (i, inst) in instances.iter().enumerate() {
                if inst.config.role == Role::Prefill {
                    link_of[i] = Some(links.len());
                    links.push(Link::new(
                        format!("{} {}", inst.name, network.link.id),
                        link.bandwidth_bytes_s,
                        link.latency_s,
                    ));
                }
            }
            Some(KvPlan {
                mode: d.kv_transfer,
                handover: KvHandover::new(&scenario.model, scenario.kv_cache.bytes_per_weight()),
            })
        }
        _ => None,
    };
    let mut resources: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    resources.extend(links.iter().map(|l| l.name.clone()));

    let mut engine = Engine::new(
        specs,
        instances,
        costs,
        links,
        link_of,
        entry_router,
        decode_router,
        kv,
        TIMELINE_REQUESTS,
    );
    let events = engine.run();
    Ok(assemble(
        scenario, serving, engine, events, memories, resources, base,
    ))
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    scenario: &Scenario,
    serving: &Serving,
    engine: Engine,
    events: u64,
    memories: Vec<InstanceGroupMemory>,
    resources: Vec<String>,
    base: impl Fn(MemoryReport, Option<f64>) -> Report,
) -> ServingRun {
    let name_of = |i: Option<usize>| i.map(|i| engine.instances[i].name.clone());
    let makespan = engine
        .times
        .iter()
        .filter_map(|t| t.finish)
        .max()
        .unwrap_or_default()
        .as_secs();
    let mut records = Vec::with_capacity(engine.specs.len());
    let (mut ttft, mut tpot, mut e2e, mut transfer, mut exposed) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut within = 0u64;
    let mut within_tokens = 0u64;
    let mut output_tokens = 0u64;
    let mut prompt_tokens = 0u64;
    for (id, (spec, t)) in engine.specs.iter().zip(&engine.times).enumerate() {
        let state = &engine.states[id];
        let arrival = spec.arrival.as_secs();
        let first = t.first_token.map(|x| x.as_secs());
        let finish = t.finish.map(|x| x.as_secs());
        let r_ttft = first.map(|f| f - arrival);
        let r_e2e = finish.map(|f| f - arrival);
        let r_tpot = match (first, finish) {
            (Some(f), Some(l)) if spec.output_tokens > 1 => {
                Some((l - f) / (spec.output_tokens - 1) as f64)
            }
            _ => None,
        };
        let r_transfer = match (t.transfer_start, t.transfer_end) {
            (Some(a), Some(b)) => Some(b.since(a).as_secs()),
            _ => None,
        };
        let r_exposed = match (t.prefill_end, t.transfer_end) {
            (Some(p), Some(b)) => Some(b.since(p).as_secs()),
            _ => None,
        };
        if let Some(x) = r_ttft {
            ttft.push(x);
        }
        if let Some(x) = r_tpot {
            tpot.push(x);
        }
        if let Some(x) = r_e2e {
            e2e.push(x);
            output_tokens += spec.output_tokens;
            prompt_tokens += spec.prompt_tokens - spec.cached_prompt_tokens;
            let ok_ttft = serving
                .ttft_slo_s
                .is_none_or(|s| r_ttft.unwrap_or(f64::INFINITY) <= s);
            let ok_tpot = serving
                .tpot_slo_s
                .is_none_or(|s| r_tpot.unwrap_or(0.0) <= s);
            if ok_ttft && ok_tpot {
                within += 1;
                within_tokens += spec.output_tokens;
            }
        }
        if let Some(x) = r_transfer {
            transfer.push(x);
        }
        if let Some(x) = r_exposed {
            exposed.push(x);
        }
        records.push(RequestRecord {
            id,
            arrival_s: arrival,
            prompt_tokens: spec.prompt_tokens,
            cached_prompt_tokens: spec.cached_prompt_tokens,
            output_tokens: spec.output_tokens,
            completed: finish.is_some(),
            first_token_s: first,
            finish_s: finish,
            ttft_s: r_ttft,
            tpot_s: r_tpot,
            e2e_s: r_e2e,
            preemptions: state.preemptions,
            prefill_instance: name_of(t.prefill_instance),
            decode_instance: name_of(t.decode_instance),
            kv_transfer_s: r_transfer,
            kv_exposed_s: r_exposed,
        });
    }
    let completed = e2e.len() as u64;
    let rejected = engine.times.iter().filter(|t| t.rejected).count() as u64;
    let per_s = |x: f64| if makespan > 0.0 { x / makespan } else { 0.0 };
    let throughput = per_s(output_tokens as f64);
    let instances: Vec<InstanceUse> = engine
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let (mean_waiting, mean_running, max_waiting) =
                queue_means(&engine.queue_samples, i, makespan);
            InstanceUse {
                name: inst.name.clone(),
                group: scenario.groups[inst.group].name.clone(),
                role: match inst.config.role {
                    Role::Unified => "prefill+decode",
                    Role::Prefill => "prefill",
                    Role::Decode => "decode",
                }
                .to_string(),
                utilization: per_s(inst.busy_ns as f64 * 1e-9),
                iterations: inst.iterations,
                preemptions: inst.preemptions,
                kv_blocks: inst.config.total_blocks,
                peak_kv_blocks: inst.peak_blocks().ceil() as u64,
                mean_waiting,
                max_waiting,
                mean_running,
            }
        })
        .collect();
    let links: Vec<LinkUse> = engine
        .links
        .iter()
        .map(|l| LinkUse {
            name: l.name.clone(),
            utilization: per_s(l.busy_ns as f64 * 1e-9),
            gigabytes: l.bytes_sent / GB,
        })
        .collect();
    let groups: Vec<GroupMemory> = memories
        .into_iter()
        .map(|m| {
            let peak = engine.instances[m.instances]
                .iter()
                .map(|inst| inst.peak_blocks())
                .fold(0.0, f64::max);
            let mut memory = m.memory;
            memory.kv_cache_gb = peak * m.block_bytes / GB;
            memory.used_gb += memory.kv_cache_gb;
            memory
        })
        .collect();
    let serving_report = ServingReport {
        requests: engine.specs.len() as u64,
        requests_completed: completed,
        requests_rejected: rejected,
        mean_prompt_tokens: mean_of(&engine.specs, |s| s.prompt_tokens),
        mean_output_tokens: mean_of(&engine.specs, |s| s.output_tokens),
        makespan_s: makespan,
        ttft_s: Stats::of(&ttft),
        tpot_s: Stats::of(&tpot),
        itl_s: engine.itl.stats(),
        e2e_s: Stats::of(&e2e),
        throughput_tokens_per_s: throughput,
        prompt_tokens_per_s: per_s(prompt_tokens as f64),
        requests_per_s: per_s(completed as f64),
        goodput: Goodput {
            ttft_slo_s: serving.ttft_slo_s,
            tpot_slo_s: serving.tpot_slo_s,
            requests_within_slo: within,
            // Over every request: one rejected (it could never fit) met no objective.
            fraction_within_slo: if !engine.specs.is_empty() {
                within as f64 / engine.specs.len() as f64
            } else {
                0.0
            },
            requests_per_s: per_s(within as f64),
            tokens_per_s: per_s(within_tokens as f64),
        },
        preemptions: engine.instances.iter().map(|i| i.preemptions).sum(),
        instances,
        links,
        kv_transfer: scenario.disaggregation.map(|d| KvTransferStats {
            mode: match d.kv_transfer {
                KvTransfer::Layerwise => "layerwise",
                KvTransfer::Bulk => "bulk",
            },
            transfer_s: Stats::of(&transfer),
            exposed_s: Stats::of(&exposed),
        }),
        events,
    };
    let ttft_stats = serving_report.ttft_s;
    let mut report = base(
        MemoryReport {
            fits: true,
            reason: None,
            groups,
        },
        Some(throughput).filter(|t| *t > 0.0),
    );
    report.ttft_s = Some(ttft_stats.mean);
    report.tpot_s = Some(serving_report.tpot_s.mean);
    report.e2e_s = Some(serving_report.e2e_s.mean);
    report.prefill_tokens_per_s = Some(serving_report.prompt_tokens_per_s);
    report.decode_tokens_per_s = Some(throughput);
    report.throughput_tokens_per_s = Some(throughput);
    report.serving = Some(serving_report);
    ServingRun {
        report,
        requests: records,
        queue: engine.queue_samples,
        timeline: Timeline {
            resources,
            spans: engine.spans,
        },
    }
}

/// Mean of a token count over the requests (0 for none).
fn mean_of(specs: &[workload::RequestSpec], tokens: impl Fn(&workload::RequestSpec) -> u64) -> f64 {
    if specs.is_empty() {
        return 0.0;
    }
    specs.iter().map(|s| tokens(s) as f64).sum::<f64>() / specs.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scenario;

    fn llama_70b(gpus: u32, tensor: u32) -> Scenario {
        scenario(&format!(
            r#"
[model]
preset = "llama-3.3-70b"
weights = "fp8"
kv_cache = "fp8"
[runtime]
preset = "trt-llm"
[[cluster.groups]]
device = "h100-sxm"
count = {gpus}
[cluster.network]
link = "nvlink-4"
[parallelism]
tensor = {tensor}
[workload]
prompt_tokens = 128
output_tokens = 128
requests = 8
"#
        ))
    }

    fn blocks(sc: &Scenario) -> (u64, f64) {
        let kind = &instance_kinds(sc)[0];
        let plan = Plan::on_nodes(sc, kind.group_of.clone()).unwrap();
        let m = instance_memory(sc, &plan, 8192, 2048, 16);
        (m.blocks, m.groups[0].0.weights_gb)
    }

    #[test]
    fn tensor_parallel_instances_hold_the_kv_of_all_their_nodes() {
        // Llama-3.3 70B: 80 layers of 150,994,944 attention + 704,643,072 FFN + 16,384
        // norm parameters, embedding and LM head 128,256 x 8,192 each, final norm
        // 8,192: 70,553,706,496 parameters, 1 byte each in FP8.
        // Per node with tensor = 2: half of every matrix, norms whole:
        // 80 x 427,835,392 + 1,050,673,152 + 8,192 = 35,277,512,704 bytes.
        // Activations of an 8,192-token iteration with 2,048 logits rows:
        // 8,192 x (4 x 8,192 + 3 x 28,672) x 2 + 2,048 x 128,256 x 4 = 2.997 GB;
        // reserves 1 + 1 GB. Free: 80 - 35.278 - 2.997 - 2 = 39.726 GB per node.
        // A 16-token block is 16 x 80 x 2 x 8 x 128 = 2,621,440 bytes of KV, half
        // of it on each node: 39,725,657,088 / 1,310,720 = 30,308.3 -> 30,308 blocks,
        // twice what one node's free memory holds of whole blocks.
        let (tp, weights) = blocks(&llama_70b(2, 2));
        assert!((weights - 35.277_512_704).abs() < 1e-9, "{weights}");
        assert_eq!(tp, 30_308);
        // One H100 alone: 80 - 70.554 - 2.997 - 2 = 4.449 GB free,
        // 4,449,463,296 / 2,621,440 = 1,697.3 -> 1,697 blocks.
        assert_eq!(blocks(&llama_70b(1, 1)).0, 1_697);
    }

    #[test]
    fn a_group_holds_count_over_the_degrees_instances() {
        // 4 GPUs with tensor = 2: two instances of two GPUs, behind the router.
        let sc = llama_70b(4, 2);
        let kinds = instance_kinds(&sc);
        assert_eq!(kinds.len(), 1);
        assert_eq!((kinds[0].copies, kinds[0].group_of.len()), (2, 2));
        let run = simulate(&sc, None).unwrap();
        let s = run.report.serving.unwrap();
        let names: Vec<&str> = s.instances.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["h100-sxm-0", "h100-sxm-1"]);
        assert!(s.instances.iter().all(|i| i.kv_blocks == 30_308));
        assert_eq!(s.requests_completed, 8);
    }
}
