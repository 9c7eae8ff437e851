//! Model architectures: the model catalog (`models/*.toml`).
//!
//! Each file copies the fields of a model's published configuration (Hugging Face
//! `config.json` or the paper) that decide its cost: layers, widths, heads, vocabulary,
//! and the variants that change the arithmetic: grouped-query attention, DeepSeek-style
//! multi-head latent attention (MLA), sliding-window layers, and mixture-of-experts
//! feed-forward layers. Parameter counts are derived here from those fields, never
//! copied; the published total is kept beside them only so a test can compare.
//!
//! What is left out, on purpose: biases, norm weights other than the RMSNorm vectors,
//! vision towers, attention sinks and multi-token-prediction heads. Each is well under
//! 1% of the weights of the models in the catalog.

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::hardware::check_positive;
use crate::sourced::Sourced;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: String,
    /// Where the architecture fields come from (the model's config.json or paper).
    pub source: String,
    pub published_total_params_b: Sourced<f64>,
    #[serde(default)]
    pub published_active_params_b: Option<Sourced<f64>>,
    pub layers: u32,
    pub hidden_size: u32,
    pub attention_heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    /// Width of the dense feed-forward layers (also the dense layers of a MoE model).
    pub ffn_hidden: u32,
    pub vocab_size: u32,
    pub tied_embeddings: bool,
    /// Gated feed-forward (SwiGLU, GeGLU): three matrices. Otherwise two.
    #[serde(default = "default_true")]
    pub gated_ffn: bool,
    pub max_context: u32,
    #[serde(default)]
    pub mla: Option<MlaFile>,
    #[serde(default)]
    pub sliding_window: Option<SlidingWindowFile>,
    #[serde(default)]
    pub moe: Option<MoeFile>,
}

fn default_true() -> bool {
    true
}

/// DeepSeek-style multi-head latent attention.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MlaFile {
    /// Rank of the query compression; 0 means queries are projected directly.
    pub q_lora_rank: u32,
    pub kv_lora_rank: u32,
    pub qk_nope_head_dim: u32,
    pub qk_rope_head_dim: u32,
    pub v_head_dim: u32,
}

/// Sliding-window attention on some layers.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlidingWindowFile {
    /// Tokens a local layer attends to.
    pub window: u32,
    /// Every `global_every`-th layer (the last of each group) attends globally; the
    /// rest are local. 1 would make every layer global; use a large number (e.g. the
    /// layer count + 1) for "every layer local".
    pub global_every: u32,
    /// Chunked local attention (Llama 4's `attention_chunk_size`): the sequence is cut
    /// into chunks of `window` tokens and a token attends only to the tokens of its own
    /// chunk up to itself, so the token at position `p` (from 0) sees `p mod window + 1`
    /// keys, not `min(p + 1, window)` as in a sliding window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chunked: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MoeFile {
    pub experts: u32,
    pub experts_per_token: u32,
    #[serde(default)]
    pub shared_experts: u32,
    pub expert_ffn_hidden: u32,
    /// Width of each shared expert; defaults to `expert_ffn_hidden`.
    #[serde(default)]
    pub shared_expert_ffn_hidden: Option<u32>,
    /// The first `dense_layers` layers use a dense FFN of width `ffn_hidden`.
    #[serde(default)]
    pub dense_layers: u32,
    /// After the dense layers, every `interval`-th layer (the last of each group) has
    /// routed experts and the others a dense FFN of width `ffn_hidden`: Hugging Face's
    /// `interleave_moe_layer_step` (2 in Llama 4 Maverick). Default 1, every layer.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub interval: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// A validated model.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub layers: u32,
    pub hidden_size: u64,
    pub attention_heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub ffn_hidden: u64,
    pub vocab_size: u64,
    pub tied_embeddings: bool,
    pub gated_ffn: bool,
    pub max_context: u64,
    pub mla: Option<MlaFile>,
    pub sliding_window: Option<SlidingWindowFile>,
    pub moe: Option<MoeFile>,
    pub file: ModelFile,
}

/// How a layer attends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionSpan {
    Global,
    /// The last `window` tokens (sliding window).
    Local {
        window: u64,
    },
    /// The tokens of the token's own chunk of `chunk` (chunked attention).
    Chunked {
        chunk: u64,
    },
}

impl AttentionSpan {
    /// How many of the `context` tokens already in the cache the next token sees: the
    /// whole prefix, its last `window - 1` tokens (a window of `w` keys counts the token
    /// itself, as [`crate::analytical::ops::attended_pairs`] does and as llama.cpp's and
    /// Hugging Face's masks do: a key `w` or more positions back is masked), or the part
    /// of it in the current chunk. Also what a decode node needs of that layer's KV
    /// after a `context`-token prefill.
    pub fn cached_in_view(self, context: f64) -> f64 {
        match self {
            AttentionSpan::Global => context,
            AttentionSpan::Local { window } => context.min(window.saturating_sub(1) as f64),
            AttentionSpan::Chunked { chunk } => context.rem_euclid(chunk as f64),
        }
    }

