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
use toml::Spanned;

use crate::catalog::{Catalog, CatalogKind};
use crate::cost::CostAssumptions;
use crate::error::InputError;
use crate::scenario::{CostSection, Ctx};

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
    preset: Spanned<String>,
    weights: Spanned<Vec<Spanned<String>>>,
    kv_cache: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadSection {
    prompt_tokens: Spanned<i64>,
    output_tokens: Spanned<i64>,
    requests_per_s: Option<Spanned<f64>>,
    tokens_per_s: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SloSection {
    ttft_p90_s: Spanned<f64>,
    tpot_p90_s: Spanned<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSection {
    capex_usd: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchSection {
    devices: Option<Vec<Spanned<String>>>,
    links: Option<Vec<Spanned<String>>>,
    runtimes: Option<Vec<Spanned<String>>>,
    max_nodes: Option<Spanned<i64>>,
    disaggregation: Option<bool>,
    verify_top: Option<Spanned<i64>>,
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

impl Ctx<'_> {
    /// `id`, checked against the catalog's `kind`.
    fn id(&self, key: &str, kind: CatalogKind, id: &Spanned<String>) -> Result<String, InputError> {
        if self.catalog().has(kind, id.get_ref()) {
            Ok(id.get_ref().clone())
        } else {
            Err(self.unknown(key, kind, id))
        }
    }

    /// The ids in `list`, each checked against the catalog's `kind`.
    fn ids(
        &self,
        key: &str,
        kind: CatalogKind,
        list: &[Spanned<String>],
    ) -> Result<Vec<String>, InputError> {
        list.iter().map(|id| self.id(key, kind, id)).collect()
    }
}

/// Parses and validates plan text `text` (display name `file`); an error names the
/// file, the line and column of the value, the key and what was expected, as a
/// scenario's does.
pub fn parse_plan(file: &str, text: &str, catalog: &Catalog) -> Result<Plan, InputError> {
    let raw: PlanFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
    let ctx = Ctx::new(file, text, catalog);
    let model = ctx.id("model.preset", CatalogKind::Model, &raw.model.preset)?;
    let weights = ctx.ids(
        "model.weights",
        CatalogKind::Format,
        raw.model.weights.get_ref(),
    )?;
    if weights.is_empty() {
        return Err(ctx.invalid(
            "model.weights",
            &Spanned::new(raw.model.weights.span(), "[]"),
            "expected at least one weight format",
        ));
    }
    let kv_cache = match &raw.model.kv_cache {
        Some(id) => ctx.id("model.kv_cache", CatalogKind::Format, id)?,
        None => "f16".to_string(),
    };
    let w = &raw.workload;
    let prompt_tokens = ctx.positive_int("workload.prompt_tokens", &w.prompt_tokens)?;
    let output_tokens = ctx.positive_int("workload.output_tokens", &w.output_tokens)?;
    let requests_per_s = match (&w.requests_per_s, &w.tokens_per_s) {
        (Some(r), None) => ctx.positive_f64("workload.requests_per_s", r)?,
        (None, Some(t)) => ctx.positive_f64("workload.tokens_per_s", t)? / output_tokens as f64,
        (Some(_), Some(t)) => {
            return Err(ctx.invalid(
                "workload.tokens_per_s",
                t,
                "expected either requests_per_s or tokens_per_s, not both",
            ))
        }
        (None, None) => {
            return Err(InputError::invalid(
                file,
                "workload.requests_per_s",
                "missing",
                "expected one of requests_per_s or tokens_per_s, > 0",
            ))
        }
    };
    let ttft_p90_s = ctx.positive_f64("slo.ttft_p90_s", &raw.slo.ttft_p90_s)?;
    let tpot_p90_s = ctx.positive_f64("slo.tpot_p90_s", &raw.slo.tpot_p90_s)?;
    let budget_usd = match raw.budget.as_ref().and_then(|b| b.capex_usd.as_ref()) {
        Some(b) => Some(ctx.positive_f64("budget.capex_usd", b)?),
        None => None,
    };
    let search = raw.search.as_ref();
    // An absent or empty list searches everything the catalog has.
    fn listed(list: Option<&Vec<Spanned<String>>>) -> Option<&Vec<Spanned<String>>> {
        list.filter(|l| !l.is_empty())
    }
    let devices = match listed(search.and_then(|s| s.devices.as_ref())) {
        Some(l) => ctx.ids("search.devices", CatalogKind::Device, l)?,
        None => catalog.devices.keys().cloned().collect(),
    };
    let links = match listed(search.and_then(|s| s.links.as_ref())) {
        Some(l) => Some(ctx.ids("search.links", CatalogKind::Link, l)?),
        None => None,
    };
    let runtimes = match listed(search.and_then(|s| s.runtimes.as_ref())) {
        Some(l) => ctx.ids("search.runtimes", CatalogKind::Runtime, l)?,
        // By default every runtime but `ideal`, the roofline without losses.
        None => catalog
            .runtimes
            .keys()
            .filter(|r| *r != "ideal")
            .cloned()
            .collect(),
    };
    let max_nodes = match search.and_then(|s| s.max_nodes.as_ref()) {
        Some(n) => u32::try_from(ctx.positive_int("search.max_nodes", n)?)
            .map_err(|_| ctx.invalid("search.max_nodes", n, "expected at most 2^32 - 1"))?,
        None => DEFAULT_MAX_NODES,
    };
    let verify_top = match search.and_then(|s| s.verify_top.as_ref()) {
        Some(n) if *n.get_ref() >= 0 => *n.get_ref() as usize,
        Some(n) => return Err(ctx.invalid("search.verify_top", n, "expected an integer >= 0")),
        None => DEFAULT_VERIFY_TOP,
    };
    Ok(Plan {
        name: raw.name.clone().unwrap_or_else(|| file.to_string()),
        model,
        weights,
        kv_cache,
        prompt_tokens,
        output_tokens,
        requests_per_s,
        ttft_p90_s,
        tpot_p90_s,
        budget_usd,
        devices,
        links,
        runtimes,
        max_nodes,
        disaggregation: search.and_then(|s| s.disaggregation).unwrap_or(true),
        verify_top,
        cost: ctx.cost(raw.cost.as_ref())?,
    })
}
