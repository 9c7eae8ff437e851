//! One serving instance (one copy of the model, on one node or spread over several)
//! and its scheduler.
//!
//! Every iteration the scheduler builds a batch the way vLLM and TensorRT-LLM do:
//!
//! - **Continuous batching**: requests join the running batch at any iteration and
//!   leave when they finish, up to `max_batch` sequences.
//! - **Paged KV cache**: memory left after weights, activations and reserves is cut
//!   into blocks of `kv_block_tokens` tokens. A request is admitted (first come,
//!   first served) only when blocks for its prompt are free; decoding takes a new
//!   block whenever a sequence crosses a block boundary.
//! - **Preemption by recomputation**: when a decoding sequence needs a block and none
//!   is free, the most recently admitted sequence is evicted: its blocks are freed and
//!   it goes back to the front of the queue, to prefill its prompt and the tokens it
//!   has generated so far again (vLLM's default).
//! - **Prefill**: each iteration has a token budget (`max_batch_tokens`, default the
//!   runtime's prefill chunk). Without chunked prefill, an iteration with prefill work
//!   runs only prefill (new requests first, as vLLM V0); long prompts take several
//!   iterations. With chunked prefill every iteration carries all decoding sequences
//!   plus prefill chunks filling the rest of the budget (Sarathi-Serve, vLLM V1).
//! - **Full reservation** (`admission = "full"`, TensorRT-LLM's default
//!   GUARANTEED_NO_EVICT): blocks for the prompt and the whole output are taken at
//!   admission, so nothing is ever preempted, at the price of fewer sequences.
//! - **Static batching**: a batch of `workload.batch` requests is admitted only when
//!   the instance is empty, and runs until its last request finishes.
//!
//! - **Windowed layers**: blocks are counted per layer ([`KvLayers`]). A global layer
//!   holds a block for every `kv_block_tokens` of the sequence; a sliding-window or
//!   chunked layer at most the blocks its window can straddle (`(window - 1) / block`
//!   rounded up, plus one), as vLLM's sliding-window manager frees the blocks that
//!   leave the window and llama.cpp sizes its SWA cache to the window. The cap is what
//!   the analytical memory model keeps ([`crate::analytical::memory`]); a prefill
//!   pass's transient KV beyond the window is not counted. An instance over several
//!   nodes uses the whole model's mix of layers for each node (exact for tensor
//!   parallelism; pipeline stages split the interleaved layers nearly evenly).

use std::collections::VecDeque;

use crate::analytical::ops::Pass;
use crate::scenario::Batching;

/// What an instance does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Prefill and decode (no disaggregation).
    Unified,
    /// Prefill only; the KV cache then goes to a decode instance.
    Prefill,
    /// Decode only; requests arrive with their KV cache.
    Decode,
}

/// Scheduler state of one request, shared by the instances it visits.
#[derive(Debug, Clone)]
pub struct RequestState {
    pub prompt_tokens: u64,
    pub output_tokens: u64,
    pub cached_prompt_tokens: u64,
    /// Output tokens produced so far (the prefill produces the first).
    pub generated: u64,
    pub preemptions: u32,
}

/// A sequence resident on an instance.
#[derive(Debug, Clone)]
struct Seq {
    request: usize,
    /// Tokens whose KV the prefill must hold: prompt + generated at admission.
    target: u64,
    /// Tokens whose KV is in the cache.
    kv_tokens: u64,
    /// Layer-blocks held ([`KvLayers::units`]).
    units: u64,
    decoding: bool,
}

/// One entry of an iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Work {
    /// `new_tokens` of prefill after `context_before`; `completes` when it is the
    /// sequence's last chunk (which emits a token).
    Prefill {
        new_tokens: u64,
        context_before: u64,
        completes: bool,
    },
    /// One decode token after `context_before` tokens.
    Decode { context_before: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub request: usize,
    pub work: Work,
}

