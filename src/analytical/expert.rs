//! Expert parallelism: the experts of every MoE layer spread over `N` nodes.
//!
//! Per MoE layer, as the expert-parallelism study runs it (arXiv 2506.23635):
//!
//! 1. **Attention and routing.** `attention = "replicated"` (the study's layout): every
//!    node holds all non-expert weights and runs attention and the router for every
//!    token, redundantly. `attention = "split"`: each node runs them for its share of
//!    the sequences (data-parallel attention, as in DeepSeek-V3's serving), and keeps
//!    only those sequences' KV cache.
//! 2. **Experts.** Each node runs the experts the router sent it ([`super::routing`]).
//!    The layer waits for the slowest node: the model takes the expectation, over the
//!    routing outcomes, of the largest per-node time (device time plus wiring), never
//!    the mean.
//! 3. **Exchange.** Replicated attention: every node sends each of its expert outputs
//!    (`rows x d_model x 2 bytes`; 12,288 B for one DBRX token) to every other node and
//!    waits for all of theirs; the weighted sum is done locally (the study's
//!    send-to-all over gRPC). Split attention: all-to-all dispatch of each token's
//!    hidden state to the nodes of its experts, then combine of their summed outputs
//!    back (one message per pair of nodes each way). Costs come from
//!    [`crate::network::LinkModel::exchange_time`]. Nothing overlaps the exchange: the
//!    next layer needs its result.
//!
//! The layer's element-wise work (norms, residual adds and the experts' gated
//! activation) runs with attention on every node, so each node is charged the
//! activation of all the layer's picks rather than of its own: an overcount of under
//! 1% of a DBRX prefill layer on 2 nodes, not worth splitting by routing sample.
//!
//! Dense layers of a MoE model run like attention (replicated or split), with no
//! exchange. The embedding and LM head run on every node for the sequences it holds.
//!
//! The study's decomposition follows: time per token = layers x (expert compute +
//! communication + everything else), with everything else = attention, routing,
//! dispatch and wiring overheads, and the per-step work outside the layers spread
//! over the layers.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::Serialize;

use super::ops::{head_ops, layer_ops, routed_experts_op, Op, OpKind, Pass, ACTIVATION_BYTES};
use super::pass::{batch_layer_ops, merged_pass};
use super::routing::{expected_busiest_experts, routing_samples, Placement, RoutingSample};
use super::stage::{group_mla_prefill, slowest_node, Node, StageTime};
use crate::model::Model;
use crate::network::{LinkModel, Message, Topology};
use crate::scenario::AttentionLayout;

/// Expected cost of the expert part of one MoE layer for one pass shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ExpertPhase {
    /// Device time of the experts on the slowest node.
    pub expert_compute_s: f64,
    /// Wiring overhead of the experts on that node.
    pub expert_wiring_s: f64,
    /// Expert device time of a node, averaged over the nodes (a node's own timer).
    pub mean_node_compute_s: f64,
    /// Wiring overhead of a node, averaged over the nodes.
    pub mean_node_wiring_s: f64,
    /// The exchange (send-to-all, or dispatch + combine).
    pub exchange_s: f64,
    /// Expected distinct experts run by the busiest node.
    pub busiest_experts: f64,
    /// Mean distinct experts run per node.
    pub mean_experts: f64,
    /// Expected token rows through the experts of the slowest node (with replicated
    /// experts, a pick's rows go to one of its replicas).
    pub busiest_rows: f64,
    pub flops: f64,
    pub bytes: f64,
}

impl ExpertPhase {
    /// The phase as part of a layer: the slowest node's experts as compute, its wiring
    /// as overhead, the exchange as (exposed) communication.
    pub fn stage_time(&self) -> StageTime {
        StageTime {
            compute_s: self.expert_compute_s,
            overhead_s: self.expert_wiring_s,
            flops: self.flops,
            bytes: self.bytes,
            ..StageTime::communication(self.exchange_s)
        }
    }
}

/// A group of nodes sharing the experts of its layers.
pub struct ExpertGroup<'a, 'b> {
    pub model: &'a Model,
    pub nodes: Vec<&'b Node<'a>>,
    pub placement: Placement,
    pub attention: AttentionLayout,
    pub link: Option<LinkModel>,
    pub topology: Topology,
    pub seed: u64,
    cache: RefCell<HashMap<(u64, u64), ExpertPhase>>,
}

/// Routing draws for a pass with this many (token, expert) picks: plenty for one
/// token (exact anyway when small), fewer as the busiest node's share concentrates.
fn sample_count(picks: f64) -> usize {
    ((65_536.0 / picks.max(1.0)) as usize).clamp(16, 2048)
}

