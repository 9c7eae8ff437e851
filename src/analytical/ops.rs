//! The operations of one forward pass, with their FLOPs and bytes.
//!
//! A pass runs `sequences` sequences forward by `new_tokens` tokens each, after
//! `context_before` tokens already in each sequence's KV cache. Prefill is one pass
//! (or one per chunk) with many new tokens; a decode step is a pass with one new
//! token per sequence.
//!
//! Per layer the operations are: the QKV projection (for MLA, the query and latent
//! down/up projections), attention (scores and values over the context each query
//! sees, causal, capped by the window on sliding-window layers), the output
//! projection, the feed-forward block (dense, or router + routed experts + shared
//! experts) and the element-wise work (norms, rotary embedding, residual adds, the
//! activation). Once per pass: the embedding gather and the LM head (for the last
//! token of each sequence in prefill, every token in decode).
//!
//! Multi-head latent attention runs absorbed (queries projected into the latent, one
//! shared latent KV head: multi-query attention) in decode, and in prefill as the
//! runtime's `mla_prefill` says: see [`attention_op`]. Expanded prefill after a cached
//! prefix (a later chunk, or a prefix-cache hit) also decompresses the prefix's
//! latents each pass: [`latent_decompression_op`].
//!
//! Mixture-of-experts: each token uses `k` of `E` experts, so FLOPs scale with `k`,
//! but bytes scale with the experts the batch touches. With `n` tokens routed
//! independently and uniformly, the expected number of distinct experts is
//! `E (1 - (1 - k/E)^n)`.

use crate::model::{AttentionSpan, Model};
use crate::runtime::MlaPrefill;

/// Bytes per element of activations (fp16/bf16 everywhere in today's runtimes).
pub const ACTIVATION_BYTES: f64 = 2.0;

/// Query rows a flash-attention kernel processes per pass over the keys and values;
/// K/V are re-read once per such block.
pub const ATTENTION_QUERY_BLOCK: f64 = 128.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Embedding,
    QkvProjection,
    Attention,
    OutputProjection,
    Router,
    Ffn,
    RoutedExperts,
    SharedExperts,
    Elementwise,
    LmHead,
    LatentDecompression,
}

impl OpKind {
    /// Kernels an unfused graph launches for the operation, as llama.cpp's graphs do:
    /// QKV 3 matmuls; attention 5 (rotary on q and k, storing k and v, the attention
    /// kernel); output 1; dense FFN 4 (gate, up, activation x up, down); router 3
    /// (matmul, softmax, top-k); routed experts 6 (gate, up, down over the chosen
    /// experts, activation, weighting, sum); shared experts 4; element-wise 6 (two
    /// norms with their scale, two residual adds); embedding 1; LM head 2 (final norm,
    /// matmul); latent decompression 1 (expanded latent attention over a cached
    /// prefix). A dense layer is 19 kernels, a MoE layer 24 (28 with shared experts).
    /// Runtimes that fuse or replay graphs pay a fraction (`dispatch_scale`).
    pub fn kernels(self) -> f64 {
        match self {
            OpKind::Embedding => 1.0,
            OpKind::QkvProjection => 3.0,
            OpKind::Attention => 5.0,
            OpKind::OutputProjection => 1.0,
            OpKind::Router => 3.0,
            OpKind::Ffn => 4.0,
            OpKind::RoutedExperts => 6.0,
            OpKind::SharedExperts => 4.0,
            OpKind::Elementwise => 6.0,
            OpKind::LmHead => 2.0,
            OpKind::LatentDecompression => 1.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Embedding => "embedding",
            OpKind::QkvProjection => "qkv_projection",
            OpKind::Attention => "attention",
            OpKind::OutputProjection => "output_projection",
            OpKind::Router => "router",
            OpKind::Ffn => "ffn",
            OpKind::RoutedExperts => "routed_experts",
            OpKind::SharedExperts => "shared_experts",
            OpKind::Elementwise => "elementwise",
            OpKind::LmHead => "lm_head",
            OpKind::LatentDecompression => "latent_decompression",
        }
    }
}

