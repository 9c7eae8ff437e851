//! Time of whole forward passes: prefill (in chunks) and decode (step by step as the
//! context grows), on one device.

use serde::Serialize;

use super::ops::{head_ops, layer_ops, Op, Pass};
use super::timing::{Executor, OpTime};
use crate::model::Model;

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
    layer_ops(model, layer, pass)
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
        let ops = layer_ops(model, layer, pass);
        let mut t = sum_ops(exec, &ops);
        t.overhead_s += exec.layer_overhead_s();
        total.add(&t.scaled(count));
    }
    if shard.head {
        total.add(&sum_ops(exec, &head_ops(model, pass, logits_rows)));
    }
    total.overhead_s += exec.runtime.per_step_overhead_s;
    total
}

/// Prefill of `sequences` prompts of `prompt_tokens`, of which `cached_tokens` are
/// already in the KV cache, in chunks of at most `chunk_tokens` per sequence.
pub fn prefill_time(
    exec: &Executor,
    model: &Model,
    shard: &Shard,
    sequences: f64,
    prompt_tokens: f64,
    cached_tokens: f64,
    chunk_tokens: Option<f64>,
) -> PassTime {
    let uncached = (prompt_tokens - cached_tokens).max(0.0);
    let chunk = chunk_tokens
        .unwrap_or(uncached)
        .max(1.0)
        .min(uncached.max(1.0));
    let mut total = PassTime::default();
    let mut done = 0.0;
    while done < uncached {
        let new_tokens = chunk.min(uncached - done);
        let last = done + new_tokens >= uncached;
        let pass = Pass {
            sequences,
            new_tokens,
            context_before: cached_tokens + done,
        };
        let logits_rows = if last { sequences } else { 0.0 };
        total.add(&pass_time(exec, model, shard, &pass, logits_rows));
        done += new_tokens;
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
    let mut total = PassTime::default();
    if steps <= 128.0 {
        let mut s = 0.0;
        while s < steps {
            total.add(&step(s));
            s += 1.0;
        }
        return total;
    }
    const SEGMENTS: usize = 64;
    let last = steps - 1.0;
    let samples: Vec<PassTime> = (0..=SEGMENTS)
        .map(|j| step(last * j as f64 / SEGMENTS as f64))
        .collect();
    let width = last / SEGMENTS as f64;
    for (j, sample) in samples.iter().enumerate() {
        let weight = if j == 0 || j == SEGMENTS { 0.5 } else { 1.0 };
        total.add(&sample.scaled(weight * width));
    }
    // Sum over integer steps = integral over [0, last] + half of each end point.
    total.add(&samples[0].scaled(0.5));
    total.add(&samples[SEGMENTS].scaled(0.5));
    total
}
