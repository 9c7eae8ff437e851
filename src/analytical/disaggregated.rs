//! Prefill on one group, decode on another, with the KV cache sent between them
//! (EXO's DGX Spark + Mac Studio setup).
//!
//! - `bulk`: the whole KV cache leaves after the prefill; time to first token grows by
//!   the whole transfer (latency + bytes / bandwidth).
//! - `layerwise`: each layer's KV leaves as soon as that layer's prefill is done (per
//!   prefill chunk when the runtime chunks), so the transfer overlaps the following
//!   layers. Only what cannot hide is exposed: at least the last layer's message,
//!   which can only leave when the last layer is done, less the LM head time; more
//!   when the link cannot keep up with the compute.
//!
//! What is sent is what the decode node needs ([`KvHandover`]): every prompt token's
//! keys and values on a global layer, but only the last `window - 1` tokens' on a
//! sliding-window layer (the next token's window includes itself) and those of the
//! open chunk on a chunked one (gpt-oss, Gemma 3, Llama 4). A layer with nothing to
//! send for a chunk sends no message.
//!
//! Time to first token is when the decode node holds the KV cache (and the prefill's
//! first token): max(prefill end, last message's arrival), as the contract defines it.
//! Decode then runs `output_tokens` steps on the decode group, as in the single-node
//! model.
//!
//! The overlap threshold is the shortest prompt from which no layer's message has to
//! wait for the link: per layer, the transfer fits in the time the next layer
//! computes.

use serde::Serialize;

use super::ops::{attention_flops_per_pair, OpKind, Pass};
use super::pass::{
    batch_pass_profile, chunk_per_sequence, decode_time, layer_op_times, prefill_chunks, PassTime,
    Shard,
};
use super::timing::Executor;
use super::{
    executor, layer_view, node_memory, phase, report_skeleton, shortfall_reason, timed_report,
    NodeRole, RunError, RunTimes, Spend,
};
use crate::hardware::ComputeDtype;
use crate::model::{AttentionSpan, Model};
use crate::network::{LinkModel, StreamMessage, StreamTiming};
use crate::report::{Breakdown, MemoryReport, Report};
use crate::scenario::{Disaggregation, KvTransfer, Scenario};

/// The prefill and its KV transfer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KvStream {
    pub prefill: PassTime,
    /// KV bytes sent (all layers, all sequences).
    pub kv_bytes: f64,
    pub transfer: StreamTiming,
    /// Time to first token: max(prefill end, last arrival).
    pub ttft_s: f64,
    /// ttft - prefill: the transfer not hidden behind compute.
    pub exposed_s: f64,
}

/// KV bytes per token per layer for the scenario's model and KV format.
pub fn kv_bytes_per_token_layer(model: &Model, kv_bytes_per_element: f64) -> f64 {
    model.kv_elements_per_token_per_layer() as f64 * kv_bytes_per_element
}

/// What the decode group needs of each layer's KV after a prefill, and so what the
/// transfer sends: on a global layer every prompt token's keys and values, on a
/// sliding-window layer the last `window - 1` tokens' (the next token's window of
/// `window` keys includes itself), on a chunked layer those of the
/// chunk the next token falls in ([`AttentionSpan::cached_in_view`]). Keys that have
/// left every later token's view are not sent; a runtime that knows the prompt's
/// length (it does before the prefill starts) can drop them at the source, and the
/// decode side allocates no blocks for them.
#[derive(Debug, Clone, PartialEq)]
pub struct KvHandover {
    pub bytes_per_token_layer: f64,
    /// Each layer's attention span.
    pub spans: Vec<AttentionSpan>,
}

impl KvHandover {
    pub fn new(model: &Model, kv_bytes_per_element: f64) -> KvHandover {
        KvHandover {
            bytes_per_token_layer: kv_bytes_per_token_layer(model, kv_bytes_per_element),
            spans: (0..model.layers).map(|l| model.attention_span(l)).collect(),
        }
    }

    /// Bytes of layer `layer` whose tokens lie in prompt positions `[from, to)` and
    /// that the decode group needs after a `prompt`-token prefill: the overlap of that
    /// range with the layer's last `cached_in_view(prompt)` positions.
    pub fn layer_bytes(&self, layer: usize, prompt: f64, from: f64, to: f64) -> f64 {
        let first_needed = prompt - self.spans[layer].cached_in_view(prompt);
        (to.min(prompt) - from.max(first_needed)).max(0.0) * self.bytes_per_token_layer
    }

