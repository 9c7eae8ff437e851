//! `planner sweep SCENARIO --vary KEY=V1,V2,... [--vary ...]`: runs a scenario over
//! the grid of the given values and prints one row per point. Keys and values are
//! read as [`crate::cli::edit`] says; `simulate --set` takes the same one at a time.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use planner::analytical::RunError;
use planner::report::Report;
use planner::{Catalog, InputError, Scenario};
use serde::Serialize;

use crate::cli::edit::{display, edited, input_error, value_of};
use crate::cli::output::seconds;
use crate::Format;

/// One `--vary` argument: a dotted key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

/// Reads `KEY=V1,V2,...`.
pub fn parse_axis(arg: &str) -> Result<Axis> {
    let (key, values) = arg.split_once('=').ok_or_else(|| {
        input_error(
            "--vary",
            format!(
                "`{arg}`: expected KEY=V1,V2,... (for example cluster.network.latency_us=125,250)"
            ),
        )
    })?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(input_error(
            "--vary",
            format!("`{arg}`: expected a dotted key such as cluster.network.latency_us"),
        ));
    }
    let values: Vec<toml::Value> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(value_of)
        .collect();
    if values.is_empty() {
        return Err(input_error(
            "--vary",
            format!("`{arg}`: expected at least one value after `=`"),
        ));
    }
    Ok(Axis {
        key: key.to_string(),
        values,
    })
}

/// One grid point and what the model answered.
#[derive(Debug, Serialize)]
pub struct Point {
    pub values: Vec<(String, String)>,
    /// Why the model could not run it (a valid scenario it does not handle).
    pub cannot_run: Option<String>,
    pub report: Option<Report>,
}

/// Every combination of the axes' values, the first axis varying slowest.
fn grid(axes: &[Axis]) -> Vec<Vec<toml::Value>> {
    let mut points: Vec<Vec<toml::Value>> = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push(v.clone());
                    q
                })
            })
            .collect();
    }
    points
}

/// A sweep's base scenario, axes and grid points.
pub struct Sweep {
    pub scenario: Scenario,
    pub axes: Vec<Axis>,
    pub points: Vec<Point>,
}

/// Runs the sweep and renders it; with `out`, also writes the report there.
pub fn run(
    catalog: &Catalog,
    path: &Path,
    args: &[String],
    format: Format,
    out: Option<&Path>,
) -> Result<String> {
    let sweep = compute(catalog, path, args)?;
    if let Some(dir) = out {
        crate::cli::report::sweep::write(dir, path, args, &sweep)?;
    }
    render(&sweep.axes, &sweep.points, format)
}

/// Runs the scenario at every point of the grid.
pub fn compute(catalog: &Catalog, path: &Path, args: &[String]) -> Result<Sweep> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scenario {}", path.display()))
        .map_err(|e| input_error(&path.display().to_string(), format!("{e:#}")))?;
    let file = path.display().to_string();
    // The file as written must be valid before it is edited.
    let base = Scenario::from_toml(&file, &text, catalog)?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| InputError::parse(&file, e))?;
    let axes: Vec<Axis> = args.iter().map(|a| parse_axis(a)).collect::<Result<_>>()?;

    let mut points = Vec::new();
    for values in grid(&axes) {
        let assignments: Vec<(&str, &toml::Value)> =
            axes.iter().map(|a| a.key.as_str()).zip(&values).collect();
        let (name, scenario) = edited(catalog, &file, &doc, "--vary", &assignments)?;
        let trace = super::serve::read_trace(path, &scenario).map_err(|f| match f {
            crate::Failure::Input(e) | crate::Failure::Other(e) => {
                input_error(&name, format!("{e:#}"))
            }
            crate::Failure::CannotRun(why) => input_error(&name, why),
        })?;
        let (report, cannot_run) = match planner::simulate_scenario(&scenario, trace.as_deref()) {
            Ok(r) => (Some(r), None),
            Err(RunError::Unsupported(why)) => (None, Some(why)),
        };
        points.push(Point {
            values: axes
                .iter()
                .zip(&values)
                .map(|(a, v)| (a.key.clone(), display(v)))
                .collect(),
            cannot_run,
            report,
        });
    }
    Ok(Sweep {
        scenario: base,
        axes,
        points,
    })
}