/// What an operation is made of. Weight bytes are counted in parameters here; the
/// timing layer multiplies by the weight format's bytes per weight.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Op {
    pub kind: OpKind,
    pub flops: f64,
    /// Weight parameters read (scaled by the weight format).
    pub weight_params: f64,
    /// Weight parameters that must be unpacked (dequantised) per row tile.
    pub dequant_params: f64,
    /// KV-cache elements read or written (scaled by the KV format).
    pub kv_elements: f64,
    /// Other bytes: activations in and out.
    pub activation_bytes: f64,
    /// Token rows of the matrix multiplication (decides GEMM efficiency). For
    /// attention: query rows, each new token's `heads_per_kv` heads that share a KV
    /// head counted as rows of one product over that head's keys.
    pub rows: f64,
    /// Query heads per KV head counted in an attention op's `rows` (1 elsewhere): a
    /// runtime whose attention tiles hold fewer heads (`attention_heads_per_tile`)
    /// has fewer rows per tile.
    pub heads_per_kv: f64,
    /// Kernels an unfused graph launches for this operation (see [`OpKind::kernels`]).
    pub kernels: f64,
    /// Output elements of the weight products: token rows times the weight matrices'
    /// output features (one dot product each; 0 without weights).
    pub dot_products: f64,
    /// Of an element-wise op's elements (its `flops`, and its `activation_bytes` at
    /// [`ACTIVATION_BYTES`] each), those over the FFN's hidden width: the gated
    /// activation, which tensor parallelism splits with the FFN (0 elsewhere).
    pub ffn_elements: f64,
}

impl Op {
    fn new(kind: OpKind) -> Op {
        Op {
            kind,
            flops: 0.0,
            weight_params: 0.0,
            dequant_params: 0.0,
            kv_elements: 0.0,
            activation_bytes: 0.0,
            rows: 0.0,
            heads_per_kv: 1.0,
            kernels: kind.kernels(),
            dot_products: 0.0,
            ffn_elements: 0.0,
        }
    }

    /// A token-parallel matrix multiplication of `tokens` rows through `params` weights
    /// from `in_width` to `out_width` features, whose weight matrices have
    /// `weight_outputs` output features in all.
    fn matmul(
        kind: OpKind,
        tokens: f64,
        params: f64,
        (in_width, out_width): (f64, f64),
        weight_outputs: f64,
    ) -> Op {
        Op {
            flops: 2.0 * tokens * params,
            weight_params: params,
            dequant_params: params,
            activation_bytes: tokens * (in_width + out_width) * ACTIVATION_BYTES,
            rows: tokens,
            dot_products: tokens * weight_outputs,
            ..Op::new(kind)
        }
    }
}

/// The shape of one forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    pub sequences: f64,
    pub new_tokens: f64,
    pub context_before: f64,
}

impl Pass {
    pub fn tokens(&self) -> f64 {
        self.sequences * self.new_tokens
    }
}

/// Sum over the new tokens of the keys each attends to (itself included), causal:
/// sum over p = c+1 ..= c+t of p globally, of min(p, w) in a sliding window of `w`,
/// and of ((p - 1) mod w) + 1 in chunks of `w` (a token sees its own chunk up to
/// itself).
pub fn attended_pairs(context_before: f64, new_tokens: f64, span: AttentionSpan) -> f64 {
    let c = context_before;
    let t = new_tokens;
    let full = |from: f64, to: f64| -> f64 {
        // sum of p for p = from ..= to (real-valued, to >= from - 1)
        if to < from {
            0.0
        } else {
            (from + to) * (to - from + 1.0) / 2.0
        }
    };
    match span {
        AttentionSpan::Global => full(c + 1.0, c + t),
        AttentionSpan::Local { window } => {
            let w = window as f64;
            let last_uncapped = (c + t).min(w);
            let uncapped = full(c + 1.0, last_uncapped);
            let capped_count = (c + t - w.max(c)).max(0.0);
            uncapped + capped_count * w
        }
        AttentionSpan::Chunked { chunk } => {
            // Keys seen by the first n tokens: each whole chunk 1 + ... + w, then
            // 1 + ... + r for the r tokens of the last, partial one.
            let w = chunk as f64;
            let seen = |n: f64| {
                let whole = (n / w).floor();
                let r = n - whole * w;
                whole * w * (w + 1.0) / 2.0 + r * (r + 1.0) / 2.0
            };
            seen(c + t) - seen(c)
        }
    }
}