    /// Bytes of every layer the decode group needs after a `prompt`-token prefill.
    pub fn total_bytes(&self, prompt: f64) -> f64 {
        (0..self.spans.len())
            .map(|l| self.layer_bytes(l, prompt, 0.0, prompt))
            .sum()
    }
}

/// Prefill of `sequences` prompts of `prompt` tokens (`cached` already in cache) on
/// `exec`, with the KV cache sent over `link` as `mode` says.
#[allow(clippy::too_many_arguments)]
pub fn kv_stream(
    exec: &Executor,
    model: &Model,
    link: &LinkModel,
    mode: KvTransfer,
    sequences: f64,
    prompt: f64,
    cached: f64,
    chunk: Option<f64>,
) -> KvStream {
    let shard = Shard::whole(model);
    let handover = KvHandover::new(model, exec.kv_cache.bytes_per_weight());
    let chunks = prefill_chunks(prompt, cached, chunk, sequences);
    let mut prefill = PassTime::default();
    let mut messages = Vec::new();
    let mut clock = 0.0;
    for (k, &(new_tokens, context_before)) in chunks.iter().enumerate() {
        let last = k + 1 == chunks.len();
        let pass = Pass {
            sequences,
            new_tokens,
            context_before,
        };
        let profile = batch_pass_profile(
            exec,
            model,
            &shard,
            &[pass],
            if last { sequences } else { 0.0 },
        );
        if mode == KvTransfer::Layerwise {
            // The first chunk also carries the cached prefix's KV.
            let from = if k == 0 { 0.0 } else { context_before };
            for (layer, end) in profile.layer_end_s.iter().enumerate() {
                let bytes = sequences
                    * handover.layer_bytes(layer, prompt, from, context_before + new_tokens);
                // A layer with nothing the decode needs from this chunk sends nothing.
                if bytes > 0.0 {
                    messages.push(StreamMessage {
                        ready_s: clock + end,
                        bytes,
                    });
                }
            }
        }
        clock += profile.total.total_s();
        prefill.add(&profile.total);
    }
    let kv_bytes = sequences * handover.total_bytes(prompt);
    if mode == KvTransfer::Bulk {
        messages.push(StreamMessage {
            ready_s: clock,
            bytes: kv_bytes,
        });
    }
    let transfer = link.stream(&messages);
    let ttft_s = clock.max(transfer.last_arrival_s);
    KvStream {
        prefill,
        kv_bytes,
        transfer,
        ttft_s,
        exposed_s: ttft_s - clock,
    }
}

/// Whether the layer-wise stream of a `prompt`-token prefill never waits for the link.
fn hides(
    exec: &Executor,
    model: &Model,
    link: &LinkModel,
    prompt: f64,
    chunk: Option<f64>,
) -> bool {
    !kv_stream(
        exec,
        model,
        link,
        KvTransfer::Layerwise,
        1.0,
        prompt,
        0.0,
        chunk,
    )
    .transfer
    .link_bound
}

/// Whether one layer's attention alone (one unchunked pass) takes as long as sending
/// that layer's KV: the criterion that counts only the part of the compute that grows
/// faster than the KV does. The layer is the first global one (every layer's KV grows
/// with the prompt there; a windowed layer's attention and KV both stop at the window).
fn attention_hides(exec: &Executor, model: &Model, link: &LinkModel, prompt: f64) -> bool {
    let layer = (0..model.layers)
        .find(|&l| model.attention_span(l) == AttentionSpan::Global)
        .unwrap_or(0);
    // What that layer hands over ([`KvHandover::layer_bytes`] over the whole prompt).
    let bytes = model.attention_span(layer).cached_in_view(prompt)
        * kv_bytes_per_token_layer(model, exec.kv_cache.bytes_per_weight());
    let pass = Pass {
        sequences: 1.0,
        new_tokens: prompt,
        context_before: 0.0,
    };
    let attention: f64 = layer_op_times(exec, model, layer, &pass)
        .iter()
        .filter(|o| o.kind == OpKind::Attention)
        .map(|o| o.time_s)
        .sum();
    attention >= link.serialization_time(bytes)
}

