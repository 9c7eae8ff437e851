//! Scenario files edited from the command line: `sweep --vary KEY=V1,V2,...` and
//! `simulate` / `overlap --set KEY=VALUE`.
//!
//! A key is a dotted path into the scenario file (`cluster.network.latency_us`,
//! `runtime.wired_memory`, `cluster.groups.0.count` for the first group); missing
//! tables on the way are created. Each value is read as TOML (`250`, `1.5`, `true`,
//! `"mlx"`, `[1, 2]`), or as a string when it is not valid TOML (`driver`). The file
//! must be valid as written; the edited document then goes through the same
//! validation as a scenario file, so an unknown key or a bad value is invalid input
//! (exit 2) named after the file and the flag, without a line and column (they would
//! point into the edited text, which the user never sees).

use anyhow::Result;
use planner::scenario::ScenarioFile;
use planner::{Catalog, InputError, Scenario};

/// Invalid input (exit 2) under the name `file`: a file, an edited file or a flag.
pub fn input_error(file: &str, message: String) -> anyhow::Error {
    InputError::Parse {
        file: file.to_string(),
        message,
    }
    .into()
}

/// A value as TOML (`250`, `1.5`, `true`, `"mlx"`, `[1, 2]`), or the text as a string
/// when it is not valid TOML (`driver`).
pub fn value_of(text: &str) -> toml::Value {
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
/// set and validated as a scenario, with the name its errors go under, `file (FLAG
/// k=v ...)`. An assignment that cannot be made, an unknown key or a value of the
/// wrong type is invalid input naming the flag and key, without a line and column.
pub fn edited(
    catalog: &Catalog,
    file: &str,
    doc: &toml::Table,
    flag: &str,
    assignments: &[(&str, &toml::Value)],
) -> Result<(String, Scenario)> {
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
    let scenario =
        Scenario::from_toml(&name, &text, catalog).map_err(InputError::without_location)?;
    Ok((name, scenario))
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
    let (_, mut scenario) = edited(catalog, file, &doc, "--set", &assignments)?;
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

/// A value as the user would write it: strings without their quotes, very large or
/// small floats in exponent form (TOML's own display writes `1e300` out in 301 digits).
pub fn display(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(x) if *x != 0.0 && (x.abs() >= 1e15 || x.abs() < 1e-4) => {
            format!("{x:e}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn values_display_as_written() {
        assert_eq!(display(&value_of("1e300")), "1e300");
        assert_eq!(display(&value_of("1e-30")), "1e-30");
        assert_eq!(display(&value_of("250.5")), "250.5");
        assert_eq!(display(&value_of("125")), "125");
        assert_eq!(display(&value_of("driver")), "driver");
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
}
