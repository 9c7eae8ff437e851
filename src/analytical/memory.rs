//! Memory use of a node: weights, KV cache, activations and reserves.
//!
//! - Weights: the parameters the node holds times the format's bytes per weight.
//! - KV cache: per sequence, every layer keeps keys and values (or MLA's latent) for
//!   each context token; sliding-window layers keep only the window, chunked layers
//!   at most one chunk.
//! - Activations: the largest pass's hidden states and FFN intermediates for the
//!   tokens of one prefill chunk, plus fp32 logits for the sequences.
//! - Reserve: what the runtime keeps for its own buffers (the runtime's `reserve_gb`),
//!   plus the larger of what the OS and driver keep (the device's `reserved_gb`) and
//!   the share of the node a stack leaves unallocated (`1 - memory_utilization`:
//!   vLLM's 0.92), since the driver's memory lies in that share
//!   ([`crate::runtime::RuntimeEfficiency::reserve_gb_on`]).

use serde::Serialize;

use super::ops::ACTIVATION_BYTES;
use crate::formats::WeightFormat;
use crate::model::Model;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MemoryUse {
    pub weights_gb: f64,
    pub kv_cache_gb: f64,
    pub activations_gb: f64,
    pub reserve_gb: f64,
}

impl MemoryUse {
    pub fn used_gb(&self) -> f64 {
        self.weights_gb + self.kv_cache_gb + self.activations_gb + self.reserve_gb
    }
}

/// GB of the whole model's weights in `format`: every parameter at its bytes per
/// weight.
pub fn weights_gb(model: &Model, format: &WeightFormat) -> f64 {
    model.total_params() as f64 * format.bytes_per_weight() / 1e9
}

/// KV-cache elements for one sequence of `context` tokens over `layers`.
pub fn kv_elements_per_sequence(model: &Model, layers: std::ops::Range<u32>, context: f64) -> f64 {
    let per_token = model.kv_elements_per_token_per_layer() as f64;
    layers
        // A chunked layer holds at most one chunk (when it is full).
        .map(|layer| {
            model
                .attention_span(layer)
                .kv_limit()
                .map_or(context, |limit| context.min(limit as f64))
        })
        .sum::<f64>()
        * per_token
}

/// Activation bytes for a pass of `tokens` tokens with `logits_rows` logits rows.
pub fn activation_bytes(model: &Model, tokens: f64, logits_rows: f64) -> f64 {
    let d = model.hidden_size as f64;
    let ffn_width = match model.moe {
        Some(moe) => {
            let routed = f64::from(moe.experts_per_token) * f64::from(moe.expert_ffn_hidden);
            let shared = f64::from(moe.shared_experts)
                * f64::from(
                    moe.shared_expert_ffn_hidden
                        .unwrap_or(moe.expert_ffn_hidden),
                );
            (routed + shared).max(model.ffn_hidden as f64)
        }
        None => model.ffn_hidden as f64,
    };
    // Residual stream, normed copy, attention output and QKV (~4 d), and the gate, up
    // and activated intermediates (3 x width).
    tokens * (4.0 * d + 3.0 * ffn_width) * ACTIVATION_BYTES
        + logits_rows * model.vocab_size as f64 * 4.0
}
