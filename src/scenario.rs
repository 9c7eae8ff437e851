//! The scenario file (the contract in the README's "Scenario file" section), parsed in
//! two layers: raw serde structs that reject unknown keys, then a validated
//! [`Scenario`] whose ids are resolved against the catalog and whose numbers obey
//! their rules (positive token counts, degrees that divide the model).

use serde::Deserialize;
use toml::Spanned;

use crate::catalog::{Catalog, CatalogKind};
use crate::cost::CostAssumptions;
use crate::error::{InputError, Location, Origin};
use crate::formats::WeightFormat;
use crate::hardware::{Device, Link};
use crate::model::Model;
use crate::runtime::Runtime;
use crate::serving::time::ARRIVAL_LIMIT_S;

mod layout;
use layout::validate_layout;
pub use layout::{AttentionLayout, ClusterLayout, ExpertPlacement, PipelineSplit, WiredMemory};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Option<String>,
    pub model: ModelSection,
    pub runtime: Option<RuntimeSection>,
    pub cluster: ClusterSection,
    pub parallelism: Option<ParallelismSection>,
    pub disaggregation: Option<DisaggregationSection>,
    pub workload: WorkloadSection,
    pub cost: Option<CostSection>,
    /// Serving mode only: how each instance batches and admits requests.
    pub scheduler: Option<SchedulerSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub preset: Spanned<String>,
    pub weights: Spanned<String>,
    pub kv_cache: Option<Spanned<String>>,
    /// Effective bits per weight of the model file (GGUF files mix tensor types, and
    /// llama.cpp prints the file's average); overrides the format's nominal figure.
    pub bits_per_weight: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    pub preset: Option<Spanned<String>>,
    pub max_batch: Option<Spanned<i64>>,
    /// Tokens per sequence a prefill pass takes at most (llama.cpp `-ub`); overrides
    /// the runtime profile's `prefill_chunk_tokens`.
    pub prefill_chunk_tokens: Option<Spanned<i64>>,
    /// Apple Silicon memory management: `"driver"` (Metal's default: the driver wires
    /// weight buffers as command buffers use them) or `"resident"` (the runtime keeps
    /// the weights wired). See `analytical::wiring`.
    pub wired_memory: Option<Spanned<String>>,
    /// The wired-memory limit per node under `"resident"` (GB); default: the node's
    /// memory less the OS reserve.
    pub wired_limit_gb: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub groups: Vec<GroupSection>,
    pub network: Option<NetworkSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSection {
    pub name: Option<Spanned<String>>,
    pub device: Spanned<String>,
    pub count: Option<Spanned<i64>>,
    pub memory_gb: Option<Spanned<f64>>,
    /// Optional per-group runtime, overriding `[runtime] preset`.
    pub runtime: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    pub link: Spanned<String>,
    pub latency_us: Option<Spanned<f64>>,
    pub bandwidth_gb_s: Option<Spanned<f64>>,
    /// `"switch"` (default), `"direct"` (a cable per pair) or `"ring"`.
    pub topology: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelismSection {
    pub tensor: Option<Spanned<i64>>,
    pub pipeline: Option<Spanned<i64>>,
    pub expert: Option<Spanned<i64>>,
    /// `"even"` (default), `"replicated"` (the study's halves on groups of nodes), or
    /// an explicit list of expert ids per expert-parallel node.
    pub expert_placement: Option<Spanned<toml::Value>>,
    /// `"replicated"` (default: every node runs attention and routing, as the study
    /// does) or `"split"` (each node runs attention for its share of the sequences).
    pub attention: Option<Spanned<String>>,
    /// `"even"` (default) or `"memory"` (layers in proportion to node memory, as exo).
    pub pipeline_split: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisaggregationSection {
    pub prefill: Spanned<String>,
    pub decode: Spanned<String>,
    pub kv_transfer: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSection {
    pub prompt_tokens: Spanned<i64>,
    pub output_tokens: Spanned<i64>,
    pub cached_prompt_tokens: Option<Spanned<i64>>,
    pub batch: Option<Spanned<i64>>,
    pub requests: Option<Spanned<i64>>,
    pub arrival_rate_per_s: Option<Spanned<f64>>,
    pub seed: Option<Spanned<i64>>,
    pub trace: Option<Spanned<String>>,
    /// Serving mode: time-to-first-token objective for goodput.
    pub ttft_slo_s: Option<Spanned<f64>>,
    /// Serving mode: time-per-output-token objective for goodput.
    pub tpot_slo_s: Option<Spanned<f64>>,
    /// Serving mode: how prompt lengths vary around `prompt_tokens`.
    pub prompt_distribution: Option<DistributionSection>,
    /// Serving mode: how output lengths vary around `output_tokens`.
    pub output_distribution: Option<DistributionSection>,
}

/// `{ kind = "fixed" | "uniform" | "exponential" | "lognormal", min, max, sigma }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionSection {
    pub kind: Spanned<String>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub sigma: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSection {
    /// "continuous" (default) or "static".
    pub batching: Option<Spanned<String>>,
    /// Mix prefill chunks into decode iterations (Sarathi, vLLM V1) instead of
    /// running prefill-only iterations first.
    pub chunked_prefill: Option<Spanned<bool>>,
    /// Token budget of one iteration; default the runtime's `prefill_chunk_tokens`.
    pub max_batch_tokens: Option<Spanned<i64>>,
    /// Tokens per KV-cache block (paged attention); default 16.
    pub kv_block_tokens: Option<Spanned<i64>>,
    /// "round_robin" (default) or "least_loaded".
    pub router: Option<Spanned<String>>,
    /// "prompt" (default): KV blocks for the prompt at admission, more as decoding
    /// grows, preemption when they run out (vLLM). "full": blocks for prompt and all
    /// output tokens at admission, never preempting (TensorRT-LLM's
    /// GUARANTEED_NO_EVICT).
    pub admission: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSection {
    pub amortization_years: Option<Spanned<f64>>,
    pub electricity_usd_per_kwh: Option<Spanned<f64>>,
    pub utilization: Option<Spanned<f64>>,
}

// ---------------------------------------------------------------------------------

/// A group of identical nodes.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub device: Device,
    pub count: u32,
    pub memory_gb: f64,
    pub price_usd: Option<f64>,
    pub runtime: Runtime,
}

#[derive(Debug, Clone)]
pub struct Network {
    pub link: Link,
    pub latency_us: f64,
    pub bandwidth_gb_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    pub tensor: u32,
    pub pipeline: u32,
    pub expert: u32,
}

impl Parallelism {
    pub fn product(&self) -> u32 {
        self.tensor * self.pipeline * self.expert
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvTransfer {
    Layerwise,
    Bulk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disaggregation {
    pub prefill_group: usize,
    pub decode_group: usize,
    pub kv_transfer: KvTransfer,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    pub requests: u64,
    pub arrival_rate_per_s: Option<f64>,
    /// Trace path as written (relative to the scenario file); the caller reads it.
    pub trace: Option<String>,
    pub ttft_slo_s: Option<f64>,
    pub tpot_slo_s: Option<f64>,
    pub prompt_distribution: LengthDistribution,
    pub output_distribution: LengthDistribution,
    pub scheduler: SchedulerConfig,
}

/// How a token count varies from request to request. The mean is the workload's
/// `prompt_tokens` or `output_tokens` for `Exponential` and `LogNormal`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthDistribution {
    Fixed,
    /// Uniform integers in `min..=max`.
    Uniform {
        min: u64,
        max: u64,
    },
    Exponential,
    /// Log-normal with the given sigma of the underlying normal.
    LogNormal {
        sigma: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Requests join and leave the running batch at every iteration.
    Continuous,
    /// A batch of `workload.batch` requests runs to completion before the next starts.
    Static,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterPolicy {
    RoundRobin,
    /// The instance with the fewest requests assigned and not yet finished.
    LeastLoaded,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerConfig {
    pub batching: Batching,
    pub chunked_prefill: bool,
    pub max_batch_tokens: Option<u64>,
    pub kv_block_tokens: u64,
    pub router: RouterPolicy,
    /// Reserve KV blocks for the whole output at admission.
    pub reserve_output: bool,
}

pub const DEFAULT_KV_BLOCK_TOKENS: u64 = 16;

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            batching: Batching::Continuous,
            chunked_prefill: false,
            max_batch_tokens: None,
            kv_block_tokens: DEFAULT_KV_BLOCK_TOKENS,
            router: RouterPolicy::RoundRobin,
            reserve_output: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub cached_prompt_tokens: u64,
    pub batch: u64,
    pub serving: Option<Serving>,
    pub seed: u64,
}

pub const DEFAULT_SEED: u64 = 7;

/// Requests a serving run generates when `workload.requests` is not set.
pub const DEFAULT_REQUESTS: u64 = 1000;

/// A validated scenario: every id resolved, every number within its rules.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub model: Model,
    pub weights: WeightFormat,
    pub kv_cache: WeightFormat,
    pub runtime: Runtime,
    pub max_batch: u32,
    pub groups: Vec<Group>,
    pub network: Option<Network>,
    pub parallelism: Parallelism,
    /// Placement, attention layout, topology and memory management of a cluster.
    pub layout: ClusterLayout,
    pub disaggregation: Option<Disaggregation>,
    pub workload: Workload,
    pub cost: CostAssumptions,
}

/// Resolves spans to line and column in one scenario text (or plan text: the plan
/// file's checks are these).
pub(crate) struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    catalog: &'a Catalog,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str, catalog: &'a Catalog) -> Ctx<'a> {
        Ctx {
            file,
            text,
            catalog,
        }
    }

    pub(crate) fn catalog(&self) -> &'a Catalog {
        self.catalog
    }
}

impl Ctx<'_> {
    fn origin<T>(&self, spanned: &Spanned<T>) -> Origin {
        Origin {
            file: self.file.to_string(),
            location: Some(Location::of_offset(self.text, spanned.span().start)),
        }
    }

    pub(crate) fn invalid<T: std::fmt::Display>(
        &self,
        key: &str,
        spanned: &Spanned<T>,
        expected: impl Into<String>,
    ) -> InputError {
        InputError::InvalidValue {
            origin: self.origin(spanned),
            key: key.to_string(),
            value: spanned.get_ref().to_string(),
            expected: expected.into(),
        }
    }

    pub(crate) fn unknown(
        &self,
        key: &str,
        kind: CatalogKind,
        spanned: &Spanned<String>,
    ) -> InputError {
        InputError::UnknownId {
            origin: Box::new(self.origin(spanned)),
            key: key.to_string(),
            kind: kind.noun(),
            value: spanned.get_ref().clone(),
            suggestions: self.catalog.suggestions(kind, spanned.get_ref()),
        }
    }

    pub(crate) fn positive_int(&self, key: &str, value: &Spanned<i64>) -> Result<u64, InputError> {
        if *value.get_ref() > 0 {
            Ok(*value.get_ref() as u64)
        } else {
            Err(self.invalid(key, value, "expected a positive integer"))
        }
    }

    pub(crate) fn positive_f64(&self, key: &str, value: &Spanned<f64>) -> Result<f64, InputError> {
        let v = *value.get_ref();
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.invalid(key, value, "expected a number > 0"))
        }
    }

    /// The `[cost]` table's assumptions, each checked (defaults for what is absent).
    pub(crate) fn cost(&self, raw: Option<&CostSection>) -> Result<CostAssumptions, InputError> {
        let mut cost = CostAssumptions::default();
        let Some(c) = raw else {
            return Ok(cost);
        };
        if let Some(v) = &c.amortization_years {
            cost.amortization_years = self.positive_f64("cost.amortization_years", v)?;
        }
        if let Some(v) = &c.electricity_usd_per_kwh {
            let x = *v.get_ref();
            if !(x.is_finite() && x >= 0.0) {
                return Err(self.invalid(
                    "cost.electricity_usd_per_kwh",
                    v,
                    "expected a number >= 0",
                ));
            }
            cost.electricity_usd_per_kwh = x;
        }
        if let Some(v) = &c.utilization {
            let x = *v.get_ref();
            if !(x > 0.0 && x <= 1.0) {
                return Err(self.invalid("cost.utilization", v, "expected a fraction in (0, 1]"));
            }
            cost.utilization = x;
        }
        Ok(cost)
    }

    fn degree(&self, key: &str, value: &Option<Spanned<i64>>) -> Result<u32, InputError> {
        match value {
            None => Ok(1),
            Some(v) => {
                let n = self.positive_int(key, v)?;
                u32::try_from(n).map_err(|_| self.invalid(key, v, "expected at most 2^32 - 1"))
            }
        }
    }

    fn format(&self, key: &str, id: &Spanned<String>) -> Result<WeightFormat, InputError> {
        self.catalog
            .formats
            .get(id.get_ref())
            .cloned()
            .ok_or_else(|| self.unknown(key, CatalogKind::Format, id))
    }

    fn runtime(&self, key: &str, id: &Spanned<String>) -> Result<Runtime, InputError> {
        self.catalog
            .runtimes
            .get(id.get_ref())
            .cloned()
            .ok_or_else(|| self.unknown(key, CatalogKind::Runtime, id))
    }
}

