//! The event loop: arrivals, iterations on instances, KV transfers over links.
//!
//! Iteration times come from the analytical model's stage functions for a batch
//! ([`crate::analytical::replica::Replica::iteration_time`]: the tensor-parallel,
//! expert-parallel and pipeline stages of the instance's nodes, one node being the
//! batched pass [`crate::analytical::pass::batch_pass_time`]), the same
//! per-operation and network costs the analytical engine sums; link times from the
//! link's bandwidth and latency.

use std::collections::HashMap;

use super::instance::{Entry, Instance, Outcome, RequestState, Role, Work};
use super::link::Link;
use super::metrics::{LogHistogram, QueueSample};
use super::router::Router;
use super::time::{Duration, EventQueue, SimTime};
use super::workload::RequestSpec;
use super::{Phase, Span};
use crate::analytical::disaggregated::KvHandover;
use crate::analytical::ops::Pass;
use crate::analytical::pass::{batch_pass_profile, Shard};
use crate::analytical::replica::Replica;
use crate::analytical::timing::Executor;
use crate::model::Model;
use crate::scenario::KvTransfer;

#[derive(Debug, Clone, Copy)]
enum Event {
    Arrival(usize),
    IterationDone(usize),
    /// A KV message is ready to leave (flow index).
    Release(usize),
    Drain {
        link: usize,
        version: u64,
    },
    Delivered(usize),
}

/// One KV message on a link.
#[derive(Debug, Clone)]
struct Flow {
    link: usize,
    bytes: f64,
    requests: Vec<usize>,
    released: SimTime,
}

/// Times of one request.
#[derive(Debug, Clone, Default)]
pub struct Times {
    pub first_token: Option<SimTime>,
    pub last_token: Option<SimTime>,
    pub finish: Option<SimTime>,
    pub prefill_end: Option<SimTime>,
    pub transfer_start: Option<SimTime>,
    pub transfer_end: Option<SimTime>,
    pub prefill_instance: Option<usize>,
    pub decode_instance: Option<usize>,
    pub rejected: bool,
    pending_messages: u32,
    prefill_done: bool,
}

/// The cost of iterations on one instance.
pub struct IterationCost<'a> {
    /// The instance's nodes as the cluster model lays them out: every iteration's
    /// time ([`Replica::iteration_time`]).
    pub replica: Replica<'a, 'a>,
    /// The first node, the model and its layers, for the per-layer end times of
    /// layer-wise KV streaming (prefill instances of one node, where
    /// [`batch_pass_profile`] is the same pass as the replica's).
    pub exec: Executor<'a>,
    pub model: &'a Model,
    pub shard: Shard,
}

impl IterationCost<'_> {
    fn time(&self, passes: &[Pass], emitting: f64, decoding: f64) -> Duration {
        Duration::from_secs(
            self.replica
                .iteration_time(passes, emitting, decoding)
                .total_s(),
        )
    }
}

/// What the engine needs to know about disaggregation.
pub struct KvPlan {
    pub mode: KvTransfer,
    /// What each layer sends of a request's prompt.
    pub handover: KvHandover,
}

pub struct Engine<'a> {
    pub specs: Vec<RequestSpec>,
    pub states: Vec<RequestState>,
    pub times: Vec<Times>,
    pub instances: Vec<Instance>,
    pub costs: Vec<IterationCost<'a>>,
    pub links: Vec<Link>,
    /// The link each prefill instance sends on.
    pub link_of: Vec<Option<usize>>,
    pub entry_router: Router,
    pub decode_router: Option<Router>,
    pub kv: Option<KvPlan>,
    pub itl: LogHistogram,
    pub queue_samples: Vec<QueueSample>,
    /// Each instance's latest queue sample.
    last_sample: Vec<Option<QueueSample>>,
    pub spans: Vec<Span>,
    pub timeline_requests: usize,
    flows: Vec<Flow>,
    queue: EventQueue<Event>,
    open_spans: HashMap<(usize, usize, Phase), usize>,
}

