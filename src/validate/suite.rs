//! From measurement rows to cases: each row that names a supported model, device and
//! runtime becomes a scenario (written as scenario TOML, then parsed through the same
//! contract users write) and the report key its value compares with. Everything else
//! is listed with the reason. The mapping lives in `validation/suite.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::measurements::Measurement;
use crate::catalog::Catalog;
use crate::error::InputError;
use crate::report::Report;
use crate::scenario::Scenario;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    /// The measurements file, relative to the suite file.
    pub measurements: String,
    /// The CI gate: the check half's median absolute error must stay at or below.
    pub gate: Gate,
    pub split: SplitRules,
    pub hardware: BTreeMap<String, String>,
    pub models: BTreeMap<String, String>,
    pub formats: BTreeMap<String, String>,
    pub runtimes: BTreeMap<String, String>,
    #[serde(default)]
    pub links: BTreeMap<String, String>,
    #[serde(default)]
    pub scenario_rows: Vec<ScenarioRows>,
    pub serving: ServingDefaults,
    #[serde(default)]
    pub excluded: Vec<Exclusion>,
    #[serde(default)]
    pub fit: Vec<FitSpecFile>,
    /// Micro-batch (llama.cpp `-ub`) a source ran with, where its rows do not say.
    #[serde(default)]
    pub micro_batch: Vec<MicroBatch>,
    /// KV-cache format by dtype column, where the source's checkpoints set one.
    #[serde(default)]
    pub kv_cache: BTreeMap<String, String>,
    /// Scenario text appended for rows of a runtime (its serving defaults).
    #[serde(default)]
    pub runtime_extras: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicroBatch {
    pub source_contains: String,
    pub tokens: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub check_median_abs_pct_error: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRules {
    pub fit: Vec<SplitRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRule {
    pub source_contains: String,
    pub metric_contains: Option<String>,
    pub model: Option<String>,
    pub hardware: Option<String>,
}

impl SplitRule {
    fn matches(&self, row: &Measurement) -> bool {
        row.source.contains(&self.source_contains)
            && self
                .metric_contains
                .as_ref()
                .is_none_or(|m| row.metric.contains(m.as_str()))
            && self.model.as_ref().is_none_or(|m| &row.model == m)
            && self.hardware.as_ref().is_none_or(|h| &row.hardware == h)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRows {
    pub ids: Vec<String>,
    pub scenario: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingDefaults {
    pub requests: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub id: Option<String>,
    pub model: Option<String>,
    pub phase: Option<String>,
    pub reason: String,
}

impl Exclusion {
    fn matches(&self, row: &Measurement) -> bool {
        self.id.as_ref().is_none_or(|i| &row.id == i)
            && self.model.as_ref().is_none_or(|m| &row.model == m)
            && self.phase.as_ref().is_none_or(|p| &row.phase == p)
    }
}

/// Which runtime parameters a calibration fits: per device family, or one value
/// shared by all families ("joint").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpecFile {
    pub runtime: String,
    /// Parameters fitted separately for each device family, by family.
    pub family_params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub joint_params: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Fit,
    Check,
}

/// The report value a case compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    PrefillTokensPerS,
    DecodeTokensPerS,
    TtftS,
    /// Decode time of all output tokens: `e2e_s - ttft_s`.
    GenerationS,
    E2eS,
    ThroughputTokensPerS,
}

impl Metric {
    /// Whether the metric is a duration (a higher value is slower), not a rate.
    pub fn is_time(self) -> bool {
        matches!(self, Metric::TtftS | Metric::GenerationS | Metric::E2eS)
    }

    pub fn key(self) -> &'static str {
        match self {
            Metric::PrefillTokensPerS => "prefill_tokens_per_s",
            Metric::DecodeTokensPerS => "decode_tokens_per_s",
            Metric::TtftS => "ttft_s",
            Metric::GenerationS => "e2e_s - ttft_s",
            Metric::E2eS => "e2e_s",
            Metric::ThroughputTokensPerS => "throughput_tokens_per_s",
        }
    }

    pub fn value(self, r: &Report) -> Option<f64> {
        match self {
            Metric::PrefillTokensPerS => r.prefill_tokens_per_s,
            Metric::DecodeTokensPerS => r.decode_tokens_per_s,
            Metric::TtftS => r.ttft_s,
            Metric::GenerationS => Some(r.e2e_s? - r.ttft_s?),
            Metric::E2eS => r.e2e_s,
            Metric::ThroughputTokensPerS => r.throughput_tokens_per_s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub split: Split,
    pub device: String,
    pub runtime: String,
    pub model: String,
    pub phase: String,
    pub metric_name: String,
    pub metric: Metric,
    pub measured: f64,
    pub unit: String,
    pub source: String,
    pub scenario_text: String,
    pub scenario: Scenario,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmapped {
    pub id: String,
    pub reason: String,
}

/// Parses `validation/suite.toml` text.
pub fn parse_suite(file: &str, text: &str) -> Result<SuiteFile, InputError> {
    toml::from_str(text).map_err(|e| InputError::parse(file, e))
}

/// "pp2048 @ depth 4096" -> (2048, 4096); "tg128" -> (128, 0).
fn llama_bench_tokens(metric: &str, prefix: &str) -> Option<(u64, u64)> {
    let rest = metric.trim().strip_prefix(prefix)?;
    let count: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n = count.parse().ok()?;
    let depth = match rest.split_once("@ depth") {
        Some((_, d)) => d.split_whitespace().next()?.parse().ok()?,
        None => 0,
    };
    Some((n, depth))
}

/// What a row asks: tokens, batch and the metric.
struct Shape {
    prompt: u64,
    cached: u64,
    output: u64,
    batch: u64,
    metric: Metric,
    serving_requests: Option<u64>,
}

fn shape(row: &Measurement, suite: &SuiteFile) -> Result<Shape, String> {
    let m = row.metric.as_str();
    let batch = row.batch().unwrap_or(1);
    let unit_is_seconds = row.unit == "s";
    match row.phase.as_str() {
        "prefill" if m.starts_with("pp") => {
            let (n, depth) = llama_bench_tokens(m, "pp").ok_or("unreadable ppN metric")?;
            Ok(Shape {
                prompt: n + depth,
                cached: depth,
                output: 1,
                batch,
                metric: Metric::PrefillTokensPerS,
                serving_requests: None,
            })
        }
        "prefill" if m.starts_with("S_PP") => {
            let p = row.prompt_tokens().ok_or("no prompt_tokens")?;
            Ok(Shape {
                prompt: p,
                cached: 0,
                output: 1,
                batch,
                metric: Metric::PrefillTokensPerS,
                serving_requests: None,
            })
        }
        "prefill" if unit_is_seconds => {
            let p = row.prompt_tokens().ok_or("no prompt_tokens")?;
            Ok(Shape {
                prompt: p,
                cached: 0,
                output: 1,
                batch,
                metric: Metric::TtftS,
                serving_requests: None,
            })
        }
        "decode" if m.starts_with("tg") => {
            let (n, depth) = llama_bench_tokens(m, "tg").ok_or("unreadable tgN metric")?;
            Ok(Shape {
                prompt: depth.max(1),
                cached: 0,
                output: n,
                batch,
                metric: Metric::DecodeTokensPerS,
                serving_requests: None,
            })
        }
        "decode" if m.starts_with("S_TG") => {
            let p = row.prompt_tokens().ok_or("no prompt_tokens")?;
            let g = row.gen_tokens().ok_or("no gen_tokens")?;
            Ok(Shape {
                prompt: p,
                cached: 0,
                output: g,
                batch,
                metric: Metric::DecodeTokensPerS,
                serving_requests: None,
            })
        }
        "decode" if unit_is_seconds => {
            let p = row.prompt_tokens().ok_or("no prompt_tokens")?;
            let g = row.gen_tokens().ok_or("no gen_tokens")?;
            Ok(Shape {
                prompt: p,
                cached: 0,
                output: g,
                batch,
                metric: Metric::GenerationS,
                serving_requests: None,
            })
        }
        "e2e_throughput" => {
            let p = row.prompt_tokens().ok_or("no prompt_tokens")?;
            let g = row.gen_tokens().ok_or("no gen_tokens")?;
            Ok(Shape {
                prompt: p,
                cached: 0,
                output: g,
                batch: 1,
                metric: Metric::ThroughputTokensPerS,
                serving_requests: Some(suite.serving.requests),
            })
        }
        other => Err(format!("phase `{other}` with metric `{m}` has no mapping")),
    }
}

fn lookup<'a>(
    map: &'a BTreeMap<String, String>,
    key: &str,
    what: &str,
) -> Result<&'a String, String> {
    map.get(key)
        .ok_or_else(|| format!("{what} `{key}` has no mapping in the suite"))
}

/// The scenario TOML for one row.
fn scenario_text(
    row: &Measurement,
    suite: &SuiteFile,
    catalog: &Catalog,
) -> Result<(String, Metric), String> {
    let device = lookup(&suite.hardware, &row.hardware, "hardware")?;
    let model = lookup(&suite.models, &row.model, "model")?;
    let format = lookup(&suite.formats, &row.dtype, "dtype")?;
    let runtime = suite
        .runtimes
        .iter()
        .find(|(k, _)| row.framework.contains(k.as_str()))
        .map(|(_, v)| v)
        .ok_or_else(|| format!("framework `{}` has no mapping in the suite", row.framework))?;
    if !catalog.devices.contains_key(device) {
        return Err(format!("device `{device}` not in the catalog"));
    }
    if !catalog.models.contains_key(model) {
        return Err(format!("model `{model}` not in the catalog"));
    }
    let s = shape(row, suite)?;
    let nodes = row.nodes();
    let mut t = format!(
        "name = \"{} ({})\"\n\n[model]\npreset = \"{model}\"\nweights = \"{format}\"\n",
        row.id,
        row.metric.replace('"', "'")
    );
    if let Some(bits) = row.bits_per_weight() {
        t += &format!("bits_per_weight = {bits:?}\n");
    }
    if let Some(kv) = suite.kv_cache.get(&row.dtype) {
        t += &format!("kv_cache = \"{kv}\"\n");
    }
    t += &format!("\n[runtime]\npreset = \"{runtime}\"\n");
    if let Some(mb) = suite
        .micro_batch
        .iter()
        .find(|m| row.source.contains(&m.source_contains))
    {
        t += &format!("prefill_chunk_tokens = {}\n", mb.tokens);
    }
    t += &format!("\n[[cluster.groups]]\ndevice = \"{device}\"\ncount = {nodes}\n");
    if nodes > 1 {
        let link = lookup(&suite.links, &row.hardware, "multi-node hardware")?;
        t +=
            &format!("\n[cluster.network]\nlink = \"{link}\"\n\n[parallelism]\ntensor = {nodes}\n");
    }
    t += &format!(
        "\n[workload]\nprompt_tokens = {}\noutput_tokens = {}\nbatch = {}\n",
        s.prompt, s.output, s.batch
    );
    if s.cached > 0 {
        t += &format!("cached_prompt_tokens = {}\n", s.cached);
    }
    if let Some(n) = s.serving_requests {
        t += &format!("requests = {n}\n");
        if let Some(extra) = suite.runtime_extras.get(runtime) {
            t += &format!("\n{extra}");
        }
    }
    Ok((t, s.metric))
}

fn metric_for_scenario_row(row: &Measurement) -> Result<Metric, String> {
    match row.phase.as_str() {
        "ttft" => Ok(Metric::TtftS),
        "decode" => Ok(Metric::GenerationS),
        "e2e" => Ok(Metric::E2eS),
        "prefill" => Ok(Metric::TtftS),
        other => Err(format!("phase `{other}` has no metric for a scenario row")),
    }
}

/// Builds the cases. `scenario_files` maps the paths named in `scenario_rows` to their
/// text (read by the caller).
pub fn build_suite(
    rows: &[Measurement],
    suite: &SuiteFile,
    catalog: &Catalog,
    scenario_files: &BTreeMap<String, String>,
) -> (Vec<Case>, Vec<Unmapped>) {
    let mut cases = Vec::new();
    let mut unmapped = Vec::new();
    for row in rows {
        if let Some(ex) = suite.excluded.iter().find(|e| e.matches(row)) {
            unmapped.push(Unmapped {
                id: row.id.clone(),
                reason: ex.reason.clone(),
            });
            continue;
        }
        let from_file = suite.scenario_rows.iter().find(|s| s.ids.contains(&row.id));
        let built = match from_file {
            Some(s) => match scenario_files.get(&s.scenario) {
                Some(text) => {
                    metric_for_scenario_row(row).map(|m| (text.clone(), m, s.scenario.clone()))
                }
                None => Err(format!("scenario file `{}` is missing", s.scenario)),
            },
            None => scenario_text(row, suite, catalog)
                .map(|(t, m)| (t, m, format!("validation case {}", row.id))),
        };
        let (text, metric, file) = match built {
            Ok(x) => x,
            Err(reason) => {
                unmapped.push(Unmapped {
                    id: row.id.clone(),
                    reason,
                });
                continue;
            }
        };
        let scenario = match Scenario::from_toml(&file, &text, catalog) {
            Ok(s) => s,
            Err(e) => {
                unmapped.push(Unmapped {
                    id: row.id.clone(),
                    reason: format!("scenario invalid: {e}"),
                });
                continue;
            }
        };
        let split = if suite.split.fit.iter().any(|r| r.matches(row)) {
            Split::Fit
        } else {
            Split::Check
        };
        // A disaggregated case belongs to the group that runs its phase; a total
        // (end to end) to both, named as the report names them ("a+b").
        let groups = &scenario.groups;
        let owners: Vec<&crate::scenario::Group> = match (scenario.disaggregation, metric) {
            (None, _) => vec![&groups[0]],
            (Some(d), Metric::TtftS | Metric::PrefillTokensPerS) => vec![&groups[d.prefill_group]],
            (Some(d), Metric::GenerationS | Metric::DecodeTokensPerS) => {
                vec![&groups[d.decode_group]]
            }
            (Some(d), Metric::E2eS | Metric::ThroughputTokensPerS) => {
                vec![&groups[d.prefill_group], &groups[d.decode_group]]
            }
        };
        let ids = |id: fn(&crate::scenario::Group) -> &str| -> Vec<&str> {
            owners.iter().map(|g| id(g)).collect()
        };
        let device = ids(|g| &g.device.id).join("+");
        let mut runtimes = ids(|g| &g.runtime.id);
        runtimes.dedup();
        let runtime = runtimes.join("+");
        cases.push(Case {
            id: row.id.clone(),
            split,
            device,
            runtime,
            model: scenario.model.id.clone(),
            phase: row.phase.clone(),
            metric_name: row.metric.clone(),
            metric,
            measured: row.value,
            unit: row.unit.clone(),
            source: row.source.clone(),
            scenario_text: text,
            scenario,
        });
    }
    (cases, unmapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_bench_metric_names() {
        assert_eq!(llama_bench_tokens("pp512", "pp"), Some((512, 0)));
        assert_eq!(
            llama_bench_tokens("pp2048 @ depth 4096", "pp"),
            Some((2048, 4096))
        );
        assert_eq!(
            llama_bench_tokens("tg32 @ depth 32768", "tg"),
            Some((32, 32768))
        );
        assert_eq!(
            llama_bench_tokens("pp512 (PR #3084 branch)", "pp"),
            Some((512, 0))
        );
        assert_eq!(llama_bench_tokens("S_PP aggregate", "pp"), None);
    }
}