    /// The most tokens of KV the layer ever keeps: its window or one chunk; `None`
    /// for a global layer, which keeps every token.
    pub fn kv_limit(self) -> Option<u64> {
        match self {
            AttentionSpan::Global => None,
            AttentionSpan::Local { window: limit } | AttentionSpan::Chunked { chunk: limit } => {
                Some(limit)
            }
        }
    }
}

impl Model {
    pub fn from_toml(id: &str, file: &str, text: &str) -> Result<Model, InputError> {
        let raw: ModelFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
        Model::try_from_file(id, file, raw)
    }

    pub fn try_from_file(id: &str, file: &str, raw: ModelFile) -> Result<Model, InputError> {
        for (key, value) in [
            ("layers", raw.layers),
            ("hidden_size", raw.hidden_size),
            ("attention_heads", raw.attention_heads),
            ("kv_heads", raw.kv_heads),
            ("head_dim", raw.head_dim),
            ("ffn_hidden", raw.ffn_hidden),
            ("vocab_size", raw.vocab_size),
            ("max_context", raw.max_context),
        ] {
            if value == 0 {
                return Err(InputError::invalid(
                    file,
                    key,
                    value,
                    "expected a positive integer",
                ));
            }
        }
        if !raw.attention_heads.is_multiple_of(raw.kv_heads) {
            return Err(InputError::invalid(
                file,
                "kv_heads",
                raw.kv_heads,
                format!(
                    "expected a divisor of attention_heads ({})",
                    raw.attention_heads
                ),
            ));
        }
        check_positive(
            file,
            "published_total_params_b",
            raw.published_total_params_b.value,
            false,
        )?;
        if let Some(moe) = &raw.moe {
            if moe.experts == 0 || moe.experts_per_token == 0 || moe.expert_ffn_hidden == 0 {
                return Err(InputError::invalid(
                    file,
                    "moe",
                    "0",
                    "expected positive experts, experts_per_token, expert_ffn_hidden",
                ));
            }
            if moe.experts_per_token > moe.experts {
                return Err(InputError::invalid(
                    file,
                    "moe.experts_per_token",
                    moe.experts_per_token,
                    format!("expected at most moe.experts ({})", moe.experts),
                ));
            }
            if moe.dense_layers > raw.layers {
                return Err(InputError::invalid(
                    file,
                    "moe.dense_layers",
                    moe.dense_layers,
                    "expected at most `layers`",
                ));
            }
            if moe.interval == 0 {
                return Err(InputError::invalid(
                    file,
                    "moe.interval",
                    moe.interval,
                    "expected a positive integer (1: every layer after the dense ones)",
                ));
            }
        }
        if let Some(sw) = &raw.sliding_window {
            if sw.window == 0 || sw.global_every == 0 {
                return Err(InputError::invalid(
                    file,
                    "sliding_window",
                    "0",
                    "expected positive window and global_every",
                ));
            }
        }
        Ok(Model {
            id: id.to_string(),
            name: raw.name.clone(),
            layers: raw.layers,
            hidden_size: raw.hidden_size.into(),
            attention_heads: raw.attention_heads.into(),
            kv_heads: raw.kv_heads.into(),
            head_dim: raw.head_dim.into(),
            ffn_hidden: raw.ffn_hidden.into(),
            vocab_size: raw.vocab_size.into(),
            tied_embeddings: raw.tied_embeddings,
            gated_ffn: raw.gated_ffn,
            max_context: raw.max_context.into(),
            mla: raw.mla,
            sliding_window: raw.sliding_window,
            moe: raw.moe,
            file: raw,
        })
    }

    /// Whether layer `layer` (0-based) has a routed-expert FFN: past the dense layers,
    /// the last of each group of `interval`.
    pub fn is_moe_layer(&self, layer: u32) -> bool {
        self.moe.is_some_and(|moe| {
            layer >= moe.dense_layers && (layer - moe.dense_layers + 1).is_multiple_of(moe.interval)
        })
    }

    pub fn moe_layer_count(&self) -> u32 {
        self.moe
            .map_or(0, |moe| (self.layers - moe.dense_layers) / moe.interval)
    }

    /// The first layer with routed experts, if any: the layer the per-layer views show.
    pub fn first_moe_layer(&self) -> Option<u32> {
        (0..self.layers).find(|&layer| self.is_moe_layer(layer))
    }

