//! Runtime (software stack) profiles: `runtimes/*.toml`.
//!
//! A profile says how far a serving stack falls short of the hardware's achievable
//! limits (the device's `[efficiency]`), per device family, because stacks differ by
//! backend: llama.cpp's Metal and CUDA kernels are different code. Each family entry
//! holds:
//!
//! - `compute_fraction`, `bandwidth_fraction`: multipliers (<= 1 for a stack below the
//!   hardware's achievable limit) on the device's achievable compute and bandwidth;
//! - `attention_fraction`: the attention kernels' efficiency relative to the device's
//!   achievable GEMM rate (flash attention or not);
//! - `dispatch_scale`: fraction of the device's per-kernel dispatch cost paid for the
//!   kernels an unfused graph would launch (fusion and CUDA graphs hide most of it);
//! - `per_step_overhead_us`: fixed host time per forward pass (graph build, sampling,
//!   scheduling, synchronisation);
//! - `reserve_gb`: memory the runtime keeps for its own buffers;
//! - `memory_utilization` (from the stack's defaults, not fitted): the fraction of a
//!   node's memory the stack allocates at most, the rest left unused (vLLM 0.92);
//! - `matvec_max_rows`, `matvec_rows_per_pass` (from the stack's source code, not
//!   fitted): up to how many token rows the stack multiplies with matrix-vector
//!   kernels, and how many of those rows one pass over the weights serves;
//! - `gemm_tile_rows` (from the source code, not fitted): the token rows of one tile
//!   of the stack's GEMM kernels, where a GEMM pays for whole tiles.
//!
//! One key is the stack's, not a family's: `mla_prefill`, how it runs multi-head
//! latent attention over a prompt (see [`MlaPrefill`]).
//!
//! The `ideal` profile has every fraction 1, no host overhead and no reserve: the
//! hardware's calibrated limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::formats::WeightFormat;
use crate::hardware::{check_positive, ComputeDtype, Device};
use crate::sourced::Sourced;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    pub name: String,
    pub source: String,
    #[serde(default)]
    pub notes: Option<String>,
    /// Default cap on concurrent sequences per instance in serving mode.
    pub default_max_batch: u32,
    /// Tokens per sequence a prefill pass processes at most (llama.cpp's ubatch,
    /// mlx-lm's prefill step); absent: the whole prompt in one pass.
    #[serde(default)]
    pub prefill_chunk_tokens: Option<Sourced<f64>>,
    /// Weight formats the stack loads (absent: any).
    #[serde(default)]
    pub weight_formats: Option<Vec<String>>,
    /// Of those, the formats the stack multiplies only in their own arithmetic, with no
    /// weight-only path that dequantises to 16 bits (TensorRT-LLM's fp8 and nvfp4): a
    /// device without a peak for the format's compute type cannot run them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub native_formats: Vec<String>,
    /// How the stack runs multi-head latent attention over a prompt (absent:
    /// `expanded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla_prefill: Option<Sourced<MlaPrefill>>,
    /// Efficiency parameters per device family (`apple`, `nvidia`).
    pub families: BTreeMap<String, RuntimeFamilyFile>,
}

