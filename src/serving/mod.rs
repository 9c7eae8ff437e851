//! The request-level engine: a discrete-event simulation of requests arriving at a
//! cluster, batched and scheduled per instance as serving engines do, with optional
//! prefill/decode disaggregation and KV-cache transfer over the network.
//!
//! - [`time`]: integer-nanosecond simulated time and the (time, sequence) event queue;
//! - [`workload`]: requests from a trace or generated with a seeded ChaCha generator;
//! - [`instance`]: one node's scheduler (continuous or static batching, paged KV
//!   cache, chunked prefill, preemption by recomputation);
//! - [`router`]: round robin or least loaded;
//! - [`link`]: network links sharing bandwidth among concurrent transfers;
//! - [`metrics`]: TTFT, TPOT, ITL, end-to-end, goodput, utilisation, queues;
//! - [`engine`]: the event loop.
//!
//! Every iteration's time is the analytical model's batched pass
//! ([`crate::analytical::pass::batch_pass_time`]): one cost path for both engines.
//! For one request alone the two engines agree (a test checks it within 1%).
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
use self::instance::{Instance, InstanceConfig, Role};
use self::link::Link;
use self::metrics::{
    queue_means, Goodput, InstanceUse, KvTransferStats, LinkUse, QueueSample, RequestRecord,
    ServingReport, Stats,
};
use self::router::Router;
use self::workload::{requests, TraceRow};
use crate::analytical::memory::{activation_bytes, kv_elements_per_sequence};
use crate::analytical::pass::Shard;
use crate::analytical::{executor, RunError};
use crate::cost::cost_report;
use crate::report::{GroupMemory, MemoryReport, Report, WorkloadEcho};
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

/// KV-cache bytes of one token over all layers (sliding-window layers counted in
/// full, an upper bound), and of one token in one layer.
fn kv_bytes_per_token(scenario: &Scenario) -> (f64, f64) {
    let model = &scenario.model;
    let bpe = scenario.kv_cache.bytes_per_weight();
    let per_layer = model.kv_elements_per_token_per_layer() as f64 * bpe;
    let all = kv_elements_per_sequence(model, 0..model.layers, 1.0) * bpe;
    (all, per_layer)
}

