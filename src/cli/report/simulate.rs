//! The report of one scenario (`planner simulate SCENARIO --out DIR`): headline
//! figures, memory, the latency breakdown, the per-operation layer view with a
//! roofline per device, for serving runs the latency distributions and the
//! timeline, cost, and every assumption.
//!
//! Serving runs have no analytical breakdown of their own; their breakdown and
//! roofline come from the analytical model of one batch of the same scenario, which
//! shares the request-level engine's cost path.

use std::path::Path;

use anyhow::Result;
use planner::analytical::executor;
use planner::report::{LayerView, PhaseBreakdown, Report};
use planner::serving::ServingRun;
use planner::Scenario;

use super::doc::Table;
use super::{assumptions, csv_of, csv_table, dollars, num, secs, ReportFiles};
use crate::cli::charts::breakdown::{Bar, BreakdownChart, Panel};
use crate::cli::charts::cdf::{CdfChart, CdfPanel};
use crate::cli::charts::roofline::{OpPoint, RooflineChart};
use crate::cli::charts::timeline::TimelineChart;

/// Headline figures of several reports, one row each.
pub fn headline_table(items: &[(String, &Report)]) -> Table {
    let mut t = Table::new(
        &[
            "scenario",
            "TTFT",
            "TPOT",
            "end to end",
            "prefill tok/s",
            "decode tok/s",
            "throughput tok/s",
            "fits",
        ],
        1,
    );
    for (label, r) in items {
        t.row(vec![
            label.clone(),
            secs(r.ttft_s),
            secs(r.tpot_s),
            secs(r.e2e_s),
            num(r.prefill_tokens_per_s, 1),
            num(r.decode_tokens_per_s, 2),
            num(r.throughput_tokens_per_s, 2),
            if r.memory.fits { "yes" } else { "no" }.to_string(),
        ]);
    }
    t
}

/// Cost figures of several reports, one row each.
pub fn cost_table(items: &[(String, &Report)]) -> Table {
    let mut t = Table::new(
        &[
            "scenario",
            "capital",
            "power (load)",
            "$ per million output tokens",
            "tokens/s per $1,000",
            "tokens per joule",
        ],
        1,
    );
    for (label, r) in items {
        let c = &r.cost;
        t.row(vec![
            label.clone(),
            format!(
                "{}{}",
                dollars(c.capex_usd),
                if c.prices_complete {
                    ""
                } else {
                    " (lower bound)"
                }
            ),
            format!("{:.0} W", c.power_w),
            num(c.usd_per_million_tokens, 2),
            num(c.tokens_per_s_per_kusd, 3),
            num(c.tokens_per_joule, 4),
        ]);
    }
    t
}

/// The breakdown rows (prefill and one decode step) of several reports.
pub fn breakdown_table(items: &[(String, &Report)]) -> Table {
    breakdown_table_with(items, ["prefill (whole)", "decode (one step)"])
}

/// [`breakdown_table`] with the two phase rows named `phases` (prefill, decode), for
/// reports whose prefill is not the whole batch's.
pub fn breakdown_table_with(items: &[(String, &Report)], phases: [&str; 2]) -> Table {
    let mut t = Table::new(
        &[
            "scenario",
            "phase",
            "compute",
            "communication (all)",
            "exposed",
            "overhead",
            "total",
        ],
        2,
    );
    for (label, r) in items {
        if let Some(b) = &r.breakdown {
            for (phase, p) in [(phases[0], &b.prefill), (phases[1], &b.decode)] {
                t.row(vec![
                    label.clone(),
                    phase.to_string(),
                    secs(Some(p.compute_s)),
                    secs(Some(p.communication_s)),
                    secs(Some(p.exposed_communication_s)),
                    secs(Some(p.overhead_s)),
                    secs(Some(p.total_s)),
                ]);
            }
        }
    }
    t
}

/// The stacked breakdown chart of several reports (those with a breakdown).
pub fn breakdown_chart(title: &str, items: &[(String, &Report)]) -> BreakdownChart {
    breakdown_chart_with(
        title,
        items,
        ["prefill (every prompt of the batch)", "decode (one step)"],
    )
}

/// [`breakdown_chart`] with the two panels titled `panels` (prefill, decode).
pub fn breakdown_chart_with(
    title: &str,
    items: &[(String, &Report)],
    panels: [&str; 2],
) -> BreakdownChart {
    let bars = |pick: fn(&planner::report::Breakdown) -> PhaseBreakdown| {
        items
            .iter()
            .filter_map(|(label, r)| {
                r.breakdown.as_ref().map(|b| Bar {
                    label: label.clone(),
                    parts: pick(b),
                })
            })
            .collect::<Vec<_>>()
    };
    BreakdownChart {
        title: title.to_string(),
        panels: vec![
            Panel {
                title: panels[0].to_string(),
                bars: bars(|b| b.prefill),
            },
            Panel {
                title: panels[1].to_string(),
                bars: bars(|b| b.decode),
            },
        ],
    }
}