    /// Attention span of layer `layer` (0-based).
    pub fn attention_span(&self, layer: u32) -> AttentionSpan {
        match self.sliding_window {
            Some(sw) if !(layer + 1).is_multiple_of(sw.global_every) => {
                let window = sw.window.into();
                if sw.chunked {
                    AttentionSpan::Chunked { chunk: window }
                } else {
                    AttentionSpan::Local { window }
                }
            }
            _ => AttentionSpan::Global,
        }
    }

    /// Weights of the attention block of one layer (projections only).
    pub fn attention_params_per_layer(&self) -> u64 {
        let d = self.hidden_size;
        let h = self.attention_heads;
        match self.mla {
            Some(mla) => {
                let qk_dim = u64::from(mla.qk_nope_head_dim + mla.qk_rope_head_dim);
                let q = if mla.q_lora_rank > 0 {
                    d * u64::from(mla.q_lora_rank) + u64::from(mla.q_lora_rank) * h * qk_dim
                } else {
                    d * h * qk_dim
                };
                let kv_a = d * u64::from(mla.kv_lora_rank + mla.qk_rope_head_dim);
                let kv_b = u64::from(mla.kv_lora_rank)
                    * h
                    * u64::from(mla.qk_nope_head_dim + mla.v_head_dim);
                let o = h * u64::from(mla.v_head_dim) * d;
                q + kv_a + kv_b + o
            }
            None => {
                let hd = self.head_dim;
                d * h * hd + 2 * d * self.kv_heads * hd + h * hd * d
            }
        }
    }

    fn ffn_matrices(&self) -> u64 {
        if self.gated_ffn {
            3
        } else {
            2
        }
    }

    /// Output features of one feed-forward block of hidden width `width`: the gate and
    /// up projections (or the up projection alone) to `width`, the down projection to
    /// the model width.
    pub fn ffn_output_features(&self, width: u64) -> u64 {
        (self.ffn_matrices() - 1) * width + self.hidden_size
    }

    /// Weights of one dense FFN.
    pub fn dense_ffn_params(&self) -> u64 {
        self.ffn_matrices() * self.hidden_size * self.ffn_hidden
    }

    /// Weights of one routed expert.
    pub fn expert_params(&self) -> u64 {
        self.moe.map_or(0, |moe| {
            self.ffn_matrices() * self.hidden_size * u64::from(moe.expert_ffn_hidden)
        })
    }

    /// Weights of all shared experts of one MoE layer.
    pub fn shared_expert_params(&self) -> u64 {
        self.moe.map_or(0, |moe| {
            let width = moe
                .shared_expert_ffn_hidden
                .unwrap_or(moe.expert_ffn_hidden);
            u64::from(moe.shared_experts)
                * self.ffn_matrices()
                * self.hidden_size
                * u64::from(width)
        })
    }

    pub fn router_params(&self) -> u64 {
        self.moe
            .map_or(0, |moe| self.hidden_size * u64::from(moe.experts))
    }

    pub fn embedding_params(&self) -> u64 {
        self.vocab_size * self.hidden_size
    }

    pub fn lm_head_params(&self) -> u64 {
        if self.tied_embeddings {
            0
        } else {
            self.vocab_size * self.hidden_size
        }
    }

    /// Norm vectors: two per layer and the final one.
    pub fn norm_params(&self) -> u64 {
        (2 * u64::from(self.layers) + 1) * self.hidden_size
    }

    /// Every weight of the model.
    pub fn total_params(&self) -> u64 {
        let layers = u64::from(self.layers);
        let moe_layers = u64::from(self.moe_layer_count());
        let dense_layers = layers - moe_layers;
        let moe_ffn = self.moe.map_or(0, |moe| {
            u64::from(moe.experts) * self.expert_params()
                + self.shared_expert_params()
                + self.router_params()
        });
        layers * self.attention_params_per_layer()
            + dense_layers * self.dense_ffn_params()
            + moe_layers * moe_ffn
            + self.embedding_params()
            + self.lm_head_params()
            + self.norm_params()
    }

    /// Weights used for one token: all but the routed experts it does not pick.
    pub fn active_params(&self) -> u64 {
        let idle_experts = self.moe.map_or(0, |moe| {
            u64::from(moe.experts - moe.experts_per_token)
                * self.expert_params()
                * u64::from(self.moe_layer_count())
        });
        self.total_params() - idle_experts
    }