impl<'a, 'b> ExpertGroup<'a, 'b> {
    pub fn new(
        model: &'a Model,
        nodes: Vec<&'b Node<'a>>,
        placement: Placement,
        attention: AttentionLayout,
        link: Option<LinkModel>,
        topology: Topology,
        seed: u64,
    ) -> Self {
        ExpertGroup {
            model,
            nodes,
            placement,
            attention,
            link,
            topology,
            seed,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    /// Sequences node `i` runs attention for.
    pub fn sequences_on(&self, i: usize, sequences: f64) -> f64 {
        match self.attention {
            AttentionLayout::Replicated => sequences,
            AttentionLayout::Split => {
                // Earlier nodes take the remainder: 1 sequence on 2 nodes is node 0's.
                let s = sequences.round() as u64;
                let n = self.n() as u64;
                (s / n + u64::from((i as u64) < s % n)) as f64
            }
        }
    }

    /// Runs `ops_for(pass on node i)` on every node holding sequences: the slowest
    /// node's device time and wiring, work summed.
    fn per_node(&self, pass: &Pass, ops_for: impl Fn(&Pass) -> Vec<Op>) -> StageTime {
        slowest_node(self.nodes.iter().enumerate().filter_map(|(i, node)| {
            let sequences = self.sequences_on(i, pass.sequences);
            (sequences > 0.0).then(|| node.run(&ops_for(&Pass { sequences, ..*pass })))
        }))
    }

    fn samples(&self, pass: &Pass) -> Vec<RoutingSample> {
        let k = self.model.moe.map_or(1, |m| m.experts_per_token);
        let mut owners = Vec::new();
        for i in 0..self.n() {
            let tokens = (self.sequences_on(i, pass.sequences) * pass.new_tokens).round() as usize;
            let owner = match self.attention {
                AttentionLayout::Replicated => 0,
                AttentionLayout::Split => i,
            };
            owners.extend(std::iter::repeat_n(owner, tokens));
            if self.attention == AttentionLayout::Replicated {
                break;
            }
        }
        let picks = owners.len() as f64 * f64::from(k);
        routing_samples(&self.placement, k, &owners, sample_count(picks), self.seed)
    }

    fn messages(&self, sample: &RoutingSample) -> Vec<Vec<Message>> {
        let row_bytes = self.model.hidden_size as f64 * ACTIVATION_BYTES;
        let n = self.n();
        match self.attention {
            AttentionLayout::Replicated => {
                let mut all = Vec::new();
                for (from, load) in sample.loads.iter().enumerate() {
                    for &(_, rows) in &load.experts {
                        for to in (0..n).filter(|&to| to != from) {
                            all.push(Message {
                                from,
                                to,
                                bytes: f64::from(rows) * row_bytes,
                            });
                        }
                    }
                }
                vec![all]
            }
            AttentionLayout::Split => {
                let mut dispatch = Vec::new();
                let mut combine = Vec::new();
                for (node, load) in sample.loads.iter().enumerate() {
                    for (owner, &tokens) in load.tokens_from.iter().enumerate() {
                        if owner != node && tokens > 0 {
                            let bytes = f64::from(tokens) * row_bytes;
                            dispatch.push(Message {
                                from: owner,
                                to: node,
                                bytes,
                            });
                            combine.push(Message {
                                from: node,
                                to: owner,
                                bytes,
                            });
                        }
                    }
                }
                vec![dispatch, combine]
            }
        }
    }

    /// The expert part of a MoE layer for `pass` (independent of the context, so
    /// computed once per pass shape).
    pub fn expert_phase(&self, pass: &Pass) -> ExpertPhase {
        let key = (pass.sequences.to_bits(), pass.new_tokens.to_bits());
        if let Some(phase) = self.cache.borrow().get(&key) {
            return *phase;
        }
        let samples = self.samples(pass);
        let expert_bytes = self.model.expert_params() as f64;
        let mut phase = ExpertPhase {
            busiest_experts: expected_busiest_experts(&samples),
            ..ExpertPhase::default()
        };
        let share = 1.0 / self.n() as f64;
        for sample in &samples {
            let mut slowest: Option<NodeExperts> = None;
            let mut take = |this: NodeExperts| {
                if slowest.is_none_or(|s| this.total_s() > s.total_s()) {
                    slowest = Some(this);
                }
            };
            for (node, load) in self.nodes.iter().zip(&sample.loads) {
                let distinct = load.distinct_experts() as f64;
                phase.mean_experts += sample.weight * distinct * share;
                if distinct == 0.0 {
                    take(NodeExperts::default());
                    continue;
                }
                let rows = f64::from(load.rows());
                let t = node
                    .exec
                    .time(&routed_experts_op(self.model, rows, distinct));
                let wiring = node
                    .wiring
                    .overhead_s(distinct * expert_bytes * node.exec.weights.bytes_per_weight());
                take(NodeExperts {
                    compute_s: t.time_s,
                    wiring_s: wiring,
                    rows,
                });
                phase.mean_node_compute_s += sample.weight * t.time_s * share;
                phase.mean_node_wiring_s += sample.weight * wiring * share;
                phase.flops += sample.weight * t.flops;
                phase.bytes += sample.weight * t.bytes;
            }
            let slowest = slowest.unwrap_or_default();
            phase.expert_compute_s += sample.weight * slowest.compute_s;
            phase.expert_wiring_s += sample.weight * slowest.wiring_s;
            phase.busiest_rows += sample.weight * slowest.rows;
            if let Some(link) = self.link {
                let exchange: f64 = self
                    .messages(sample)
                    .iter()
                    .map(|m| link.exchange_time(self.topology, self.n(), m))
                    .sum();
                phase.exchange_s += sample.weight * exchange;
            }
        }
        self.cache.borrow_mut().insert(key, phase);
        phase
    }

    /// Attention, routing and the rest of a MoE layer except the routed experts (or a
    /// whole dense layer), with dispatch overhead.
    pub fn local_part(&self, layer: u32, pass: &Pass) -> StageTime {
        let moe = self.model.is_moe_layer(layer);
        let mla = group_mla_prefill(&self.nodes);
        let mut t = self.per_node(pass, |p| {
            layer_ops(self.model, layer, p, mla)
                .into_iter()
                .filter(|op| !(moe && op.kind == OpKind::RoutedExperts))
                .collect()
        });
        let ops = layer_ops(self.model, layer, pass, mla);
        t.overhead_s += self
            .nodes
            .iter()
            .map(|n| n.exec.dispatch_overhead_s(&ops))
            .fold(0.0, f64::max);
        t
    }

    /// One layer for `pass`.
    pub fn layer_time(&self, layer: u32, pass: &Pass) -> StageTime {
        let mut t = self.local_part(layer, pass);
        if self.model.is_moe_layer(layer) {
            t.add(&self.expert_phase(pass).stage_time());
        }
        t
    }

    /// One layer for an iteration of the request-level engine made of `parts`, with
    /// replicated attention (every node runs attention and routing for every
    /// sequence): everything but the routed experts as one batch on every node (see
    /// [`batch_layer_ops`]), the slowest node's time and one launch of the layer's
    /// kernels; then the experts for all the batch's tokens, as for a pass of that
    /// many tokens. With one part this is [`ExpertGroup::layer_time`]. Split
    /// attention gives each node whole sequences, which a batch of parts does not
    /// say how to share: the request-level engine refuses it.
    pub fn batch_layer_time(&self, layer: u32, parts: &[Pass]) -> StageTime {
        let moe = self.model.is_moe_layer(layer);
        let (ops, launched) =
            batch_layer_ops(self.model, layer, parts, group_mla_prefill(&self.nodes));
        let local: Vec<Op> = ops
            .into_iter()
            .filter(|op| !(moe && op.kind == OpKind::RoutedExperts))
            .collect();
        let merged = merged_pass(parts);
        let mut t = self.per_node(&merged, |_| local.clone());
        t.overhead_s += self
            .nodes
            .iter()
            .map(|n| n.exec.dispatch_overhead_s(&launched))
            .fold(0.0, f64::max);
        if moe {
            t.add(&self.expert_phase(&merged).stage_time());
        }
        t
    }

    /// The embedding gather and LM head on every node, for its sequences.
    pub fn head_time(&self, pass: &Pass, logits_rows: f64) -> StageTime {
        let per_sequence = logits_rows / pass.sequences.max(1.0);
        let mut t = self.per_node(pass, |p| {
            head_ops(self.model, p, per_sequence * p.sequences)
        });
        let ops = head_ops(self.model, pass, logits_rows);
        t.overhead_s += self
            .nodes
            .iter()
            .map(|n| n.exec.dispatch_overhead_s(&ops))
            .fold(0.0, f64::max);
        t
    }

    /// Host overhead per forward pass (the slowest node's).
    pub fn step_overhead(&self) -> StageTime {
        StageTime {
            overhead_s: self
                .nodes
                .iter()
                .map(|n| n.exec.runtime.per_step_overhead_s)
                .fold(0.0, f64::max),
            ..StageTime::default()
        }
    }
}

/// One node's experts in one routing sample: their device time, the wiring overhead
/// and the token rows they take.
#[derive(Debug, Clone, Copy, Default)]
struct NodeExperts {
    compute_s: f64,
    wiring_s: f64,
    rows: f64,
}

impl NodeExperts {
    fn total_s(&self) -> f64 {
        self.compute_s + self.wiring_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytical::executor;
    use crate::analytical::routing::Placement;
    use crate::analytical::stage::Node;
    use crate::analytical::test_support::dbrx;
    use crate::analytical::wiring::Wiring;
    use crate::scenario::ExpertPlacement;

    #[test]
    fn two_node_dbrx_decode_by_hand() {
        let sc = dbrx(2, "");
        let group = &sc.groups[0];
        let node = Node {
            group: 0,
            exec: executor(&sc, group),
            wiring: Wiring::NONE,
        };
        let g = ExpertGroup::new(
            &sc.model,
            vec![&node, &node],
            Placement::new(&ExpertPlacement::Even, 16, 2),
            AttentionLayout::Replicated,
            sc.network.as_ref().map(LinkModel::from_network),
            Topology::Switch,
            7,
        );
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 64.0,
        };
        let phase = g.expert_phase(&pass);
        // Node 0 runs c of the 4 picks (hypergeometric: 70, 448, 784, 448, 70 of 1820
        // for c = 0..4), node 1 runs 4 - c. Each sends one 12,288-byte message per
        // expert output to the other, so node i sends c_i and receives 4 - c_i.
        // Software overhead beyond the first send and receive (o = 125 us): 2 o when
        // c = 1, 2, 3 (1680 of 1820), 3 o when c = 0 or 4 (140 of 1820). The busiest
        // port carries max(c, 4 - c) messages, 4816 / 1820 = 2.646 on average.
        //   E = 250 us + 125 us x (2 x 1680 + 3 x 140) / 1820
        //       + 2.646 x 12,288 B / 1.18e9 B/s
        //     = 250 + 259.615 + 27.556 = 537.17 us.
        let expected = 250e-6
            + 125e-6 * (2.0 * 1680.0 + 3.0 * 140.0) / 1820.0
            + 4816.0 / 1820.0 * 12_288.0 / 1.18e9;
        assert!((phase.exchange_s - expected).abs() < 1e-12, "{phase:?}");
        assert!((phase.busiest_experts - 4816.0 / 1820.0).abs() < 1e-12);
        assert!((phase.mean_experts - 2.0).abs() < 1e-12);
        // One token through c experts is memory bound and its time affine in c (the
        // rows per expert stay 1), so the expected time of the busiest node is the
        // time of 2.646 experts.
        let busiest = routed_experts_op(&sc.model, 4816.0 / 1820.0, 4816.0 / 1820.0);
        let t = node.exec.time(&busiest);
        assert!(t.memory_bound());
        assert!((phase.expert_compute_s - t.time_s).abs() < 1e-12 * t.time_s);
    }

    #[test]
    fn split_attention_dispatches_and_combines() {
        // One sequence owned by node 0 of 2 (8 experts each). Whenever node 1 runs
        // some of the token's 4 experts (1 - 70/1820 of the time), node 0 sends it the
        // hidden state and gets the sum back: two messages of 12,288 B, each one
        // latency with no extra software overhead (one send, one receive per node).
        //   E = (1750 / 1820) x 2 x (250 us + 12,288 / 1.18e9 s) = 500.79 us.
        let sc = dbrx(2, "attention = \"split\"");
        let node = Node {
            group: 0,
            exec: executor(&sc, &sc.groups[0]),
            wiring: Wiring::NONE,
        };
        let g = ExpertGroup::new(
            &sc.model,
            vec![&node, &node],
            Placement::new(&ExpertPlacement::Even, 16, 2),
            AttentionLayout::Split,
            sc.network.as_ref().map(LinkModel::from_network),
            Topology::Switch,
            7,
        );
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 64.0,
        };
        let expected = 1750.0 / 1820.0 * 2.0 * (250e-6 + 12_288.0 / 1.18e9);
        assert!((g.expert_phase(&pass).exchange_s - expected).abs() < 1e-12);
        assert_eq!(g.sequences_on(0, 1.0), 1.0);
        assert_eq!(g.sequences_on(1, 1.0), 0.0);
        assert_eq!(g.sequences_on(1, 5.0), 2.0);
    }
}
