//! `planner calibrate --runtime ID --from FILE`: fits a runtime profile's efficiency
//! parameters to the fit half of the measurements and, with `--write`, rewrites
//! `runtimes/ID.toml` with the fitted values and their sources.

use std::fmt::Write;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use planner::runtime::RuntimeFile;
use std::collections::BTreeMap;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use planner::runtime_fit::{fit_runtime, render_profile, FitError, FitProgress, Param, RuntimeFit};
use planner::validate::llama_bench::{self, Import};
use planner::validate::{build_suite, run_scenario, Case, SuiteFile, Unmapped};
use planner::Catalog;

use crate::cli::validate::{read_suite, suite_cases, LoadedSuite};
use crate::cli::write_atomic;

/// The command line that regenerates the committed profiles (written into sources).
pub const REGENERATE: &str =
    "planner calibrate --runtime all --from validation/measurements.csv --write";

pub struct Calibration {
    pub fits: Vec<RuntimeFit>,
    /// (path, new file text) for each fitted runtime.
    pub files: Vec<(std::path::PathBuf, String)>,
    /// Rows of the input that are not cases, with the reason.
    pub skipped: Vec<Unmapped>,
}

/// What `planner calibrate --runtime` was asked.
pub struct Request<'a> {
    /// A runtime id, or "all".
    pub runtime: &'a str,
    /// `measurements.csv` rows, or llama-bench output.
    pub from: &'a Path,
    pub suite_path: &'a Path,
    /// For llama-bench input: the catalog device and model the records ran on.
    pub import: Option<Import>,
    /// Parameters to fit instead of the suite's, for the input's device families.
    pub params: Option<Vec<String>>,
    /// Where the fitted profile goes instead of `runtimes/ID.toml` (one runtime only).
    pub out: Option<&'a Path>,
    /// Show the fit's progress on stderr when it is not a terminal too (plain lines);
    /// on a terminal a spinner shows it regardless.
    pub progress: bool,
}