/// How a stack computes multi-head latent attention (DeepSeek-V2/V3, GLM-4.7-Flash)
/// for a pass with many new tokens per sequence. Every stack decodes in the absorbed
/// form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MlaPrefill {
    /// Keys and values are decompressed from the latent per head and attention runs
    /// as multi-head attention over `qk_nope + qk_rope` and `v_head_dim`, fewer FLOPs
    /// per query-key pair than the absorbed form: vLLM's, SGLang's and TensorRT-LLM's
    /// prefill. After a cached prefix each pass also decompresses the prefix's latents
    /// (`crate::analytical::ops::latent_decompression_op`).
    #[default]
    Expanded,
    /// The decode form for every pass: queries are projected into the latent space
    /// and all heads attend to the one shared latent (multi-query attention over
    /// `kv_lora + qk_rope`, values of `kv_lora`): llama.cpp whenever the GGUF
    /// carries the MLA tensors.
    Absorbed,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFamilyFile {
    pub compute_fraction: Sourced<f64>,
    pub bandwidth_fraction: Sourced<f64>,
    pub attention_fraction: Sourced<f64>,
    pub dispatch_scale: Sourced<f64>,
    pub per_step_overhead_us: Sourced<f64>,
    pub reserve_gb: Sourced<f64>,
    /// Arithmetic this stack's kernels use for quantised weight formats (those that
    /// need dequantisation), when it differs from the format's own: e.g. llama.cpp's
    /// CUDA MMQ kernels multiply in int8.
    #[serde(default)]
    pub quantized_compute_dtype: Option<Sourced<ComputeDtype>>,
    /// Token rows at which this stack's GEMM kernels reach half their rate, when it
    /// differs from the device's `compute_half_rows` (kernel tiling decides it).
    #[serde(default)]
    pub gemm_half_rows: Option<Sourced<f64>>,
    /// Up to this many token rows, the stack multiplies with matrix-vector kernels
    /// (each weight read once, dot products on the vector units, no tile padding);
    /// above it, with tiled GEMM kernels.
    #[serde(default)]
    pub matvec_max_rows: Option<Sourced<f64>>,
    /// At most this many token rows share one pass of a matrix-vector kernel over the
    /// weights; more rows (up to `matvec_max_rows`) read the weights
    /// `ceil(rows / matvec_rows_per_pass)` times. Absent: every row of the regime in
    /// one pass.
    #[serde(default)]
    pub matvec_rows_per_pass: Option<Sourced<f64>>,
    /// Token rows of one tile of the stack's tiled GEMM kernels: a GEMM of `rows`
    /// rows does the work of `ceil(rows / gemm_tile_rows)` whole tiles. Absent: no
    /// padding (the kernels pick a tile to fit the rows).
    #[serde(default)]
    pub gemm_tile_rows: Option<Sourced<f64>>,
    /// Query heads one tile (threadgroup) of the stack's attention kernels holds.
    /// Absent: all the heads that share a KV head (grouped-query attention), whose
    /// queries then form the rows of one product over that head's keys. Where the
    /// kernel runs one head per tile (1: llama.cpp's Metal flash attention), a decode
    /// step's attention has one query row however many heads share the keys.
    #[serde(default)]
    pub attention_heads_per_tile: Option<Sourced<f64>>,
    /// Query rows at which the stack's attention kernels reach half their rate, when
    /// it differs from `gemm_half_rows`.
    #[serde(default)]
    pub attention_half_rows: Option<Sourced<f64>>,
    /// How much of the shorter of an operation's compute and memory time hides behind
    /// the longer: 1 is the roofline's max(), 0 their sum. Absent: 1.
    #[serde(default)]
    pub overlap_fraction: Option<Sourced<f64>>,
    /// Fraction of a node's memory the stack allocates at most, for weights,
    /// activations, its buffers and the KV cache together (vLLM's
    /// `gpu_memory_utilization`); the rest stays unused. Absent: 1.
    #[serde(default)]
    pub memory_utilization: Option<Sourced<f64>>,
}

/// Validated efficiency parameters of one runtime on one device family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RuntimeEfficiency {
    pub compute_fraction: f64,
    pub bandwidth_fraction: f64,
    pub attention_fraction: f64,
    pub dispatch_scale: f64,
    pub per_step_overhead_s: f64,
    pub reserve_gb: f64,
    pub quantized_compute_dtype: Option<ComputeDtype>,
    pub gemm_half_rows: Option<f64>,
    pub matvec_max_rows: Option<f64>,
    pub matvec_rows_per_pass: Option<f64>,
    pub gemm_tile_rows: Option<f64>,
    pub attention_heads_per_tile: Option<f64>,
    pub attention_half_rows: Option<f64>,
    pub overlap_fraction: f64,
    /// Fraction of a node's memory the stack allocates at most (1: all of it).
    pub memory_utilization: f64,
    /// The stack's `mla_prefill` (the same in every family).
    pub mla_prefill: MlaPrefill,
}

