//! Time of whole forward passes: prefill (in chunks) and decode (step by step as the
//! context grows), on one device.

use serde::Serialize;

use super::ops::{attention_op, head_ops, latent_decompression_op, layer_ops, Op, OpKind, Pass};
use super::timing::{Executor, OpTime};
use crate::model::Model;
use crate::runtime::MlaPrefill;

/// Time of one or more passes, split the way the contract's breakdown reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PassTime {
    /// Device work: the sum of operation times.
    pub compute_s: f64,
    /// Dispatch and host overhead.
    pub overhead_s: f64,
    pub flops: f64,
    pub bytes: f64,
}

impl PassTime {
    pub fn total_s(&self) -> f64 {
        self.compute_s + self.overhead_s
    }

    pub fn add(&mut self, other: &PassTime) {
        self.compute_s += other.compute_s;
        self.overhead_s += other.overhead_s;
        self.flops += other.flops;
        self.bytes += other.bytes;
    }

    pub fn scaled(&self, factor: f64) -> PassTime {
        PassTime {
            compute_s: self.compute_s * factor,
            overhead_s: self.overhead_s * factor,
            flops: self.flops * factor,
            bytes: self.bytes * factor,
        }
    }
}

/// Layers with identical cost: same FFN kind and attention span.
fn layer_classes(model: &Model, layers: std::ops::Range<u32>) -> Vec<(u32, f64)> {
    let mut classes: Vec<(u32, f64)> = Vec::new();
    let mut keys: Vec<(bool, crate::model::AttentionSpan)> = Vec::new();
    for layer in layers {
        let key = (model.is_moe_layer(layer), model.attention_span(layer));
        match keys.iter().position(|k| *k == key) {
            Some(i) => classes[i].1 += 1.0,
            None => {
                keys.push(key);
                classes.push((layer, 1.0));
            }
        }
    }
    classes
}

/// Layers of `layers` grouped by identical cost: (a representative layer, how many).
pub fn layer_groups(model: &Model, layers: std::ops::Range<u32>) -> Vec<(u32, f64)> {
    layer_classes(model, layers)
}

/// Times the operations of one layer for `pass`.
pub fn layer_op_times(exec: &Executor, model: &Model, layer: u32, pass: &Pass) -> Vec<OpTime> {
    layer_ops(model, layer, pass, exec.runtime.mla_prefill)
        .iter()
        .map(|op| exec.time(op))
        .collect()
}

fn sum_ops(exec: &Executor, ops: &[Op]) -> PassTime {
    let mut t = PassTime::default();
    for op in ops {
        let time = exec.time(op);
        t.compute_s += time.time_s;
        t.flops += time.flops;
        t.bytes += time.bytes;
    }
    t
}

/// Which parts of the model a pass runs on this device.
#[derive(Debug, Clone)]
pub struct Shard {
    pub layers: std::ops::Range<u32>,
    /// Whether this device runs the embedding and LM head.
    pub head: bool,
}

impl Shard {
    pub fn whole(model: &Model) -> Shard {
        Shard {
            layers: 0..model.layers,
            head: true,
        }
    }
}

/// One forward pass over `shard`. `logits_rows` rows go through the LM head.
pub fn pass_time(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    pass: &Pass,
    logits_rows: f64,
) -> PassTime {
    let mut total = PassTime::default();
    for (layer, count) in layer_classes(model, shard.layers.clone()) {
        let ops = layer_ops(model, layer, pass, exec.runtime.mla_prefill);
        let mut t = sum_ops(exec, &ops);
        t.overhead_s += exec.dispatch_overhead_s(&ops);
        total.add(&t.scaled(count));
    }
    if shard.head {
        let ops = head_ops(model, pass, logits_rows);
        let mut t = sum_ops(exec, &ops);
        t.overhead_s += exec.dispatch_overhead_s(&ops);
        total.add(&t);
    }
    total.overhead_s += exec.runtime.per_step_overhead_s;
    total
}

/// Tokens per sequence one prefill pass takes: the runtime's micro-batch
/// (`chunk_tokens`, counted over all sequences, as llama.cpp's `n_ubatch` is) shared
/// evenly by the `sequences`, at least one; the whole uncached prompt without a chunk.
pub fn chunk_per_sequence(chunk_tokens: Option<f64>, sequences: f64, uncached: f64) -> f64 {
    chunk_tokens
        .map_or(uncached, |c| (c / sequences.max(1.0)).floor())
        .max(1.0)
        .min(uncached.max(1.0))
}

