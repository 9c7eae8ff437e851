//! The plan file: what to serve, under which targets, and where to search.
//!
//! ```toml
//! name = "Llama-3.1 70B at 10 requests/s"
//! [model]
//! preset = "llama-3.1-70b"
//! weights = ["fp8", "bf16", "q4_k_m", "mlx-4bit"]   # allowed formats
//! [workload]
//! prompt_tokens = 1024
//! output_tokens = 256
//! requests_per_s = 10.0          # or output tokens_per_s
//! [slo]
//! ttft_p90_s = 2.0
//! tpot_p90_s = 0.1
//! [budget]
//! capex_usd = 2000000
//! [search]                       # every key optional
//! devices = ["h100-sxm", "m3-ultra-80c"]   # default: the whole catalog
//! links = []                     # default: every link a device has ports for
//! runtimes = []                  # default: every runtime
//! max_nodes = 16
//! disaggregation = true
//! verify_top = 3                 # best options re-checked with the serving engine
//! [cost]                         # as in scenarios
//! ```

use serde::Deserialize;

use crate::catalog::{Catalog, CatalogKind};
use crate::cost::CostAssumptions;
use crate::error::{nearest_ids, InputError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    name: Option<String>,
    model: ModelSection,
    workload: WorkloadSection,
    slo: SloSection,
    budget: Option<BudgetSection>,
    search: Option<SearchSection>,
    cost: Option<CostSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    preset: String,
    weights: Vec<String>,
    kv_cache: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadSection {
    prompt_tokens: u64,
    output_tokens: u64,
    requests_per_s: Option<f64>,
    tokens_per_s: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SloSection {
    ttft_p90_s: f64,
    tpot_p90_s: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSection {
    capex_usd: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchSection {
    devices: Option<Vec<String>>,
    links: Option<Vec<String>>,
    runtimes: Option<Vec<String>>,
    max_nodes: Option<u32>,
    disaggregation: Option<bool>,
    verify_top: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CostSection {
    amortization_years: Option<f64>,
    electricity_usd_per_kwh: Option<f64>,
    utilization: Option<f64>,
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub model: String,
    pub weights: Vec<String>,
    pub kv_cache: String,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub requests_per_s: f64,
    pub ttft_p90_s: f64,
    pub tpot_p90_s: f64,
    pub budget_usd: Option<f64>,
    pub devices: Vec<String>,
    pub links: Option<Vec<String>>,
    pub runtimes: Vec<String>,
    pub max_nodes: u32,
    pub disaggregation: bool,
    pub verify_top: usize,
    pub cost: CostAssumptions,
}

pub const DEFAULT_MAX_NODES: u32 = 8;
pub const DEFAULT_VERIFY_TOP: usize = 3;

fn check_ids(
    file: &str,
    key: &str,
    ids: &[String],
    known: &[String],
    kind: CatalogKind,
) -> Result<(), InputError> {
    for id in ids {
        if !known.contains(id) {
            return Err(InputError::unknown_id(
                file,
                key,
                kind.noun(),
                id,
                nearest_ids(id, known.iter()),
            ));
        }
    }
    Ok(())
}

/// Parses and validates plan text `text` (display name `file`).
pub fn parse_plan(file: &str, text: &str, catalog: &Catalog) -> Result<Plan, InputError> {
    let raw: PlanFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
    let models: Vec<String> = catalog.models.keys().cloned().collect();
    check_ids(
        file,
        "model.preset",
        std::slice::from_ref(&raw.model.preset),
        &models,
        CatalogKind::Model,
    )?;
    let formats: Vec<String> = catalog.formats.keys().cloned().collect();
    check_ids(
        file,
        "model.weights",
        &raw.model.weights,
        &formats,
        CatalogKind::Format,
    )?;
    if raw.model.weights.is_empty() {
        return Err(InputError::invalid(
            file,
            "model.weights",
            "[]",
            "expected at least one weight format",
        ));
    }
    let kv_cache = raw
        .model
        .kv_cache
        .clone()
        .unwrap_or_else(|| "f16".to_string());
    check_ids(
        file,
        "model.kv_cache",
        std::slice::from_ref(&kv_cache),
        &formats,
        CatalogKind::Format,
    )?;
    let w = &raw.workload;
    if w.prompt_tokens == 0 || w.output_tokens == 0 {
        return Err(InputError::invalid(
            file,
            "workload",
            "0 tokens",
            "expected positive prompt_tokens and output_tokens",
        ));
    }
    let requests_per_s = match (w.requests_per_s, w.tokens_per_s) {
        (Some(r), None) if r > 0.0 => r,
        (None, Some(t)) if t > 0.0 => t / w.output_tokens as f64,
        _ => {
            return Err(InputError::invalid(
                file,
                "workload.requests_per_s",
                "missing or both",
                "expected exactly one of requests_per_s or tokens_per_s, > 0",
            ))
        }
    };
    if raw.slo.ttft_p90_s <= 0.0 || raw.slo.tpot_p90_s <= 0.0 {
        return Err(InputError::invalid(
            file,
            "slo",
            "<= 0",
            "expected positive ttft_p90_s and tpot_p90_s",
        ));
    }
    let search = raw.search.clone();
    let all_devices: Vec<String> = catalog.devices.keys().cloned().collect();
    let devices = search
        .as_ref()
        .and_then(|s| s.devices.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or(all_devices.clone());
    check_ids(
        file,
        "search.devices",
        &devices,
        &all_devices,
        CatalogKind::Device,
    )?;
    let all_links: Vec<String> = catalog.links.keys().cloned().collect();
    let links = search
        .as_ref()
        .and_then(|s| s.links.clone())
        .filter(|l| !l.is_empty());
    if let Some(l) = &links {
        check_ids(file, "search.links", l, &all_links, CatalogKind::Link)?;
    }
    let all_runtimes: Vec<String> = catalog
        .runtimes
        .keys()
        .filter(|r| *r != "ideal")
        .cloned()
        .collect();
    let runtimes = search
        .as_ref()
        .and_then(|s| s.runtimes.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or(all_runtimes);
    let known_runtimes: Vec<String> = catalog.runtimes.keys().cloned().collect();
    check_ids(
        file,
        "search.runtimes",
        &runtimes,
        &known_runtimes,
        CatalogKind::Runtime,
    )?;
    let max_nodes = search
        .as_ref()
        .and_then(|s| s.max_nodes)
        .unwrap_or(DEFAULT_MAX_NODES);
    if max_nodes == 0 {
        return Err(InputError::invalid(
            file,
            "search.max_nodes",
            0,
            "expected at least 1",
        ));
    }
    let mut cost = CostAssumptions::default();
    if let Some(c) = &raw.cost {
        if let Some(v) = c.amortization_years {
            cost.amortization_years = v;
        }
        if let Some(v) = c.electricity_usd_per_kwh {
            cost.electricity_usd_per_kwh = v;
        }
        if let Some(v) = c.utilization {
            cost.utilization = v;
        }
    }
    Ok(Plan {
        name: raw.name.clone().unwrap_or_else(|| file.to_string()),
        model: raw.model.preset.clone(),
        weights: raw.model.weights.clone(),
        kv_cache,
        prompt_tokens: w.prompt_tokens,
        output_tokens: w.output_tokens,
        requests_per_s,
        ttft_p90_s: raw.slo.ttft_p90_s,
        tpot_p90_s: raw.slo.tpot_p90_s,
        budget_usd: raw.budget.as_ref().and_then(|b| b.capex_usd),
        devices,
        links,
        runtimes,
        max_nodes,
        disaggregation: search
            .as_ref()
            .and_then(|s| s.disaggregation)
            .unwrap_or(true),
        verify_top: search
            .as_ref()
            .and_then(|s| s.verify_top)
            .unwrap_or(DEFAULT_VERIFY_TOP),
        cost,
    })
}
