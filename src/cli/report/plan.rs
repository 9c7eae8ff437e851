//! The report of `planner plan --out DIR`: the question, what the search rejected
//! and why, the ranked options, the engine's re-check, the Pareto frontier, and the
//! charts: Pareto scatter of capital against sustainable throughput, cost efficiency
//! of the top options, the best sustainable throughput at each node count, and the
//! latency breakdown of the top options (one prompt's prefill, and a decode step at
//! the batch the screen found for the target load); how close the model came on
//! published measurements for each device and runtime shown (`planner validate`'s
//! cases on the pair); and each top option as a scenario file under the plan's load
//! (`option-NN.toml`), for `planner simulate`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use planner::plan::enumerate::Layout;
use planner::plan::verify::{describe, serving_text};
use planner::plan::{Plan, PlanResult, Screened};
use planner::validate::{error_summary, CaseResult};
use planner::{Catalog, Report, Scenario};

use super::doc::Table;
use super::{assumptions, csv_of, csv_table, dollars, num, secs, ReportFiles};
use crate::cli::charts::cost_bars::{CostBar, CostBarsChart};
use crate::cli::charts::lines::{LineChart, Series};
use crate::cli::charts::pareto::ParetoChart;
use crate::cli::validate::{pct, signed_pct, ValidationOutput};

/// Options shown in the top tables and charts.
const TOP: usize = 15;
const TOP_BARS: usize = 10;
const TOP_BREAKDOWN: usize = 5;
/// The prefill row of the top options' breakdown ([`top_breakdowns`]).
const ONE_PROMPT: &str = "prefill (one prompt)";

/// A short name for charts: "4x b200 TP2 x2 trt-llm fp8".
fn short(s: &Screened) -> String {
    let o = &s.option;
    match &o.layout {
        Layout::Colocated(c) => {
            let mut parts = vec![format!("{}x {}", c.nodes, c.device)];
            for (degree, name) in [(c.tensor, "TP"), (c.pipeline, "PP"), (c.expert, "EP")] {
                if degree > 1 {
                    parts.push(format!("{name}{degree}"));
                }
            }
            if c.replicas() > 1 {
                parts.push(format!("x{}", c.replicas()));
            }
            parts.push(format!("{} {}", c.runtime, o.weights));
            parts.join(" ")
        }
        Layout::Disaggregated(d) => format!(
            "P {}x {} + D {}x {}, {} {}",
            d.prefill_nodes,
            d.prefill_device,
            d.decode_nodes,
            d.decode_device,
            d.decode_runtime,
            o.weights
        ),
    }
}

/// Sustainable output tokens/s per $1,000 of capital.
pub fn capacity_per_kusd(s: &Screened) -> f64 {
    if s.capex_usd > 0.0 {
        s.capacity_tokens_per_s / (s.capex_usd / 1000.0)
    } else {
        0.0
    }
}

fn options_table(options: &[Screened]) -> Table {
    let mut t = Table::new(
        &[
            "rank",
            "option",
            "capital",
            "TTFT p90",
            "TPOT p90",
            "decode batch",
            "max tok/s",
            "$/Mtok",
            "max tok/s per $1,000",
        ],
        2,
    );
    t.numeric[0] = true;
    for (i, s) in options.iter().enumerate() {
        t.row(vec![
            (i + 1).to_string(),
            s.description.clone(),
            dollars(s.capex_usd),
            secs(Some(s.ttft_p90_s)),
            secs(Some(s.tpot_p90_s)),
            format!("{:.0}", s.batch),
            format!("{:.0}", s.capacity_tokens_per_s),
            num(Some(s.usd_per_million_tokens), 2),
            num(Some(capacity_per_kusd(s)), 1),
        ]);
    }
    t
}

const OPTION_HEADER: [&str; 21] = [
    "rank",
    "description",
    "kind",
    "device",
    "decode_device",
    "nodes",
    "link",
    "tensor",
    "pipeline",
    "expert",
    "runtime",
    "weights",
    "capex_usd",
    "power_w",
    "ttft_p90_s",
    "tpot_p90_s",
    "batch",
    "capacity_tokens_per_s",
    "usd_per_million_tokens",
    "tokens_per_s_per_kusd",
    "tokens_per_joule",
];