/// The device each phase of the layer view ran on: the prefill and decode groups
/// when disaggregated, else the first group (the lead node of the stage shown).
fn phase_groups(scenario: &Scenario) -> [usize; 2] {
    match scenario.disaggregation {
        Some(d) => [d.prefill_group, d.decode_group],
        None => [0, 0],
    }
}

const PHASES: [&str; 2] = ["prefill", "decode"];

/// Rows of the layer view: phase, device, operation and its figures.
fn layer_rows(scenario: &Scenario, l: &LayerView) -> Vec<Vec<String>> {
    let groups = phase_groups(scenario);
    let mut rows = Vec::new();
    for (phase, ops) in [&l.prefill, &l.decode].into_iter().enumerate() {
        let device = &scenario.groups[groups[phase]].device.id;
        for op in ops {
            let intensity = if op.bytes > 0.0 {
                op.flops / op.bytes
            } else {
                0.0
            };
            let achieved = if op.time_s > 0.0 {
                op.flops / op.time_s
            } else {
                0.0
            };
            rows.push(vec![
                PHASES[phase].to_string(),
                device.clone(),
                op.kind.name().to_string(),
                format!("{}", op.flops),
                format!("{}", op.bytes),
                format!("{intensity}"),
                format!("{}", op.compute_s),
                format!("{}", op.memory_s),
                format!("{}", op.time_s),
                format!("{achieved}"),
                if op.memory_bound() {
                    "memory"
                } else {
                    "compute"
                }
                .to_string(),
            ]);
        }
    }
    rows
}

const LAYER_HEADER: [&str; 11] = [
    "phase",
    "device",
    "operation",
    "flops",
    "bytes",
    "intensity_flop_per_byte",
    "compute_s",
    "memory_s",
    "time_s",
    "achieved_flop_s",
    "bound",
];

/// The layer view as tables for people.
fn layer_tables(files: &mut ReportFiles, l: &LayerView) {
    for phase in l.phases() {
        files.doc.subheading(phase.heading(l.layer));
        let mut t = Table::new(
            &[
                "operation",
                "GFLOP",
                "MB",
                "FLOP/byte",
                "compute",
                "memory",
                "time",
                "achieved TFLOP/s",
                "bound",
            ],
            1,
        );
        t.numeric[8] = false;
        for op in phase.ops {
            t.row(vec![
                op.kind.name().to_string(),
                format!("{:.3}", op.flops / 1e9),
                format!("{:.2}", op.bytes / 1e6),
                num((op.bytes > 0.0).then(|| op.flops / op.bytes), 2),
                secs(Some(op.compute_s)),
                secs(Some(op.memory_s)),
                secs(Some(op.time_s)),
                num((op.time_s > 0.0).then(|| op.flops / op.time_s / 1e12), 3),
                if op.memory_bound() {
                    "memory"
                } else {
                    "compute"
                }
                .to_string(),
            ]);
        }
        files.doc.table(t);
        files.doc.paragraph(format!(
            "Dispatch overhead of the layer: {}.",
            secs(Some(phase.overhead_s))
        ));
    }
}

/// One roofline per device of the layer view, with the operations of the phases
/// that ran on it.
pub fn rooflines(files: &mut ReportFiles, scenario: &Scenario, l: &LayerView) -> Result<()> {
    let groups = phase_groups(scenario);
    let mut devices: Vec<usize> = groups.to_vec();
    devices.dedup();
    for &g in &devices {
        let group = &scenario.groups[g];
        let exec = executor(scenario, group);
        let dtype = exec.weights_compute_dtype();
        let (dtype, peak_tflops) = group.device.peak_tflops_for(dtype);
        let bandwidth = group.device.memory_bandwidth_gb_s * 1e9;
        let mut points = Vec::new();
        let mut phases = Vec::new();
        for (phase, ops) in [&l.prefill, &l.decode].into_iter().enumerate() {
            if groups[phase] != g {
                continue;
            }
            phases.push((phase, format!("{} (layer {})", PHASES[phase], l.layer)));
            for op in ops.iter().filter(|o| o.bytes > 0.0 && o.time_s > 0.0) {
                points.push(OpPoint {
                    op: op.kind.name().to_string(),
                    phase,
                    intensity: op.flops / op.bytes,
                    flop_s: op.flops / op.time_s,
                });
            }
        }
        let chart = RooflineChart {
            title: format!(
                "Roofline: {}, runtime {}",
                group.device.name, group.runtime.id
            ),
            dtype: format!("{dtype:?}").to_lowercase(),
            peak_flop_s: peak_tflops * 1e12,
            bandwidth_b_s: bandwidth,
            achievable_flop_s: exec.compute_rate(dtype, 0.0, false),
            achievable_bandwidth_b_s: bandwidth
                * group.device.efficiency.bandwidth_fraction
                * exec.runtime.bandwidth_fraction,
            phases,
            points,
        };
        files.chart(
            &format!("roofline-{}", group.device.id),
            &format!(
                "Roofline of {} with the layer's operations",
                group.device.name
            ),
            &chart,
        )?;
    }
    Ok(())
}