/// What an iteration produced, for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request emitted a token and goes on decoding here.
    Token,
    /// The request's prefill finished on a prefill instance: hand it over.
    PrefillDone,
    /// The request emitted its last token.
    Finished,
    /// A prefill chunk that emits nothing.
    Nothing,
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub role: Role,
    pub max_batch: u64,
    pub token_budget: u64,
    pub chunked_prefill: bool,
    pub batching: Batching,
    pub static_batch: u64,
    pub block_tokens: u64,
    /// Blocks of `block_tokens` tokens of every layer the memory holds.
    pub total_blocks: u64,
    pub kv_layers: KvLayers,
    /// Reserve blocks for the whole output at admission (no preemption).
    pub reserve_output: bool,
}

/// Which layers keep how much of a sequence's KV. The cache is counted in
/// layer-blocks: one layer's KV for `block_tokens` tokens (a block of every layer is
/// `layers()` of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvLayers {
    /// Layers that keep every token (global attention).
    pub global: u64,
    /// `(layers, tokens)`: layers that keep at most `tokens` tokens (a sliding window
    /// or an attention chunk).
    pub capped: Vec<(u64, u64)>,
}

impl KvLayers {
    /// The layers of `model`, grouped by how much KV each keeps.
    pub fn of(model: &crate::model::Model) -> KvLayers {
        let mut kv = KvLayers {
            global: 0,
            capped: Vec::new(),
        };
        for layer in 0..model.layers {
            match model.attention_span(layer).kv_limit() {
                None => kv.global += 1,
                Some(cap) => match kv.capped.iter_mut().find(|(_, c)| *c == cap) {
                    Some((layers, _)) => *layers += 1,
                    None => kv.capped.push((1, cap)),
                },
            }
        }
        kv
    }

    pub fn layers(&self) -> u64 {
        self.global + self.capped.iter().map(|(layers, _)| layers).sum::<u64>()
    }

    /// Layer-blocks for a sequence of `tokens` tokens of KV.
    pub fn units(&self, tokens: u64, block_tokens: u64) -> u64 {
        let blocks = blocks_for(tokens, block_tokens);
        self.global * blocks
            + self
                .capped
                .iter()
                .map(|&(layers, cap)| {
                    // A window of `cap` consecutive tokens straddles at most this many
                    // blocks.
                    let straddled = cap.saturating_sub(1).div_ceil(block_tokens) + 1;
                    layers * blocks.min(straddled)
                })
                .sum::<u64>()
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub group: usize,
    pub config: InstanceConfig,
    waiting: VecDeque<usize>,
    running: Vec<Seq>,
    /// Requests whose prefill is done here, holding blocks until their KV is sent.
    parked: Vec<(usize, u64)>,
    free_units: u64,
    peak_units: u64,
    /// The iteration in progress.
    pub current: Option<Vec<Entry>>,
    /// Requests routed here and not yet gone (for the least-loaded router).
    pub outstanding: u64,
    pub busy_ns: u64,
    pub iterations: u64,
    pub preemptions: u64,
}

fn blocks_for(tokens: u64, block_tokens: u64) -> u64 {
    tokens.div_ceil(block_tokens)
}

impl Instance {
    pub fn new(name: String, group: usize, config: InstanceConfig) -> Instance {
        Instance {
            name,
            group,
            free_units: config.total_blocks * config.kv_layers.layers(),
            config,
            waiting: VecDeque::new(),
            running: Vec::new(),
            parked: Vec::new(),
            peak_units: 0,
            current: None,
            outstanding: 0,
            busy_ns: 0,
            iterations: 0,
            preemptions: 0,
        }
    }

    /// Queues a request (new, or arriving with its KV cache on a decode instance).
    pub fn enqueue(&mut self, request: usize) {
        self.waiting.push_back(request);
    }

    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    pub fn is_idle(&self) -> bool {
        self.current.is_none()
    }

