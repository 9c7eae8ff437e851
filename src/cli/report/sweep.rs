//! The report of `planner sweep --out DIR`: every grid point in a table and in
//! `sweep.csv`, decode throughput and time per output token against the first swept
//! key (one line per value of the other keys), the stacked breakdown of each point,
//! and, when exactly two keys vary, a heatmap of time per output token over the two.

use std::path::Path;

use anyhow::Result;
use planner::report::Report;

use super::doc::Table;
use super::{assumptions, num, secs, ReportFiles};
use crate::cli::charts::heatmap::HeatmapChart;
use crate::cli::charts::lines::{LineChart, Series};
use crate::cli::charts::time_unit;
use crate::cli::sweep::{Axis, Point, Sweep};

/// Whether every value of an axis is a number (else it is drawn as categories).
fn numeric(axis: &Axis) -> bool {
    axis.values
        .iter()
        .all(|v| matches!(v, toml::Value::Integer(_) | toml::Value::Float(_)))
}

fn as_number(v: &toml::Value) -> f64 {
    match v {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(f) => *f,
        _ => 0.0,
    }
}

/// One line per combination of the other axes' values, over the first axis.
fn lines(
    sweep: &Sweep,
    metric: impl Fn(&Report) -> Option<f64>,
    scale: f64,
) -> (Vec<Series>, Option<Vec<String>>) {
    let first = &sweep.axes[0];
    let per_line = sweep.points.len() / first.values.len().max(1);
    let categories = (!numeric(first)).then(|| {
        first
            .values
            .iter()
            .map(|v| match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
    });
    let mut series = Vec::new();
    for j in 0..per_line {
        // Points are ordered with the first axis varying slowest.
        let mut pts = Vec::new();
        let mut label = String::new();
        for (i, value) in first.values.iter().enumerate() {
            let p = &sweep.points[i * per_line + j];
            if label.is_empty() {
                label = p.values[1..]
                    .iter()
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
            }
            let x = if categories.is_some() {
                i as f64
            } else {
                as_number(value)
            };
            if let Some(y) = p
                .report
                .as_ref()
                .filter(|r| r.memory.fits)
                .and_then(&metric)
            {
                pts.push((x, y * scale));
            }
        }
        series.push(Series {
            label: if label.is_empty() {
                "all points".to_string()
            } else {
                label
            },
            points: pts,
        });
    }
    (series, categories)
}

fn point_label(p: &Point) -> String {
    p.values
        .iter()
        .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the sweep report into `dir`.
pub fn write(dir: &Path, path: &Path, args: &[String], sweep: &Sweep) -> Result<()> {
    let mut files = ReportFiles::new(format!("Sweep: {}", sweep.scenario.name));
    let command = std::iter::once(format!("planner sweep {}", path.display()))
        .chain(args.iter().map(|a| format!("--vary {a}")))
        .collect::<Vec<_>>()
        .join(" ");
    files.doc.code(command);
    files.doc.paragraph(format!(
        "{} points: {}. Times are per decode step (TPOT) and for the whole prefill (TTFT); \
         tok/s is decode tokens per second.",
        sweep.points.len(),
        sweep
            .axes
            .iter()
            .map(|a| format!("`{}` over {} values", a.key, a.values.len()))
            .collect::<Vec<_>>()
            .join(" x ")
    ));
    let mut header: Vec<&str> = sweep.axes.iter().map(|a| a.key.as_str()).collect();
    header.extend([
        "fits",
        "TTFT",
        "TPOT",
        "decode tok/s",
        "compute",
        "communication",
        "exposed",
        "overhead",
    ]);
    let mut t = Table::new(&header, 0);
    for p in &sweep.points {
        let mut row: Vec<String> = p.values.iter().map(|(_, v)| v.clone()).collect();
        match &p.report {
            Some(r) => {
                let b = r.breakdown;
                row.extend([
                    if r.memory.fits { "yes" } else { "no" }.to_string(),
                    secs(r.ttft_s),
                    secs(r.tpot_s),
                    num(r.decode_tokens_per_s, 2),
                    secs(b.map(|b| b.decode.compute_s)),
                    secs(b.map(|b| b.decode.communication_s)),
                    secs(b.map(|b| b.decode.exposed_communication_s)),
                    secs(b.map(|b| b.decode.overhead_s)),
                ]);
            }
            None => {
                row.push(format!(
                    "cannot run: {}",
                    p.cannot_run.as_deref().unwrap_or("")
                ));
                row.extend((0..7).map(|_| "-".to_string()));
            }
        }
        t.row(row);
    }
    files.doc.heading("Every point");
    files.doc.table(t);

    let first = &sweep.axes[0];
    let heading = (sweep.axes.len() > 1).then(|| {
        sweep.axes[1..]
            .iter()
            .map(|a| a.key.clone())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let (tput, categories) = lines(sweep, |r| r.decode_tokens_per_s, 1.0);
    // A serving scenario's decode rate is its output throughput over the whole run
    // (arrivals, queueing and prefill included), not one batch's decode speed.
    let serving = sweep.scenario.workload.serving.is_some();
    let (what, y_desc) = if serving {
        ("Output throughput", "output tokens/s (whole run)")
    } else {
        ("Decode throughput", "decode tokens/s")
    };
    files.doc.heading("Throughput and latency");
    files.chart(
        "throughput",
        &format!("{what} against the first swept key"),
        &LineChart {
            title: format!("{what} against {}", first.key),
            x_desc: first.key.clone(),
            y_desc: y_desc.to_string(),
            x_categories: categories.clone(),
            legend_heading: heading.clone(),
            series: tput,
        },
    )?;
    let tpot_max = sweep
        .points
        .iter()
        .filter_map(|p| p.report.as_ref().and_then(|r| r.tpot_s))
        .fold(0.0, f64::max);
    let (scale, unit) = time_unit(tpot_max);
    let (tpot, _) = lines(sweep, |r| r.tpot_s, scale);
    files.chart(
        "latency",
        "Time per output token against the first swept key",
        &LineChart {
            title: format!("Time per output token against {}", first.key),
            x_desc: first.key.clone(),
            y_desc: format!("time per output token ({unit})"),
            x_categories: categories,
            legend_heading: heading,
            series: tpot,
        },
    )?;
    if sweep.axes.len() == 2 {
        let (rows, cols) = (&sweep.axes[0], &sweep.axes[1]);
        let values: Vec<Vec<Option<f64>>> = sweep
            .points
            .chunks(cols.values.len())
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|p| {
                        p.report
                            .as_ref()
                            .filter(|r| r.memory.fits)
                            .and_then(|r| r.tpot_s)
                    })
                    .collect()
            })
            .collect();
        let label = |p: &Point, i: usize| p.values[i].1.clone();
        files.doc.paragraph(
            "Sensitivity of the time per output token to both keys at once (each cell one \
             point of the grid):",
        );
        files.chart(
            "heatmap",
            "Time per output token over the two swept keys",
            &HeatmapChart {
                title: "Time per output token over the two swept keys".to_string(),
                x_desc: cols.key.clone(),
                y_desc: rows.key.clone(),
                x_labels: sweep.points[..cols.values.len()]
                    .iter()
                    .map(|p| label(p, 1))
                    .collect(),
                y_labels: sweep
                    .points
                    .iter()
                    .step_by(cols.values.len())
                    .map(|p| label(p, 0))
                    .collect(),
                values,
                value_desc: "time per output token".to_string(),
                format: |v| crate::cli::output::seconds(v),
            },
        )?;
    }
    let fitting: Vec<(String, &Report)> = sweep
        .points
        .iter()
        .filter_map(|p| {
            p.report
                .as_ref()
                .filter(|r| r.memory.fits && r.breakdown.is_some())
                .map(|r| (point_label(p), r))
        })
        .collect();
    if !fitting.is_empty() && fitting.len() <= 16 {
        files.doc.heading("Where the time goes");
        files.chart(
            "breakdown",
            "Latency breakdown of each point",
            &super::simulate::breakdown_chart("Latency breakdown by point", &fitting),
        )?;
    }
    assumptions::section(
        &mut files.doc,
        &path.display().to_string(),
        &sweep.scenario,
        sweep.points.first().and_then(|p| p.report.as_ref()),
    );
    files.doc.paragraph(
        "These are the scenario's values as written; at each point the swept keys replace them.",
    );
    files.file(
        "sweep.csv",
        crate::cli::sweep::csv(&sweep.axes, &sweep.points)?.into_bytes(),
    );
    files.write(dir)
}