impl Ctx<'_> {
    fn distribution(
        &self,
        key: &str,
        raw: &Option<DistributionSection>,
        context_cap: u64,
    ) -> Result<LengthDistribution, InputError> {
        let Some(d) = raw else {
            return Ok(LengthDistribution::Fixed);
        };
        let unused = |name: &str, present: bool| -> Result<(), InputError> {
            if present {
                Err(self.invalid(
                    key,
                    &d.kind,
                    format!("`{name}` does not apply to kind \"{}\"", d.kind.get_ref()),
                ))
            } else {
                Ok(())
            }
        };
        match d.kind.get_ref().as_str() {
            "fixed" | "exponential" => {
                unused("min", d.min.is_some())?;
                unused("max", d.max.is_some())?;
                unused("sigma", d.sigma.is_some())?;
                Ok(if d.kind.get_ref() == "fixed" {
                    LengthDistribution::Fixed
                } else {
                    LengthDistribution::Exponential
                })
            }
            "uniform" => {
                unused("sigma", d.sigma.is_some())?;
                let (Some(min), Some(max)) = (&d.min, &d.max) else {
                    return Err(self.invalid(
                        key,
                        &d.kind,
                        "kind \"uniform\" needs `min` and `max`",
                    ));
                };
                let lo = self.positive_int(&format!("{key}.min"), min)?;
                let hi = self.positive_int(&format!("{key}.max"), max)?;
                if hi < lo || hi > context_cap {
                    return Err(self.invalid(
                        &format!("{key}.max"),
                        max,
                        format!("expected min <= max <= the model's context ({context_cap})"),
                    ));
                }
                Ok(LengthDistribution::Uniform { min: lo, max: hi })
            }
            "lognormal" => {
                unused("min", d.min.is_some())?;
                unused("max", d.max.is_some())?;
                let Some(sigma) = &d.sigma else {
                    return Err(self.invalid(key, &d.kind, "kind \"lognormal\" needs `sigma`"));
                };
                Ok(LengthDistribution::LogNormal {
                    sigma: self.positive_f64(&format!("{key}.sigma"), sigma)?,
                })
            }
            _ => Err(self.invalid(
                &format!("{key}.kind"),
                &d.kind,
                "expected \"fixed\", \"uniform\", \"exponential\" or \"lognormal\"",
            )),
        }
    }

    fn scheduler(&self, raw: Option<&SchedulerSection>) -> Result<SchedulerConfig, InputError> {
        let mut config = SchedulerConfig::default();
        let Some(s) = raw else {
            return Ok(config);
        };
        if let Some(b) = &s.batching {
            config.batching = match b.get_ref().as_str() {
                "continuous" => Batching::Continuous,
                "static" => Batching::Static,
                _ => {
                    return Err(self.invalid(
                        "scheduler.batching",
                        b,
                        "expected \"continuous\" or \"static\"",
                    ))
                }
            };
        }
        if let Some(c) = &s.chunked_prefill {
            config.chunked_prefill = *c.get_ref();
        }
        if let Some(t) = &s.max_batch_tokens {
            config.max_batch_tokens = Some(self.positive_int("scheduler.max_batch_tokens", t)?);
        }
        if let Some(t) = &s.kv_block_tokens {
            config.kv_block_tokens = self.positive_int("scheduler.kv_block_tokens", t)?;
        }
        if let Some(r) = &s.router {
            config.router = match r.get_ref().as_str() {
                "round_robin" => RouterPolicy::RoundRobin,
                "least_loaded" => RouterPolicy::LeastLoaded,
                _ => {
                    return Err(self.invalid(
                        "scheduler.router",
                        r,
                        "expected \"round_robin\" or \"least_loaded\"",
                    ))
                }
            };
        }
        if let Some(a) = &s.admission {
            config.reserve_output = match a.get_ref().as_str() {
                "prompt" => false,
                "full" => true,
                _ => {
                    return Err(self.invalid(
                        "scheduler.admission",
                        a,
                        "expected \"prompt\" or \"full\"",
                    ))
                }
            };
        }
        Ok(config)
    }
}