/// Expected distinct experts touched by `tokens` tokens each choosing `k` of `e`.
pub fn expected_distinct_experts(e: f64, k: f64, tokens: f64) -> f64 {
    if tokens <= 0.0 {
        return 0.0;
    }
    e * (1.0 - (1.0 - k / e).powf(tokens))
}

/// Operations of layer `layer` for `pass`; `mla` is how the runtime runs latent
/// attention over a prompt (ignored for other models).
pub fn layer_ops(model: &Model, layer: u32, pass: &Pass, mla: MlaPrefill) -> Vec<Op> {
    let n = pass.tokens();
    let d = model.hidden_size as f64;
    let h = model.attention_heads as f64;
    let mut ops = Vec::with_capacity(8);

    // Projections into and out of attention.
    let (qkv_params, o_params, q_width, kv_width, v_width) = match model.mla {
        Some(mla) => {
            let o = h * f64::from(mla.v_head_dim) * d;
            let all = model.attention_params_per_layer() as f64;
            let qk = f64::from(mla.qk_nope_head_dim + mla.qk_rope_head_dim);
            (
                all - o,
                o,
                h * qk,
                f64::from(mla.kv_lora_rank + mla.qk_rope_head_dim),
                h * f64::from(mla.v_head_dim),
            )
        }
        None => {
            let hd = model.head_dim as f64;
            let kv = model.kv_heads as f64 * hd;
            (
                d * h * hd + 2.0 * d * kv,
                h * hd * d,
                h * hd,
                2.0 * kv,
                h * hd,
            )
        }
    };
    ops.push(Op::matmul(
        OpKind::QkvProjection,
        n,
        qkv_params,
        (d, q_width + kv_width),
        q_width + kv_width,
    ));

    ops.push(attention_op(model, layer, pass, mla));
    ops.extend(latent_decompression_op(model, layer, pass, mla));
    ops.push(Op::matmul(
        OpKind::OutputProjection,
        n,
        o_params,
        (v_width, d),
        d,
    ));

    // Feed-forward.
    let ffn_width = match model.moe {
        Some(moe) if model.is_moe_layer(layer) => {
            let e = f64::from(moe.experts);
            let k = f64::from(moe.experts_per_token);
            ops.push(Op::matmul(
                OpKind::Router,
                n,
                model.router_params() as f64,
                (d, e),
                e,
            ));
            let touched = expected_distinct_experts(e, k, n);
            ops.push(routed_experts_op(model, n * k, touched));
            let shared = model.shared_expert_params() as f64;
            let shared_count = f64::from(moe.shared_experts);
            let one_shared_width = u64::from(
                moe.shared_expert_ffn_hidden
                    .unwrap_or(moe.expert_ffn_hidden),
            );
            let shared_width = one_shared_width as f64 * shared_count;
            if shared > 0.0 {
                let outputs = shared_count * model.ffn_output_features(one_shared_width) as f64;
                ops.push(Op::matmul(
                    OpKind::SharedExperts,
                    n,
                    shared,
                    (d, d),
                    outputs,
                ));
            }
            k * f64::from(moe.expert_ffn_hidden) + shared_width
        }
        _ => {
            ops.push(Op::matmul(
                OpKind::Ffn,
                n,
                model.dense_ffn_params() as f64,
                (d, d),
                model.ffn_output_features(model.ffn_hidden) as f64,
            ));
            model.ffn_hidden as f64
        }
    };

    // Norms (read+write twice), residual adds (two reads, one write, twice), rotary
    // embedding, and the gated activation over the FFN width.
    let ffn_elements = n * 3.0 * ffn_width;
    let elementwise_elements = n * 10.0 * d + ffn_elements;
    ops.push(Op {
        flops: elementwise_elements,
        activation_bytes: elementwise_elements * ACTIVATION_BYTES,
        rows: n,
        ffn_elements,
        ..Op::new(OpKind::Elementwise)
    });
    ops
}

