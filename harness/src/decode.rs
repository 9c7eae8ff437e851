//! A real transformer decoder: random fp32 weights of a catalog shape, real
//! matrix-vector products, rotary embeddings, grouped-query attention over a growing
//! KV cache, RMSNorm, a gated (SwiGLU) or plain FFN, the LM head and greedy sampling,
//! one token at a time. [`Weights`] are made once on the host from a seed; the CPU
//! [`Engine`] here and the CUDA one (`backend::cuda_decode`, feature `cuda`) run the
//! same weights, so the same seed gives both the same greedy tokens up to the order
//! of floating-point sums.
//!
//! Per layer and step the engine forks and joins the worker threads five times (the
//! "kernels" the runtime profile `runtimes/planner-harness.toml` counts): the fused
//! QKV GEMV, attention over the heads, the output projection, the fused gate/up GEMV
//! and the down projection; norms, rotary embedding, the activation and residual adds
//! run on the calling thread. The GEMVs are [`crate::kernels::gemv`], the kernel the
//! suite's `gemv` rows measure.
//!
//! `--layers N` runs the first N layers of the shape (every dense layer of a model
//! costs the same), so a shape larger than memory or patience can still be measured;
//! the result reports the layer stack and the head (embedding, final norm, LM head,
//! sampling) separately so it can be compared layer for layer.

use std::time::Instant;

use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::Serialize;

use planner::model::{AttentionSpan, Model};

use crate::kernels::{dot, fill_uniform, gemv};

/// One layer's weights, row-major `[outputs] x [inputs]`.
pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    /// `[(heads + 2 kv_heads) head_dim] x hidden`: Q, K, V stacked.
    pub wqkv: Vec<f32>,
    /// `hidden x (heads head_dim)`.
    pub wo: Vec<f32>,
    pub ffn_norm: Vec<f32>,
    /// `[2 ffn] x hidden` when gated (gate rows, then up rows), else `ffn x hidden`.
    pub w_in: Vec<f32>,
    /// `hidden x ffn`.
    pub w_down: Vec<f32>,
    pub span: AttentionSpan,
}

/// The sizes a decoder of a catalog shape works with.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub gated: bool,
}

impl Shape {
    /// Rows of the fused QKV projection: the query heads, then the keys and values.
    pub fn qkv_rows(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }

    /// Rows of the FFN's input projection: gate and up when gated.
    pub fn ffn_rows(&self) -> usize {
        if self.gated {
            2 * self.ffn
        } else {
            self.ffn
        }
    }

