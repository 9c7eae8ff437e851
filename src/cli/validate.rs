//! `planner validate`: every case of the validation suite, predicted against measured,
//! with summaries and a parity chart.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use planner::validate::measurements::parse_measurements;
use planner::validate::{
    build_suite, evaluate, parse_suite, run_scenario, summarise, Case, CaseResult, ErrorSummary,
    Split, SuiteFile, Summary, Unmapped,
};
use planner::Catalog;
use serde::Serialize;

use crate::cli::charts::parity::ParityChart;
use crate::cli::charts::{render_both, SIZE};
use crate::cli::output::text_width;
use crate::cli::write_atomic;

#[derive(Serialize)]
pub struct ValidationOutput {
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
    pub unmapped: Vec<Unmapped>,
    pub gate_check_median_abs_pct_error: f64,
}

/// A suite with its cases built.
pub struct LoadedSuite {
    pub suite: SuiteFile,
    pub cases: Vec<Case>,
    pub unmapped: Vec<Unmapped>,
}

/// The validation suite, relative to the working directory or the catalog root.
pub const DEFAULT_SUITE: &str = "validation/suite.toml";

/// `suite` as given, or under the catalog `root` when it is relative and not found
/// from the working directory.
pub fn resolve_suite(root: &Path, suite: &Path) -> PathBuf {
    if suite.is_relative() && !suite.exists() {
        root.join(suite)
    } else {
        suite.to_path_buf()
    }
}

/// Reads and parses the suite file.
pub fn read_suite(suite_path: &Path) -> Result<SuiteFile> {
    let text = std::fs::read_to_string(suite_path)
        .map_err(|e| planner::InputError::unreadable(suite_path, e))?;
    Ok(parse_suite(&suite_path.display().to_string(), &text)?)
}

/// Reads the suite at `suite_path`, its measurements (`measurements`, else the file
/// the suite names) and the scenario files its rows name, and builds the cases.
pub fn load_suite(
    catalog: &Catalog,
    suite_path: &Path,
    measurements: Option<&Path>,
) -> Result<LoadedSuite> {
    let suite = read_suite(suite_path)?;
    let dir = suite_path.parent().unwrap_or(Path::new("."));
    let csv_path = measurements.map_or_else(|| dir.join(&suite.measurements), Path::to_path_buf);
    let csv_text = std::fs::read_to_string(&csv_path)
        .map_err(|e| planner::InputError::unreadable(&csv_path, e))?;
    suite_cases(catalog, suite_path, suite, &csv_path, &csv_text)
}

/// The cases `suite` (read from `suite_path`) builds from the measurements text
/// `csv_text` of `csv_path`, reading the scenario files its rows name.
pub fn suite_cases(
    catalog: &Catalog,
    suite_path: &Path,
    suite: SuiteFile,
    csv_path: &Path,
    csv_text: &str,
) -> Result<LoadedSuite> {
    let rows = parse_measurements(&csv_path.display().to_string(), csv_text)?;
    let dir = suite_path.parent().unwrap_or(Path::new("."));
    let mut files = BTreeMap::new();
    for s in &suite.scenario_rows {
        if let Ok(text) = std::fs::read_to_string(dir.join(&s.scenario)) {
            files.insert(s.scenario.clone(), text);
        }
    }
    let (cases, unmapped) = build_suite(&rows, &suite, catalog, &files);
    Ok(LoadedSuite {
        suite,
        cases,
        unmapped,
    })
}

/// The scenario the suite builds for case `id`, headed by the measurement it is
/// checked against; an error naming the nearest ids (or the reason the row has no
/// case) when there is no such case.
pub fn show_case(catalog: &Catalog, suite_path: &Path, id: &str) -> Result<String> {
    let loaded = load_suite(catalog, suite_path, None)?;
    if let Some(c) = loaded.cases.iter().find(|c| c.id == id) {
        return Ok(format!(
            "# case {} ({} half): {} {} {} measured {} {} on {} with {}\n# source: {}\n{}",
            c.id,
            match c.split {
                Split::Fit => "fit",
                Split::Check => "check",
            },
            c.model,
            c.phase,
            c.metric_name,
            c.measured,
            c.unit,
            c.device,
            c.runtime,
            c.source,
            c.scenario_text
        ));
    }
    let ids: Vec<&str> = loaded.cases.iter().map(|c| c.id.as_str()).collect();
    let expected = match loaded.unmapped.iter().find(|u| u.id == id) {
        Some(u) => format!("that row has no case: {}", u.reason),
        None => format!(
            "a case id of the suite ({} of them, {} to {})",
            ids.len(),
            ids.first().unwrap_or(&"-"),
            ids.last().unwrap_or(&"-")
        ),
    };
    Err(planner::InputError::invalid(
        &suite_path.display().to_string(),
        "--show-case",
        id,
        expected,
    )
    .into())
}

/// Loads the suite at `suite_path` and runs every case.
pub fn run_suite(catalog: &Catalog, suite_path: &Path) -> Result<ValidationOutput> {
    let LoadedSuite {
        suite,
        cases,
        unmapped,
    } = load_suite(catalog, suite_path, None)?;
    let results = evaluate(&cases, &run_scenario);
    let summary = summarise(&results);
    Ok(ValidationOutput {
        cases: results,
        summary,
        unmapped,
        gate_check_median_abs_pct_error: suite.gate.check_median_abs_pct_error,
    })
}