/// The analytical view of a serving scenario: one batch, no request-level engine.
fn analytical_view(scenario: &Scenario) -> Option<Report> {
    let mut single = scenario.clone();
    single.workload.serving = None;
    planner::analytical::simulate(&single)
        .ok()
        .filter(|r| r.memory.fits)
}

fn serving_section(files: &mut ReportFiles, run: &ServingRun) -> Result<()> {
    let Some(v) = &run.report.serving else {
        return Ok(());
    };
    files.doc.heading("Serving");
    files.doc.paragraph(format!(
        "{} of {} requests completed ({} rejected, {} preemptions) in {}; {:.1} output tokens/s, {:.3} requests/s.",
        v.requests_completed,
        v.requests,
        v.requests_rejected,
        v.preemptions,
        secs(Some(v.makespan_s)),
        v.throughput_tokens_per_s,
        v.requests_per_s
    ));
    let mut t = Table::new(&["latency", "mean", "p50", "p90", "p99", "max"], 1);
    for (label, s) in [
        ("time to first token", &v.ttft_s),
        ("time per output token", &v.tpot_s),
        ("inter-token latency", &v.itl_s),
        ("end to end", &v.e2e_s),
    ] {
        t.row(vec![
            label.to_string(),
            secs(Some(s.mean)),
            secs(Some(s.p50)),
            secs(Some(s.p90)),
            secs(Some(s.p99)),
            secs(Some(s.max)),
        ]);
    }
    files.doc.table(t);
    let g = &v.goodput;
    if g.ttft_slo_s.is_some() || g.tpot_slo_s.is_some() {
        files.doc.paragraph(format!(
            "Goodput (TTFT <= {}, TPOT <= {}): {} of {} requests ({}), {:.3} requests/s, {:.1} tokens/s.",
            secs(g.ttft_slo_s),
            secs(g.tpot_slo_s),
            g.requests_within_slo,
            v.requests,
            crate::cli::output::percent(g.fraction_within_slo),
            g.requests_per_s,
            g.tokens_per_s
        ));
    }
    let done = |f: fn(&planner::serving::metrics::RequestRecord) -> Option<f64>| {
        run.requests.iter().filter_map(f).collect::<Vec<f64>>()
    };
    let chart = CdfChart {
        title: format!("Latency distributions: {}", run.report.name),
        panels: vec![
            CdfPanel {
                title: "time to first token".to_string(),
                values: done(|r| r.ttft_s),
            },
            CdfPanel {
                title: "time per output token".to_string(),
                values: done(|r| r.tpot_s),
            },
        ],
    };
    files.chart(
        "latency-cdf",
        "Cumulative distributions of TTFT and TPOT over the requests",
        &chart,
    )?;
    if !run.timeline.spans.is_empty() {
        files.doc.paragraph(
            "The first requests on each device and link (`requests.csv` has every request, \
             `queue.csv` the queue lengths at each iteration):",
        );
        let chart = TimelineChart {
            title: match planner::serving::TIMELINE_REQUESTS.min(run.requests.len()) {
                1 => format!("{}: one request", run.report.name),
                n => format!("{}: first {n} requests", run.report.name),
            },
            timeline: &run.timeline,
        };
        files.chart("timeline", "Timeline of the first requests", &chart)?;
    }
    Ok(())
}

