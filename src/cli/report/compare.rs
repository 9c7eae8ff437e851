//! The report of `planner compare --out DIR`: the headline ratio in words, the
//! comparison table, cost-efficiency bars with each scenario's ratio to the first,
//! the stacked latency breakdown, and every scenario's assumptions with the catalog's
//! price and power sources.

use std::path::Path;

use anyhow::Result;
use planner::Report;

use super::doc::Table;
use super::{assumptions, csv_table, dollars, num, secs, ReportFiles};
use crate::cli::charts::cost_bars::{CostBar, CostBarsChart};
use crate::cli::compare::{self, ratio_to_first, Entry, Headline};

fn comparison_table(entries: &[Entry]) -> Table {
    let mut t = Table::new(
        &[
            "scenario",
            "TTFT",
            "TPOT",
            "end to end",
            "throughput tok/s",
            "capital",
            "power (load)",
            "$ per million tokens",
            "tokens/s per $1,000",
            "ratio to the first",
        ],
        1,
    );
    for (i, e) in entries.iter().enumerate() {
        match &e.report {
            Some(r) if r.memory.fits => t.row(vec![
                format!("`{}`", e.label),
                secs(r.ttft_s),
                secs(r.tpot_s),
                secs(r.e2e_s),
                num(r.throughput_tokens_per_s, 2),
                dollars(r.cost.capex_usd),
                format!("{:.0} W", r.cost.power_w),
                num(r.cost.usd_per_million_tokens, 2),
                num(r.cost.tokens_per_s_per_kusd, 3),
                ratio_to_first(entries, i).map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
            ]),
            Some(r) => {
                let mut row = vec![format!("`{}`", e.label)];
                row.push(r.reason.clone().unwrap_or_else(|| "does not fit".into()));
                row.extend((0..8).map(|_| "-".to_string()));
                t.row(row);
            }
            None => {
                let mut row = vec![format!("`{}`", e.label)];
                row.push(format!(
                    "cannot run: {}",
                    e.cannot_run.as_deref().unwrap_or("")
                ));
                row.extend((0..8).map(|_| "-".to_string()));
                t.row(row);
            }
        }
    }
    t
}

/// Writes the comparison report into `dir`.
pub fn write(
    dir: &Path,
    title: &str,
    entries: &[Entry],
    headline: Option<&Headline>,
) -> Result<()> {
    let mut files = ReportFiles::new(title);
    let paths: Vec<String> = entries
        .iter()
        .map(|e| e.path.display().to_string())
        .collect();
    files
        .doc
        .code(format!("planner compare {}", paths.join(" ")));
    files.doc.paragraph(
        "Each scenario is simulated as written; the first is the baseline of the ratios. \
         Throughput is output tokens per second end to end (the prefill included), the \
         figure the cost model divides by.",
    );
    let mut scenario_list: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "`{}`: {} (`{}`)",
                e.label,
                e.scenario.name,
                e.path.display()
            )
        })
        .collect();
    scenario_list.dedup();
    files.doc.list(scenario_list);
    if let Some(h) = headline {
        files.doc.heading("Headline");
        for s in h.sentences() {
            files.doc.paragraph(s);
        }
    }
    files.doc.heading("Comparison");
    files.doc.table(comparison_table(entries));

    let fitting: Vec<(String, &Report)> = entries
        .iter()
        .filter_map(|e| {
            e.report
                .as_ref()
                .filter(|r| r.memory.fits)
                .map(|r| (e.label.clone(), r))
        })
        .collect();
    let bars: Vec<CostBar> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.tokens_per_s_per_kusd().map(|v| CostBar {
                label: e.label.clone(),
                value: v,
                note: match (i, ratio_to_first(entries, i)) {
                    (0, _) => "baseline".to_string(),
                    (_, Some(r)) => format!("{r:.2}x the first"),
                    _ => String::new(),
                },
            })
        })
        .collect();
    if !bars.is_empty() {
        files.chart(
            "cost-efficiency",
            "Tokens/s per $1,000 of capital, with each scenario's ratio to the first",
            &CostBarsChart {
                title: "Cost efficiency: output tokens/s per $1,000 of capital".to_string(),
                x_desc: "output tokens/s per $1,000 of capital (longer is better)".to_string(),
                bars,
            },
        )?;
    }
    if fitting.iter().any(|(_, r)| r.breakdown.is_some()) {
        files.doc.heading("Where the time goes");
        files.doc.table(super::simulate::breakdown_table(&fitting));
        files.chart(
            "breakdown",
            "Latency breakdown of each scenario",
            &super::simulate::breakdown_chart("Latency breakdown by scenario", &fitting),
        )?;
    }
    files.doc.heading("Memory per node");
    let mut t = Table::new(
        &[
            "scenario",
            "group",
            "nodes",
            "weights GB",
            "used GB",
            "capacity GB",
        ],
        2,
    );
    for e in entries {
        if let Some(r) = &e.report {
            for g in &r.memory.groups {
                t.row(vec![
                    format!("`{}`", e.label),
                    format!("{} (`{}`)", g.name, g.device),
                    g.nodes.to_string(),
                    format!("{:.1}", g.weights_gb),
                    format!("{:.1}", g.used_gb),
                    format!("{:.0}", g.capacity_gb),
                ]);
            }
        }
    }
    files.doc.table(t);

    files.doc.heading("Assumptions");
    files.doc.paragraph(
        "Every figure comes from the catalog files (`hardware/`, `runtimes/`, `formats/`, \
         `models/`) or the scenario files; sources are quoted as the catalog gives them.",
    );
    for e in entries {
        files.doc.subheading(format!("`{}`", e.label));
        files
            .doc
            .list(assumptions::run_lines(&e.scenario, e.report.as_ref()));
    }
    files.doc.subheading("Prices and power");
    let labelled: Vec<(String, &planner::Scenario)> = entries
        .iter()
        .map(|e| (format!("`{}`", e.label), &e.scenario))
        .collect();
    files.doc.table(assumptions::price_table(&labelled));
    files.doc.subheading("Cost");
    let first_cost = entries.first().map(|e| e.scenario.cost);
    if entries.iter().all(|e| Some(e.scenario.cost) == first_cost) {
        if let Some(c) = first_cost {
            files
                .doc
                .paragraph("The same cost assumptions for every scenario:");
            files.doc.list(assumptions::cost_lines(&c));
        }
    } else {
        for e in entries {
            files.doc.paragraph(format!("`{}`:", e.label));
            files.doc.list(assumptions::cost_lines(&e.scenario.cost));
        }
    }
    files.file(
        "compare.csv",
        csv_table(&compare::CSV_HEADER, &compare::csv_rows(entries))?,
    );
    files.file(
        "compare.json",
        compare::json(title, entries, headline)?.into_bytes(),
    );
    files.write(dir)
}