/// The sweep as CSV: the axes' values, then the figures of each point.
pub fn csv(axes: &[Axis], points: &[Point]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
    header.extend(HEADERS);
    w.write_record(&header)?;
    for p in points {
        let mut row: Vec<String> = p.values.iter().map(|(_, v)| v.clone()).collect();
        row.extend(columns(p));
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn columns(p: &Point) -> Vec<String> {
    let r = p.report.as_ref();
    let b = r.and_then(|r| r.breakdown);
    let num = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x}"));
    vec![
        r.map_or_else(String::new, |r| r.memory.fits.to_string()),
        num(r.and_then(|r| r.ttft_s)),
        num(r.and_then(|r| r.tpot_s)),
        num(r.and_then(|r| r.decode_tokens_per_s)),
        num(b.map(|b| b.decode.compute_s)),
        num(b.map(|b| b.decode.communication_s)),
        num(b.map(|b| b.decode.exposed_communication_s)),
        num(b.map(|b| b.decode.overhead_s)),
        p.cannot_run
            .clone()
            .or_else(|| r.and_then(|r| r.reason.clone()))
            .unwrap_or_default(),
    ]
}

const HEADERS: [&str; 9] = [
    "fits",
    "ttft_s",
    "tpot_s",
    "decode_tokens_per_s",
    "decode_compute_s",
    "decode_communication_s",
    "decode_exposed_communication_s",
    "decode_overhead_s",
    "reason",
];

fn render(axes: &[Axis], points: &[Point], format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(points)? + "\n",
        Format::Csv => csv(axes, points)?,
        Format::Table => table(axes, points),
    })
}

/// The sweep as a table for people.
pub fn table(axes: &[Axis], points: &[Point]) -> String {
    let mut s = String::new();
    let widths: Vec<usize> = axes.iter().map(|a| a.key.len().max(8) + 2).collect();
    for (a, w) in axes.iter().zip(&widths) {
        let _ = write!(s, "{:>w$}", a.key, w = w);
    }
    let _ = writeln!(
        s,
        "{:>6}{:>11}{:>11}{:>10}{:>11}{:>11}{:>11}{:>11}",
        "fits", "ttft", "tpot", "tok/s", "compute", "comm", "exposed", "overhead"
    );
    for p in points {
        for ((_, v), w) in p.values.iter().zip(&widths) {
            let _ = write!(s, "{v:>w$}", w = w);
        }
        match &p.report {
            Some(r) => {
                let b = r.breakdown;
                let sec = |v: Option<f64>| v.map_or_else(|| "-".to_string(), seconds);
                let _ = write!(
                    s,
                    "{:>6}{:>11}{:>11}{:>10}{:>11}{:>11}{:>11}{:>11}",
                    if r.memory.fits { "yes" } else { "no" },
                    sec(r.ttft_s),
                    sec(r.tpot_s),
                    r.decode_tokens_per_s
                        .map_or_else(|| "-".to_string(), |x| format!("{x:.2}")),
                    sec(b.map(|b| b.decode.compute_s)),
                    sec(b.map(|b| b.decode.communication_s)),
                    sec(b.map(|b| b.decode.exposed_communication_s)),
                    sec(b.map(|b| b.decode.overhead_s)),
                );
                let _ = writeln!(s);
            }
            None => {
                let _ = writeln!(s, "  cannot run: {}", p.cannot_run.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(
        s,
        "(tok/s = decode tokens/s, all sequences; compute, comm = all communication, exposed = not hidden behind compute, and overhead are per decode step)"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_values_are_toml_or_strings() {
        let a = parse_axis("cluster.network.latency_us=125,250.5").unwrap();
        assert_eq!(a.key, "cluster.network.latency_us");
        assert_eq!(
            a.values,
            vec![toml::Value::Integer(125), toml::Value::Float(250.5)]
        );
        let a = parse_axis("runtime.wired_memory=driver,\"resident\"").unwrap();
        assert_eq!(
            a.values,
            vec![
                toml::Value::String("driver".into()),
                toml::Value::String("resident".into())
            ]
        );
        assert!(parse_axis("no-equals").is_err());
        assert!(parse_axis("a..b=1").is_err());
    }

    #[test]
    fn grid_is_the_cartesian_product() {
        let a = parse_axis("a=1,2").unwrap();
        let b = parse_axis("b=3,4,5").unwrap();
        let g = grid(&[a, b]);
        assert_eq!(g.len(), 6);
        assert_eq!(g[1], vec![toml::Value::Integer(1), toml::Value::Integer(4)]);
    }
}
