//! Weight and KV-cache formats (`formats/weights.toml`).
//!
//! A format says how many bits each stored weight takes, scales and block headers
//! included (so bytes read per step follow directly), which arithmetic the matrix
//! multiplications run in once weights are unpacked, and how much extra ALU work the
//! unpacking costs. Dequantisation runs on the vector units (the fp32 rate), once per
//! weight per tile of token rows (the runtime's `gemm_tile_rows` where it has one, else
//! `DEQUANT_TILE_ROWS`): a GEMV (decode) pays it once, a prefill GEMM pays it once per
//! row tile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::hardware::{check_positive, ComputeDtype};
use crate::sourced::Sourced;

/// Token rows of one GEMM tile that share a dequantised weight tile, for runtimes
/// whose profile does not give their own (`gemm_tile_rows`).
pub const DEQUANT_TILE_ROWS: f64 = 64.0;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FormatFile {
    pub name: String,
    pub bits_per_weight: Sourced<f64>,
    /// The arithmetic matmuls run in (falls back to 16-bit where a device lacks it).
    pub compute_dtype: ComputeDtype,
    pub dequant_ops_per_weight: Sourced<f64>,
    /// Whether the format may hold the KV cache.
    #[serde(default)]
    pub kv_cache: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightFormat {
    pub id: String,
    pub name: String,
    pub bits_per_weight: f64,
    pub compute_dtype: ComputeDtype,
    pub dequant_ops_per_weight: f64,
    pub kv_cache: bool,
}

impl WeightFormat {
    pub fn bytes_per_weight(&self) -> f64 {
        self.bits_per_weight / 8.0
    }
}

/// Parses the table of formats, keyed by id.
pub fn formats_from_toml(file: &str, text: &str) -> Result<Vec<WeightFormat>, InputError> {
    let raw: BTreeMap<String, FormatFile> =
        toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
    raw.into_iter()
        .map(|(id, f)| {
            let key = format!("{id}.bits_per_weight");
            let bits = check_positive(file, &key, f.bits_per_weight.value, false)?;
            let key = format!("{id}.dequant_ops_per_weight");
            let ops = check_positive(file, &key, f.dequant_ops_per_weight.value, true)?;
            Ok(WeightFormat {
                id,
                name: f.name,
                bits_per_weight: bits,
                compute_dtype: f.compute_dtype,
                dequant_ops_per_weight: ops,
                kv_cache: f.kv_cache,
            })
        })
        .collect()
}
