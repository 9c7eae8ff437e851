//! `planner sweep SCENARIO --vary KEY=V1,V2,... [--vary ...]`: runs a scenario over
//! the grid of the given values and prints one row per point.
//!
//! A key is a dotted path into the scenario file (`cluster.network.latency_us`,
//! `runtime.wired_memory`, `cluster.groups.0.count` for the first group); missing
//! tables on the way are created. Each value is read as TOML (`250`, `1.5`, `true`,
//! `"mlx"`), or as a string when it is not valid TOML (`driver`). The edited document
//! goes through the same validation as a scenario file, so an unknown key or a bad
//! value is invalid input (exit 2) naming the `--vary` argument.
//!
//! `planner simulate` and `planner overlap` take the same keys one value at a time
//! (`--set KEY=VALUE`, [`with_sets`]) and run the edited scenario in full.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};
use planner::analytical::RunError;
use planner::report::Report;
use planner::scenario::ScenarioFile;
use planner::{Catalog, InputError, Scenario};
use serde::Serialize;

use crate::cli::output::seconds;
use crate::Format;

/// One `--vary` argument: a dotted key and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

fn input_error(file: &str, message: String) -> anyhow::Error {
    InputError::Parse {
        file: file.to_string(),
        message,
    }
    .into()
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

/// A value as TOML (`250`, `1.5`, `true`, `"mlx"`, `[1, 2]`), or the text as a string
/// when it is not valid TOML (`driver`).
fn value_of(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Reads one `--set KEY=VALUE` (the value whole: commas belong to it, as in a TOML
/// list).
pub fn parse_set(arg: &str) -> Result<(String, toml::Value)> {
    let invalid = |why: &str| input_error("--set", format!("`{arg}`: {why}"));
    let (key, value) = arg.split_once('=').ok_or_else(|| {
        invalid("expected KEY=VALUE (for example cluster.network.latency_us=125)")
    })?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(invalid(
            "expected a dotted key such as cluster.network.latency_us",
        ));
    }
    if value.is_empty() {
        return Err(invalid("expected a value after `=`"));
    }
    Ok((key.to_string(), value_of(value)))
}

/// `doc` (the scenario file `file`, already valid as written) with each `(key, value)`
/// set: the edited text and the name its errors go under, `file (FLAG k=v ...)`. An
/// assignment that cannot be made, an unknown key or a value of the wrong type is
/// invalid input naming the flag and key.
fn edited(
    file: &str,
    doc: &toml::Table,
    flag: &str,
    assignments: &[(&str, &toml::Value)],
) -> Result<(String, String)> {
    let name = format!("{file} ({flag} {})", label(assignments));
    let mut doc = doc.clone();
    for (key, value) in assignments {
        set_key(&mut doc, key, (*value).clone())
            .map_err(|why| input_error(&name, format!("{flag} {key}: {why}")))?;
    }
    let text = toml::to_string(&doc)?;
    // Unknown keys and wrong types: serde names the key; the name says which flag.
    toml::from_str::<ScenarioFile>(&text)
        .map_err(|e| input_error(&name, e.message().to_string()))?;
    Ok((name, text))
}

/// The scenario text `text` of file `file` with each `--set KEY=VALUE` of `sets`
/// applied; its name (the first line of `simulate`'s table, `name` in the JSON) gains
/// the assignments, so that a saved output says what it ran. The file must be valid
/// as written. With no `sets`, the file as written.
pub fn with_sets(catalog: &Catalog, file: &str, text: &str, sets: &[String]) -> Result<Scenario> {
    let base = Scenario::from_toml(file, text, catalog)?;
    if sets.is_empty() {
        return Ok(base);
    }
    let sets: Vec<(String, toml::Value)> =
        sets.iter().map(|a| parse_set(a)).collect::<Result<_>>()?;
    let doc: toml::Table = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
    let assignments: Vec<(&str, &toml::Value)> =
        sets.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let (name, edited_text) = edited(file, &doc, "--set", &assignments)?;
    let mut scenario =
        Scenario::from_toml(&name, &edited_text, catalog).map_err(InputError::without_location)?;
    scenario.name = format!("{} (--set {})", scenario.name, label(&assignments));
    Ok(scenario)
}

/// `key=value key=value`, as the assignments are named in errors and titles.
fn label(assignments: &[(&str, &toml::Value)]) -> String {
    let parts: Vec<String> = assignments
        .iter()
        .map(|(key, value)| format!("{key}={}", display(value)))
        .collect();
    parts.join(" ")
}

/// Sets dotted `key` in `doc` to `value`, creating missing tables.
pub fn set_key(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut at: &mut toml::Value = doc
        .entry(parts[0])
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    for (i, part) in parts.iter().enumerate().skip(1) {
        at = match at {
            toml::Value::Table(t) => t
                .entry(*part)
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            toml::Value::Array(a) => {
                let index: usize = part.parse().map_err(|_| {
                    format!(
                        "`{}` is a list: expected an index after it (e.g. `{}.0`)",
                        parts[..i].join("."),
                        parts[..i].join(".")
                    )
                })?;
                let len = a.len();
                a.get_mut(index).ok_or_else(|| {
                    format!(
                        "`{}` has {len} entries: no index {index}",
                        parts[..i].join(".")
                    )
                })?
            }
            _ => {
                return Err(format!(
                    "`{}` is a value, not a table",
                    parts[..i].join(".")
                ))
            }
        };
    }
    *at = value;
    Ok(())
}

fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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
        let (name, edited_text) = edited(&file, &doc, "--vary", &assignments)?;
        let scenario = Scenario::from_toml(&name, &edited_text, catalog)
            .map_err(InputError::without_location)?;
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
    fn a_set_value_is_taken_whole() {
        // The comma belongs to the list; sweep's --vary would split it into two values.
        let (key, value) = parse_set("parallelism.expert_placement=[[0, 1], [2, 3]]").unwrap();
        assert_eq!(key, "parallelism.expert_placement");
        let pair =
            |a, b| toml::Value::Array(vec![toml::Value::Integer(a), toml::Value::Integer(b)]);
        assert_eq!(value, toml::Value::Array(vec![pair(0, 1), pair(2, 3)]));
        assert_eq!(
            parse_set(" runtime.wired_memory = driver ").unwrap(),
            (
                "runtime.wired_memory".into(),
                toml::Value::String("driver".into())
            )
        );
        assert!(parse_set("no-equals").is_err());
        assert!(parse_set("a.=1").is_err());
        assert!(parse_set("a=").is_err());
    }

    #[test]
    fn set_key_walks_tables_and_lists() {
        let mut doc: toml::Table =
            toml::from_str("[[cluster.groups]]\ncount = 2\n[workload]\nbatch = 1").unwrap();
        set_key(&mut doc, "cluster.groups.0.count", toml::Value::Integer(4)).unwrap();
        set_key(
            &mut doc,
            "cluster.network.latency_us",
            toml::Value::Integer(9),
        )
        .unwrap();
        assert_eq!(doc["cluster"]["groups"][0]["count"].as_integer(), Some(4));
        assert_eq!(
            doc["cluster"]["network"]["latency_us"].as_integer(),
            Some(9)
        );
        assert!(set_key(&mut doc, "cluster.groups.count", toml::Value::Integer(1)).is_err());
        assert!(set_key(&mut doc, "cluster.groups.3.count", toml::Value::Integer(1)).is_err());
        assert!(set_key(&mut doc, "workload.batch.x", toml::Value::Integer(1)).is_err());
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