/// The shortest prompt from which `holds` is true for every longer prompt up to
/// `max_tokens`, searched on powers of two and refined by bisection (assuming one
/// crossing between the last failing and the next passing power of two). `None` if it
/// fails at `max_tokens`.
fn threshold(max_tokens: u64, holds: impl Fn(f64) -> bool) -> Option<u64> {
    let mut grid: Vec<u64> = std::iter::successors(Some(1u64), |&s| {
        (s < max_tokens).then(|| (s * 2).min(max_tokens))
    })
    .collect();
    grid.dedup();
    let last_failing = grid.iter().rposition(|&s| !holds(s as f64));
    match last_failing {
        None => Some(1),
        Some(i) if i + 1 == grid.len() => None,
        Some(i) => {
            let (mut lo, mut hi) = (grid[i], grid[i + 1]);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if holds(mid as f64) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            Some(hi)
        }
    }
}

/// The prompt length `s` at which one layer's attention, counted as every one of the
/// `s^2` (query, key) pairs at `peak_flops`, takes as long as sending that layer's KV
/// (`s x kv_bytes_per_token` bytes) at `line_rate` bytes/s:
/// `flops_per_pair s^2 / peak = s kv_bytes_per_token / line_rate`, so
/// `s = peak kv_bytes_per_token / (line_rate flops_per_pair)`.
///
/// This is the arithmetic behind EXO's "s > 5k tokens for Llama-3 70B with 8-bit KV"
/// on 10 GbE: 4 x 8192 FLOPs per pair, 2048 B per token, 100 TFLOPS and 1.25 GB/s give
/// 100e12 x 2048 / (1.25e9 x 32768) = 5000. It leaves out what the model counts: the
/// projections and FFN, whose compute grows with `s` like the KV does and for a 70B
/// model is about ten times the transfer at any length on this link; the causal mask,
/// which halves the pairs; and the rates actually reached.
pub fn envelope_threshold(
    model: &Model,
    peak_flops: f64,
    kv_bytes_per_token: f64,
    line_rate: f64,
) -> f64 {
    peak_flops * kv_bytes_per_token / (line_rate * attention_flops_per_pair(model, false))
}

/// What `planner overlap` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverlapReport {
    pub model: String,
    pub kv_cache: String,
    pub device: String,
    pub runtime: String,
    pub link: String,
    pub link_bandwidth_gb_s: f64,
    pub link_latency_us: f64,
    pub prefill_chunk_tokens: Option<f64>,
    pub kv_bytes_per_token_per_layer: f64,
    /// Shortest prompt from which the layer-wise transfer never waits for the link
    /// (whole-layer compute, as the model runs it); `None`: not within the context.
    pub threshold_tokens: Option<u64>,
    /// The same counting only attention's compute per layer.
    pub attention_only_threshold_tokens: Option<u64>,
    /// The back-of-the-envelope threshold: every (query, key) pair of a layer's
    /// attention, causal mask ignored, at the prefill device's headline dense fp16
    /// rate, against that layer's KV at the link's line rate ([`envelope_threshold`]).
    pub envelope_threshold_tokens: u64,
    /// The rates it uses: the device's dense fp16 peak and the link's line rate.
    pub envelope_peak_tflops: f64,
    pub link_line_rate_gb_s: f64,
    /// At the scenario's prompt: compute of one layer over the first chunk (the whole
    /// prompt when the runtime does not chunk) and the time to send that chunk's KV.
    pub prompt_tokens: u64,
    pub first_chunk_tokens: u64,
    pub layer_compute_s: f64,
    pub layer_transfer_s: f64,
    pub exposed_s: f64,
}