/// Prefill of `sequences` prompts of `prompt_tokens`, of which `cached_tokens` are
/// already in the KV cache, in passes of [`chunk_per_sequence`] tokens per sequence.
pub fn prefill_time(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    sequences: f64,
    prompt_tokens: f64,
    cached_tokens: f64,
    chunk_tokens: Option<f64>,
) -> PassTime {
    let mut total = PassTime::default();
    for (new_tokens, context_before) in
        prefill_chunks(prompt_tokens, cached_tokens, chunk_tokens, sequences)
    {
        let last = context_before + new_tokens >= prompt_tokens;
        let pass = Pass {
            sequences,
            new_tokens,
            context_before,
        };
        let logits_rows = if last { sequences } else { 0.0 };
        total.add(&pass_time(exec, model, shard, &pass, logits_rows));
    }
    total
}

/// Decode of `steps` steps, one token per sequence each, starting with
/// `context_before` tokens in each sequence's cache. Exact for up to 128 steps; beyond
/// that the step time (nearly linear in the context) is sampled at 65 points and
/// integrated with the trapezoid rule, which is exact for a linear step time.
pub fn decode_time(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    sequences: f64,
    context_before: f64,
    steps: f64,
) -> PassTime {
    let step = |s: f64| {
        let pass = Pass {
            sequences,
            new_tokens: 1.0,
            context_before: context_before + s,
        };
        pass_time(exec, model, shard, &pass, sequences)
    };
    sum_steps(steps, step)
}

/// A time that adds up over steps and scales (a pass's or a stage's).
pub trait StepTime: Default {
    fn add_step(&mut self, other: &Self);
    fn scaled_by(&self, factor: f64) -> Self;
}

impl StepTime for PassTime {
    fn add_step(&mut self, other: &Self) {
        self.add(other);
    }
    fn scaled_by(&self, factor: f64) -> Self {
        self.scaled(factor)
    }
}

/// Sum of `step(s)` over decode steps `s = 0 .. steps`: exact for up to 128 steps;
/// beyond that the step time (nearly linear in the context) is sampled at 65 points
/// and integrated with the trapezoid rule, which is exact for a linear step time.
pub fn sum_steps<T: StepTime>(steps: f64, step: impl Fn(f64) -> T) -> T {
    let mut total = T::default();
    if steps <= 128.0 {
        let mut s = 0.0;
        while s < steps {
            total.add_step(&step(s));
            s += 1.0;
        }
        return total;
    }
    const SEGMENTS: usize = 64;
    let last = steps - 1.0;
    let samples: Vec<T> = (0..=SEGMENTS)
        .map(|j| step(last * j as f64 / SEGMENTS as f64))
        .collect();
    let width = last / SEGMENTS as f64;
    for (j, sample) in samples.iter().enumerate() {
        let weight = if j == 0 || j == SEGMENTS { 0.5 } else { 1.0 };
        total.add_step(&sample.scaled_by(weight * width));
    }
    // Sum over integer steps = integral over [0, last] + half of each end point.
    total.add_step(&samples[0].scaled_by(0.5));
    total.add_step(&samples[SEGMENTS].scaled_by(0.5));
    total
}

// ---------------------------------------------------------------------------------
// Batched iterations and per-layer timing.
//
// A serving engine's iteration mixes sequences in different states: some decode one
// token after thousands in cache, others prefill a chunk of their prompt. The
// token-parallel operations (projections, FFN, element-wise, embedding, LM head) see
// all the iteration's tokens as one matrix, so their weights are read once; attention
// runs per group of sequences over each group's own context. With one group this is
// exactly `pass_time` (the test below checks it): the request-level engine and the
// analytical model share one cost path.

/// Layers grouped by identical cost, with the class of each layer in shard order.
fn layer_class_index(model: &Model, layers: std::ops::Range<u32>) -> (Vec<(u32, f64)>, Vec<usize>) {
    let mut classes: Vec<(u32, f64)> = Vec::new();
    let mut keys: Vec<(bool, crate::model::AttentionSpan)> = Vec::new();
    let mut index = Vec::with_capacity(layers.len());
    for layer in layers {
        let key = (model.is_moe_layer(layer), model.attention_span(layer));
        match keys.iter().position(|k| *k == key) {
            Some(i) => {
                classes[i].1 += 1.0;
                index.push(i);
            }
            None => {
                keys.push(key);
                classes.push((layer, 1.0));
                index.push(classes.len() - 1);
            }
        }
    }
    (classes, index)
}

/// The pass the token-parallel operations of a batch see: all `parts`' new tokens as
/// one matrix.
pub fn merged_pass(parts: &[Pass]) -> Pass {
    Pass {
        sequences: 1.0,
        new_tokens: parts.iter().map(Pass::tokens).sum(),
        context_before: 0.0,
    }
}