/// Writes the report of one scenario into `dir`, with `summary` (the JSON that
/// `--format json` prints) as `summary.json`.
pub fn write(
    dir: &Path,
    label: &str,
    scenario: &Scenario,
    report: &Report,
    serving: Option<&ServingRun>,
    summary: String,
) -> Result<()> {
    let mut files = ReportFiles::new(&report.name);
    let items = [(label.to_string(), report)];
    files.doc.paragraph(format!(
        "`planner simulate {label}`: model `{}` ({} weights, {} KV cache) on {}, runtime `{}`.",
        report.model,
        report.weights,
        report.kv_cache,
        scenario
            .groups
            .iter()
            .map(|g| format!("{} x `{}`", g.count, g.device.id))
            .collect::<Vec<_>>()
            .join(" + "),
        report.runtime
    ));
    files.doc.heading("Results");
    files.doc.table(headline_table(&items));
    files.doc.subheading("Memory per node");
    let mut t = Table::new(
        &[
            "group",
            "device",
            "nodes",
            "weights GB",
            "KV cache GB",
            "activations GB",
            "reserve GB",
            "used GB",
            "capacity GB",
        ],
        2,
    );
    for g in &report.memory.groups {
        t.row(vec![
            g.name.clone(),
            g.device.clone(),
            g.nodes.to_string(),
            format!("{:.1}", g.weights_gb),
            format!("{:.2}", g.kv_cache_gb),
            format!("{:.2}", g.activations_gb),
            format!("{:.1}", g.reserve_gb),
            format!("{:.1}", g.used_gb),
            format!("{:.0}", g.capacity_gb),
        ]);
    }
    files.doc.table(t);
    if let Some(reason) = &report.reason {
        files.doc.paragraph(format!("Cannot run: {reason}."));
    }

    let analytical = match serving {
        Some(_) => analytical_view(scenario),
        None => Some(report.clone()).filter(|r| r.memory.fits),
    };
    if let Some(a) = &analytical {
        files.doc.heading("Where the time goes");
        if serving.is_some() {
            files.doc.paragraph(format!(
                "From the analytical model of one batch of {} request(s) of this scenario \
                 (the request-level engine's iterations are costed by the same model).",
                scenario.workload.batch
            ));
        }
        let a_items = [(label.to_string(), a)];
        files.doc.table(breakdown_table(&a_items));
        files.chart(
            "breakdown",
            "Latency breakdown: compute, exposed communication, overhead",
            &breakdown_chart(&format!("Latency breakdown: {}", report.name), &a_items),
        )?;
        if let Some(c) = &a.cluster {
            files.doc.paragraph(format!(
                "Cluster: {} nodes, {} replica(s) of tensor {} x pipeline {} x expert {}; one \
                 decode layer: compute {}, communication {} ({} exposed), overhead {}.",
                c.nodes,
                c.replicas,
                c.tensor,
                c.pipeline,
                c.expert,
                secs(Some(c.layer_decode.compute_s)),
                secs(Some(c.layer_decode.communication_s)),
                secs(Some(c.layer_decode.exposed_communication_s)),
                secs(Some(c.layer_decode.overhead_s))
            ));
            if let Some(e) = &c.expert_parallel {
                let v = &e.node_view;
                files.doc.paragraph(format!(
                    "Expert parallelism: time per token = {} layers x (expert compute {} + \
                     communication {} + everything else {}) = {}; the busiest node expects \
                     {:.3} experts per layer against a mean of {:.3}. A node's own timers \
                     divide the same layer as expert compute {} + communication {} (the \
                     exchange and {} of waiting for the busiest node) + everything else {}.",
                    e.moe_layers,
                    secs(Some(e.expert_compute_s)),
                    secs(Some(e.communication_s)),
                    secs(Some(e.everything_else_s)),
                    secs(Some(e.time_per_token_s)),
                    e.expected_busiest_experts,
                    e.mean_experts_per_node,
                    secs(Some(v.expert_compute_s)),
                    secs(Some(v.communication_s)),
                    secs(Some(v.waiting_s)),
                    secs(Some(v.everything_else_s))
                ));
            }
        }
        if let Some(l) = &a.layers {
            files.doc.heading("One layer, operation by operation");
            files.doc.paragraph(
                "Each operation takes the longer of its compute and memory time (the runtime's \
                 overlap permitting). The roofline places each at its arithmetic intensity \
                 and the FLOP/s it achieves.",
            );
            layer_tables(&mut files, l);
            rooflines(&mut files, scenario, l)?;
            files.file(
                "layers.csv",
                csv_table(&LAYER_HEADER, &layer_rows(scenario, l))?,
            );
        }
    }
    if let Some(run) = serving {
        serving_section(&mut files, run)?;
    }
    files.doc.heading("Cost");
    files.doc.table(cost_table(&items));
    assumptions::section(&mut files.doc, label, scenario, Some(report));
    files.file(
        "report.csv",
        crate::cli::output::csv_row(report)?.into_bytes(),
    );
    files.file("summary.json", summary.into_bytes());
    if let Some(run) = serving {
        files.file("requests.csv", csv_of(&run.requests)?);
        files.file("queue.csv", csv_of(&run.queue)?);
    }
    files.write(dir)
}