impl<'a> Engine<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        specs: Vec<RequestSpec>,
        instances: Vec<Instance>,
        costs: Vec<IterationCost<'a>>,
        links: Vec<Link>,
        link_of: Vec<Option<usize>>,
        entry_router: Router,
        decode_router: Option<Router>,
        kv: Option<KvPlan>,
        timeline_requests: usize,
    ) -> Engine<'a> {
        let states = specs
            .iter()
            .map(|s| RequestState {
                prompt_tokens: s.prompt_tokens,
                output_tokens: s.output_tokens,
                cached_prompt_tokens: s.cached_prompt_tokens,
                generated: 0,
                preemptions: 0,
            })
            .collect();
        let times = vec![Times::default(); specs.len()];
        let last_sample = vec![None; instances.len()];
        Engine {
            specs,
            states,
            times,
            instances,
            costs,
            links,
            link_of,
            entry_router,
            decode_router,
            kv,
            itl: LogHistogram::default(),
            queue_samples: Vec::new(),
            last_sample,
            spans: Vec::new(),
            timeline_requests,
            flows: Vec::new(),
            queue: EventQueue::default(),
            open_spans: HashMap::new(),
        }
    }

    /// Runs to the last event; returns the number of events processed.
    pub fn run(&mut self) -> u64 {
        if !self.specs.is_empty() {
            self.queue
                .schedule(self.specs[0].arrival, Event::Arrival(0));
        }
        while let Some((now, event)) = self.queue.pop() {
            match event {
                Event::Arrival(first) => {
                    // All requests arriving at this instant queue up before any
                    // instance plans its next iteration.
                    let mut r = first;
                    let mut touched = Vec::new();
                    while r < self.specs.len() && self.specs[r].arrival == now {
                        if let Some(i) = self.arrive(r) {
                            if !touched.contains(&i) {
                                touched.push(i);
                            }
                        }
                        r += 1;
                    }
                    if r < self.specs.len() {
                        self.queue
                            .schedule(self.specs[r].arrival, Event::Arrival(r));
                    }
                    for i in touched {
                        self.try_start(now, i);
                    }
                }
                Event::IterationDone(i) => self.iteration_done(now, i),
                Event::Release(f) => {
                    let flow = &mut self.flows[f];
                    flow.released = now;
                    let (link, bytes) = (flow.link, flow.bytes);
                    self.links[link].start(now, f, bytes);
                    self.schedule_drain(link);
                }
                Event::Drain { link, version } => {
                    if self.links[link].version != version {
                        continue;
                    }
                    let done = self.links[link].drain(now);
                    let latency = self.links[link].latency;
                    for f in done {
                        self.span_flow(f, now);
                        self.queue.schedule(now.after(latency), Event::Delivered(f));
                    }
                    self.schedule_drain(link);
                }
                Event::Delivered(f) => {
                    let requests = std::mem::take(&mut self.flows[f].requests);
                    for r in requests {
                        let t = &mut self.times[r];
                        t.pending_messages -= 1;
                        t.transfer_end = Some(now);
                        if t.pending_messages == 0 && t.prefill_done {
                            self.hand_over(now, r);
                        }
                    }
                }
            }
        }
        self.queue.processed()
    }

    fn schedule_drain(&mut self, link: usize) {
        if let Some(t) = self.links[link].next_drain() {
            let version = self.links[link].version;
            self.queue.schedule(t, Event::Drain { link, version });
        }
    }

    /// Routes and queues request `r`; returns its instance unless it was rejected.
    fn arrive(&mut self, r: usize) -> Option<usize> {
        let spec = self.specs[r];
        let instances = &self.instances;
        let i = self.entry_router.pick(|i| instances[i].outstanding);
        let total = spec.prompt_tokens + spec.output_tokens;
        // A prefill instance holds the prompt; an instance that also decodes, all of it.
        let entry_tokens = if self.decode_router.is_some() {
            spec.prompt_tokens
        } else {
            total
        };
        let fits_entry = self.instances[i].can_ever_hold(entry_tokens);
        let decode_target = match &mut self.decode_router {
            Some(router) => {
                let instances = &self.instances;
                Some(router.pick(|d| instances[d].outstanding))
            }
            None => None,
        };
        let fits_decode = match decode_target {
            Some(d) => self.instances[d].can_ever_hold(total),
            None => self.instances[i].can_ever_hold(total),
        };
        if !(fits_entry && fits_decode) {
            self.times[r].rejected = true;
            return None;
        }
        self.times[r].prefill_instance = Some(i);
        self.times[r].decode_instance = decode_target.or(Some(i));
        if let Some(d) = decode_target {
            self.instances[d].outstanding += 1;
        }
        self.instances[i].outstanding += 1;
        self.instances[i].enqueue(r);
        Some(i)
    }

    fn try_start(&mut self, now: SimTime, i: usize) {
        if !self.instances[i].is_idle() {
            return;
        }
        let Some(entries) = self.instances[i].plan(&mut self.states) else {
            // Idle: the queue lengths hold until the next sample, so it must be
            // taken now, or the last iteration's would stand for the idle time.
            self.sample_queue(now, i, true);
            return;
        };
        self.sample_queue(now, i, false);
        let inst = &self.instances[i];
        let (passes, emitting) = Instance::passes(&entries);
        let layerwise = inst.config.role == Role::Prefill
            && matches!(
                self.kv,
                Some(KvPlan {
                    mode: KvTransfer::Layerwise,
                    ..
                })
            );
        let duration = if layerwise {
            let cost = &self.costs[i];
            let profile =
                batch_pass_profile(&cost.exec, cost.model, &cost.shard, &passes, emitting);
            self.stream_layers(now, i, &entries, &profile.layer_end_s);
            Duration::from_secs(profile.total.total_s())
        } else {
            let decoding = entries
                .iter()
                .filter(|e| matches!(e.work, Work::Decode { .. }))
                .count() as f64;
            self.costs[i].time(&passes, emitting, decoding)
        };
        let end = now.after(duration);
        for e in &entries {
            if e.request < self.timeline_requests {
                let phase = match e.work {
                    Work::Prefill { .. } => Phase::Prefill,
                    Work::Decode { .. } => Phase::Decode,
                };
                self.span(i, e.request, phase, now, end);
            }
        }
        let inst = &mut self.instances[i];
        inst.busy_ns += duration.0;
        inst.current = Some(entries);
        self.queue.schedule(end, Event::IterationDone(i));
    }

    /// Queue lengths of instance `i` at `now`: at every iteration start, and when it
    /// goes idle (`idle`; only if they changed, as an idle instance is asked again at
    /// every arrival and transfer).
    fn sample_queue(&mut self, now: SimTime, i: usize, idle: bool) {
        let inst = &self.instances[i];
        let sample = QueueSample {
            time_s: now.as_secs(),
            instance: i,
            waiting: inst.waiting_len() as u32,
            running: inst.running_len() as u32,
        };
        let same = |s: &QueueSample| (s.waiting, s.running) == (sample.waiting, sample.running);
        if idle && self.last_sample[i].as_ref().is_some_and(same) {
            return;
        }
        self.last_sample[i] = Some(sample);
        self.queue_samples.push(sample);
    }

    /// Layer-wise KV streaming: one message per layer carrying this iteration's new
    /// KV (and, with a chunk that starts at the cached prefix, the prefix too),
    /// leaving as soon as the layer finishes.
    fn stream_layers(&mut self, now: SimTime, i: usize, entries: &[Entry], layer_end_s: &[f64]) {
        let Some(link) = self.link_of[i] else {
            return;
        };
        let Some(kv) = &self.kv else {
            return;
        };
        // Each prefilling request's prompt length and the positions this iteration
        // computes (from 0 when the chunk starts at the cached prefix).
        let mut ranges = Vec::new();
        let mut requests = Vec::new();
        for e in entries {
            if let Work::Prefill {
                new_tokens,
                context_before,
                ..
            } = e.work
            {
                let state = &self.states[e.request];
                let from = if context_before == state.cached_prompt_tokens {
                    0
                } else {
                    context_before
                };
                ranges.push((
                    self.specs[e.request].prompt_tokens as f64,
                    from as f64,
                    (context_before + new_tokens) as f64,
                ));
                requests.push(e.request);
            }
        }
        if requests.is_empty() {
            return;
        }
        for (layer, &end_s) in layer_end_s.iter().enumerate() {
            let bytes: f64 = ranges
                .iter()
                .map(|&(prompt, from, to)| kv.handover.layer_bytes(layer, prompt, from, to))
                .sum();
            // A layer with nothing the decode needs from this iteration sends nothing.
            if bytes <= 0.0 {
                continue;
            }
            let f = self.flows.len();
            self.flows.push(Flow {
                link,
                bytes,
                requests: requests.clone(),
                released: now,
            });
            for &r in &requests {
                let t = &mut self.times[r];
                t.pending_messages += 1;
                t.transfer_start
                    .get_or_insert(now.after(Duration::from_secs(end_s)));
            }
            self.queue
                .schedule(now.after(Duration::from_secs(end_s)), Event::Release(f));
        }
    }

    fn iteration_done(&mut self, now: SimTime, i: usize) {
        let outcomes = self.instances[i].finish_iteration(&mut self.states);
        for (r, _work, outcome) in outcomes {
            match outcome {
                Outcome::Nothing => {}
                Outcome::Token => self.token(now, r),
                Outcome::Finished => {
                    self.token(now, r);
                    self.times[r].finish = Some(now);
                    self.instances[i].outstanding -= 1;
                    // A request that ends at its prefill on a prefill instance never
                    // reaches its decode instance.
                    if self.instances[i].config.role == Role::Prefill {
                        if let Some(d) = self.times[r].decode_instance {
                            self.instances[d].outstanding -= 1;
                        }
                    }
                }
                Outcome::PrefillDone => {
                    let t = &mut self.times[r];
                    t.prefill_end = Some(now);
                    t.prefill_done = true;
                    if let Some(KvPlan {
                        mode: KvTransfer::Bulk,
                        handover,
                    }) = &self.kv
                    {
                        if let Some(link) = self.link_of[i] {
                            let bytes = handover.total_bytes(self.specs[r].prompt_tokens as f64);
                            let f = self.flows.len();
                            self.flows.push(Flow {
                                link,
                                bytes,
                                requests: vec![r],
                                released: now,
                            });
                            let t = &mut self.times[r];
                            t.pending_messages += 1;
                            t.transfer_start.get_or_insert(now);
                            self.queue.schedule(now, Event::Release(f));
                        }
                    }
                    if self.times[r].pending_messages == 0 {
                        self.hand_over(now, r);
                    }
                }
            }
        }
        self.try_start(now, i);
    }

    /// A token reached the user.
    fn token(&mut self, now: SimTime, r: usize) {
        let t = &mut self.times[r];
        match t.first_token {
            None => t.first_token = Some(now),
            Some(_) => {
                if let Some(last) = t.last_token {
                    self.itl.record(now.since(last).0);
                }
            }
        }
        t.last_token = Some(now);
    }

    /// The KV cache of request `r` is on its decode instance: the first token counts
    /// from now, and decoding can start.
    fn hand_over(&mut self, now: SimTime, r: usize) {
        let p = self.times[r].prefill_instance.expect("routed");
        let d = self.times[r].decode_instance.expect("routed");
        self.instances[p].unpark(r);
        self.instances[p].outstanding -= 1;
        self.token(now, r);
        self.instances[d].enqueue(r);
        self.try_start(now, p);
        self.try_start(now, d);
    }

    fn span(
        &mut self,
        resource: usize,
        request: usize,
        phase: Phase,
        start: SimTime,
        end: SimTime,
    ) {
        let key = (resource, request, phase);
        if let Some(&k) = self.open_spans.get(&key) {
            if self.spans[k].end_s >= start.as_secs() - 1e-12 {
                self.spans[k].end_s = end.as_secs();
                return;
            }
        }
        self.open_spans.insert(key, self.spans.len());
        self.spans.push(Span {
            resource,
            request,
            phase,
            start_s: start.as_secs(),
            end_s: end.as_secs(),
        });
    }

    fn span_flow(&mut self, f: usize, drained: SimTime) {
        let resource = self.instances.len() + self.flows[f].link;
        let released = self.flows[f].released;
        let shown: Vec<usize> = self.flows[f]
            .requests
            .iter()
            .copied()
            .filter(|&r| r < self.timeline_requests)
            .collect();
        for r in shown {
            self.span(resource, r, Phase::Transfer, released, drained);
        }
    }
}