/// Memory of one instance of `group` and the KV blocks left for the cache.
fn instance_memory(
    scenario: &Scenario,
    group: &Group,
    token_budget: u64,
    max_batch: u64,
    block_bytes: f64,
) -> (GroupMemory, u64) {
    let model = &scenario.model;
    let exec = executor(scenario, group);
    let weights_gb = model.total_params() as f64 * scenario.weights.bytes_per_weight() / GB;
    let tokens = token_budget.min(model.max_context * max_batch) as f64;
    let logits_rows = max_batch.min(token_budget) as f64;
    let activations_gb = activation_bytes(model, tokens, logits_rows) / GB;
    let reserve_gb = group.device.reserved_gb + exec.runtime.reserve_gb;
    let free_gb = group.memory_gb - weights_gb - activations_gb - reserve_gb;
    let blocks = if free_gb > 0.0 {
        (free_gb * GB / block_bytes).floor() as u64
    } else {
        0
    };
    let memory = GroupMemory {
        name: group.name.clone(),
        device: group.device.id.clone(),
        nodes: group.count,
        used_gb: weights_gb + activations_gb + reserve_gb,
        capacity_gb: group.memory_gb,
        weights_gb,
        kv_cache_gb: 0.0,
        activations_gb,
        reserve_gb,
    };
    (memory, blocks)
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
    if scenario.parallelism.product() > 1 {
        return Err(RunError::Unsupported(
            "serving mode runs each instance on one node; tensor, pipeline and expert parallelism \
             within an instance are not modelled by the request-level engine yet"
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
    let sched = serving.scheduler;
    let (kv_token_bytes, kv_token_layer_bytes) = kv_bytes_per_token(scenario);
    let block_bytes = kv_token_bytes * sched.kv_block_tokens as f64;

    // Instances: each node of a used group is one instance.
    let roles: Vec<(usize, Role)> = match scenario.disaggregation {
        Some(d) => vec![
            (d.prefill_group, Role::Prefill),
            (d.decode_group, Role::Decode),
        ],
        None => (0..scenario.groups.len())
            .map(|g| (g, Role::Unified))
            .collect(),
    };
    let mut instances = Vec::new();
    let mut costs = Vec::new();
    let mut memories: Vec<(GroupMemory, usize)> = Vec::new();
    let mut reasons = Vec::new();
    for &(g, role) in &roles {
        let group = &scenario.groups[g];
        let token_budget = sched
            .max_batch_tokens
            .or(group.runtime.prefill_chunk_tokens.map(|c| c as u64))
            .unwrap_or(u64::MAX)
            .max(1);
        let max_batch = u64::from(scenario.max_batch);
        let (memory, blocks) =
            instance_memory(scenario, group, token_budget, max_batch, block_bytes);
        if blocks == 0 {
            reasons.push(format!(
                "does not fit: group `{}` ({}) has {:.0} GB per node, and weights {:.1} GB + activations {:.1} GB + reserve {:.1} GB leave no room for the KV cache",
                group.name, group.device.id, group.memory_gb, memory.weights_gb, memory.activations_gb, memory.reserve_gb
            ));
        }
        memories.push((memory, instances.len()));
        for n in 0..group.count {
            let name = if group.count == 1 {
                group.name.clone()
            } else {
                format!("{}-{}", group.name, n)
            };
            instances.push(Instance::new(
                name,
                g,
                InstanceConfig {
                    role,
                    max_batch,
                    token_budget,
                    chunked_prefill: sched.chunked_prefill,
                    batching: sched.batching,
                    static_batch: scenario.workload.batch,
                    block_tokens: sched.kv_block_tokens,
                    total_blocks: blocks,
                    reserve_output: sched.reserve_output,
                },
            ));
            costs.push(IterationCost {
                exec: executor(scenario, group),
                model: &scenario.model,
                shard: Shard::whole(&scenario.model),
            });
        }
    }

    let echo = WorkloadEcho {
        prompt_tokens: scenario.workload.prompt_tokens,
        cached_prompt_tokens: scenario.workload.cached_prompt_tokens,
        output_tokens: scenario.workload.output_tokens,
        batch: scenario.workload.batch,
    };
    let used_groups: Vec<&Group> = roles.iter().map(|&(g, _)| &scenario.groups[g]).collect();
    let capex: f64 = used_groups
        .iter()
        .map(|g| g.price_usd.unwrap_or(0.0) * f64::from(g.count))
        .sum();
    let power_w: f64 = used_groups
        .iter()
        .map(|g| g.device.load_w * f64::from(g.count))
        .sum();
    let idle_w: f64 = used_groups
        .iter()
        .map(|g| g.device.idle_w * f64::from(g.count))
        .sum();
    let prices_complete = used_groups.iter().all(|g| g.price_usd.is_some());
    let base = |memory: MemoryReport, reason: Option<String>, throughput: Option<f64>| Report {
        cluster: None,
        name: scenario.name.clone(),
        model: scenario.model.id.clone(),
        weights: scenario.weights.id.clone(),
        kv_cache: scenario.kv_cache.id.clone(),
        runtime: used_groups
            .iter()
            .map(|g| g.runtime.id.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        seed: scenario.workload.seed,
        workload: echo.clone(),
        ttft_s: None,
        tpot_s: None,
        e2e_s: None,
        prefill_tokens_per_s: None,
        decode_tokens_per_s: None,
        throughput_tokens_per_s: None,
        memory,
        reason,
        breakdown: None,
        cost: cost_report(
            capex,
            power_w,
            idle_w,
            throughput,
            scenario.cost,
            prices_complete,
        ),
        layers: None,
        serving: None,
    };
    if !reasons.is_empty() {
        let reason = reasons.join("; ");
        let report = base(
            MemoryReport {
                fits: false,
                reason: Some(reason.clone()),
                groups: memories.into_iter().map(|(m, _)| m).collect(),
            },
            Some(reason),
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
                bytes_per_token_layer: kv_token_layer_bytes,
                layers: scenario.model.layers,
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
        scenario,
        serving,
        engine,
        events,
        memories,
        block_bytes,
        resources,
        base,
    ))
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    scenario: &Scenario,
    serving: &Serving,
    engine: Engine,
    events: u64,
    memories: Vec<(GroupMemory, usize)>,
    block_bytes: f64,
    resources: Vec<String>,
    base: impl Fn(MemoryReport, Option<String>, Option<f64>) -> Report,
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
                peak_kv_blocks: inst.peak_blocks,
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
        .map(|(mut m, first)| {
            let peak = engine
                .instances
                .iter()
                .skip(first)
                .filter(|inst| scenario.groups[inst.group].name == m.name)
                .map(|inst| inst.peak_blocks)
                .max()
                .unwrap_or(0);
            m.kv_cache_gb = peak as f64 * block_bytes / GB;
            m.used_gb += m.kv_cache_gb;
            m
        })
        .collect();
    let serving_report = ServingReport {
        requests: engine.specs.len() as u64,
        requests_completed: completed,
        requests_rejected: rejected,
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
            fraction_within_slo: if completed > 0 {
                within as f64 / completed as f64
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
        None,
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