/// A signed percentage to one decimal, without a sign on zero ("+0.0%", "-0.0%").
pub(crate) fn signed_pct(e: f64) -> String {
    let shown = format!("{e:+.1}%");
    if shown == "+0.0%" || shown == "-0.0%" {
        "0.0%".to_string()
    } else {
        shown
    }
}

pub(crate) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.1}%"))
}

fn summary_line(label: &str, s: &ErrorSummary) -> String {
    format!(
        "| {label} | {} | {} | {} | {} | {} |",
        s.n_cases,
        pct(s.median_abs_pct_error),
        pct(s.p90_abs_pct_error),
        pct(s.max_abs_pct_error),
        pct(s.median_pct_error)
    )
}

/// The accuracy table in Markdown (the README's copy is checked against this).
pub fn markdown(out: &ValidationOutput) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| cases | n | median abs error | p90 abs error | max abs error | median speed bias |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let _ = writeln!(s, "{}", summary_line("fit half", &out.summary.fit));
    let _ = writeln!(s, "{}", summary_line("check half", &out.summary.check));
    let _ = writeln!(s, "{}", summary_line("all", &out.summary.all));
    for (name, map) in [
        ("device", &out.summary.by_device),
        ("runtime", &out.summary.by_runtime),
        ("phase", &out.summary.by_phase),
    ] {
        for (k, v) in map {
            let _ = writeln!(s, "{}", summary_line(&format!("{name} `{k}`"), v));
        }
    }
    let failed = out.cases.iter().filter(|c| c.predicted.is_none()).count();
    let _ = writeln!(
        s,
        "\n{} cases ({} fit, {} check), {} without a prediction, {} rows not cases. Speed bias: \
         the median signed error of the predicted speed, positive when the model is faster \
         than measured (for a time, measured / predicted - 1).",
        out.cases.len(),
        out.cases.iter().filter(|c| c.split == Split::Fit).count(),
        out.cases.iter().filter(|c| c.split == Split::Check).count(),
        failed,
        out.unmapped.len()
    );
    s
}

pub fn table(out: &ValidationOutput) -> String {
    let mut s = String::new();
    let cases = &out.cases;
    let width = |header: &str, field: fn(&CaseResult) -> &str| {
        text_width(header, cases.iter().map(field)) + 2
    };
    let dw = width("device", |c| &c.device);
    let rw = width("runtime", |c| &c.runtime);
    let mw = width("model", |c| &c.model);
    let ww = width("weights", |c| &c.weights);
    let tw = width("metric", |c| &c.metric);
    let workloads: Vec<String> = cases.iter().map(CaseResult::workload).collect();
    let lw = text_width("workload", workloads.iter().map(String::as_str)) + 2;
    let _ = writeln!(
        s,
        "{:<6}{:<7}{:<dw$}{:<rw$}{:<mw$}{:<ww$}{:<lw$}{:<tw$}{:>10}{:>12}{:>9}",
        "case",
        "split",
        "device",
        "runtime",
        "model",
        "weights",
        "workload",
        "metric",
        "measured",
        "predicted",
        "error"
    );
    for (c, workload) in cases.iter().zip(&workloads) {
        let _ = writeln!(
            s,
            "{:<6}{:<7}{:<dw$}{:<rw$}{:<mw$}{:<ww$}{:<lw$}{:<tw$}{:>10.2}{:>12}{:>9}",
            c.id,
            format!("{:?}", c.split).to_lowercase(),
            c.device,
            c.runtime,
            c.model,
            c.weights,
            workload,
            c.metric,
            c.measured,
            c.predicted
                .map_or_else(|| "-".to_string(), |p| format!("{p:.2}")),
            c.error_pct.map_or_else(|| "-".to_string(), signed_pct)
        );
    }
    let _ = writeln!(s);
    s += &markdown(out);
    let failures: Vec<&CaseResult> = out.cases.iter().filter(|c| c.failure.is_some()).collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\nCases without a prediction:");
        for c in failures {
            let _ = writeln!(s, "  {}: {}", c.id, c.failure.as_deref().unwrap_or(""));
        }
    }
    let _ = writeln!(s, "\nRows that are not cases:");
    for u in &out.unmapped {
        let _ = writeln!(s, "  {}: {}", u.id, u.reason);
    }
    s
}

/// Writes the cases CSV, the summary JSON, the Markdown table and the parity chart.
pub fn write_outputs(out: &ValidationOutput, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    for c in &out.cases {
        w.serialize(c)?;
    }
    write_atomic(&dir.join("cases.csv"), &w.into_inner()?)?;
    write_atomic(
        &dir.join("validation.json"),
        serde_json::to_string_pretty(out)?.as_bytes(),
    )?;
    write_atomic(&dir.join("accuracy.md"), markdown(out).as_bytes())?;
    let chart = ParityChart::from_cases(&out.cases);
    let png: PathBuf = dir.join("parity.png");
    let svg: PathBuf = dir.join("parity.svg");
    crate::cli::with_temp_paths(&[&png, &svg], |tmp| {
        render_both(&chart, &tmp[0], &tmp[1], SIZE)
    })?;
    Ok(())
}