/// The ranked options as CSV (`ranked.csv`, and `planner plan --format csv`).
pub fn ranked_csv(r: &PlanResult) -> Result<Vec<u8>> {
    csv_table(&OPTION_HEADER, &option_rows(&r.ranked))
}

/// Every option as CSV rows, full precision.
fn option_rows(options: &[Screened]) -> Vec<Vec<String>> {
    options
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (kind, device, decode, link, t, p, e, runtime) = match &s.option.layout {
                Layout::Colocated(c) => (
                    "colocated",
                    c.device.clone(),
                    String::new(),
                    c.link.clone().unwrap_or_default(),
                    c.tensor,
                    c.pipeline,
                    c.expert,
                    c.runtime.clone(),
                ),
                Layout::Disaggregated(d) => (
                    "disaggregated",
                    d.prefill_device.clone(),
                    d.decode_device.clone(),
                    d.link.clone(),
                    1,
                    1,
                    1,
                    format!("{}+{}", d.prefill_runtime, d.decode_runtime),
                ),
            };
            vec![
                (i + 1).to_string(),
                s.description.clone(),
                kind.to_string(),
                device,
                decode,
                s.nodes.to_string(),
                link,
                t.to_string(),
                p.to_string(),
                e.to_string(),
                runtime,
                s.option.weights.clone(),
                format!("{}", s.capex_usd),
                format!("{}", s.power_w),
                format!("{}", s.ttft_p90_s),
                format!("{}", s.tpot_p90_s),
                format!("{}", s.batch),
                format!("{}", s.capacity_tokens_per_s),
                format!("{}", s.usd_per_million_tokens),
                format!("{}", s.tokens_per_s_per_kusd),
                format!("{}", s.tokens_per_joule),
            ]
        })
        .collect()
}

/// The best sustainable throughput at each node count, one line per device type
/// (disaggregated options on one line of their own).
fn throughput_by_nodes(ranked: &[Screened]) -> Vec<Series> {
    let mut best: BTreeMap<String, BTreeMap<u32, f64>> = BTreeMap::new();
    for s in ranked {
        let key = match &s.option.layout {
            Layout::Colocated(c) => c.device.clone(),
            Layout::Disaggregated(_) => "prefill/decode split".to_string(),
        };
        let at = best.entry(key).or_default().entry(s.nodes).or_insert(0.0);
        *at = at.max(s.capacity_tokens_per_s);
    }
    best.into_iter()
        .map(|(label, points)| Series {
            label,
            points: points.into_iter().map(|(n, t)| (f64::from(n), t)).collect(),
        })
        .collect()
}

/// The analytical breakdown of the top options as the screen sees them: the prefill
/// of one prompt (what a request's TTFT is built on) and one decode step at the batch
/// the target load needs, per replica. A run at the load's batch alone would show the
/// prefill of that many prompts at once (5.8 s for 112 prompts where one takes 54 ms),
/// which no request waits for.
fn top_breakdowns(catalog: &Catalog, plan: &Plan, ranked: &[Screened]) -> Vec<(String, Report)> {
    ranked
        .iter()
        .take(TOP_BREAKDOWN)
        .enumerate()
        .filter_map(|(i, s)| {
            let replicas = match &s.option.layout {
                Layout::Colocated(c) => u64::from(c.replicas().max(1)),
                Layout::Disaggregated(_) => 1,
            };
            let at = |per_replica: u64| {
                let text = s.option.scenario_text(plan, Some(per_replica * replicas));
                let scenario = Scenario::from_toml("plan option", &text, catalog).ok()?;
                planner::analytical::simulate(&scenario)
                    .ok()
                    .filter(|r| r.memory.fits)
            };
            let one = at(1)?;
            let mut report = at(s.batch.max(1.0) as u64)?;
            let prefill = one.breakdown.as_ref()?.prefill;
            report.breakdown.as_mut()?.prefill = prefill;
            Some((format!("#{} {}", i + 1, short(s)), report))
        })
        .collect()
}

/// The file holding the serving scenario of the option ranked `rank` (from 1).
fn option_file(rank: usize) -> String {
    format!("option-{rank:02}.toml")
}