/// The operations of one layer for a batch made of `parts`: the token-parallel ones
/// over all the batch's tokens at once (weights read once), then attention (and, for
/// expanded latent attention after a cached prefix, the prefix's decompression) for
/// each part over its own context. Also the operations launched, for dispatch
/// overhead: one launch of each kernel per layer, whatever the number of parts.
pub fn batch_layer_ops(
    model: &Model,
    layer: u32,
    parts: &[Pass],
    mla: MlaPrefill,
) -> (Vec<Op>, Vec<Op>) {
    let mut launched = layer_ops(model, layer, &merged_pass(parts), mla);
    let mut ops: Vec<Op> = launched
        .iter()
        .filter(|op| !matches!(op.kind, OpKind::Attention | OpKind::LatentDecompression))
        .copied()
        .collect();
    // Attention is per sequence (each sees its own context). Decoding sequences run
    // as one batched attention kernel: their FLOPs and KV bytes add up into one
    // operation. Prefill chunks run one kernel each.
    let mut decoding: Option<Op> = None;
    for part in parts.iter().filter(|p| p.tokens() > 0.0) {
        let op = attention_op(model, layer, part, mla);
        if part.new_tokens <= 1.0 {
            match decoding.as_mut() {
                Some(d) => {
                    d.flops += op.flops;
                    d.kv_elements += op.kv_elements;
                    d.activation_bytes += op.activation_bytes;
                }
                None => decoding = Some(op),
            }
        } else {
            ops.push(op);
        }
        if let Some(op) = latent_decompression_op(model, layer, part, mla) {
            // One launch per layer, as for attention.
            if !launched.iter().any(|o| o.kind == op.kind) {
                launched.push(op);
            }
            ops.push(op);
        }
    }
    ops.extend(decoding);
    (ops, launched)
}

/// One layer for a batch made of `parts`.
fn batch_layer_time(exec: &Executor, model: &Model, layer: u32, parts: &[Pass]) -> PassTime {
    let (ops, launched) = batch_layer_ops(model, layer, parts, exec.runtime.mla_prefill);
    let mut t = PassTime::default();
    for op in &ops {
        t.add(&op_pass_time(exec, op));
    }
    t.overhead_s += exec.dispatch_overhead_s(&launched);
    t
}

fn op_pass_time(exec: &Executor, op: &Op) -> PassTime {
    let time = exec.time(op);
    PassTime {
        compute_s: time.time_s,
        overhead_s: 0.0,
        flops: time.flops,
        bytes: time.bytes,
    }
}

/// A batched pass split the way layer-wise KV streaming needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PassProfile {
    pub total: PassTime,
    /// Seconds from the start of the pass to the end of each layer of the shard, in
    /// order. Host overhead and the embedding come before layer 0, the LM head after
    /// the last layer.
    pub layer_end_s: Vec<f64>,
}

impl BatchParts {
    /// The whole pass: every class of layers times its count, before and after.
    fn total(&self) -> PassTime {
        let mut total = PassTime::default();
        for ((_, count), t) in self.classes.iter().zip(&self.class_times) {
            total.add(&t.scaled(*count));
        }
        total.add(&self.before);
        total.add(&self.after);
        total
    }
}

/// A batched pass in pieces: host overhead and embedding before the layers, each
/// class of identical layers (representative layer, count) with its time, the class
/// of every layer, and the LM head after.
struct BatchParts {
    before: PassTime,
    classes: Vec<(u32, f64)>,
    index: Vec<usize>,
    class_times: Vec<PassTime>,
    after: PassTime,
}

fn batch_parts(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    parts: &[Pass],
    logits_rows: f64,
) -> BatchParts {
    let merged = merged_pass(parts);
    let (classes, index) = layer_class_index(model, shard.layers.clone());
    let class_times: Vec<PassTime> = classes
        .iter()
        .map(|(layer, _)| batch_layer_time(exec, model, *layer, parts))
        .collect();
    let mut before = PassTime {
        overhead_s: exec.runtime.per_step_overhead_s,
        ..PassTime::default()
    };
    let mut after = PassTime::default();
    if shard.head {
        let head = head_ops(model, &merged, logits_rows);
        before.add(&op_pass_time(exec, &head[0]));
        before.overhead_s += exec.dispatch_overhead_s(&head[..1]);
        for op in &head[1..] {
            after.add(&op_pass_time(exec, op));
        }
        after.overhead_s += exec.dispatch_overhead_s(&head[1..]);
    }
    BatchParts {
        before,
        classes,
        index,
        class_times,
        after,
    }
}

/// One iteration running `parts` together over `shard`; `logits_rows` sequences emit a
/// token. With a single part this equals [`pass_time`].
pub fn batch_pass_time(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    parts: &[Pass],
    logits_rows: f64,
) -> PassTime {
    batch_parts(exec, model, shard, parts, logits_rows).total()
}