/// Runs `fit` (one runtime's fit) showing its progress on stderr: a spinner on a
/// terminal; with `lines` and no terminal (a log, CI), one line per iteration.
fn with_progress<T>(runtime: &str, lines: bool, fit: impl FnOnce(&dyn Fn(FitProgress)) -> T) -> T {
    let start = Instant::now();
    let describe = |p: FitProgress| {
        match p {
        FitProgress::Start { cases, params, rms } => format!(
            "{runtime}: fitting {params} parameters to {cases} cases (RMS log error {rms:.4} at the priors)"
        ),
        FitProgress::Iteration { iteration, rms } => format!(
            "{runtime}: iteration {iteration}, RMS log error {rms:.4} ({:.1} s)",
            start.elapsed().as_secs_f64()
        ),
    }
    };
    if std::io::stderr().is_terminal() {
        let spinner = ProgressBar::new_spinner();
        spinner.set_draw_target(ProgressDrawTarget::stderr());
        spinner.set_style(
            ProgressStyle::with_template("{spinner} calibrate: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message(format!("{runtime}: starting"));
        spinner.enable_steady_tick(Duration::from_millis(200));
        let result = fit(&|p| spinner.set_message(describe(p)));
        spinner.finish_and_clear();
        result
    } else if lines {
        let result = fit(&|p| eprintln!("calibrate: {}", describe(p)));
        eprintln!(
            "calibrate: {runtime}: done ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
        result
    } else {
        fit(&|_| {})
    }
}

fn invalid(file: &Path, key: &str, value: &str, expected: String) -> anyhow::Error {
    planner::InputError::invalid(&file.display().to_string(), key, value, expected).into()
}

/// The cases of a llama-bench file: every imported record is a fit-half case of
/// llama.cpp on the named device and model.
fn llama_bench_cases(
    catalog: &Catalog,
    suite: &SuiteFile,
    from: &Path,
    text: &str,
    import: Option<&Import>,
) -> Result<(SuiteFile, Vec<Case>, Vec<Unmapped>)> {
    let file = from.display().to_string();
    let import = import.ok_or_else(|| {
        invalid(
            from,
            "--device, --model",
            "(missing)",
            "llama-bench records do not name a catalog device and model: give --device ID \
             and --model ID"
                .to_string(),
        )
    })?;
    let records = llama_bench::parse(&file, text)?;
    let imported = llama_bench::to_measurements(&records, &file, import, catalog)?;
    let suite = llama_bench::import_suite(suite, &imported);
    let (cases, unmapped) = build_suite(&imported.rows, &suite, catalog, &BTreeMap::new());
    let mut skipped = imported.skipped;
    skipped.extend(unmapped);
    Ok((suite, cases, skipped))
}

/// Fits `runtime` ("all" for every runtime the suite has a fit spec for).
pub fn calibrate(catalog: &Catalog, root: &Path, req: &Request) -> Result<Calibration> {
    let text = std::fs::read_to_string(req.from)
        .map_err(|e| planner::InputError::unreadable(req.from, e))?;
    let llama_bench = llama_bench::looks_like_llama_bench(&text);
    let (suite, cases, skipped, command) = if llama_bench {
        if !matches!(req.runtime, "llama.cpp" | "all") {
            return Err(invalid(
                req.from,
                "--runtime",
                req.runtime,
                "llama.cpp (the input is llama-bench output)".to_string(),
            ));
        }
        let base = read_suite(req.suite_path)?;
        let (suite, cases, skipped) =
            llama_bench_cases(catalog, &base, req.from, &text, req.import.as_ref())?;
        (suite, cases, skipped, crate::cli::calibrate::invocation())
    } else {
        let LoadedSuite {
            suite,
            cases,
            unmapped,
        } = suite_cases(
            catalog,
            req.suite_path,
            read_suite(req.suite_path)?,
            req.from,
            &text,
        )?;
        let command = if req.params.is_none() && req.out.is_none() {
            REGENERATE.to_string()
        } else {
            crate::cli::calibrate::invocation()
        };
        (suite, cases, unmapped, command)
    };
    let runtime = if llama_bench {
        "llama.cpp"
    } else {
        req.runtime
    };
    let specs: Vec<_> = suite
        .fit
        .iter()
        .filter(|s| runtime == "all" || s.runtime == runtime)
        .collect();
    if specs.is_empty() {
        let fitted: Vec<&str> = suite.fit.iter().map(|s| s.runtime.as_str()).collect();
        return Err(invalid(
            req.suite_path,
            "--runtime",
            runtime,
            format!(
                "a runtime with a [[fit]] entry in the suite ({}), or `all`",
                fitted.join(", ")
            ),
        ));
    }
    if req.out.is_some() && specs.len() > 1 {
        return Err(invalid(
            req.from,
            "--out",
            &req.out.map_or(String::new(), |p| p.display().to_string()),
            "one runtime (`--runtime ID`, not `all`): --out names one profile".to_string(),
        ));
    }
    let mut out = Calibration {
        fits: Vec::new(),
        files: Vec::new(),
        skipped,
    };
    for spec in specs {
        // The parameters to fit for each device family of the input.
        let families: std::collections::BTreeSet<String> = cases
            .iter()
            .filter(|c| c.runtime == spec.runtime && c.split == planner::validate::Split::Fit)
            .flat_map(|c| c.scenario.groups.iter().map(|g| g.device.family.clone()))
            .collect();
        let family_params: BTreeMap<String, Vec<String>> = match &req.params {
            Some(params) => families
                .iter()
                .map(|f| (f.clone(), params.clone()))
                .collect(),
            None => spec
                .family_params
                .iter()
                .filter(|(f, _)| families.contains(*f))
                .map(|(f, p)| (f.clone(), p.clone()))
                .collect(),
        };
        let joint: &[String] = if req.params.is_some() {
            &[]
        } else {
            &spec.joint_params
        };
        let fit = with_progress(&spec.runtime, req.progress, |progress| {
            fit_runtime(
                &spec.runtime,
                &family_params,
                joint,
                &cases,
                &run_scenario,
                progress,
            )
        })
        .map_err(|e| match e {
            FitError::TooFewPoints(n, p) => invalid(
                req.from,
                "--params",
                &family_params
                    .values()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
                format!(
                    "at most {} parameters: {p} need more than {p} fit cases and the \
                         input has {n} (e.g. --params compute_fraction,bandwidth_fraction)",
                    n.saturating_sub(1)
                ),
            ),
            FitError::UnknownParam(name) => invalid(req.from, "--params", &name, Param::names()),
            // Every row was skipped (or none is in the fit half): the input, not the
            // fit, is what is wrong, so say why the rows are not cases.
            FitError::NoCases(runtime) => {
                let n = out.skipped.len();
                let why = out.skipped.first().map_or(String::new(), |u| {
                    let more = match n {
                        1 => String::new(),
                        2 => "; 1 more row skipped".to_string(),
                        _ => format!("; {} more rows skipped", n - 1),
                    };
                    format!(" (row {}: {}{more})", u.id, u.reason)
                });
                invalid(
                    req.from,
                    "--from",
                    &format!("{n} row{} and no fit case", if n == 1 { "" } else { "s" }),
                    format!("expected rows that are fit cases of `{runtime}`{why}"),
                )
            }
            other => anyhow::Error::new(other),
        })?;
        let path = root.join("runtimes").join(format!("{}.toml", spec.runtime));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: RuntimeFile =
            toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
        let new_text = render_profile(&file, &fit, &command)?;
        out.files
            .push((req.out.map_or(path, Path::to_path_buf), new_text));
        out.fits.push(fit);
    }
    Ok(out)
}

pub fn table(c: &Calibration) -> String {
    let mut s = String::new();
    if !c.skipped.is_empty() {
        let _ = writeln!(s, "{} rows of the input are not cases:", c.skipped.len());
        for u in &c.skipped {
            let _ = writeln!(s, "  {}: {}", u.id, u.reason);
        }
    }
    for fit in &c.fits {
        let _ = writeln!(
            s,
            "runtime {}: {} fit-half cases, R^2 {:.3}, residual std {:.3} (log), {} iterations",
            fit.runtime, fit.n_points, fit.r_squared, fit.residual_std, fit.iterations
        );
        let _ = writeln!(
            s,
            "  {:<10}{:<24}{:>12}{:>12}{:>12}",
            "family", "parameter", "value", "std error", "start"
        );
        for p in &fit.params {
            // A value held at its bound has no standard error (the profile says so).
            let error = if p.at_bound {
                "at bound".to_string()
            } else {
                format!("{:.4}", p.std_error)
            };
            let _ = writeln!(
                s,
                "  {:<10}{:<24}{:>12.4}{:>12}{:>12.4}",
                p.family, p.parameter, p.value, error, p.start
            );
        }
    }
    s
}

pub fn json(c: &Calibration) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Row<'a> {
        runtime: &'a str,
        family: &'a str,
        parameter: &'a str,
        value: f64,
        std_error: f64,
        r_squared: f64,
        n_points: usize,
    }
    let fits: Vec<Row> = c
        .fits
        .iter()
        .flat_map(|f| {
            f.params.iter().map(move |p| Row {
                runtime: &f.runtime,
                family: &p.family,
                parameter: &p.parameter,
                value: p.value,
                std_error: p.std_error,
                r_squared: f.r_squared,
                n_points: f.n_points,
            })
        })
        .collect();
    Ok(
        serde_json::to_string_pretty(&serde_json::json!({ "fits": fits, "skipped": c.skipped }))?
            + "\n",
    )
}

pub fn write(c: &Calibration) -> Result<()> {
    for (path, text) in &c.files {
        write_atomic(path, text.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::runtime_fit::{FittedParam, RuntimeFit};

    #[test]
    fn the_table_marks_values_held_at_a_bound() {
        // A value at its bound has no standard error; the table printed 0.0000, which
        // reads as exact (the written profile said "at its bound").
        let param = |at_bound: bool, value: f64, std_error: f64| FittedParam {
            at_bound,
            family: "apple".into(),
            parameter: "per_step_overhead_us".into(),
            value,
            std_error,
            start: 1000.0,
        };
        let c = Calibration {
            fits: vec![RuntimeFit {
                runtime: "llama.cpp".into(),
                params: vec![param(true, 0.0, 0.0), param(false, 12.5, 0.25)],
                n_points: 10,
                r_squared: 0.99,
                residual_std: 0.1,
                iterations: 5,
                case_ids: vec![],
            }],
            files: vec![],
            skipped: vec![],
        };
        let text = table(&c);
        let rows: Vec<&str> = text.lines().filter(|l| l.contains("per_step")).collect();
        // Columns: family, parameter, value, std error ("at bound"), start.
        let cells: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(&cells[3..5], ["at", "bound"], "{text}");
        assert!(
            rows[1].contains("0.2500") && !rows[1].contains("at bound"),
            "{text}"
        );
    }
}