/// An option as a scenario file: the request-level run under the plan's load that
/// the engine's re-check makes, headed by where it came from and what the screen
/// estimated.
fn option_scenario(path: &Path, plan: &Plan, rank: usize, s: &Screened) -> Vec<u8> {
    let (text, _) = serving_text(plan, s);
    format!(
        "# Option {rank} of `planner plan {}`: {}.\n# Screened at {} requests/s: TTFT p90 \
         {}, TPOT p90 {}, decode batch {:.0}, capital {}.\n# `planner simulate` on this file \
         runs the request-level engine under that load.\n{text}",
        path.display(),
        s.description,
        plan.requests_per_s,
        secs(Some(s.ttft_p90_s)),
        secs(Some(s.tpot_p90_s)),
        s.batch,
        dollars(s.capex_usd),
    )
    .into_bytes()
}

/// Devices in the shown options, with their price and power and the sources.
fn device_table(catalog: &Catalog, options: &[&Screened]) -> Table {
    let mut t = Table::new(
        &[
            "device",
            "memory",
            "price",
            "load / idle power",
            "price source",
        ],
        1,
    );
    t.numeric = vec![false, true, true, true, false];
    let mut seen: Vec<(String, String)> = Vec::new();
    for s in options {
        for node in s.option.layout.node_kinds() {
            let (id, memory) = (node.device, node.memory_gb);
            let Some(device) = catalog.devices.get(id) else {
                continue;
            };
            let variant = device
                .file
                .memory
                .variants
                .iter()
                .find(|v| memory.is_none_or(|m| (v.capacity_gb - m).abs() < 1e-9));
            let Some(v) = variant else { continue };
            let key = (id.to_string(), format!("{}", v.capacity_gb));
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            t.row(vec![
                format!("{} (`{id}`)", device.name),
                format!("{} GB", v.capacity_gb),
                v.price_usd
                    .map_or_else(|| "unpublished".to_string(), dollars),
                format!("{} W / {} W", device.load_w, device.idle_w),
                v.source.clone(),
            ]);
        }
    }
    t
}

/// Whether a device's efficiency figures were measured: a profile `planner calibrate`
/// wrote carries the spread of its fits (`uncertainty`); the catalog's priors do not.
fn efficiency_origin(device: &planner::hardware::Device) -> &'static str {
    if device.uncertainty.is_some() {
        "calibrated"
    } else {
        "priors"
    }
}

/// How close the model has come to published measurements on the device and runtime
/// pairs of `options`: `planner validate`'s cases of each pair (all models and
/// phases), and whether the device's efficiency figures are priors.
fn trust_table(catalog: &Catalog, options: &[&Screened], validation: &ValidationOutput) -> Table {
    let mut t = Table::new(
        &[
            "device",
            "runtime",
            "efficiency figures",
            "published cases",
            "their weights",
            "median abs error",
            "median speed bias",
        ],
        3,
    );
    t.numeric[4] = false;
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for node in options.iter().flat_map(|s| s.option.layout.node_kinds()) {
        let pair = (node.device, node.runtime);
        if seen.contains(&pair) {
            continue;
        }
        seen.push(pair);
        let (device, runtime) = pair;
        let origin = catalog.devices.get(device).map_or("-", efficiency_origin);
        let cases: Vec<&CaseResult> = validation
            .cases
            .iter()
            .filter(|c| c.device == device && c.runtime == runtime)
            .collect();
        let summary = error_summary(cases.iter().copied());
        let mut weights: Vec<&str> = cases.iter().map(|c| c.weights.as_str()).collect();
        weights.sort_unstable();
        weights.dedup();
        t.row(vec![
            format!("`{device}`"),
            runtime.to_string(),
            origin.to_string(),
            summary.n_cases.to_string(),
            if weights.is_empty() {
                "-".to_string()
            } else {
                weights.join(", ")
            },
            pct(summary.median_abs_pct_error),
            summary
                .median_pct_error
                .map_or_else(|| "-".to_string(), signed_pct),
        ]);
    }
    t
}

