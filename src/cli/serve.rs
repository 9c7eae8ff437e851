//! `planner simulate` for every kind of scenario: serving scenarios go to the
//! request-level engine (reading the trace file, if any), the others to the analytical
//! model. `--out DIR` writes the results as files: `summary.json` and the report
//! (`report.md`, `report.html`, `report.csv`, `layers.csv`, the breakdown and roofline
//! charts; see [`crate::cli::report::simulate`]) always; for serving runs also
//! `requests.csv` (one row per request), `queue.csv` (queue lengths at each
//! iteration), `timeline.png` / `timeline.svg` (Gantt chart of the first requests)
//! and the latency CDFs. Each file is written under a temporary name and renamed, so
//! it is complete or absent.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use planner::analytical::{simulate, RunError};
use planner::serving::workload::TraceRow;
use planner::{Catalog, Scenario};

use super::output;
use crate::{Failure, Format};

pub fn run(
    catalog: &Catalog,
    path: &Path,
    sets: &[String],
    format: Format,
    out: Option<&Path>,
    band: bool,
) -> Result<(), Failure> {
    let scenario = crate::read_scenario(catalog, path, sets)?;
    if scenario.workload.serving.is_none() {
        return analytical(&scenario, path, format, out, band);
    }
    let trace = read_trace(path, &scenario)?;
    let run = planner::serving::simulate(&scenario, trace.as_deref())
        .map_err(|RunError::Unsupported(reason)| Failure::CannotRun(reason))?;
    print!(
        "{}",
        output::render_with_band(&run.report, None, false, format).map_err(Failure::Other)?
    );
    if let Some(dir) = out {
        let summary = output::render_with_band(&run.report, None, false, Format::Json)
            .map_err(Failure::Other)?;
        let label = path.display().to_string();
        super::report::simulate::write(dir, &label, &scenario, &run.report, Some(&run), summary)
            .map_err(Failure::Other)?;
    }
    if !run.report.memory.fits {
        return Err(Failure::CannotRun(
            run.report
                .reason
                .clone()
                .unwrap_or_else(|| "does not fit".to_string()),
        ));
    }
    Ok(())
}

/// A scenario the analytical model runs: simulated once, with its prediction band,
/// written to `out` (first, so that a scenario that does not fit, exit 3, still leaves
/// its report) and printed.
fn analytical(
    scenario: &Scenario,
    path: &Path,
    format: Format,
    out: Option<&Path>,
    show_band: bool,
) -> Result<(), Failure> {
    let cannot_run = |RunError::Unsupported(reason)| Failure::CannotRun(reason);
    let report = simulate(scenario).map_err(cannot_run)?;
    let band = if report.memory.fits {
        planner::analytical::band::band(scenario).map_err(cannot_run)?
    } else {
        None
    };
    if let Some(dir) = out {
        let summary = output::render_with_band(&report, band.as_ref(), false, Format::Json)
            .map_err(Failure::Other)?;
        let label = path.display().to_string();
        super::report::simulate::write(dir, &label, scenario, &report, None, summary)
            .map_err(Failure::Other)?;
    }
    print!(
        "{}",
        output::render_with_band(&report, band.as_ref(), show_band, format)
            .map_err(Failure::Other)?
    );
    if !report.memory.fits {
        return Err(Failure::CannotRun(
            report
                .reason
                .clone()
                .unwrap_or_else(|| "does not fit".to_string()),
        ));
    }
    Ok(())
}

/// The trace named by the scenario, relative to the scenario file.
pub fn read_trace(
    scenario_path: &Path,
    scenario: &Scenario,
) -> Result<Option<Vec<TraceRow>>, Failure> {
    let Some(name) = scenario
        .workload
        .serving
        .as_ref()
        .and_then(|s| s.trace.as_ref())
    else {
        return Ok(None);
    };
    let file = scenario_path.parent().unwrap_or(Path::new(".")).join(name);
    let rows = parse_trace(&file).map_err(Failure::Input)?;
    planner::serving::workload::check_trace(&rows, scenario.model.max_context)
        .map_err(|e| Failure::Input(anyhow!("{}: {e}", file.display())))?;
    Ok(Some(rows))
}

/// Reads a trace CSV with the header `arrival_s,prompt_tokens,output_tokens`.
pub fn parse_trace(file: &Path) -> Result<Vec<TraceRow>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read trace {}", file.display()))?;
    let mut builder = csv::ReaderBuilder::new();
    builder.comment(Some(b'#')).trim(csv::Trim::All);
    let headers = builder.from_reader(text.as_bytes()).headers()?.clone();
    let expected = ["arrival_s", "prompt_tokens", "output_tokens"];
    if headers.iter().collect::<Vec<_>>() != expected {
        return Err(anyhow!(
            "{}: header `{}`: expected `{}`",
            file.display(),
            headers.iter().collect::<Vec<_>>().join(","),
            expected.join(",")
        ));
    }
    planner::error::read_csv_records(&builder, &text)
        .map_err(|e| anyhow!("{}: {e}", file.display()))
}