/// The routed experts one device runs: `picks` (token, expert) pairs over `distinct`
/// experts, each pick a GLU (or two-matrix) FFN of one token through one expert.
pub fn routed_experts_op(model: &Model, picks: f64, distinct: f64) -> Op {
    let expert = model.expert_params() as f64;
    let d = model.hidden_size as f64;
    let fe = model.moe.map_or(0, |m| u64::from(m.expert_ffn_hidden));
    Op {
        flops: 2.0 * picks * expert,
        weight_params: distinct * expert,
        dequant_params: distinct * expert,
        activation_bytes: picks * (2.0 * d + fe as f64) * ACTIVATION_BYTES,
        rows: if distinct > 0.0 {
            picks / distinct
        } else {
            0.0
        },
        dot_products: picks * model.ffn_output_features(fe) as f64,
        ..Op::new(OpKind::RoutedExperts)
    }
}

/// Whether latent attention runs absorbed for `pass`: every decode step (fewer new
/// tokens than a query block), and every pass of a runtime whose `mla_prefill` is
/// `absorbed`. False for models without latent attention.
fn mla_absorbed(model: &Model, pass: &Pass, mla_prefill: MlaPrefill) -> bool {
    model.mla.is_some()
        && (pass.new_tokens < ATTENTION_QUERY_BLOCK || mla_prefill == MlaPrefill::Absorbed)
}

/// The widths one (query, key) pair of a layer's attention multiplies over, all heads
/// together: the query-key width of the scores and the value width. Latent attention
/// has two forms (see [`attention_op`]).
fn attention_widths(model: &Model, absorbed: bool) -> (f64, f64) {
    let h = model.attention_heads as f64;
    match model.mla {
        Some(mla) if absorbed => (
            h * f64::from(mla.kv_lora_rank + mla.qk_rope_head_dim),
            h * f64::from(mla.kv_lora_rank),
        ),
        Some(mla) => (
            h * f64::from(mla.qk_nope_head_dim + mla.qk_rope_head_dim),
            h * f64::from(mla.v_head_dim),
        ),
        None => (h * model.head_dim as f64, h * model.head_dim as f64),
    }
}

/// FLOPs of one (query, key) pair of one layer's attention: scores (2 per query
/// element) and values (2 per value element), over all heads. `absorbed` picks the
/// form of latent attention; other models ignore it.
pub fn attention_flops_per_pair(model: &Model, absorbed: bool) -> f64 {
    pair_flops(attention_widths(model, absorbed))
}

/// FLOPs of one (query, key) pair over the widths [`attention_widths`] gives.
fn pair_flops((q_width, v_width): (f64, f64)) -> f64 {
    2.0 * (q_width + v_width)
}

/// Attention of layer `layer` for `pass`: scores and values over the context each
/// query sees (causal, capped by the window on sliding-window layers).
///
/// Multi-head latent attention runs in one of two forms. Absorbed (every decode step,
/// and every pass of a runtime whose `mla_prefill` is `absorbed`): the queries are
/// projected into the latent space and every head attends to the one shared latent,
/// `kv_lora + qk_rope` wide for scores and `kv_lora` for values: multi-query
/// attention, so all `h` heads' queries are the rows of one GEMM; the kernel reads the
/// latent cache. Expanded (prefill of the other runtimes): keys and values are
/// decompressed per head and attention is multi-head over `qk_nope + qk_rope` and
/// `v_head_dim`; the kernel reads those per-head keys and values (activations,
/// `h (qk_nope + qk_rope + v)` per key, each visible key once), and the cache only
/// takes the new tokens' latents. Decompressing a cached prefix is
/// [`latent_decompression_op`].
pub fn attention_op(model: &Model, layer: u32, pass: &Pass, mla_prefill: MlaPrefill) -> Op {
    let h = model.attention_heads as f64;
    let n = pass.tokens();
    let absorbed = mla_absorbed(model, pass, mla_prefill);
    let (q_width, v_width) = attention_widths(model, absorbed);
    let span = model.attention_span(layer);
    let pairs = attended_pairs(pass.context_before, pass.new_tokens, span);
    let flops_per_pair = pair_flops((q_width, v_width));
    let kv_per_token = model.kv_elements_per_token_per_layer() as f64;
    // Each block of up to ATTENTION_QUERY_BLOCK queries reads the keys and values its
    // queries see once: summed over blocks that is pairs / block rows (for one decode
    // query, every visible key). The new keys and values are written once.
    let keys_read = pairs / pass.new_tokens.clamp(1.0, ATTENTION_QUERY_BLOCK);
    // Expanded latent attention reads decompressed per-head keys and values, not the
    // cache: each visible key once. They are 71 times a latent's size for DeepSeek-V3
    // (128 heads x 320 against 576), so the per-block re-reads above would make the
    // kernel memory-bound at 128 FLOPs per byte, where it is a multi-head flash
    // attention whose re-reads of a head's keys across query blocks come from the L2
    // cache (one head's keys and values for 24k tokens: 15.7 MB).
    let (cache_keys_read, expanded_bytes) = if model.mla.is_some() && !absorbed {
        let visible = span.cached_in_view(pass.context_before) + pass.new_tokens;
        (0.0, visible * (q_width + v_width) * ACTIVATION_BYTES)
    } else {
        (keys_read, 0.0)
    };
    // Queries sharing a KV head (grouped-query attention) form the rows of the
    // attention GEMMs; absorbed latent attention has one KV head for all `h`.
    let kv_heads = if absorbed { 1.0 } else { model.kv_heads as f64 };
    let heads_per_kv = (h / kv_heads).max(1.0);
    Op {
        flops: pass.sequences * pairs * flops_per_pair,
        kv_elements: pass.sequences * kv_per_token * (cache_keys_read + pass.new_tokens),
        activation_bytes: n * (q_width + v_width) * ACTIVATION_BYTES
            + pass.sequences * expanded_bytes,
        rows: pass.new_tokens * heads_per_kv,
        heads_per_kv,
        ..Op::new(OpKind::Attention)
    }
}