/// [`batch_pass_time`] with the time at which each layer finishes.
pub fn batch_pass_profile(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    parts: &[Pass],
    logits_rows: f64,
) -> PassProfile {
    let batch = batch_parts(exec, model, shard, parts, logits_rows);
    let total = batch.total();
    let BatchParts {
        before,
        index,
        class_times,
        ..
    } = batch;
    let mut clock = before.total_s();
    let layer_end_s = index
        .iter()
        .map(|&class| {
            clock += class_times[class].total_s();
            clock
        })
        .collect();
    PassProfile { total, layer_end_s }
}

/// The passes a prefill of `sequences` prompts runs: (new tokens per sequence, tokens
/// before) for each chunk of [`chunk_per_sequence`] tokens, the runtime's
/// `chunk_tokens` shared by the sequences (the whole uncached prompt without one).
pub fn prefill_chunks(
    prompt_tokens: f64,
    cached_tokens: f64,
    chunk_tokens: Option<f64>,
    sequences: f64,
) -> Vec<(f64, f64)> {
    let uncached = (prompt_tokens - cached_tokens).max(0.0);
    let chunk = chunk_per_sequence(chunk_tokens, sequences, uncached);
    let mut chunks = Vec::new();
    let mut done = 0.0;
    while done < uncached {
        let new_tokens = chunk.min(uncached - done);
        chunks.push((new_tokens, cached_tokens + done));
        done += new_tokens;
    }
    chunks
}

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::formats::WeightFormat;
    use crate::hardware::Device;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-30)
    }

    fn fixture() -> (
        Device,
        crate::runtime::RuntimeEfficiency,
        WeightFormat,
        WeightFormat,
        Model,
    ) {
        let catalog = crate::test_support::catalog();
        let device = catalog.devices["dgx-spark"].clone();
        let runtime = *catalog.runtimes["mlx"].for_family("nvidia").unwrap();
        let f16 = catalog.formats["f16"].clone();
        let model = catalog.models["llama-3.1-8b"].clone();
        (device, runtime, f16.clone(), f16, model)
    }

    #[test]
    fn one_part_batch_is_pass_time_and_layer_ends_sum_up() {
        let (device, runtime, w, kv, model) = fixture();
        let exec = Executor {
            device: &device,
            runtime,
            weights: &w,
            kv_cache: &kv,
        };
        let shard = Shard::whole(&model);
        for pass in [
            Pass {
                sequences: 1.0,
                new_tokens: 2048.0,
                context_before: 4096.0,
            },
            Pass {
                sequences: 64.0,
                new_tokens: 1.0,
                context_before: 900.0,
            },
        ] {
            let a = pass_time(&exec, &model, &shard, &pass, pass.sequences);
            let b = batch_pass_time(&exec, &model, &shard, &[pass], pass.sequences);
            assert!(close(a.total_s(), b.total_s()), "{a:?} vs {b:?}");
            assert!(close(a.flops, b.flops) && close(a.bytes, b.bytes));
            let p = batch_pass_profile(&exec, &model, &shard, &[pass], pass.sequences);
            assert_eq!(p.layer_end_s.len(), 32);
            // The LM head runs after the last layer, so the last layer ends before the
            // pass does; layers end in order.
            assert!(*p.layer_end_s.last().unwrap() < p.total.total_s());
            assert!(p.layer_end_s.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn batching_reads_weights_once() {
        // Two decode groups together read the weights once: cheaper than two passes,
        // dearer than one.
        let (device, runtime, w, kv, model) = fixture();
        let exec = Executor {
            device: &device,
            runtime,
            weights: &w,
            kv_cache: &kv,
        };
        let shard = Shard::whole(&model);
        let a = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 100.0,
        };
        let both = batch_pass_time(&exec, &model, &shard, &[a, a], 2.0).total_s();
        let one = pass_time(&exec, &model, &shard, &a, 1.0).total_s();
        assert!(both > one && both < 1.5 * one, "{both} vs {one}");
    }

    #[test]
    fn prefill_chunks_split_like_prefill_time() {
        // 5,000 uncached tokens after 1,000 cached, chunks of 2,048: 2048 + 2048 + 904.
        let chunks = prefill_chunks(6000.0, 1000.0, Some(2048.0), 1.0);
        assert_eq!(
            chunks,
            vec![(2048.0, 1000.0), (2048.0, 3048.0), (904.0, 5096.0)]
        );
        assert_eq!(prefill_chunks(10.0, 0.0, None, 1.0), vec![(10.0, 0.0)]);
    }
}