/// The overlap threshold for the scenario's model, KV format, prefill device and link.
pub fn overlap(scenario: &Scenario) -> Result<OverlapReport, RunError> {
    let d = scenario.disaggregation.ok_or_else(|| {
        RunError::Unsupported(
            "the overlap threshold needs a [disaggregation] section (prefill group and link)"
                .to_string(),
        )
    })?;
    let network = scenario.network.as_ref().ok_or_else(|| {
        RunError::Unsupported("the overlap threshold needs [cluster.network]".to_string())
    })?;
    let group = &scenario.groups[d.prefill_group];
    let exec = executor(scenario, group);
    let model = &scenario.model;
    let link = LinkModel::from_network(network);
    let chunk = group.runtime.prefill_chunk_tokens;
    let max_tokens = model.max_context;
    let prompt = scenario.workload.prompt_tokens as f64;
    let per_layer = kv_bytes_per_token_layer(model, scenario.kv_cache.bytes_per_weight());
    let first_chunk = chunk_per_sequence(chunk, 1.0, prompt);
    let peak_tflops = group.device.peak_tflops_for(ComputeDtype::Fp16).1;
    let line_rate_gb_s = network.link.spec_bandwidth_gb_s;
    let profile = batch_pass_profile(
        &exec,
        model,
        &Shard::whole(model),
        &[Pass {
            sequences: 1.0,
            new_tokens: first_chunk,
            context_before: 0.0,
        }],
        0.0,
    );
    let stream = kv_stream(
        &exec,
        model,
        &link,
        KvTransfer::Layerwise,
        1.0,
        prompt,
        0.0,
        chunk,
    );
    Ok(OverlapReport {
        model: model.id.clone(),
        kv_cache: scenario.kv_cache.id.clone(),
        device: group.device.id.clone(),
        runtime: group.runtime.id.clone(),
        link: network.link.id.clone(),
        link_bandwidth_gb_s: network.bandwidth_gb_s,
        link_latency_us: network.latency_us,
        prefill_chunk_tokens: chunk,
        kv_bytes_per_token_per_layer: per_layer,
        threshold_tokens: threshold(max_tokens, |s| hides(&exec, model, &link, s, chunk)),
        attention_only_threshold_tokens: threshold(max_tokens, |s| {
            attention_hides(&exec, model, &link, s)
        }),
        envelope_threshold_tokens: envelope_threshold(
            model,
            peak_tflops * 1e12,
            per_layer,
            line_rate_gb_s * 1e9,
        )
        .round() as u64,
        envelope_peak_tflops: peak_tflops,
        link_line_rate_gb_s: line_rate_gb_s,
        prompt_tokens: scenario.workload.prompt_tokens,
        first_chunk_tokens: first_chunk.round() as u64,
        layer_compute_s: profile.layer_end_s[1] - profile.layer_end_s[0],
        layer_transfer_s: link.serialization_time(first_chunk * per_layer),
        exposed_s: stream.exposed_s,
    })
}