    /// KV-cache elements per token per layer (keys and values, or MLA's latent).
    pub fn kv_elements_per_token_per_layer(&self) -> u64 {
        match self.mla {
            Some(mla) => u64::from(mla.kv_lora_rank + mla.qk_rope_head_dim),
            None => 2 * self.kv_heads * self.head_dim,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DBRX: &str = r#"
name = "DBRX"
source = "test"
published_total_params_b = { value = 132.0, source = "test" }
layers = 40
hidden_size = 6144
attention_heads = 48
kv_heads = 8
head_dim = 128
ffn_hidden = 10752
vocab_size = 100352
tied_embeddings = false
max_context = 32768
[moe]
experts = 16
experts_per_token = 4
expert_ffn_hidden = 10752
"#;

    /// DBRX with `table` (a whole TOML table) inserted before its `[moe]` table.
    fn dbrx_with_table(table: &str) -> Result<Model, InputError> {
        Model::from_toml(
            "x",
            "x.toml",
            &DBRX.replace("[moe]", &format!("{table}\n[moe]")),
        )
    }

    /// DBRX with `keys` added to its `[moe]` table (the last in the text).
    fn dbrx_with_moe_keys(keys: &str) -> Result<Model, InputError> {
        Model::from_toml("x", "x.toml", &format!("{DBRX}{keys}\n"))
    }

    #[test]
    fn dbrx_counts_match_the_study_arithmetic() {
        let m = Model::from_toml("dbrx", "dbrx.toml", DBRX).unwrap();
        // One expert: 3 x 6144 x 10752 = 198,180,864 (the study's 198.2 M).
        assert_eq!(m.expert_params(), 198_180_864);
        // Attention: q 6144x6144 + k,v 2 x 6144x1024 + o 6144x6144 = 88,080,384.
        assert_eq!(m.attention_params_per_layer(), 88_080_384);
        // Total: 40 x (88,080,384 + 16 x 198,180,864 + 6144 x 16) + 2 x 100352 x 6144
        //        + (81 x 6144) = 131,596,523,520 ~ 131.6 B.
        assert_eq!(m.total_params(), 131_596_523_520);
        // Active: minus 12 idle experts x 40 layers x 198,180,864 = 36.47 B.
        assert_eq!(m.active_params(), 131_596_523_520 - 12 * 40 * 198_180_864);
    }

    #[test]
    fn sliding_window_marks_every_nth_layer_global() {
        let m = dbrx_with_table("[sliding_window]\nwindow = 128\nglobal_every = 2").unwrap();
        assert_eq!(m.attention_span(0), AttentionSpan::Local { window: 128 });
        assert_eq!(m.attention_span(1), AttentionSpan::Global);
    }

    #[test]
    fn chunked_layers_attend_in_chunks() {
        let m =
            dbrx_with_table("[sliding_window]\nwindow = 8192\nglobal_every = 4\nchunked = true")
                .unwrap();
        assert_eq!(m.attention_span(0), AttentionSpan::Chunked { chunk: 8192 });
        assert_eq!(m.attention_span(2), AttentionSpan::Chunked { chunk: 8192 });
        assert_eq!(m.attention_span(3), AttentionSpan::Global);
    }

    #[test]
    fn interleaved_experts_sit_on_every_nth_layer_after_the_dense_ones() {
        let m = dbrx_with_moe_keys("interval = 2").unwrap();
        // The last layer of each pair: 1, 3, ..., 39.
        let moe: Vec<u32> = (0..40).filter(|&l| m.is_moe_layer(l)).collect();
        assert_eq!(moe, (1..40).step_by(2).collect::<Vec<u32>>());
        assert_eq!(m.moe_layer_count(), 20);
        assert_eq!(m.first_moe_layer(), Some(1));
        // 40 x 88,080,384 attention + 20 dense FFNs x 3 x 6144 x 10752 (198,180,864)
        // + 20 x (16 x 198,180,864 + 6144 x 16 router) + 2 x 100352 x 6144 embeddings
        // + 81 x 6144 norms = 3,523,215,360 + 3,963,617,280 + 63,419,842,560
        // + 1,233,125,376 + 497,664 = 72,140,298,240.
        assert_eq!(m.total_params(), 72_140_298_240);
        // Active: 12 idle experts on each of the 20 MoE layers.
        assert_eq!(m.active_params(), 72_140_298_240 - 12 * 20 * 198_180_864);

        // One dense layer first, then every second: layers 2, 4, ..., 38.
        let m = dbrx_with_moe_keys("interval = 2\ndense_layers = 1").unwrap();
        assert_eq!(m.moe_layer_count(), 19);
        assert_eq!(m.first_moe_layer(), Some(2));
        assert!(m.is_moe_layer(38) && !m.is_moe_layer(39) && !m.is_moe_layer(1));
    }

    #[test]
    fn a_zero_moe_interval_is_rejected() {
        let err = dbrx_with_moe_keys("interval = 0").unwrap_err();
        assert!(err.to_string().contains("moe.interval"), "{err}");
    }

    #[test]
    fn top_k_above_experts_is_rejected() {
        let text = DBRX.replace("experts_per_token = 4", "experts_per_token = 17");
        let err = Model::from_toml("x", "x.toml", &text).unwrap_err();
        assert!(err.to_string().contains("moe.experts_per_token"), "{err}");
    }
}