    fn total_units(&self) -> u64 {
        self.config.total_blocks * self.config.kv_layers.layers()
    }

    /// Layer-blocks for `tokens` tokens of one sequence.
    fn units_for(&self, tokens: u64) -> u64 {
        self.config
            .kv_layers
            .units(tokens, self.config.block_tokens)
    }

    /// The most KV held at once, in blocks of every layer (a fraction where windowed
    /// layers held fewer blocks than global ones).
    pub fn peak_blocks(&self) -> f64 {
        self.peak_units as f64 / self.config.kv_layers.layers() as f64
    }

    /// Whether a request could ever fit this instance's KV cache.
    pub fn can_ever_hold(&self, tokens: u64) -> bool {
        self.units_for(tokens) <= self.total_units()
    }

    fn take(&mut self, units: u64) -> bool {
        if units > self.free_units {
            return false;
        }
        self.free_units -= units;
        self.peak_units = self.peak_units.max(self.total_units() - self.free_units);
        true
    }

    fn release(&mut self, units: u64) {
        self.free_units += units;
    }

    /// Admits the request at the head of the queue if it fits; returns whether it did.
    fn admit_head(&mut self, requests: &[RequestState]) -> bool {
        let Some(&r) = self.waiting.front() else {
            return false;
        };
        if self.running.len() as u64 >= self.config.max_batch {
            return false;
        }
        let state = &requests[r];
        let arrives_with_kv =
            self.config.role == Role::Decode && state.generated > 0 && state.preemptions == 0;
        let (target, kv_tokens, decoding) = if arrives_with_kv {
            // Its KV (prompt + generated - 1 tokens) came over the network.
            let kv = state.prompt_tokens + state.generated - 1;
            (kv, kv, true)
        } else {
            let target = state.prompt_tokens + state.generated;
            (target, state.cached_prompt_tokens.min(target - 1), false)
        };
        let reserved = if self.config.reserve_output {
            // The rest of the output: the sequence's final length is prompt + output - 1
            // tokens of KV (the last token is never fed back).
            (state.prompt_tokens + state.output_tokens - 1).max(target)
        } else {
            target
        };
        let units = self.units_for(reserved);
        if !self.take(units) {
            return false;
        }
        self.waiting.pop_front();
        self.running.push(Seq {
            request: r,
            target,
            kv_tokens,
            units,
            decoding,
        });
        true
    }

    /// Evicts the most recently admitted sequence other than `keep` (or `keep`
    /// itself when it is the only one), for recomputation. Returns its request.
    fn preempt(&mut self, requests: &mut [RequestState], keep: usize) -> usize {
        let victim = (0..self.running.len())
            .rev()
            .find(|&i| self.running[i].request != keep)
            .unwrap_or(self.running.len() - 1);
        let seq = self.running.remove(victim);
        self.release(seq.units);
        requests[seq.request].preemptions += 1;
        self.preemptions += 1;
        self.waiting.push_front(seq.request);
        seq.request
    }