impl RuntimeEfficiency {
    /// Memory kept from the model on a node of `capacity_gb` whose operating system
    /// and driver keep `device_reserved_gb`: the stack's own buffers (`reserve_gb`)
    /// plus the larger of the device's reserve and the share of the node the stack
    /// leaves unallocated (`1 - memory_utilization`), since the driver's memory lies
    /// in that share (vLLM sizes its budget as a fraction of the whole device and
    /// checks that much is free at start).
    pub fn reserve_gb_on(&self, device_reserved_gb: f64, capacity_gb: f64) -> f64 {
        self.reserve_gb + device_reserved_gb.max((1.0 - self.memory_utilization) * capacity_gb)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Runtime {
    pub id: String,
    pub name: String,
    pub default_max_batch: u32,
    pub prefill_chunk_tokens: Option<f64>,
    pub families: BTreeMap<String, RuntimeEfficiency>,
    pub file: RuntimeFile,
}

impl Runtime {
    pub fn from_toml(id: &str, file: &str, text: &str) -> Result<Runtime, InputError> {
        let raw: RuntimeFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
        let mut families = BTreeMap::new();
        for (family, f) in &raw.families {
            let key = |k: &str| format!("families.{family}.{k}");
            let fraction = |k: &str, v: f64| -> Result<f64, InputError> {
                if v.is_finite() && v > 0.0 && v <= 1.5 {
                    Ok(v)
                } else {
                    Err(InputError::invalid(
                        file,
                        &key(k),
                        v,
                        "expected a fraction in (0, 1.5]",
                    ))
                }
            };
            // A size curve's half point, positive where given.
            let half_rows = |k: &str, v: &Option<Sourced<f64>>| {
                v.as_ref()
                    .map(|h| check_positive(file, &key(k), h.value, true))
                    .transpose()
            };
            // An optional share that is 1 when absent and must pass `ok` where given.
            let share_or_one =
                |k: &str, v: &Option<Sourced<f64>>, ok: fn(f64) -> bool, expected: &str| match v {
                    Some(s) if ok(s.value) => Ok(s.value),
                    Some(s) => Err(InputError::invalid(file, &key(k), s.value, expected)),
                    None => Ok(1.0),
                };
            families.insert(
                family.clone(),
                RuntimeEfficiency {
                    compute_fraction: fraction("compute_fraction", f.compute_fraction.value)?,
                    bandwidth_fraction: fraction("bandwidth_fraction", f.bandwidth_fraction.value)?,
                    attention_fraction: fraction("attention_fraction", f.attention_fraction.value)?,
                    dispatch_scale: check_positive(
                        file,
                        &key("dispatch_scale"),
                        f.dispatch_scale.value,
                        true,
                    )?,
                    per_step_overhead_s: check_positive(
                        file,
                        &key("per_step_overhead_us"),
                        f.per_step_overhead_us.value,
                        true,
                    )? * 1e-6,
                    reserve_gb: check_positive(file, &key("reserve_gb"), f.reserve_gb.value, true)?,
                    quantized_compute_dtype: f.quantized_compute_dtype.as_ref().map(|d| d.value),
                    matvec_max_rows: f.matvec_max_rows.as_ref().map(|m| m.value.max(0.0)),
                    matvec_rows_per_pass: at_least_one_row(
                        file,
                        &key("matvec_rows_per_pass"),
                        &f.matvec_rows_per_pass,
                        "expected at least 1 token row per pass",
                    )?,
                    gemm_tile_rows: at_least_one_row(
                        file,
                        &key("gemm_tile_rows"),
                        &f.gemm_tile_rows,
                        "expected at least 1 token row per tile",
                    )?,
                    attention_heads_per_tile: at_least_one_row(
                        file,
                        &key("attention_heads_per_tile"),
                        &f.attention_heads_per_tile,
                        "expected at least 1 query head per tile",
                    )?,
                    attention_half_rows: half_rows("attention_half_rows", &f.attention_half_rows)?,
                    overlap_fraction: share_or_one(
                        "overlap_fraction",
                        &f.overlap_fraction,
                        |v| (0.0..=1.0).contains(&v),
                        "expected a fraction in [0, 1]",
                    )?,
                    gemm_half_rows: half_rows("gemm_half_rows", &f.gemm_half_rows)?,
                    memory_utilization: share_or_one(
                        "memory_utilization",
                        &f.memory_utilization,
                        |v| v > 0.0 && v <= 1.0,
                        "expected a fraction in (0, 1]",
                    )?,
                    mla_prefill: raw
                        .mla_prefill
                        .as_ref()
                        .map(|m| m.value)
                        .unwrap_or_default(),
                },
            );
        }
        Ok(Runtime {
            id: id.to_string(),
            name: raw.name.clone(),
            default_max_batch: raw.default_max_batch.max(1),
            prefill_chunk_tokens: match &raw.prefill_chunk_tokens {
                Some(c) => Some(check_positive(
                    file,
                    "prefill_chunk_tokens",
                    c.value,
                    false,
                )?),
                None => None,
            },
            families,
            file: raw,
        })
    }

    /// Whether the stack runs `format` weights on `device`: it loads the format, and
    /// where it has no weight-only path for it (`native_formats`), the device has the
    /// format's arithmetic. The error says which of the two fails.
    pub fn runs(&self, format: &WeightFormat, device: &Device) -> Result<(), String> {
        if let Some(loads) = &self.file.weight_formats {
            if !loads.contains(&format.id) {
                return Err(format!(
                    "runtime `{}` does not load `{}` weights; it loads: {}",
                    self.id,
                    format.id,
                    loads.join(", ")
                ));
            }
        }
        if self.file.native_formats.contains(&format.id)
            && !device.peak_tflops.contains_key(&format.compute_dtype)
        {
            return Err(format!(
                "runtime `{}` runs `{}` weights only in {} arithmetic, which `{}` does not have",
                self.id,
                format.id,
                format.compute_dtype.name(),
                device.id
            ));
        }
        Ok(())
    }

    /// Parameters for a device family: its own entry, else the `default` entry.
    pub fn for_family(&self, family: &str) -> Option<&RuntimeEfficiency> {
        self.families
            .get(family)
            .or_else(|| self.families.get("default"))
    }
}

/// An optional count (token rows, query heads), which must be at least 1 where given.
fn at_least_one_row(
    file: &str,
    key: &str,
    value: &Option<Sourced<f64>>,
    expected: &str,
) -> Result<Option<f64>, InputError> {
    match value {
        Some(r) if r.value >= 1.0 => Ok(Some(r.value)),
        Some(r) => Err(InputError::invalid(file, key, r.value, expected)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_leaving_part_of_the_node_unallocated_keeps_that_share_from_the_model() {
        let mut r = *with_family_key("memory_utilization", 0.92)
            .unwrap()
            .for_family("apple")
            .unwrap();
        r.reserve_gb = 1.0;
        // vLLM's 0.92 on an 80 GB H100 whose driver keeps 1 GB: its 1 GB of buffers
        // plus the larger of 1 GB and 0.08 x 80 = 6.4 GB: 7.4 GB.
        assert!((r.reserve_gb_on(1.0, 80.0) - 7.4).abs() < 1e-12);
        // A small node whose driver keeps more than the unallocated share (0.08 x 10
        // = 0.8 GB against 2 GB): the driver's memory lies in that share, 1 + 2 GB.
        assert!((r.reserve_gb_on(2.0, 10.0) - 3.0).abs() < 1e-12);
        // A stack that allocates the whole node (the default): its buffers plus the
        // driver's.
        let whole = Runtime::from_toml("t", "runtimes/t.toml", BASE_TEXT).unwrap();
        r.memory_utilization = whole.for_family("apple").unwrap().memory_utilization;
        assert_eq!(r.memory_utilization, 1.0);
        assert!((r.reserve_gb_on(1.0, 80.0) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn memory_utilization_must_be_a_fraction_of_the_node() {
        for bad in [0.0, 1.2, -0.5] {
            let err = with_family_key("memory_utilization", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("families.apple.memory_utilization"), "{err}");
            assert!(err.contains("expected a fraction in (0, 1]"), "{err}");
        }
        assert!(with_family_key("memory_utilization", 1.0).is_ok());
    }

    /// A valid profile with one `apple` family.
    const BASE_TEXT: &str = r#"
name = "t"
source = "t"
default_max_batch = 4
[families.apple]
compute_fraction = { value = 1.0, source = "t" }
bandwidth_fraction = { value = 1.0, source = "t" }
attention_fraction = { value = 1.0, source = "t" }
dispatch_scale = { value = 1.0, source = "t" }
per_step_overhead_us = { value = 0.0, source = "t" }
reserve_gb = { value = 0.0, source = "t" }
matvec_max_rows = { value = 8.0, source = "t" }
"#;

    /// [`BASE_TEXT`] with one more key of its `apple` family.
    fn with_family_key(key: &str, value: f64) -> Result<Runtime, InputError> {
        let text = format!("{BASE_TEXT}{key} = {{ value = {value:?}, source = \"t\" }}\n");
        Runtime::from_toml("t", "runtimes/t.toml", &text)
    }

    fn profile(rows_per_pass: f64) -> Result<Runtime, InputError> {
        with_family_key("matvec_rows_per_pass", rows_per_pass)
    }

    #[test]
    fn a_pass_serves_at_least_one_row() {
        let ok = profile(5.0).unwrap();
        assert_eq!(
            ok.for_family("apple").unwrap().matvec_rows_per_pass,
            Some(5.0)
        );
        let err = profile(0.5).unwrap_err().to_string();
        assert!(err.contains("runtimes/t.toml"), "{err}");
        assert!(err.contains("families.apple.matvec_rows_per_pass"), "{err}");
    }

    #[test]
    fn a_gemm_tile_holds_at_least_one_row() {
        let with = |rows: f64| with_family_key("gemm_tile_rows", rows);
        let ok = with(32.0).unwrap();
        assert_eq!(ok.for_family("apple").unwrap().gemm_tile_rows, Some(32.0));
        assert_eq!(
            profile(5.0)
                .unwrap()
                .for_family("apple")
                .unwrap()
                .gemm_tile_rows,
            None
        );
        let err = with(0.0).unwrap_err().to_string();
        assert!(err.contains("runtimes/t.toml"), "{err}");
        assert!(err.contains("families.apple.gemm_tile_rows"), "{err}");
    }

    #[test]
    fn an_attention_tile_holds_at_least_one_head_and_a_positive_half_point() {
        let heads = |n: f64| with_family_key("attention_heads_per_tile", n);
        let apple = |r: Runtime| *r.for_family("apple").unwrap();
        assert_eq!(
            apple(heads(1.0).unwrap()).attention_heads_per_tile,
            Some(1.0)
        );
        assert_eq!(apple(profile(5.0).unwrap()).attention_heads_per_tile, None);
        let err = heads(0.5).unwrap_err().to_string();
        assert!(err.contains("runtimes/t.toml"), "{err}");
        assert!(
            err.contains("families.apple.attention_heads_per_tile"),
            "{err}"
        );

        let half = |rows: f64| with_family_key("attention_half_rows", rows);
        assert_eq!(apple(half(4.0).unwrap()).attention_half_rows, Some(4.0));
        let err = half(-1.0).unwrap_err().to_string();
        assert!(err.contains("families.apple.attention_half_rows"), "{err}");
    }

    #[test]
    fn mla_prefill_is_expanded_unless_the_profile_says_absorbed() {
        let base = profile(5.0).unwrap();
        assert_eq!(
            base.for_family("apple").unwrap().mla_prefill,
            MlaPrefill::Expanded
        );
        let with = |value: &str| {
            let text = BASE_TEXT.replace(
                "default_max_batch = 4",
                &format!("default_max_batch = 4\nmla_prefill = {{ value = \"{value}\", source = \"t\" }}"),
            );
            Runtime::from_toml("t", "runtimes/t.toml", &text)
        };
        let absorbed = with("absorbed").unwrap();
        assert_eq!(
            absorbed.for_family("apple").unwrap().mla_prefill,
            MlaPrefill::Absorbed
        );
        let err = with("absorb").unwrap_err().to_string();
        assert!(err.contains("runtimes/t.toml"), "{err}");
        assert!(err.contains("absorb"), "{err}");
    }
}