impl Scenario {
    /// Parses and validates scenario text `text` (display name `file`).
    pub fn from_toml(file: &str, text: &str, catalog: &Catalog) -> Result<Scenario, InputError> {
        let raw: ScenarioFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
        Scenario::validate(file, text, &raw, catalog)
    }

    pub fn validate(
        file: &str,
        text: &str,
        raw: &ScenarioFile,
        catalog: &Catalog,
    ) -> Result<Scenario, InputError> {
        let ctx = Ctx {
            file,
            text,
            catalog,
        };

        let model = catalog
            .models
            .get(raw.model.preset.get_ref())
            .cloned()
            .ok_or_else(|| ctx.unknown("model.preset", CatalogKind::Model, &raw.model.preset))?;
        let mut weights = ctx.format("model.weights", &raw.model.weights)?;
        if let Some(bits) = &raw.model.bits_per_weight {
            weights.bits_per_weight = ctx.positive_f64("model.bits_per_weight", bits)?;
        }
        let kv_cache = match &raw.model.kv_cache {
            Some(id) => {
                let format = ctx.format("model.kv_cache", id)?;
                if !format.kv_cache {
                    return Err(ctx.invalid(
                        "model.kv_cache",
                        id,
                        "expected a format that can hold the KV cache (f32, f16, bf16, fp8, q8_0, q4_0)",
                    ));
                }
                format
            }
            None => {
                catalog
                    .formats
                    .get("f16")
                    .cloned()
                    .ok_or_else(|| InputError::InvalidValue {
                        origin: Origin {
                            file: file.to_string(),
                            location: None,
                        },
                        key: "model.kv_cache".to_string(),
                        value: "f16 (default)".to_string(),
                        expected: "the catalog to define format `f16`".to_string(),
                    })?
            }
        };

        let runtime_section = raw.runtime.as_ref();
        let mut runtime =
            match runtime_section.and_then(|r| r.preset.as_ref()) {
                Some(id) => ctx.runtime("runtime.preset", id)?,
                None => catalog.runtimes.get("ideal").cloned().ok_or_else(|| {
                    InputError::InvalidValue {
                        origin: Origin {
                            file: file.to_string(),
                            location: None,
                        },
                        key: "runtime.preset".to_string(),
                        value: "ideal (default)".to_string(),
                        expected: "the catalog to define runtime `ideal`".to_string(),
                    }
                })?,
            };
        let chunk_override = match runtime_section.and_then(|r| r.prefill_chunk_tokens.as_ref()) {
            Some(c) => Some(ctx.positive_int("runtime.prefill_chunk_tokens", c)? as f64),
            None => None,
        };
        if chunk_override.is_some() {
            runtime.prefill_chunk_tokens = chunk_override;
        }
        let max_batch = match runtime_section.and_then(|r| r.max_batch.as_ref()) {
            Some(v) => u32::try_from(ctx.positive_int("runtime.max_batch", v)?)
                .map_err(|_| ctx.invalid("runtime.max_batch", v, "expected at most 2^32 - 1"))?,
            None => runtime.default_max_batch,
        };

        if raw.cluster.groups.is_empty() {
            return Err(InputError::InvalidValue {
                origin: Origin {
                    file: file.to_string(),
                    location: None,
                },
                key: "cluster.groups".to_string(),
                value: "[]".to_string(),
                expected: "expected at least one [[cluster.groups]]".to_string(),
            });
        }
        let mut groups: Vec<Group> = Vec::new();
        for g in &raw.cluster.groups {
            let device = catalog
                .devices
                .get(g.device.get_ref())
                .cloned()
                .ok_or_else(|| {
                    ctx.unknown("cluster.groups.device", CatalogKind::Device, &g.device)
                })?;
            let count = match &g.count {
                Some(c) => {
                    u32::try_from(ctx.positive_int("cluster.groups.count", c)?).map_err(|_| {
                        ctx.invalid("cluster.groups.count", c, "expected a smaller count")
                    })?
                }
                None => 1,
            };
            let variant = match &g.memory_gb {
                Some(m) => {
                    let gb = ctx.positive_f64("cluster.groups.memory_gb", m)?;
                    device.variant(Some(gb)).ok_or_else(|| {
                        let offered: Vec<String> = device
                            .variants
                            .iter()
                            .map(|v| format!("{}", v.capacity_gb))
                            .collect();
                        ctx.invalid(
                            "cluster.groups.memory_gb",
                            m,
                            format!(
                                "expected a memory size `{}` is sold with: {} GB",
                                device.id,
                                offered.join(", ")
                            ),
                        )
                    })?
                }
                None => device
                    .variant(None)
                    .expect("validated devices have a variant"),
            };
            let group_runtime = match &g.runtime {
                Some(id) => {
                    let mut r = ctx.runtime("cluster.groups.runtime", id)?;
                    if chunk_override.is_some() {
                        r.prefill_chunk_tokens = chunk_override;
                    }
                    r
                }
                None => runtime.clone(),
            };
            if group_runtime.for_family(&device.family).is_none() {
                let (key, spanned) =
                    match (&g.runtime, runtime_section.and_then(|r| r.preset.as_ref())) {
                        (Some(id), _) => ("cluster.groups.runtime", id),
                        (None, Some(id)) => ("runtime.preset", id),
                        (None, None) => ("cluster.groups.device", &g.device),
                    };
                return Err(ctx.invalid(
                    key,
                    spanned,
                    format!(
                        "runtime `{}` has no profile for device family `{}` (device `{}`); it has: {}",
                        group_runtime.id,
                        device.family,
                        device.id,
                        group_runtime.families.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if let Err(why) = group_runtime.runs(&weights, &device) {
                return Err(ctx.invalid("model.weights", &raw.model.weights, why));
            }
            let name = g
                .name
                .as_ref()
                .map_or_else(|| device.id.clone(), |n| n.get_ref().clone());
            if let Some(existing) = groups.iter().find(|other| other.name == name) {
                let spanned = g.name.as_ref().unwrap_or(&g.device);
                return Err(ctx.invalid(
                    "cluster.groups.name",
                    spanned,
                    format!(
                        "expected a unique group name (`{}` is used twice)",
                        existing.name
                    ),
                ));
            }
            groups.push(Group {
                name,
                device,
                count,
                memory_gb: variant.capacity_gb,
                price_usd: variant.price_usd,
                runtime: group_runtime,
            });
        }

        let network = match &raw.cluster.network {
            Some(n) => {
                let link = catalog
                    .links
                    .get(n.link.get_ref())
                    .cloned()
                    .ok_or_else(|| {
                        ctx.unknown("cluster.network.link", CatalogKind::Link, &n.link)
                    })?;
                let latency_us = match &n.latency_us {
                    Some(v) => {
                        let x = *v.get_ref();
                        if !(x.is_finite() && x >= 0.0) {
                            return Err(ctx.invalid(
                                "cluster.network.latency_us",
                                v,
                                "expected a number >= 0",
                            ));
                        }
                        x
                    }
                    None => link.latency_us,
                };
                let bandwidth_gb_s = match &n.bandwidth_gb_s {
                    Some(v) => ctx.positive_f64("cluster.network.bandwidth_gb_s", v)?,
                    None => link.bandwidth_gb_s,
                };
                Some(Network {
                    link,
                    latency_us,
                    bandwidth_gb_s,
                })
            }
            None => None,
        };

        let p = raw.parallelism.as_ref();
        let parallelism = Parallelism {
            tensor: ctx.degree("parallelism.tensor", &p.and_then(|p| p.tensor.clone()))?,
            pipeline: ctx.degree("parallelism.pipeline", &p.and_then(|p| p.pipeline.clone()))?,
            expert: ctx.degree("parallelism.expert", &p.and_then(|p| p.expert.clone()))?,
        };
        if let Some(t) = p.and_then(|p| p.tensor.as_ref()) {
            let degree = parallelism.tensor as u64;
            let heads = model.attention_heads;
            let kv = model.kv_heads;
            if heads % degree != 0
                || (model.mla.is_none() && kv % degree != 0 && !degree.is_multiple_of(kv))
            {
                return Err(ctx.invalid(
                    "parallelism.tensor",
                    t,
                    format!(
                        "expected a degree that divides the {heads} attention heads and the {kv} KV heads of `{}`",
                        model.id
                    ),
                ));
            }
        }
        if let Some(pp) = p.and_then(|p| p.pipeline.as_ref()) {
            if parallelism.pipeline > model.layers {
                return Err(ctx.invalid(
                    "parallelism.pipeline",
                    pp,
                    format!(
                        "expected at most one stage per layer (`{}` has {} layers)",
                        model.id, model.layers
                    ),
                ));
            }
        }
        if let Some(ep) = p.and_then(|p| p.expert.as_ref()) {
            match model.moe {
                None if parallelism.expert > 1 => {
                    return Err(ctx.invalid(
                        "parallelism.expert",
                        ep,
                        format!(
                            "expected 1: `{}` is not a mixture-of-experts model",
                            model.id
                        ),
                    ))
                }
                Some(moe) if parallelism.expert > moe.experts => {
                    return Err(ctx.invalid(
                        "parallelism.expert",
                        ep,
                        format!(
                            "expected at most the {} experts of `{}`",
                            moe.experts, model.id
                        ),
                    ))
                }
                _ => {}
            }
        }

        let layout = validate_layout(&ctx, raw, &model, parallelism)?;

        let disaggregation = match &raw.disaggregation {
            Some(d) => {
                let find = |key: &str, name: &Spanned<String>| {
                    groups
                        .iter()
                        .position(|g| &g.name == name.get_ref())
                        .ok_or_else(|| {
                            ctx.invalid(
                                key,
                                name,
                                format!(
                                    "expected the name of a cluster group: {}",
                                    groups
                                        .iter()
                                        .map(|g| g.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })
                };
                let prefill_group = find("disaggregation.prefill", &d.prefill)?;
                let decode_group = find("disaggregation.decode", &d.decode)?;
                if prefill_group == decode_group {
                    return Err(ctx.invalid(
                        "disaggregation.decode",
                        &d.decode,
                        "expected a group other than the prefill group",
                    ));
                }
                if network.is_none() {
                    return Err(ctx.invalid(
                        "disaggregation.prefill",
                        &d.prefill,
                        "expected a [cluster.network] section naming the link that carries the KV cache",
                    ));
                }
                let kv_transfer = match &d.kv_transfer {
                    None => KvTransfer::Layerwise,
                    Some(k) => match k.get_ref().as_str() {
                        "layerwise" => KvTransfer::Layerwise,
                        "bulk" => KvTransfer::Bulk,
                        _ => {
                            return Err(ctx.invalid(
                                "disaggregation.kv_transfer",
                                k,
                                "expected \"layerwise\" or \"bulk\"",
                            ))
                        }
                    },
                };
                Some(Disaggregation {
                    prefill_group,
                    decode_group,
                    kv_transfer,
                })
            }
            None => None,
        };

        let degrees = parallelism.product();
        let used_groups: Vec<usize> = match &disaggregation {
            Some(d) => vec![d.prefill_group, d.decode_group],
            None => (0..groups.len()).collect(),
        };
        let per_group = disaggregation.is_some() || groups.len() == 1;
        let consistent = if per_group {
            used_groups
                .iter()
                .all(|&i| groups[i].count.is_multiple_of(degrees))
        } else {
            groups.iter().map(|g| g.count).sum::<u32>() == degrees
        };
        if !consistent {
            let nodes: Vec<String> = used_groups
                .iter()
                .map(|&i| format!("`{}` has {}", groups[i].name, groups[i].count))
                .collect();
            let rule = if per_group {
                "each group's node count to be a multiple of"
            } else {
                "the total node count to equal"
            };
            return Err(InputError::InvalidValue {
                origin: Origin {
                    file: file.to_string(),
                    location: raw
                        .parallelism
                        .as_ref()
                        .and_then(|p| {
                            p.tensor
                                .as_ref()
                                .or(p.pipeline.as_ref())
                                .or(p.expert.as_ref())
                        })
                        .map(|s| Location::of_offset(text, s.span().start)),
                },
                key: "parallelism".to_string(),
                value: format!(
                    "tensor {} x pipeline {} x expert {} = {degrees}",
                    parallelism.tensor, parallelism.pipeline, parallelism.expert
                ),
                expected: format!(
                    "expected {rule} the product of the degrees ({})",
                    nodes.join(", ")
                ),
            });
        }

        let w = &raw.workload;
        let prompt_tokens = ctx.positive_int("workload.prompt_tokens", &w.prompt_tokens)?;
        let output_tokens = ctx.positive_int("workload.output_tokens", &w.output_tokens)?;
        let cached_prompt_tokens = match &w.cached_prompt_tokens {
            Some(c) => {
                let v = *c.get_ref();
                if v < 0 || v as u64 >= prompt_tokens {
                    return Err(ctx.invalid(
                        "workload.cached_prompt_tokens",
                        c,
                        format!(
                            "expected 0 <= cached_prompt_tokens < prompt_tokens ({prompt_tokens})"
                        ),
                    ));
                }
                v as u64
            }
            None => 0,
        };
        let batch = match &w.batch {
            Some(b) => ctx.positive_int("workload.batch", b)?,
            None => 1,
        };
        if prompt_tokens + output_tokens > model.max_context {
            // Name the key that is over on its own: the prompt where it alone is too long.
            let (key, value) = if prompt_tokens >= model.max_context {
                ("workload.prompt_tokens", &w.prompt_tokens)
            } else {
                ("workload.output_tokens", &w.output_tokens)
            };
            return Err(ctx.invalid(
                key,
                value,
                format!(
                    "expected prompt_tokens + output_tokens <= the {} tokens of context `{}` supports",
                    model.max_context, model.id
                ),
            ));
        }
        let arrival_rate_per_s = match &w.arrival_rate_per_s {
            Some(r) => Some(ctx.positive_f64("workload.arrival_rate_per_s", r)?),
            None => None,
        };
        let requests = match &w.requests {
            Some(r) => Some(ctx.positive_int("workload.requests", r)?),
            None => None,
        };
        let trace = w.trace.as_ref().map(|t| t.get_ref().clone());
        if let (Some(rate), Some(r), None) = (arrival_rate_per_s, &w.arrival_rate_per_s, &trace) {
            let n = requests.unwrap_or(DEFAULT_REQUESTS) as f64;
            if n / rate > ARRIVAL_LIMIT_S {
                return Err(ctx.invalid(
                    "workload.arrival_rate_per_s",
                    r,
                    format!(
                        "expected at least {:e} per second: {n} requests at this rate arrive \
                         over {:.3e} s, past the simulator's clock limit of {ARRIVAL_LIMIT_S:e} s",
                        n / ARRIVAL_LIMIT_S,
                        n / rate
                    ),
                ));
            }
        }
        let serving_mode = requests.is_some() || arrival_rate_per_s.is_some() || trace.is_some();
        // A static batch is the user's to choose: a runtime's default cap (mlx: 1, the
        // serving default) does not shrink it, but a cap the scenario sets does.
        let explicit_cap = runtime_section.is_some_and(|r| r.max_batch.is_some());
        if let Some(b) = w.batch.as_ref().filter(|_| explicit_cap && !serving_mode) {
            if batch > u64::from(max_batch) {
                return Err(ctx.invalid(
                    "workload.batch",
                    b,
                    format!("expected at most runtime.max_batch ({max_batch})"),
                ));
            }
        }
        let serving = if serving_mode {
            let slo = |key: &str, v: &Option<Spanned<f64>>| match v {
                Some(v) => ctx.positive_f64(key, v).map(Some),
                None => Ok(None),
            };
            let context_cap = model.max_context;
            Some(Serving {
                // A trace runs all its rows unless `requests` caps them.
                requests: requests.unwrap_or(if trace.is_some() {
                    u64::MAX
                } else {
                    DEFAULT_REQUESTS
                }),
                arrival_rate_per_s,
                trace,
                ttft_slo_s: slo("workload.ttft_slo_s", &w.ttft_slo_s)?,
                tpot_slo_s: slo("workload.tpot_slo_s", &w.tpot_slo_s)?,
                prompt_distribution: ctx.distribution(
                    "workload.prompt_distribution",
                    &w.prompt_distribution,
                    context_cap,
                )?,
                output_distribution: ctx.distribution(
                    "workload.output_distribution",
                    &w.output_distribution,
                    context_cap,
                )?,
                scheduler: ctx.scheduler(raw.scheduler.as_ref())?,
            })
        } else {
            let serving_only: [(&str, Option<usize>); 5] = [
                (
                    "workload.ttft_slo_s",
                    w.ttft_slo_s.as_ref().map(|v| v.span().start),
                ),
                (
                    "workload.tpot_slo_s",
                    w.tpot_slo_s.as_ref().map(|v| v.span().start),
                ),
                (
                    "workload.prompt_distribution",
                    w.prompt_distribution.as_ref().map(|v| v.kind.span().start),
                ),
                (
                    "workload.output_distribution",
                    w.output_distribution.as_ref().map(|v| v.kind.span().start),
                ),
                (
                    "scheduler",
                    raw.scheduler
                        .as_ref()
                        .map(|_| text.find("[scheduler]").unwrap_or(0)),
                ),
            ];
            if let Some((key, Some(offset))) = serving_only.iter().find(|(_, o)| o.is_some()) {
                return Err(InputError::InvalidValue {
                    origin: Origin {
                        file: file.to_string(),
                        location: Some(Location::of_offset(text, *offset)),
                    },
                    key: key.to_string(),
                    value: "set".to_string(),
                    expected:
                        "serving mode only: also set workload.requests, arrival_rate_per_s or trace"
                            .to_string(),
                });
            }
            None
        };
        let seed = match &w.seed {
            Some(s) if *s.get_ref() >= 0 => *s.get_ref() as u64,
            Some(s) => return Err(ctx.invalid("workload.seed", s, "expected an integer >= 0")),
            None => DEFAULT_SEED,
        };

        let cost = ctx.cost(raw.cost.as_ref())?;

        Ok(Scenario {
            name: raw
                .name
                .clone()
                .unwrap_or_else(|| file.rsplit('/').next().unwrap_or(file).to_string()),
            model,
            weights,
            kv_cache,
            runtime,
            max_batch,
            groups,
            network,
            parallelism,
            layout,
            disaggregation,
            workload: Workload {
                prompt_tokens,
                output_tokens,
                cached_prompt_tokens,
                batch,
                serving,
                seed,
            },
            cost,
        })
    }

    pub fn total_nodes(&self) -> u32 {
        self.groups.iter().map(|g| g.count).sum()
    }
}
