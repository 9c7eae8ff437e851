//! `planner calibrate --runtime ID --from FILE`: fits a runtime profile's efficiency
//! parameters to the fit half of the measurements and, with `--write`, rewrites
//! `runtimes/ID.toml` with the fitted values and their sources.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use planner::runtime::RuntimeFile;
use planner::runtime_fit::{fit_runtime, render_profile, RuntimeFit};
use planner::validate::run_scenario;
use planner::Catalog;

use crate::cli::validate::{load_suite, LoadedSuite};
use crate::cli::write_atomic;

/// The command line that regenerates the committed profiles (written into sources).
pub const REGENERATE: &str =
    "planner calibrate --runtime all --from validation/measurements.csv --write";

pub struct Calibration {
    pub fits: Vec<RuntimeFit>,
    /// (path, new file text) for each fitted runtime.
    pub files: Vec<(std::path::PathBuf, String)>,
}

/// Fits `runtime` ("all" for every runtime the suite has a fit spec for).
pub fn calibrate(
    catalog: &Catalog,
    root: &Path,
    runtime: &str,
    from: &Path,
    suite_path: &Path,
) -> Result<Calibration> {
    let LoadedSuite { suite, cases, .. } = load_suite(catalog, suite_path, Some(from))?;
    let specs: Vec<_> = suite
        .fit
        .iter()
        .filter(|s| runtime == "all" || s.runtime == runtime)
        .collect();
    if specs.is_empty() {
        let fitted: Vec<&str> = suite.fit.iter().map(|s| s.runtime.as_str()).collect();
        return Err(planner::InputError::InvalidValue {
            origin: planner::error::Origin {
                file: suite_path.display().to_string(),
                location: None,
            },
            key: "--runtime".to_string(),
            value: runtime.to_string(),
            expected: format!(
                "a runtime with a [[fit]] entry in the suite ({}), or `all`",
                fitted.join(", ")
            ),
        }
        .into());
    }
    let mut out = Calibration {
        fits: Vec::new(),
        files: Vec::new(),
    };
    for spec in specs {
        let fit = fit_runtime(
            &spec.runtime,
            &spec.family_params,
            &spec.joint_params,
            &cases,
            &run_scenario,
        )?;
        let path = root.join("runtimes").join(format!("{}.toml", spec.runtime));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: RuntimeFile =
            toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
        let new_text = render_profile(&file, &fit, REGENERATE)?;
        out.files.push((path, new_text));
        out.fits.push(fit);
    }
    Ok(out)
}

pub fn table(c: &Calibration) -> String {
    let mut s = String::new();
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
            let _ = writeln!(
                s,
                "  {:<10}{:<24}{:>12.4}{:>12.4}{:>12.4}",
                p.family, p.parameter, p.value, p.std_error, p.start
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
    Ok(serde_json::to_string_pretty(&serde_json::json!({ "fits": fits }))? + "\n")
}

pub fn write(c: &Calibration) -> Result<()> {
    for (path, text) in &c.files {
        write_atomic(path, text.as_bytes())?;
    }
    Ok(())
}