/// Expanded latent attention after a cached prefix: each pass decompresses the cached
/// tokens' latents into per-head keys (`qk_nope` part) and values through the
/// up-projection (`kv_lora x h (qk_nope + v)` weights), one GEMM with a row per cached
/// token the new tokens see, as vLLM's MLA prefill does for the context of a chunk or
/// a prefix-cache hit (`_compute_prefill_context` runs `kv_b_proj` over the gathered
/// context latents: vllm/model_executor/layers/attention/mla_attention.py, vLLM
/// 0.33.0).
/// The new tokens' own keys and values come out of the QKV projection. `None` where
/// there is nothing to decompress: absorbed attention, no latent attention, or no
/// cached prefix.
pub fn latent_decompression_op(
    model: &Model,
    layer: u32,
    pass: &Pass,
    mla_prefill: MlaPrefill,
) -> Option<Op> {
    let mla = model.mla?;
    if mla_absorbed(model, pass, mla_prefill) || pass.context_before <= 0.0 {
        return None;
    }
    let cached = model
        .attention_span(layer)
        .cached_in_view(pass.context_before);
    let h = model.attention_heads as f64;
    let out = h * f64::from(mla.qk_nope_head_dim + mla.v_head_dim);
    let lora = f64::from(mla.kv_lora_rank);
    Some(Op::matmul(
        OpKind::LatentDecompression,
        pass.sequences * cached,
        lora * out,
        (lora, out),
        out,
    ))
}

