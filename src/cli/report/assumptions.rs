//! Every assumption behind a result, for the reports: the catalog figures a scenario
//! uses (prices, power, bandwidth, link) with the source each catalog file gives,
//! what runs (model, weights, runtime, parallelism, batch), the cost assumptions
//! (marked where they are the defaults) and the seed.

use planner::cost::{
    CostAssumptions, DEFAULT_AMORTIZATION_YEARS, DEFAULT_ELECTRICITY_USD_PER_KWH,
    DEFAULT_UTILIZATION,
};
use planner::hardware::Device;
use planner::hardware::Transport;
use planner::report::Report;
use planner::scenario::{Batching, Group, KvTransfer, LengthDistribution, RouterPolicy, Scenario};

use super::doc::{Doc, Table};
use super::dollars;

fn default_mark(value: f64, default: f64) -> &'static str {
    if (value - default).abs() < 1e-12 {
        " (default)"
    } else {
        " (set in the scenario)"
    }
}

/// The cost assumptions, one line each, with the formula they feed.
pub fn cost_lines(a: &CostAssumptions) -> Vec<String> {
    vec![
        format!(
            "Capital amortised over {} years{}, straight line, no resale value or financing cost.",
            a.amortization_years,
            default_mark(a.amortization_years, DEFAULT_AMORTIZATION_YEARS)
        ),
        format!(
            "Electricity ${}/kWh{}, at the catalog's load power while busy and idle power otherwise; no cooling, networking gear or facility overhead (PUE 1).",
            a.electricity_usd_per_kwh,
            default_mark(a.electricity_usd_per_kwh, DEFAULT_ELECTRICITY_USD_PER_KWH)
        ),
        format!(
            "Utilisation {}%{}: the share of the time the cluster is busy at the simulated throughput.",
            a.utilization * 100.0,
            default_mark(a.utilization, DEFAULT_UTILIZATION)
        ),
        "Dollars per million output tokens = (capital / amortisation seconds + mean power x \
         electricity price) / (output tokens/s x utilisation) x 1e6; tokens/s per $1,000 = \
         output tokens/s / (capital / 1,000)."
            .to_string(),
    ]
}

/// The price variant a group uses, with its source.
fn price_source(device: &Device, memory_gb: f64) -> String {
    device
        .file
        .memory
        .variants
        .iter()
        .find(|v| (v.capacity_gb - memory_gb).abs() < 1e-9)
        .map_or_else(
            || "no price in the catalog".to_string(),
            |v| v.source.clone(),
        )
}

fn price(group: &Group) -> String {
    group
        .price_usd
        .map_or_else(|| "unpublished (counted as $0)".to_string(), dollars)
}

/// Header of [`price_rows`].
pub const PRICE_HEADER: [&str; 8] = [
    "scenario",
    "nodes",
    "device",
    "memory",
    "price per node",
    "load / idle power per node",
    "price source",
    "power source",
];

/// One row per group of a scenario: what each node costs and draws, with sources.
pub fn price_rows(label: &str, scenario: &Scenario) -> Vec<Vec<String>> {
    scenario
        .groups
        .iter()
        .map(|g| {
            let d = &g.device;
            vec![
                label.to_string(),
                g.count.to_string(),
                format!("{} (`{}`)", d.name, d.id),
                format!("{} GB", g.memory_gb),
                price(g),
                format!("{} W / {} W", d.load_w, d.idle_w),
                price_source(d, g.memory_gb),
                format!(
                    "load: {}; idle: {}",
                    d.file.power.load_w.source, d.file.power.idle_w.source
                ),
            ]
        })
        .collect()
}

/// A table of prices and power of several scenarios.
pub fn price_table(scenarios: &[(String, &Scenario)]) -> Table {
    let mut t = Table::new(&PRICE_HEADER, 1);
    t.numeric = vec![false, true, false, true, true, true, false, false];
    for (label, s) in scenarios {
        for r in price_rows(label, s) {
            t.row(r);
        }
    }
    t
}

fn distribution(d: &LengthDistribution) -> String {
    match d {
        LengthDistribution::Fixed => "fixed".to_string(),
        LengthDistribution::Uniform { min, max } => format!("uniform {min}..={max}"),
        LengthDistribution::Exponential => "exponential".to_string(),
        LengthDistribution::LogNormal { sigma } => format!("log-normal, sigma {sigma}"),
    }
}