    /// One token's keys (or values) in one layer.
    pub fn kv_len(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// The first cached position a token at `pos` attends to in a layer of `span`: what
/// [`AttentionSpan::cached_in_view`] leaves in view of the `pos` tokens before it.
pub fn first_attended(span: AttentionSpan, pos: usize) -> usize {
    pos - span.cached_in_view(pos as f64) as usize
}

/// Seeded random weights of the first layers of a catalog shape.
pub struct Weights {
    pub shape: Shape,
    pub embedding: Vec<f32>,
    /// `None` when tied to the embedding.
    pub lm_head: Option<Vec<f32>>,
    pub final_norm: Vec<f32>,
    pub layers: Vec<LayerWeights>,
}

/// A decoder that runs one token at a time.
pub trait Decoder {
    /// Runs token `token` at position `pos` through the stack; returns the greedy next
    /// token and the step's time.
    fn step(&mut self, token: usize, pos: usize) -> Result<(usize, StepTime)>;
}

/// The CPU engine: [`Weights`], a KV cache per layer and scratch vectors.
pub struct Engine {
    w: Weights,
    max_context: usize,
    /// Per layer: keys and values, `max_context x kv_heads x head_dim` each.
    caches: Vec<(Vec<f32>, Vec<f32>)>,
    // Scratch.
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    ffn_in: Vec<f32>,
    act: Vec<f32>,
    logits: Vec<f32>,
}

/// Time of one step, split into the layer stack and the head.
#[derive(Debug, Clone, Copy)]
pub struct StepTime {
    pub layers_s: f64,
    pub head_s: f64,
}

fn filled(len: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut v = crate::kernels::zeroed(len);
    fill_uniform(&mut v, seed, scale);
    v
}

fn rms_norm(x: &[f32], weight: &[f32], out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let inv = 1.0 / (mean_square + 1e-5).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * inv * w;
    }
}

/// The rotary embedding's base (`rope_theta`), Llama 3's: 500,000 in
/// https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json. Every model the
/// engine runs takes it: with random weights the base changes the rotation's
/// frequencies, not the work, and the CPU and CUDA engines must rotate alike.
pub const ROPE_BASE: f32 = 500_000.0;

/// Rotary embedding of one head vector at `pos` (pairs `i`, `i + d/2`).
fn rope(v: &mut [f32], pos: usize) {
    let half = v.len() / 2;
    for i in 0..half {
        let freq = ROPE_BASE.powf(-((2 * i) as f32) / v.len() as f32);
        let (sin, cos) = (pos as f32 * freq).sin_cos();
        let (a, b) = (v[i], v[i + half]);
        v[i] = a * cos - b * sin;
        v[i + half] = a * sin + b * cos;
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

impl Weights {
    /// Fills the first `layers` layers of `model` with seeded random weights (uniform,
    /// scaled by `1 / sqrt(fan in)`; norms 1).
    pub fn new(model: &Model, layers: u32, seed: u64) -> Result<Weights> {
        if model.moe.is_some() || model.mla.is_some() {
            bail!(
                "the decode engine runs dense models with standard attention; `{}` has {}",
                model.id,
                if model.moe.is_some() {
                    "mixture-of-experts layers"
                } else {
                    "latent attention"
                }
            );
        }
        if layers == 0 || layers > model.layers {
            bail!(
                "--layers must be in 1..={} for `{}`",
                model.layers,
                model.id
            );
        }
        let shape = Shape {
            hidden: model.hidden_size as usize,
            heads: model.attention_heads as usize,
            kv_heads: model.kv_heads as usize,
            head_dim: model.head_dim as usize,
            ffn: model.ffn_hidden as usize,
            vocab: model.vocab_size as usize,
            gated: model.gated_ffn,
        };
        let (d, h, hd, ffn, vocab) = (
            shape.hidden,
            shape.heads,
            shape.head_dim,
            shape.ffn,
            shape.vocab,
        );
        let scale = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
        let mut all = Vec::with_capacity(layers as usize);
        for l in 0..layers {
            let s = 100 * u64::from(l + 1);
            all.push(LayerWeights {
                attn_norm: vec![1.0; d],
                wqkv: filled(shape.qkv_rows() * d, seed + s, scale(d)),
                wo: filled(d * h * hd, seed + s + 1, scale(h * hd)),
                ffn_norm: vec![1.0; d],
                w_in: filled(shape.ffn_rows() * d, seed + s + 2, scale(d)),
                w_down: filled(d * ffn, seed + s + 3, scale(ffn)),
                span: model.attention_span(l),
            });
        }
        Ok(Weights {
            shape,
            embedding: filled(vocab * d, seed + 1, 1.0),
            lm_head: (!model.tied_embeddings).then(|| filled(vocab * d, seed + 2, scale(d))),
            final_norm: vec![1.0; d],
            layers: all,
        })
    }

    /// Floats in the layers' matrices and norms.
    fn layer_floats(&self) -> usize {
        self.layers
            .iter()
            .map(|l| {
                l.attn_norm.len()
                    + l.wqkv.len()
                    + l.wo.len()
                    + l.ffn_norm.len()
                    + l.w_in.len()
                    + l.w_down.len()
            })
            .sum()
    }

    /// Bytes the weights take in memory: every layer, the embedding table, the LM head
    /// when it is not the embedding, the final norm. (The CUDA engine checks them
    /// against the GPU's memory.)
    #[cfg(any(feature = "cuda", test))]
    pub fn resident_bytes(&self) -> f64 {
        let layers = self.layer_floats();
        let head = self.lm_head.as_ref().map_or(0, Vec::len);
        4.0 * (layers + self.embedding.len() + head + self.final_norm.len()) as f64
    }

    /// Bytes of weights one step reads: every layer's matrices and norms, one
    /// embedding row, the LM head (the embedding when tied).
    pub fn bytes_per_step(&self) -> f64 {
        let per_layer = self.layer_floats();
        let d = self.shape.hidden;
        4.0 * (per_layer + d + self.shape.vocab * d + d) as f64
    }
}

impl Engine {
    /// The engine over `w` with a KV cache of `max_context` tokens.
    pub fn new(w: Weights, max_context: usize) -> Engine {
        let shape = w.shape;
        let kv_len = shape.kv_len();
        Engine {
            caches: (0..w.layers.len())
                .map(|_| {
                    (
                        vec![0.0; max_context * kv_len],
                        vec![0.0; max_context * kv_len],
                    )
                })
                .collect(),
            max_context,
            x: vec![0.0; shape.hidden],
            xn: vec![0.0; shape.hidden],
            qkv: vec![0.0; shape.qkv_rows()],
            attn: vec![0.0; shape.heads * shape.head_dim],
            proj: vec![0.0; shape.hidden],
            ffn_in: vec![0.0; shape.ffn_rows()],
            act: vec![0.0; shape.ffn],
            logits: vec![0.0; shape.vocab],
            w,
        }
    }
}

impl Decoder for Engine {
    fn step(&mut self, token: usize, pos: usize) -> Result<(usize, StepTime)> {
        if pos >= self.max_context {
            bail!(
                "position {pos} beyond the KV cache ({} tokens)",
                self.max_context
            );
        }
        let start = Instant::now();
        let w = &self.w;
        let shape = w.shape;
        let (d, h, kv, hd) = (shape.hidden, shape.heads, shape.kv_heads, shape.head_dim);
        let token = token % shape.vocab;
        self.x
            .copy_from_slice(&w.embedding[token * d..(token + 1) * d]);
        let group = h / kv;
        let inv_sqrt = 1.0 / (hd as f32).sqrt();
        for (layer, (k_cache, v_cache)) in w.layers.iter().zip(&mut self.caches) {
            rms_norm(&self.x, &layer.attn_norm, &mut self.xn);
            gemv(&layer.wqkv, &self.xn, &mut self.qkv);
            let (q, kvs) = self.qkv.split_at_mut(h * hd);
            let (k, v) = kvs.split_at_mut(kv * hd);
            for head in q.chunks_exact_mut(hd).chain(k.chunks_exact_mut(hd)) {
                rope(head, pos);
            }
            let row = pos * kv * hd;
            k_cache[row..row + kv * hd].copy_from_slice(k);
            v_cache[row..row + kv * hd].copy_from_slice(v);
            let first = first_attended(layer.span, pos);
            let (k_cache, v_cache) = (&*k_cache, &*v_cache);
            let q: &[f32] = q;
            self.attn
                .par_chunks_mut(hd)
                .enumerate()
                .for_each(|(head, out)| {
                    let g = head / group;
                    let qh = &q[head * hd..(head + 1) * hd];
                    let mut scores: Vec<f32> = (first..=pos)
                        .map(|t| {
                            dot(qh, &k_cache[(t * kv + g) * hd..(t * kv + g + 1) * hd]) * inv_sqrt
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut total = 0.0;
                    for s in &mut scores {
                        *s = (*s - max).exp();
                        total += *s;
                    }
                    out.fill(0.0);
                    for (t, s) in (first..=pos).zip(&scores) {
                        let p = s / total;
                        let vt = &v_cache[(t * kv + g) * hd..(t * kv + g + 1) * hd];
                        for (o, x) in out.iter_mut().zip(vt) {
                            *o += p * x;
                        }
                    }
                });
            gemv(&layer.wo, &self.attn, &mut self.proj);
            for (x, p) in self.x.iter_mut().zip(&self.proj) {
                *x += p;
            }
            rms_norm(&self.x, &layer.ffn_norm, &mut self.xn);
            gemv(&layer.w_in, &self.xn, &mut self.ffn_in);
            if shape.gated {
                let (gate, up) = self.ffn_in.split_at(shape.ffn);
                for ((a, g), u) in self.act.iter_mut().zip(gate).zip(up) {
                    *a = silu(*g) * u;
                }
            } else {
                for (a, u) in self.act.iter_mut().zip(&self.ffn_in) {
                    *a = silu(*u);
                }
            }
            gemv(&layer.w_down, &self.act, &mut self.proj);
            for (x, p) in self.x.iter_mut().zip(&self.proj) {
                *x += p;
            }
        }
        let layers_done = Instant::now();
        rms_norm(&self.x, &w.final_norm, &mut self.xn);
        let head = w.lm_head.as_deref().unwrap_or(&w.embedding);
        gemv(head, &self.xn, &mut self.logits);
        let next = self
            .logits
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
                if *v > best.1 {
                    (i, *v)
                } else {
                    best
                }
            })
            .0;
        let end = Instant::now();
        Ok((
            next,
            StepTime {
                layers_s: (layers_done - start).as_secs_f64(),
                head_s: (end - layers_done).as_secs_f64(),
            },
        ))
    }
}

/// What `planner-harness decode` writes.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeResult {
    pub backend: String,
    pub device: String,
    pub model: String,
    /// Layers of the catalog shape.
    pub model_layers: u32,
    /// Layers this run executed (`--layers`).
    pub layers_run: u32,
    pub weights: String,
    pub threads: usize,
    pub prompt_tokens: usize,
    /// Decode steps timed.
    pub tokens: usize,
    pub weight_bytes_per_step: f64,
    pub init_s: f64,
    pub prompt_s: f64,
    pub decode_s: f64,
    /// `tokens / decode_s`: the measured decode rate of what ran.
    pub tokens_per_s: f64,
    pub step_median_s: f64,
    /// The fastest step: the machine least disturbed by other processes.
    pub step_min_s: f64,
    /// `1 / step_min_s`.
    pub tokens_per_s_best: f64,
    pub layers_s_per_step: f64,
    pub head_s_per_step: f64,
    /// `1 / (head + model_layers x layers_s_per_step / layers_run)`: the same step
    /// with every layer of the shape, each costing the measured mean.
    pub full_depth_tokens_per_s: f64,
    /// The same from the fastest layer-stack time and the fastest head time.
    pub full_depth_tokens_per_s_best: f64,
    pub last_token: usize,
}

/// Where a decode runs: the backend's name, the device as the backend names it, the
/// host threads the engine uses, and how to make the engine over the weights and a KV
/// cache of so many tokens.
pub struct Target<'a> {
    pub backend: &'static str,
    pub device: String,
    pub threads: usize,
    #[allow(clippy::type_complexity)]
    pub open: Box<dyn FnOnce(Weights, usize) -> Result<Box<dyn Decoder>> + 'a>,
}

/// The CPU engine on rayon's worker threads.
pub fn cpu_target(device: String) -> Target<'static> {
    Target {
        backend: "cpu",
        device,
        threads: rayon::current_num_threads(),
        open: Box::new(|w, max_context| Ok(Box::new(Engine::new(w, max_context)))),
    }
}

