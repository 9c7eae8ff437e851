//! Tensor parallelism (Megatron-LM, Shoeybi et al. 2019): each of `t` nodes holds a
//! `1/t` slice of every weight matrix of its layers and does `1/t` of their work.
//!
//! - Attention heads are split `t` ways (the degree must divide the heads, checked
//!   when the scenario is read); the KV cache `min(t, kv_heads)` ways, since KV heads
//!   are replicated once `t` exceeds them (MLA's shared latent is not split).
//! - The QKV and gate/up projections are split by columns, the output and down
//!   projections by rows, so each layer needs two all-reduces of the hidden states
//!   (`tokens x d_model x 2 bytes`): after attention and after the feed-forward block.
//!   [`crate::network::LinkModel::all_reduce_time`] picks ring or tree by size.
//! - Routed experts are split by their FFN width, like a dense FFN: every node runs
//!   every picked expert, a `1/t` slice of it.
//! - Not split: the router, norms, rotary embedding and residual adds (every node
//!   runs them on the whole hidden state), and the embedding gather. The LM head is
//!   split by vocabulary; gathering the logits (a few hundred kB) is not charged.
//!
//! With `t = 1` this is exactly the single-node pass of [`super::pass`].

use super::ops::{head_ops, layer_ops, Op, OpKind, Pass, ACTIVATION_BYTES};
use super::stage::{Node, StageTime};
use super::timing::Executor;
use crate::model::Model;
use crate::network::{LinkModel, Topology};

/// The `1/degree` share of `op` one node runs; `kv_split` divides the KV cache.
pub fn split_op(op: &Op, degree: f64, kv_split: f64) -> Op {
    match op.kind {
        OpKind::Router | OpKind::Elementwise | OpKind::Embedding => *op,
        OpKind::Attention => Op {
            flops: op.flops / degree,
            kv_elements: op.kv_elements / kv_split,
            activation_bytes: op.activation_bytes / degree,
            ..*op
        },
        OpKind::QkvProjection
        | OpKind::OutputProjection
        | OpKind::Ffn
        | OpKind::RoutedExperts
        | OpKind::SharedExperts
        | OpKind::LmHead => Op {
            flops: op.flops / degree,
            weight_params: op.weight_params / degree,
            dequant_params: op.dequant_params / degree,
            ..*op
        },
    }
}

/// Sums `ops` on one node: (device time, flops, bytes, weight bytes touched).
pub fn time_ops(exec: &Executor, ops: &[Op]) -> (f64, f64, f64, f64) {
    let mut time = 0.0;
    let mut flops = 0.0;
    let mut bytes = 0.0;
    let mut weight_bytes = 0.0;
    for op in ops {
        let t = exec.time(op);
        time += t.time_s;
        flops += t.flops;
        bytes += t.bytes;
        weight_bytes += op.weight_params * exec.weights.bytes_per_weight();
    }
    (time, flops, bytes, weight_bytes)
}

/// A tensor-parallel group of nodes (one node: plain single-node timing).
pub struct TensorGroup<'a, 'b> {
    pub model: &'a Model,
    pub nodes: Vec<&'b Node<'a>>,
    pub link: Option<LinkModel>,
    pub topology: Topology,
    pub kv_split: f64,
}

impl TensorGroup<'_, '_> {
    fn degree(&self) -> f64 {
        self.nodes.len() as f64
    }

    /// Time of `ops` split over the group: the slowest node's device time and
    /// wiring; work summed over nodes.
    fn run(&self, ops: &[Op]) -> StageTime {
        let split: Vec<Op> = ops
            .iter()
            .map(|op| split_op(op, self.degree(), self.kv_split))
            .collect();
        let mut out = StageTime::default();
        let mut slowest = f64::NEG_INFINITY;
        for node in &self.nodes {
            let (time, flops, bytes, weight_bytes) = time_ops(&node.exec, &split);
            let wiring = node.wiring.overhead_s(weight_bytes);
            if time + wiring > slowest {
                slowest = time + wiring;
                out.compute_s = time;
                out.overhead_s = wiring;
            }
            out.flops += flops;
            out.bytes += bytes;
        }
        out
    }

    /// Two all-reduces of the pass's hidden states.
    pub fn layer_communication(&self, pass: &Pass) -> StageTime {
        match self.link {
            Some(link) if self.nodes.len() > 1 => {
                let bytes = pass.tokens() * self.model.hidden_size as f64 * ACTIVATION_BYTES;
                let (one, _) = link.all_reduce_time(self.topology, self.nodes.len(), bytes);
                StageTime::communication(2.0 * one)
            }
            _ => StageTime::default(),
        }
    }

    /// One layer for `pass`: split compute, dispatch, wiring and two all-reduces.
    pub fn layer_time(&self, layer: u32, pass: &Pass) -> StageTime {
        let mut t = self.run(&layer_ops(self.model, layer, pass));
        t.overhead_s += self
            .nodes
            .iter()
            .map(|n| n.exec.layer_overhead_s())
            .fold(0.0, f64::max);
        t.add(&self.layer_communication(pass));
        t
    }

    /// The embedding gather and LM head, with `logits_rows` rows.
    pub fn head_time(&self, pass: &Pass, logits_rows: f64) -> StageTime {
        self.run(&head_ops(self.model, pass, logits_rows))
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