    /// Builds the next iteration, or `None` when there is nothing to run.
    pub fn plan(&mut self, requests: &mut [RequestState]) -> Option<Vec<Entry>> {
        let static_batching = self.config.batching == Batching::Static;
        // Admission.
        if !static_batching || (self.running.is_empty() && self.parked.is_empty()) {
            let cap = if static_batching {
                self.config.static_batch.min(self.config.max_batch)
            } else {
                self.config.max_batch
            };
            while (self.running.len() as u64) < cap && self.admit_head(requests) {
                // Without chunked prefill, admit no more prompts than one
                // iteration's budget can start (the rest wait in the queue).
                if !self.config.chunked_prefill && !static_batching {
                    let pending: u64 = self
                        .running
                        .iter()
                        .filter(|s| !s.decoding)
                        .map(|s| s.target - s.kv_tokens)
                        .sum();
                    if pending >= self.config.token_budget {
                        break;
                    }
                }
            }
        }

        let has_prefill = self.running.iter().any(|s| !s.decoding);
        let with_decodes = self.config.chunked_prefill || !has_prefill;
        let mut entries = Vec::new();
        let mut budget = self.config.token_budget;

        if with_decodes {
            // Every decoding sequence needs room for one more token.
            let mut i = 0;
            while i < self.running.len() {
                if !self.running[i].decoding {
                    i += 1;
                    continue;
                }
                let (me, kv_tokens, held) = {
                    let seq = &self.running[i];
                    (seq.request, seq.kv_tokens, seq.units)
                };
                let need = self.units_for(kv_tokens + 1);
                if need > held {
                    if self.take(need - held) {
                        self.running[i].units = need;
                    } else {
                        let evicted = self.preempt(requests, me);
                        if evicted == me {
                            continue;
                        }
                        // The evicted sequence was later in the list or earlier;
                        // restart the scan from the beginning to keep indices right.
                        i = 0;
                        entries.clear();
                        continue;
                    }
                }
                // Each scan pushes every decoding sequence once: a preemption clears
                // the entries and scans again.
                let seq = &self.running[i];
                entries.push(Entry {
                    request: seq.request,
                    work: Work::Decode {
                        context_before: seq.kv_tokens,
                    },
                });
                i += 1;
            }
            budget = budget.saturating_sub(entries.len() as u64);
        }

        // Prefill chunks in admission order.
        for seq in self.running.iter().filter(|s| !s.decoding) {
            if budget == 0 {
                break;
            }
            let remaining = seq.target - seq.kv_tokens;
            let take = remaining.min(budget);
            entries.push(Entry {
                request: seq.request,
                work: Work::Prefill {
                    new_tokens: take,
                    context_before: seq.kv_tokens,
                    completes: take == remaining,
                },
            });
            budget -= take;
        }
        if entries.is_empty() {
            None
        } else {
            Some(entries)
        }
    }

    /// The analytical passes of an iteration: all decodes as one group (their
    /// attention is linear in the context, so the mean context gives the same
    /// FLOPs and bytes), each prefill chunk as its own group. Also the number of
    /// sequences that emit a token.
    pub fn passes(entries: &[Entry]) -> (Vec<Pass>, f64) {
        let mut passes = Vec::with_capacity(4);
        let mut decodes = 0.0;
        let mut decode_context = 0.0;
        let mut emitting = 0.0;
        for e in entries {
            match e.work {
                Work::Decode { context_before } => {
                    decodes += 1.0;
                    decode_context += context_before as f64;
                    emitting += 1.0;
                }
                Work::Prefill {
                    new_tokens,
                    context_before,
                    completes,
                } => {
                    passes.push(Pass {
                        sequences: 1.0,
                        new_tokens: new_tokens as f64,
                        context_before: context_before as f64,
                    });
                    if completes {
                        emitting += 1.0;
                    }
                }
            }
        }
        if decodes > 0.0 {
            passes.push(Pass {
                sequences: decodes,
                new_tokens: 1.0,
                context_before: decode_context / decodes,
            });
        }
        (passes, emitting)
    }