/// Once-per-pass operations outside the layers: embedding gather and LM head.
pub fn head_ops(model: &Model, pass: &Pass, logits_rows: f64) -> Vec<Op> {
    let d = model.hidden_size as f64;
    let v = model.vocab_size as f64;
    let n = pass.tokens();
    vec![
        Op {
            weight_params: n * d,
            activation_bytes: n * d * ACTIVATION_BYTES,
            rows: n,
            ..Op::new(OpKind::Embedding)
        },
        Op {
            flops: 2.0 * logits_rows * v * d,
            weight_params: v * d,
            dequant_params: v * d,
            activation_bytes: logits_rows * (d + v) * ACTIVATION_BYTES,
            rows: logits_rows,
            dot_products: logits_rows * v,
            ..Op::new(OpKind::LmHead)
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attended_pairs_global_is_a_triangle() {
        // 4 new tokens after 0 cached: 1 + 2 + 3 + 4 = 10.
        assert_eq!(attended_pairs(0.0, 4.0, AttentionSpan::Global), 10.0);
        // One decode token after 99 cached attends to 100 keys.
        assert_eq!(attended_pairs(99.0, 1.0, AttentionSpan::Global), 100.0);
        // 2 new after 3 cached: 4 + 5 = 9.
        assert_eq!(attended_pairs(3.0, 2.0, AttentionSpan::Global), 9.0);
    }

    #[test]
    fn attended_pairs_caps_at_the_window() {
        let window = |w| AttentionSpan::Local { window: w };
        // Window 3, 5 new tokens from 0: min(1,3)+min(2,3)+3+3+3 = 12.
        assert_eq!(attended_pairs(0.0, 5.0, window(3)), 12.0);
        // Window 3, one decode token after 99 cached: 3.
        assert_eq!(attended_pairs(99.0, 1.0, window(3)), 3.0);
        // Window 4, 3 new after 2 cached: min(3,4)+4+4 = 11.
        assert_eq!(attended_pairs(2.0, 3.0, window(4)), 11.0);
    }

    #[test]
    fn attended_pairs_restart_at_each_chunk() {
        let chunk = |w| AttentionSpan::Chunked { chunk: w };
        // Chunks of 3, 5 new tokens from 0: positions 0-2 see 1, 2, 3 keys, positions
        // 3-4 start a chunk and see 1, 2: 1+2+3+1+2 = 9 (a window of 3 gives 12).
        assert_eq!(attended_pairs(0.0, 5.0, chunk(3)), 9.0);
        // One decode token after 99 cached is at position 99 = 33 x 3: 1 key.
        assert_eq!(attended_pairs(99.0, 1.0, chunk(3)), 1.0);
        // ... after 100 cached, position 100 (100 mod 3 = 1): 2 keys.
        assert_eq!(attended_pairs(100.0, 1.0, chunk(3)), 2.0);
        // Chunks of 4, 6 new after 2 cached: positions 2-7 see 3, 4, 1, 2, 3, 4 = 17.
        assert_eq!(attended_pairs(2.0, 6.0, chunk(4)), 17.0);
    }

    #[test]
    fn distinct_experts_for_one_token_is_k_and_saturates_at_e() {
        // One token touches exactly k experts: 16 (1 - (1 - 4/16)) = 4.
        assert!((expected_distinct_experts(16.0, 4.0, 1.0) - 4.0).abs() < 1e-12);
        // Two tokens: 16 (1 - 0.75^2) = 16 x 0.4375 = 7.
        assert!((expected_distinct_experts(16.0, 4.0, 2.0) - 7.0).abs() < 1e-12);
        assert!((expected_distinct_experts(16.0, 4.0, 1000.0) - 16.0).abs() < 1e-9);
    }

    /// A small latent-attention model: 4 heads, kv_lora 8, rope 2, nope 6, v 4.
    fn tiny_mla() -> Model {
        Model::from_toml(
            "tiny-mla",
            "tiny-mla.toml",
            r#"
name = "tiny MLA"
source = "test"
published_total_params_b = { value = 0.001, source = "test" }
layers = 1
hidden_size = 16
attention_heads = 4
kv_heads = 4
head_dim = 8
ffn_hidden = 32
vocab_size = 100
tied_embeddings = false
gated_ffn = true
max_context = 4096
[mla]
q_lora_rank = 0
kv_lora_rank = 8
qk_nope_head_dim = 6
qk_rope_head_dim = 2
v_head_dim = 4
"#,
        )
        .unwrap()
    }

    #[test]
    fn latent_attention_prefill_takes_the_runtime_form_and_decode_is_absorbed() {
        let m = tiny_mla();
        // Prefill: 200 new tokens (>= the 128-query block) after 0 cached:
        // pairs = 200 x 201 / 2 = 20,100.
        let prefill = Pass {
            sequences: 1.0,
            new_tokens: 200.0,
            context_before: 0.0,
        };
        // Expanded: per pair 2 h (nope + rope) + 2 h v = 2 x 4 x 8 + 2 x 4 x 4 = 96
        // FLOPs; each of the 4 KV heads has its own query, 200 rows.
        let expanded = attention_op(&m, 0, &prefill, MlaPrefill::Expanded);
        assert_eq!(expanded.flops, 20_100.0 * 96.0);
        assert_eq!(expanded.rows, 200.0);
        // Absorbed: 2 h (kv_lora + rope) + 2 h kv_lora = 2 x 4 x 10 + 2 x 4 x 8 = 144;
        // one shared latent, so the 4 heads' queries are rows: 800.
        let absorbed = attention_op(&m, 0, &prefill, MlaPrefill::Absorbed);
        assert_eq!(absorbed.flops, 20_100.0 * 144.0);
        assert_eq!(absorbed.rows, 800.0);
        // Keys read: 20,100 pairs / 128 query rows per block = 157.03125 per block
        // sweep. Absorbed reads them from the latent cache (10 elements per token)
        // and writes the 200 new latents: 10 x (157.03125 + 200) = 3,570.3125.
        assert_eq!(absorbed.kv_elements, 3_570.312_5);
        // Expanded reads decompressed per-head keys and values, 32 + 16 = 48 bf16
        // values per key, each of the 200 keys once, so the cache only takes the new
        // latents: 10 x 200 = 2,000; activations are the queries and outputs,
        // 200 x 48 x 2 = 19,200 bytes, plus the expanded keys and values, as many.
        assert_eq!(expanded.kv_elements, 2_000.0);
        assert_eq!(expanded.activation_bytes, 19_200.0 + 19_200.0);
        // Absorbed activations: 200 x (40 + 32) x 2 = 28,800 bytes.
        assert_eq!(absorbed.activation_bytes, 28_800.0);

        // Decode (one token after 99): absorbed in either runtime, 100 pairs.
        let decode = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 99.0,
        };
        for form in [MlaPrefill::Expanded, MlaPrefill::Absorbed] {
            let op = attention_op(&m, 0, &decode, form);
            assert_eq!(op.flops, 100.0 * 144.0);
            assert_eq!(op.rows, 4.0);
        }
    }

    #[test]
    fn expanded_latent_attention_decompresses_the_cached_prefix_each_pass() {
        let m = tiny_mla();
        // Two sequences, each 200 new tokens after 300 cached: 600 cached rows through
        // the up-projection kv_lora x h (nope + v) = 8 x 4 x (6 + 4) = 320 weights,
        // 2 x 600 x 320 = 384,000 FLOPs.
        let chunk = Pass {
            sequences: 2.0,
            new_tokens: 200.0,
            context_before: 300.0,
        };
        let op = latent_decompression_op(&m, 0, &chunk, MlaPrefill::Expanded).unwrap();
        assert_eq!(op.rows, 600.0);
        assert_eq!(op.weight_params, 320.0);
        assert_eq!(op.flops, 384_000.0);
        // In: 8 latent values per row; out: 40 per row; bf16: 600 x 48 x 2 bytes.
        assert_eq!(op.activation_bytes, 57_600.0);
        assert!(layer_ops(&m, 0, &chunk, MlaPrefill::Expanded)
            .iter()
            .any(|o| o.kind == OpKind::LatentDecompression));
        // Nothing to decompress: absorbed, no prefix, or a decode step.
        assert!(latent_decompression_op(&m, 0, &chunk, MlaPrefill::Absorbed).is_none());
        let fresh = Pass {
            context_before: 0.0,
            ..chunk
        };
        assert!(latent_decompression_op(&m, 0, &fresh, MlaPrefill::Expanded).is_none());
        let decode = Pass {
            new_tokens: 1.0,
            ..chunk
        };
        assert!(latent_decompression_op(&m, 0, &decode, MlaPrefill::Expanded).is_none());

        // In a mixed batch each prefill chunk decompresses its own prefix (300 and
        // 100 rows); the decode step none; the layer launches the kernel once.
        let one = |new_tokens: f64, context_before: f64| Pass {
            sequences: 1.0,
            new_tokens,
            context_before,
        };
        let parts = [one(200.0, 300.0), one(1.0, 400.0), one(200.0, 100.0)];
        let (ops, launched) =
            crate::analytical::pass::batch_layer_ops(&m, 0, &parts, MlaPrefill::Expanded);
        let rows: Vec<f64> = ops
            .iter()
            .filter(|o| o.kind == OpKind::LatentDecompression)
            .map(|o| o.rows)
            .collect();
        assert_eq!(rows, [300.0, 100.0]);
        let launches = launched
            .iter()
            .filter(|o| o.kind == OpKind::LatentDecompression)
            .count();
        assert_eq!(launches, 1);
    }
}