/// What runs and how, one line per item.
pub fn run_lines(scenario: &Scenario, report: Option<&Report>) -> Vec<String> {
    let mut lines = Vec::new();
    let m = &scenario.model;
    lines.push(format!(
        "Model `{}` ({}), weights `{}` ({}, {} bits per weight), KV cache `{}`.",
        m.id,
        m.name,
        scenario.weights.id,
        scenario.weights.name,
        scenario.weights.bits_per_weight,
        scenario.kv_cache.id
    ));
    let mut runtimes: Vec<String> = Vec::new();
    for g in &scenario.groups {
        let r = &g.runtime;
        let line = format!(
            "`{}` on `{}`: {} ({}), at most {} sequences per instance in serving mode",
            r.id, g.name, r.name, r.file.source, scenario.max_batch
        );
        if !runtimes.contains(&line) {
            runtimes.push(line);
        }
    }
    lines.push(format!("Runtime: {}.", runtimes.join("; ")));
    let nodes: Vec<String> = scenario
        .groups
        .iter()
        .map(|g| {
            format!(
                "{} x {} `{}` ({} GB)",
                g.count, g.device.name, g.device.id, g.memory_gb
            )
        })
        .collect();
    lines.push(format!("Nodes: {}.", nodes.join(" + ")));
    if let Some(n) = &scenario.network {
        let l = &n.link;
        lines.push(format!(
            "Network: {} (`{}`, {}), {} us per message, {} GB/s each way (latency: {}; bandwidth: {}); {}.",
            l.name,
            l.id,
            match l.transport {
                Transport::Tcp => "TCP",
                Transport::Rdma => "RDMA",
                Transport::Fabric => "GPU fabric",
            },
            n.latency_us,
            n.bandwidth_gb_s,
            l.file.latency_us.source,
            l.file.bandwidth_gb_s.source,
            match &l.file.price_usd_per_node {
                Some(p) => format!("link price {} per node ({})", dollars(p.value), p.source),
                None => "no link price".to_string(),
            }
        ));
    }
    let p = scenario.parallelism;
    let mut layout = format!(
        "Parallelism: tensor {} x pipeline {} x expert {}",
        p.tensor, p.pipeline, p.expert
    );
    if let Some(c) = report.and_then(|r| r.cluster.as_ref()) {
        layout += &format!(
            " ({} replica(s)); topology {}; weights {} (memory wiring)",
            c.replicas, c.topology, c.wired_memory
        );
        if let Some(e) = &c.expert_parallel {
            layout += &format!(
                "; attention {}, expert exchange {}",
                e.attention, e.exchange
            );
        }
    }
    lines.push(layout + ".");
    if let Some(d) = scenario.disaggregation {
        lines.push(format!(
            "Disaggregated: prefill on `{}`, decode on `{}`, KV cache sent {}.",
            scenario.groups[d.prefill_group].name,
            scenario.groups[d.decode_group].name,
            match d.kv_transfer {
                KvTransfer::Layerwise => "layer by layer as the prefill runs",
                KvTransfer::Bulk => "whole after the prefill",
            }
        ));
    }
    let w = &scenario.workload;
    let trace = w.serving.as_ref().and_then(|s| s.trace.as_ref());
    // A trace sets every request's arrival and lengths: the scenario's token counts,
    // request count and arrival rate are then unused.
    if trace.is_none() {
        lines.push(format!(
            "Workload: {} prompt tokens ({} cached), {} output tokens, batch {}.",
            w.prompt_tokens, w.cached_prompt_tokens, w.output_tokens, w.batch
        ));
    }
    if let Some(s) = &w.serving {
        let requests = match trace {
            Some(t) => format!(
                "the requests of trace `{t}` (each row's arrival time, prompt and output tokens)"
            ),
            None => format!(
                "{} requests, {}, prompt lengths {}, output lengths {}",
                s.requests,
                s.arrival_rate_per_s.map_or_else(
                    || "all arriving at t = 0".to_string(),
                    |r| format!("Poisson arrivals at {r} per second")
                ),
                distribution(&s.prompt_distribution),
                distribution(&s.output_distribution),
            ),
        };
        lines.push(format!(
            "Serving: {requests}; scheduler: {} batching, chunked prefill {}, {} tokens per KV block, router {}.",
            match s.scheduler.batching {
                Batching::Continuous => "continuous",
                Batching::Static => "static",
            },
            s.scheduler.chunked_prefill,
            s.scheduler.kv_block_tokens,
            match s.scheduler.router {
                RouterPolicy::RoundRobin => "round robin",
                RouterPolicy::LeastLoaded => "least loaded",
            }
        ));
    }
    lines.push(format!(
        "Seed {} (random routing draws and serving arrivals; the same seed gives the same output).",
        w.seed
    ));
    lines
}

/// The whole assumptions section for one scenario.
pub fn section(doc: &mut Doc, label: &str, scenario: &Scenario, report: Option<&Report>) {
    doc.heading("Assumptions");
    doc.paragraph(
        "Every figure below comes from the catalog files (`hardware/`, `runtimes/`, \
         `formats/`, `models/`) or the scenario; the sources are quoted as the catalog \
         gives them.",
    );
    doc.list(run_lines(scenario, report));
    doc.subheading("Prices and power");
    doc.table(price_table(&[(label.to_string(), scenario)]));
    doc.subheading("Cost");
    doc.list(cost_lines(&scenario.cost));
}