    /// Applies a finished iteration; returns what happened to each request in it.
    pub fn finish_iteration(
        &mut self,
        requests: &mut [RequestState],
    ) -> Vec<(usize, Work, Outcome)> {
        let entries = self.current.take().unwrap_or_default();
        self.iterations += 1;
        // Entries follow the running order (decodes, then prefill chunks, each in
        // running order), so a cursor that wraps round finds each one in amortised
        // constant time; sequences that leave are removed in one pass at the end
        // (running order kept). An iteration costs time linear in its sequences.
        let mut cursor = 0;
        let mut leaving = vec![false; self.running.len()];
        let mut outcomes = Vec::with_capacity(entries.len());
        for e in entries {
            let n = self.running.len();
            let Some(i) = (0..n)
                .map(|k| (cursor + k) % n)
                .find(|&i| self.running[i].request == e.request)
            else {
                continue;
            };
            cursor = i + 1;
            let state = &mut requests[e.request];
            let seq = &mut self.running[i];
            let outcome = match e.work {
                Work::Prefill {
                    new_tokens,
                    completes,
                    ..
                } => {
                    seq.kv_tokens += new_tokens;
                    if !completes {
                        Outcome::Nothing
                    } else {
                        state.generated += 1;
                        if state.generated >= state.output_tokens {
                            Outcome::Finished
                        } else if self.config.role == Role::Prefill {
                            Outcome::PrefillDone
                        } else {
                            seq.decoding = true;
                            Outcome::Token
                        }
                    }
                }
                Work::Decode { .. } => {
                    seq.kv_tokens += 1;
                    state.generated += 1;
                    if state.generated >= state.output_tokens {
                        Outcome::Finished
                    } else {
                        Outcome::Token
                    }
                }
            };
            match outcome {
                Outcome::Finished => {
                    leaving[i] = true;
                    let units = self.running[i].units;
                    self.release(units);
                }
                Outcome::PrefillDone => {
                    leaving[i] = true;
                    let seq = &self.running[i];
                    self.parked.push((seq.request, seq.units));
                }
                _ => {}
            }
            outcomes.push((e.request, e.work, outcome));
        }
        if leaving.contains(&true) {
            let mut i = 0;
            self.running.retain(|_| {
                let keep = !leaving[i];
                i += 1;
                keep
            });
        }
        outcomes
    }

    /// The KV cache of a parked request has been sent: free its blocks.
    pub fn unpark(&mut self, request: usize) {
        if let Some(i) = self.parked.iter().position(|(r, _)| *r == request) {
            let (_, units) = self.parked.swap_remove(i);
            self.release(units);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(total_blocks: u64, chunked: bool) -> InstanceConfig {
        InstanceConfig {
            role: Role::Unified,
            max_batch: 8,
            token_budget: 100,
            chunked_prefill: chunked,
            batching: Batching::Continuous,
            static_batch: 1,
            block_tokens: 16,
            total_blocks,
            kv_layers: KvLayers {
                global: 1,
                capped: Vec::new(),
            },
            reserve_output: false,
        }
    }

    fn request(prompt: u64, output: u64) -> RequestState {
        RequestState {
            prompt_tokens: prompt,
            output_tokens: output,
            cached_prompt_tokens: 0,
            generated: 0,
            preemptions: 0,
        }
    }

    #[test]
    fn long_prompt_runs_in_budget_sized_chunks() {
        // A 250-token prompt with a 100-token budget: chunks 100, 100, 50; the last
        // emits the first token.
        let mut reqs = vec![request(250, 3)];
        let mut inst = Instance::new("a".into(), 0, config(100, false));
        inst.enqueue(0);
        let mut chunks = Vec::new();
        for _ in 0..3 {
            let plan = inst.plan(&mut reqs).unwrap();
            chunks.push(plan[0].work);
            inst.current = Some(plan);
            inst.finish_iteration(&mut reqs);
        }
        assert_eq!(
            chunks,
            vec![
                Work::Prefill {
                    new_tokens: 100,
                    context_before: 0,
                    completes: false
                },
                Work::Prefill {
                    new_tokens: 100,
                    context_before: 100,
                    completes: false
                },
                Work::Prefill {
                    new_tokens: 50,
                    context_before: 200,
                    completes: true
                },
            ]
        );
        assert_eq!(reqs[0].generated, 1);
        // Then decode after 250 tokens in cache.
        let plan = inst.plan(&mut reqs).unwrap();
        assert_eq!(
            plan[0].work,
            Work::Decode {
                context_before: 250
            }
        );
    }

    #[test]
    fn admission_waits_for_free_blocks() {
        // 10 blocks of 16 tokens = 160 tokens. Prompts of 100 tokens need 7 blocks:
        // the second request waits until the first finishes.
        let mut reqs = vec![request(100, 2), request(100, 2)];
        let mut inst = Instance::new("a".into(), 0, config(10, true));
        inst.enqueue(0);
        inst.enqueue(1);
        let plan = inst.plan(&mut reqs).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(inst.waiting_len(), 1);
    }

    #[test]
    fn decode_growth_preempts_the_newest_sequence() {
        // 4 blocks of 16 = 64 tokens. Two 32-token prompts take 2 blocks each; when the
        // first sequence reaches 33 tokens it needs a fifth block: the second (newest)
        // is evicted and queued again, with one preemption counted.
        let mut reqs = vec![request(32, 10), request(32, 10)];
        let mut inst = Instance::new("a".into(), 0, config(4, false));
        inst.config.token_budget = 64;
        inst.enqueue(0);
        inst.enqueue(1);
        let plan = inst.plan(&mut reqs).unwrap();
        assert_eq!(plan.len(), 2);
        inst.current = Some(plan);
        inst.finish_iteration(&mut reqs);
        // Both have 32 tokens in cache and one generated token: decoding needs a block.
        let plan = inst.plan(&mut reqs).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].request, 0);
        assert_eq!(reqs[1].preemptions, 1);
        assert_eq!(inst.waiting_len(), 1);
    }