/// Runs `prompt_tokens` untimed steps to fill the cache, then times `tokens` steps.
pub fn run(
    model: &Model,
    layers: u32,
    prompt_tokens: usize,
    tokens: usize,
    seed: u64,
    target: Target<'_>,
) -> Result<DecodeResult> {
    if tokens == 0 {
        bail!("--tokens must be at least 1");
    }
    let init_start = Instant::now();
    let weights = Weights::new(model, layers, seed)?;
    let (vocab, weight_bytes_per_step) = (weights.shape.vocab, weights.bytes_per_step());
    let mut engine = (target.open)(weights, prompt_tokens + tokens)?;
    let init_s = init_start.elapsed().as_secs_f64();
    let mut token = 1usize;
    let prompt_start = Instant::now();
    for pos in 0..prompt_tokens {
        // A fixed pseudo-random prompt; the model's own choice is ignored here.
        engine.step(token, pos)?;
        token = (pos * 7919 + 13) % vocab;
    }
    let prompt_s = prompt_start.elapsed().as_secs_f64();
    let mut steps = Vec::with_capacity(tokens);
    let (mut layers_s, mut head_s) = (0.0, 0.0);
    let (mut layers_min, mut head_min) = (f64::INFINITY, f64::INFINITY);
    for i in 0..tokens {
        let (next, t) = engine.step(token, prompt_tokens + i)?;
        steps.push(t.layers_s + t.head_s);
        layers_s += t.layers_s;
        head_s += t.head_s;
        layers_min = layers_min.min(t.layers_s);
        head_min = head_min.min(t.head_s);
        token = next;
    }
    let decode_s: f64 = steps.iter().sum();
    let n = tokens as f64;
    let (median, min) = planner::microbench::median_min(&steps);
    let depth = f64::from(model.layers) / f64::from(layers);
    let full_step = head_s / n + depth * layers_s / n;
    let full_step_best = head_min + depth * layers_min;
    Ok(DecodeResult {
        backend: target.backend.to_string(),
        device: target.device,
        model: model.id.clone(),
        model_layers: model.layers,
        layers_run: layers,
        weights: "f32".to_string(),
        threads: target.threads,
        prompt_tokens,
        tokens,
        weight_bytes_per_step,
        init_s,
        prompt_s,
        decode_s,
        tokens_per_s: n / decode_s,
        step_median_s: median,
        step_min_s: min,
        tokens_per_s_best: 1.0 / min,
        layers_s_per_step: layers_s / n,
        head_s_per_step: head_s / n,
        full_depth_tokens_per_s: 1.0 / full_step,
        full_depth_tokens_per_s_best: 1.0 / full_step_best,
        last_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"
name = "tiny"
source = "test"
published_total_params_b = { value = 0.001, source = "test" }
layers = 2
hidden_size = 64
attention_heads = 4
kv_heads = 2
head_dim = 16
ffn_hidden = 96
vocab_size = 100
tied_embeddings = true
max_context = 128
"#;

    #[test]
    fn tiny_model_decodes_deterministically() {
        let model = Model::from_toml("tiny", "tiny.toml", TINY).unwrap();
        let cpu = || cpu_target("test".to_string());
        let a = run(&model, 2, 4, 6, 7, cpu()).unwrap();
        let b = run(&model, 2, 4, 6, 7, cpu()).unwrap();
        assert_eq!(a.last_token, b.last_token);
        assert!(a.last_token < 100);
        assert_eq!(a.tokens, 6);
        // Weights per step, fp32: per layer 2 x 64 (norms) + (4 + 4) x 16 x 64 (qkv)
        // + 64 x 64 (o) + 192 x 64 (gate/up) + 64 x 96 (down) = 128 + 8192 + 4096
        // + 12288 + 6144 = 30848; two layers 61696, + 64 (embedding row) + 6400 (tied
        // head) + 64 (final norm) = 68224 floats = 272896 bytes.
        assert_eq!(a.weight_bytes_per_step, 272_896.0);
        // Held in memory: the two layers' 61696 floats, the (tied) embedding table's
        // 6400 and the final norm's 64 = 68160 floats = 272640 bytes.
        let w = Weights::new(&model, 2, 7).unwrap();
        assert_eq!(w.resident_bytes(), 272_640.0);
    }

    #[test]
    fn rotary_embedding_at_zero_and_rms_norm() {
        // A rotary angle of 0 (position 0) leaves the vector alone.
        let mut v = [1.0, 2.0, 3.0, 4.0];
        rope(&mut v, 0);
        assert_eq!(v, [1.0, 2.0, 3.0, 4.0]);
        // RMSNorm of [3, 4] with unit weights: mean square 12.5, so [3, 4] / 3.5355.
        let mut out = [0.0; 2];
        rms_norm(&[3.0, 4.0], &[1.0, 1.0], &mut out);
        assert!((out[0] - 0.848528).abs() < 1e-4 && (out[1] - 1.131371).abs() < 1e-4);
    }

    #[test]
    fn first_attended_position_by_span() {
        // A window of 4 keys counts the token itself: at position 10 it sees 7-10.
        // A chunk of 4: position 9 sees its chunk's 8 and 9.
        let local = AttentionSpan::Local { window: 4 };
        let chunked = AttentionSpan::Chunked { chunk: 4 };
        for (pos, local_first, chunk_first) in [
            (0, 0, 0),
            (2, 0, 0),
            (3, 0, 0),
            (4, 1, 4),
            (9, 6, 8),
            (10, 7, 8),
        ] {
            assert_eq!(first_attended(AttentionSpan::Global, pos), 0);
            assert_eq!(first_attended(local, pos), local_first, "local, {pos}");
            assert_eq!(first_attended(chunked, pos), chunk_first, "chunked, {pos}");
        }
    }

    #[test]
    fn moe_models_are_refused() {
        let text =
            format!("{TINY}\n[moe]\nexperts = 4\nexperts_per_token = 2\nexpert_ffn_hidden = 32\n");
        let model = Model::from_toml("m", "m.toml", &text).unwrap();
        assert!(Weights::new(&model, 1, 1).is_err());
    }
}