/// Writes the plan report into `dir`.
pub fn write(
    dir: &Path,
    path: &Path,
    catalog: &Catalog,
    plan: &Plan,
    r: &PlanResult,
    validation: &std::result::Result<ValidationOutput, String>,
) -> Result<()> {
    let mut files = ReportFiles::new(&plan.name);
    files.doc.code(format!("planner plan {}", path.display()));
    files.doc.paragraph(format!(
        "Serve `{}` at {} requests/s ({} prompt + {} output tokens each) with TTFT p90 under {} \
         and TPOT p90 under {}, within a budget of {}. Searched: {}, up to {} nodes, weights {}, \
         runtimes {}{}.",
        plan.model,
        plan.requests_per_s,
        plan.prompt_tokens,
        plan.output_tokens,
        secs(Some(plan.ttft_p90_s)),
        secs(Some(plan.tpot_p90_s)),
        plan.budget_usd
            .map_or_else(|| "no limit".to_string(), dollars),
        plan.devices.join(", "),
        plan.max_nodes,
        plan.weights.join(", "),
        plan.runtimes.join(", "),
        if plan.disaggregation {
            ", and prefill/decode splits across two device types"
        } else {
            ""
        }
    ));
    let j = &r.rejections;
    files.doc.heading("The search");
    files.doc.paragraph(format!(
        "{} options evaluated, {} feasible (fit, meet both targets, within budget, confirmed \
         by the request-level engine where re-checked).",
        r.options_evaluated, r.feasible
    ));
    let mut t = Table::new(&["rejected because", "options"], 1);
    for (why, n) in [
        ("the model does not fit", j.does_not_fit),
        (
            "a latency target is missed (or the load overloads it)",
            j.misses_slo,
        ),
        ("over budget", j.over_budget),
        ("a node without a published price", j.no_price),
        (
            "invalid layout (degrees the model cannot take)",
            j.invalid_layout,
        ),
        ("not modelled", j.not_modelled),
    ] {
        t.row(vec![why.to_string(), n.to_string()]);
    }
    files.doc.table(t);

    files.doc.heading("Best options");
    files.doc.paragraph(
        "Cheapest per million output tokens at the target rate first; options on the same \
         nodes cost the same per token, and of those the one with the higher \"max tok/s\" \
         (then the shorter TTFT p90) comes first. \"max tok/s\" is the \
         most output tokens/s the option sustains, at the request rate that saturates it \
         (decode at the largest batch that fits, in the time its own prefills leave; the \
         same whatever the target rate); the decode batch is the one the target load \
         needs.",
    );
    let top: Vec<Screened> = r.ranked.iter().take(TOP).cloned().collect();
    files.doc.table(options_table(&top));
    if !top.is_empty() {
        files.doc.paragraph(format!(
            "Each option of this table is a scenario file under the plan's load, by rank: \
             `{}` to `{}`. `planner simulate` on one runs the request-level engine on it, \
             as the re-check below does.",
            option_file(1),
            option_file(top.len())
        ));
    }
    for (i, s) in top.iter().enumerate() {
        files.file(&option_file(i + 1), option_scenario(path, plan, i + 1, s));
    }
    let bars: Vec<CostBar> = r
        .ranked
        .iter()
        .take(TOP_BARS)
        .enumerate()
        .map(|(i, s)| CostBar {
            label: format!("#{} {}", i + 1, short(s)),
            value: capacity_per_kusd(s),
            note: format!("${:.2}/Mtok", s.usd_per_million_tokens),
        })
        .collect();
    if !bars.is_empty() {
        files.chart(
            "cost-efficiency",
            "Sustainable tokens/s per $1,000 of capital of the top options",
            &CostBarsChart {
                title: format!("Cost efficiency of the top {} options", bars.len()),
                x_desc: "sustainable output tokens/s per $1,000 of capital (note: $ per \
                         million tokens at the target rate)"
                    .to_string(),
                bars,
            },
        )?;
    }

    files
        .doc
        .subheading("Re-checked with the request-level engine");
    files.doc.paragraph(format!(
        "{}; options the engine finds missing a target leave the ranking.",
        describe(plan)
    ));
    let mut t = Table::new(
        &[
            "option", "requests", "TTFT p90", "TPOT p90", "tok/s", "verdict",
        ],
        1,
    );
    t.numeric[5] = false;
    for v in &r.verified {
        t.row(vec![
            v.description.clone(),
            v.requests.to_string(),
            secs(v.ttft_p90_s),
            secs(v.tpot_p90_s),
            num(v.throughput_tokens_per_s, 0),
            match &v.failure {
                Some(f) => format!("not run: {f}"),
                None if v.meets_slo => "meets the targets".to_string(),
                None => "misses a target".to_string(),
            },
        ]);
    }
    files.doc.table(t);

    let breakdowns = top_breakdowns(catalog, plan, &r.ranked);
    if !breakdowns.is_empty() {
        files
            .doc
            .subheading("Where the time goes in the top options");
        files.doc.paragraph(
            "The analytical model of each option, per replica: the prefill of one prompt (a \
             request's TTFT before any wait) and one decode step at the batch the target load \
             needs.",
        );
        let items: Vec<(String, &Report)> =
            breakdowns.iter().map(|(l, r)| (l.clone(), r)).collect();
        files.doc.table(super::simulate::breakdown_table_with(
            &items,
            [ONE_PROMPT, "decode (one step)"],
        ));
        files.chart(
            "breakdown",
            "Latency breakdown of the top options",
            &super::simulate::breakdown_chart_with(
                "Latency breakdown of the top options",
                &items,
                [ONE_PROMPT, "decode (one step at the load's batch)"],
            ),
        )?;
    }

    files.doc.heading("Pareto frontier");
    files.doc.paragraph(
        "Options meeting both targets (budget ignored) that no other beats on capital cost, \
         sustainable throughput and TTFT p90 at once.",
    );
    files.doc.table(options_table(&r.pareto));
    files.chart(
        "pareto",
        "Capital cost against sustainable throughput, Pareto frontier numbered",
        &ParetoChart {
            title: "Capital cost against sustainable throughput".to_string(),
            options: r
                .ranked
                .iter()
                .map(|s| (s.capex_usd, s.capacity_tokens_per_s))
                .collect(),
            frontier: r
                .pareto
                .iter()
                .map(|s| (s.capex_usd, s.capacity_tokens_per_s))
                .collect(),
            best: r
                .ranked
                .first()
                .map(|s| (s.capex_usd, s.capacity_tokens_per_s, short(s))),
        },
    )?;
    files.doc.heading("Throughput against node count");
    files.chart(
        "throughput-nodes",
        "Best sustainable throughput at each node count, by device",
        &LineChart {
            title: "Best sustainable throughput against node count".to_string(),
            x_desc: "nodes".to_string(),
            y_desc: "sustainable output tokens/s".to_string(),
            x_categories: None,
            legend_heading: Some("device (feasible options)".to_string()),
            series: throughput_by_nodes(&r.ranked),
        },
    )?;

    files.doc.heading("Assumptions");
    files.doc.list(vec![
        format!(
            "Screening: the analytical model per option; prefill busy share rho = rate x \
             prefill time, decode batch by Little's law, TPOT p90 ~ the step at the p90 of \
             the sequences decoding at once + the p90 of the prefills that stall a request's \
             decode, TTFT p90 ~ prefill + the p90 waits of two M/D/c queues (for a prefill: \
             c the instances sharing the arrivals; for a sequence slot: c an instance's \
             batch cap) + half a step (see `src/plan/screen.rs`)."
        ),
        format!(
            "Re-check: the request-level engine, {}, for the best {} options.",
            describe(plan),
            plan.verify_top
        ),
        format!("KV cache `{}`.", plan.kv_cache),
    ]);
    files
        .doc
        .subheading("Prices and power of the devices shown");
    let shown: Vec<&Screened> = r.ranked.iter().take(TOP).chain(&r.pareto).collect();
    files.doc.table(device_table(catalog, &shown));
    files
        .doc
        .subheading("How close the model came on these devices");
    match validation {
        Ok(v) => {
            files.doc.paragraph(
                "From `planner validate`: for each device and runtime of the options shown, \
                 the published measurements the model was checked against \
                 (`validation/measurements.csv`, every model and phase), the weight formats \
                 they ran, their median absolute error and the median signed error of the \
                 predicted speed (positive: the model is faster than measured). A pair with \
                 no case has never been checked. \"priors\": the device's efficiency \
                 fractions are assumed (`hardware/README.md#efficiency`), not fitted to a \
                 `planner-harness` run on the machine. `planner validate --show-case ID` shows \
                 how a case was predicted."
                    .to_string(),
            );
            files.doc.table(trust_table(catalog, &shown, v));
        }
        Err(e) => files
            .doc
            .paragraph(format!("The validation suite did not run: {e}.")),
    }
    files.doc.subheading("Cost");
    files.doc.list(assumptions::cost_lines(&plan.cost));
    files.file("ranked.csv", ranked_csv(r)?);
    files.file(
        "pareto.csv",
        csv_table(&OPTION_HEADER, &option_rows(&r.pareto))?,
    );
    files.file("verified.csv", csv_of(&r.verified)?);
    files.write(dir)
}