    #[test]
    fn windowed_layers_hold_at_most_the_blocks_their_window_straddles() {
        // gpt-oss-20b: 12 global layers and 12 with a 128-token window. Blocks of 16:
        // a window straddles at most (127 / 16 rounded up) + 1 = 9 blocks. 1,000 tokens
        // are 63 blocks: 12 x 63 + 12 x 9 = 864 layer-blocks (24 x 63 = 1,512 if every
        // layer kept them all); 100 tokens are 7 blocks on every layer: 168.
        let catalog = crate::test_support::catalog();
        let gpt_oss = KvLayers::of(&catalog.models["gpt-oss-20b"]);
        assert_eq!(
            gpt_oss,
            KvLayers {
                global: 12,
                capped: vec![(12, 128)]
            }
        );
        assert_eq!(gpt_oss.units(1000, 16), 864);
        assert_eq!(gpt_oss.units(100, 16), 168);
        // Llama 4 Scout: 12 global layers, 36 in chunks of 8,192 (at most 8191 / 16
        // rounded up + 1 = 513 blocks). 10,000 tokens: 625 blocks, so 12 x 625 +
        // 36 x 513 = 25,968.
        let scout = KvLayers::of(&catalog.models["llama-4-scout"]);
        assert_eq!(scout.layers(), 48);
        assert_eq!(scout.units(10_000, 16), 25_968);
    }

    #[test]
    fn windowed_layers_let_more_sequences_in() {
        // Two layers, one global and one with a 32-token window; 10 blocks of both
        // layers = 20 layer-blocks. A 100-token prompt takes 7 blocks on the global
        // layer and (31 / 16 rounded up) + 1 = 3 on the windowed one: 10, so two
        // prompts are admitted, where two global layers (14 each) would admit one.
        let windowed = |capped: Vec<(u64, u64)>, global| {
            let mut c = config(10, true);
            c.token_budget = 200;
            c.kv_layers = KvLayers { global, capped };
            let mut reqs = vec![request(100, 2), request(100, 2)];
            let mut inst = Instance::new("a".into(), 0, c);
            inst.enqueue(0);
            inst.enqueue(1);
            let admitted = inst.plan(&mut reqs).unwrap().len();
            (admitted, inst.peak_blocks())
        };
        assert_eq!(windowed(vec![(1, 32)], 1), (2, 10.0));
        assert_eq!(windowed(Vec::new(), 2), (1, 7.0));
    }
}