pub fn simulate(scenario: &Scenario, d: Disaggregation) -> Result<Report, RunError> {
    let network = scenario.network.as_ref().ok_or_else(|| {
        RunError::Unsupported(
            "disaggregation needs [cluster.network] for the KV transfer".to_string(),
        )
    })?;
    if scenario.parallelism.product() > 1 {
        return Err(RunError::Unsupported(
            "disaggregation is modelled with one node per instance (parallel degrees 1)"
                .to_string(),
        ));
    }
    let model = &scenario.model;
    let w = &scenario.workload;
    let prefill_group = &scenario.groups[d.prefill_group];
    let decode_group = &scenario.groups[d.decode_group];
    let exec_p = executor(scenario, prefill_group);
    let exec_d = executor(scenario, decode_group);
    let shard = Shard::whole(model);
    let link = LinkModel::from_network(network);
    let sequences = w.batch as f64;
    let prompt = w.prompt_tokens as f64;
    let cached = w.cached_prompt_tokens as f64;
    let steps = w.output_tokens as f64;

    let memories = vec![
        node_memory(scenario, prefill_group, NodeRole::Prefill),
        node_memory(scenario, decode_group, NodeRole::Decode),
    ];
    let short = memories.iter().find(|m| m.used_gb > m.capacity_gb);
    let fits = short.is_none();
    let reason = short.map(shortfall_reason);

    let spend = Spend::of(&[prefill_group, decode_group], None, 0.0);
    let runtime = if prefill_group.runtime.id == decode_group.runtime.id {
        prefill_group.runtime.id.clone()
    } else {
        format!("{}+{}", prefill_group.runtime.id, decode_group.runtime.id)
    };
    let base = report_skeleton(
        scenario,
        runtime,
        MemoryReport {
            fits,
            reason,
            groups: memories,
        },
        &spend,
    );
    if !fits {
        return Ok(base);
    }

    let chunk = prefill_group.runtime.prefill_chunk_tokens;
    let stream = kv_stream(
        &exec_p,
        model,
        &link,
        d.kv_transfer,
        sequences,
        prompt,
        cached,
        chunk,
    );
    let decode = decode_time(&exec_d, model, &shard, sequences, prompt, steps);
    let ttft = stream.ttft_s;
    let mut prefill_phase = phase(&stream.prefill);
    prefill_phase.communication_s = stream.transfer.in_flight_s;
    prefill_phase.exposed_communication_s = stream.exposed_s;
    prefill_phase.total_s = ttft;

    let layers = layer_view(
        &exec_p, &exec_d, model, sequences, prompt, cached, steps, chunk,
    );
    let times = RunTimes {
        sequences,
        new_tokens: prompt - cached,
        steps,
        ttft_s: ttft,
        decode_s: decode.total_s(),
    };
    let breakdown = Breakdown {
        prefill: prefill_phase,
        decode: phase(&decode.scaled(1.0 / steps)),
    };
    Ok(Report {
        layers: Some(layers),
        ..timed_report(base, scenario, &spend, times, breakdown)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_finds_the_first_length_that_holds_for_good() {
        // Holds from 5,000 tokens on: the powers of two fail up to 4,096 and pass at
        // 8,192; bisection between them lands on 5,000.
        assert_eq!(threshold(8192, |s| s >= 5000.0), Some(5000));
        // Always true: 1. Never true at the cap: None.
        assert_eq!(threshold(8192, |_| true), Some(1));
        assert_eq!(threshold(8192, |s| s > 9000.0), None);
    }

    #[test]
    fn envelope_threshold_by_hand() {
        // Llama-3.1 8B: 32 heads x 128 = 4,096 wide, so 2 x (4096 + 4096) = 16,384 FLOPs
        // per (query, key) pair; fp16 KV is 2 x 8 x 128 x 2 = 4,096 bytes per token per
        // layer. At 100 TFLOPS and 1.25 GB/s: s = 100e12 x 4096 / (1.25e9 x 16384) =
        // 20,000 tokens. Twice the peak, twice the length; twice the line rate, half.
        let catalog = crate::test_support::catalog();
        let model = &catalog.models["llama-3.1-8b"];
        let s = envelope_threshold(model, 100e12, 4096.0, 1.25e9);
        assert!((s - 20_000.0).abs() < 1e-6, "{s}");
        assert!((envelope_threshold(model, 200e12, 4096.0, 1.25e9) - 40_000.0).abs() < 1e-6);
        assert!((envelope_threshold(model, 100e12, 4096.0, 2.5e9) - 10_000.0).abs() < 1e-6);
    }

    /// `kv_stream` of one `prompt`-token sequence of `model` in fp16 on the Spark
    /// (mlx's NVIDIA efficiencies), over a 1.25 GB/s link with 100 us latency.
    fn spark_stream(model: &str, mode: KvTransfer, prompt: f64, chunk: Option<f64>) -> KvStream {
        let catalog = crate::test_support::catalog();
        let f16 = &catalog.formats["f16"];
        let exec = Executor {
            device: &catalog.devices["dgx-spark"],
            runtime: *catalog.runtimes["mlx"].for_family("nvidia").unwrap(),
            weights: f16,
            kv_cache: f16,
        };
        let link = LinkModel {
            latency_s: 100e-6,
            bandwidth_bytes_s: 1.25e9,
            transport: crate::hardware::Transport::Tcp,
        };
        kv_stream(
            &exec,
            &catalog.models[model],
            &link,
            mode,
            1.0,
            prompt,
            0.0,
            chunk,
        )
    }

    #[test]
    fn bulk_stream_by_hand() {
        // Llama-3.1 8B fp16 on the Spark, 1,000 tokens, one chunk, link 1.25 GB/s with
        // 100 us latency. KV: 1000 x 32 layers x 4,096 bytes = 131,072,000 bytes,
        // 0.1048576 s on the wire: TTFT = prefill + 0.1048576 + 0.0001.
        let s = spark_stream("llama-3.1-8b", KvTransfer::Bulk, 1000.0, None);
        assert_eq!(s.kv_bytes, 131_072_000.0);
        assert!((s.exposed_s - 0.104_957_6).abs() < 1e-12, "{}", s.exposed_s);
        assert!((s.ttft_s - s.prefill.total_s() - 0.104_957_6).abs() < 1e-12);
        // Layer-wise: 32 messages of 4.096 MB (3.28 ms each on the wire), each ready
        // when its layer is done; the layers of a 1,000-token prefill take longer than
        // that, so the link keeps up and less than one message (+ latency) is exposed.
        let l = spark_stream("llama-3.1-8b", KvTransfer::Layerwise, 1000.0, None);
        assert!(!l.transfer.link_bound);
        assert!(l.exposed_s < 0.003_277 + 100e-6);
    }

    #[test]
    fn a_sliding_window_layer_sends_only_its_window() {
        // gpt-oss-20b: 24 layers alternating sliding (window 128; layers 0, 2, ...) and
        // global (1, 3, ...); 8 KV heads x 64 dims, so fp16 KV is 2 x 8 x 64 x 2 = 2,048
        // bytes per token and layer.
        let catalog = crate::test_support::catalog();
        let h = KvHandover::new(&catalog.models["gpt-oss-20b"], 2.0);
        assert_eq!(h.bytes_per_token_layer, 2048.0);
        // After a 1,000-token prefill the next token (position 1,000) sees positions
        // 873-1,000 on a sliding layer, itself included, so the layer needs cached
        // positions 873-999: none of the first 500-token chunk, 127 tokens of the
        // second. A global layer needs all.
        assert_eq!(h.layer_bytes(0, 1000.0, 0.0, 500.0), 0.0);
        assert_eq!(h.layer_bytes(0, 1000.0, 500.0, 1000.0), 127.0 * 2048.0);
        assert_eq!(h.layer_bytes(1, 1000.0, 0.0, 500.0), 500.0 * 2048.0);
        // A prompt shorter than the window: every token, as on a global layer.
        assert_eq!(h.layer_bytes(0, 100.0, 0.0, 100.0), 100.0 * 2048.0);
        // Whole prefill: 12 global layers x 1,000 + 12 sliding x 127 = 13,524 token-
        // layers x 2,048 = 27,697,152 bytes (the global-only count would be 49,152,000).
        assert_eq!(h.total_bytes(1000.0), 27_697_152.0);
    }

    #[test]
    fn a_chunked_layer_sends_only_the_open_chunk() {
        // Llama 4 Scout: 48 layers, every fourth global (3, 7, ...: 12), the other 36
        // attend within chunks of 8,192; 8 KV heads x 128 dims, fp16: 4,096 bytes per
        // token and layer. After 10,000 tokens the next token is in the chunk that
        // starts at 8,192, so a chunked layer needs 10,000 - 8,192 = 1,808 tokens:
        // (12 x 10,000 + 36 x 1,808) x 4,096 = 185,088 x 4,096 = 758,120,448 bytes.
        let catalog = crate::test_support::catalog();
        let h = KvHandover::new(&catalog.models["llama-4-scout"], 2.0);
        assert_eq!(h.total_bytes(10_000.0), 758_120_448.0);
        assert_eq!(h.layer_bytes(0, 10_000.0, 0.0, 8192.0), 0.0);
        assert_eq!(
            h.layer_bytes(0, 10_000.0, 8192.0, 10_000.0),
            1808.0 * 4096.0
        );
        // At a chunk boundary the next token opens a new chunk: chunked layers send
        // nothing, 12 x 16,384 x 4,096 = 805,306,368 bytes in all.
        assert_eq!(h.total_bytes(16_384.0), 805_306_368.0);
    }

    #[test]
    fn the_stream_sends_the_handover_bytes_and_skips_empty_layers() {
        // gpt-oss-20b fp16 on the Spark, 1,000 tokens in two chunks of 500, link 1.25
        // GB/s, 100 us. Bulk: 27,697,152 bytes (above) in one message: 22.158 ms +
        // 0.1 ms after the prefill.
        let stream = |mode| spark_stream("gpt-oss-20b", mode, 1000.0, Some(500.0));
        let bulk = stream(KvTransfer::Bulk);
        assert_eq!(bulk.kv_bytes, 27_697_152.0);
        assert!((bulk.exposed_s - (27_697_152.0 / 1.25e9 + 100e-6)).abs() < 1e-12);
        // Layer-wise: the first chunk's messages come from the 12 global layers only,
        // the second's from all 24: 36 messages, each with its own 100 us latency and
        // never two in flight (a layer of 500 tokens computes for longer than its
        // 0.82 ms of sending), so 36 x 100 us + the bytes' 22.158 ms in flight.
        let layerwise = stream(KvTransfer::Layerwise);
        assert!(!layerwise.transfer.link_bound);
        assert!((layerwise.transfer.busy_s - 27_697_152.0 / 1.25e9).abs() < 1e-12);
        assert!(
            (layerwise.transfer.in_flight_s - (27_697_152.0 / 1.25e9 + 36.0 * 100e-6)).abs()
                < 1e-12,
            "{}",
            layerwise.transfer.in_flight_s
        );
    }
}
