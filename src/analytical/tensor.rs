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
//! - The matrix-vector output-element cost (`dot_products`, a calibrated CPU term)
//!   is divided like the weights. That is exact for the column-split matrices; the
//!   row-split ones (output, down) keep their outputs and shorten their rows, so it
//!   undercounts those.
//! - The gated activation over the FFN width (SwiGLU's product of the gate and up
//!   projections) is split with the FFN: each node activates its `1/t` of the hidden
//!   features.
//! - Not split: the router, norms, rotary embedding and residual adds (every node
//!   runs them on the whole hidden state), and the embedding gather. The LM head is
//!   split by vocabulary; gathering the logits (a few hundred kB) is not charged.
//!
//! With `t = 1` this is exactly the single-node pass of [`super::pass`].

use super::ops::{head_ops, layer_ops, Op, OpKind, Pass, ACTIVATION_BYTES};
use super::pass::{batch_layer_ops, merged_pass};
use super::stage::{group_mla_prefill, slowest_node, Node, StageTime};
use super::timing::Executor;
use crate::model::Model;
use crate::network::{LinkModel, Topology};

/// The `1/degree` share of `op` one node runs; `kv_split` divides the KV cache.
pub fn split_op(op: &Op, degree: f64, kv_split: f64) -> Op {
    match op.kind {
        OpKind::Router | OpKind::Embedding => *op,
        OpKind::Elementwise => {
            let kept = op.ffn_elements / degree;
            let dropped = op.ffn_elements - kept;
            Op {
                flops: op.flops - dropped,
                activation_bytes: op.activation_bytes - dropped * ACTIVATION_BYTES,
                ffn_elements: kept,
                ..*op
            }
        }
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
        | OpKind::LatentDecompression
        | OpKind::LmHead => Op {
            flops: op.flops / degree,
            weight_params: op.weight_params / degree,
            dequant_params: op.dequant_params / degree,
            dot_products: op.dot_products / degree,
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
        slowest_node(self.nodes.iter().map(|node| node.run(&split)))
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

    /// Dispatch overhead of launching `ops` (the slowest node's).
    fn dispatch_s(&self, ops: &[Op]) -> f64 {
        self.nodes
            .iter()
            .map(|n| n.exec.dispatch_overhead_s(ops))
            .fold(0.0, f64::max)
    }

    /// One layer for `pass`: split compute, dispatch, wiring and two all-reduces.
    pub fn layer_time(&self, layer: u32, pass: &Pass) -> StageTime {
        let ops = layer_ops(self.model, layer, pass, group_mla_prefill(&self.nodes));
        let mut t = self.run(&ops);
        t.overhead_s += self.dispatch_s(&ops);
        t.add(&self.layer_communication(pass));
        t
    }

    /// One layer for an iteration of the request-level engine made of `parts`
    /// (decoding sequences and prefill chunks; see [`batch_layer_ops`]): the
    /// token-parallel operations over all the batch's tokens and attention per part,
    /// each split `t` ways; one launch of the layer's kernels; two all-reduces of the
    /// hidden states of all the batch's tokens. With one part this is
    /// [`TensorGroup::layer_time`].
    pub fn batch_layer_time(&self, layer: u32, parts: &[Pass]) -> StageTime {
        let (ops, launched) =
            batch_layer_ops(self.model, layer, parts, group_mla_prefill(&self.nodes));
        let mut t = self.run(&ops);
        t.overhead_s += self.dispatch_s(&launched);
        t.add(&self.layer_communication(&merged_pass(parts)));
        t
    }

    /// The embedding gather and LM head, with `logits_rows` rows.
    pub fn head_time(&self, pass: &Pass, logits_rows: f64) -> StageTime {
        let ops = head_ops(self.model, pass, logits_rows);
        let mut t = self.run(&ops);
        t.overhead_s += self.dispatch_s(&ops);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytical::executor;
    use crate::analytical::pass::{pass_time, Shard};
    use crate::analytical::stage::Node;
    use crate::analytical::test_support::{catalog, scenario};
    use crate::analytical::wiring::Wiring;
    use crate::runtime::MlaPrefill;

    #[test]
    fn split_divides_weights_and_work_but_not_the_router() {
        let op = Op {
            kind: OpKind::QkvProjection,
            flops: 8.0,
            weight_params: 4.0,
            dequant_params: 4.0,
            kv_elements: 0.0,
            activation_bytes: 3.0,
            rows: 1.0,
            heads_per_kv: 1.0,
            kernels: 3.0,
            dot_products: 2.0,
            ffn_elements: 0.0,
        };
        // 8 / 4 = 2 FLOPs, 4 / 4 = 1 weight, 2 / 4 dot products; activations and rows
        // unchanged.
        let s = split_op(&op, 4.0, 4.0);
        assert_eq!(
            (s.flops, s.weight_params, s.dequant_params, s.dot_products),
            (2.0, 1.0, 1.0, 0.5)
        );
        assert_eq!((s.activation_bytes, s.rows), (3.0, 1.0));
        let router = Op {
            kind: OpKind::Router,
            ..op
        };
        assert_eq!(split_op(&router, 4.0, 4.0), router);
        // Attention: FLOPs / 8, KV / min(8, 4 KV heads) = / 4.
        let attention = Op {
            kind: OpKind::Attention,
            kv_elements: 16.0,
            ..op
        };
        let s = split_op(&attention, 8.0, 4.0);
        assert_eq!((s.flops, s.kv_elements), (1.0, 4.0));
    }

    #[test]
    fn the_gated_activation_is_split_with_the_ffn_and_the_norms_are_not() {
        // Llama-3.1 8B, 4 tokens: d_model 4096, FFN width 14336. Element-wise work per
        // token: norms and residual adds 10 x 4096 = 40,960 elements, the gated
        // activation 3 x 14336 = 43,008. Split 8 ways, a node runs 40,960 + 43,008 / 8
        // = 46,336 elements per token: 185,344 for 4 tokens, 2 bytes each.
        let model = &catalog().models["llama-3.1-8b"];
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 4.0,
            context_before: 0.0,
        };
        let ops = layer_ops(model, 0, &pass, MlaPrefill::Expanded);
        let elementwise = ops
            .iter()
            .find(|op| op.kind == OpKind::Elementwise)
            .unwrap();
        assert_eq!(elementwise.flops, 4.0 * (40_960.0 + 43_008.0));
        assert_eq!(elementwise.ffn_elements, 4.0 * 43_008.0);
        let s = split_op(elementwise, 8.0, 8.0);
        assert_eq!(s.flops, 185_344.0);
        assert_eq!(s.activation_bytes, 2.0 * 185_344.0);
        assert_eq!(s.ffn_elements, 4.0 * 43_008.0 / 8.0);
        assert_eq!(split_op(elementwise, 1.0, 1.0), *elementwise);
    }

    #[test]
    fn one_node_is_the_single_node_pass() {
        let sc = scenario(
            r#"
[model]
preset = "llama-3.1-8b"
weights = "f16"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "m3-ultra-80c"
[workload]
prompt_tokens = 512
output_tokens = 8
"#,
        );
        let group = &sc.groups[0];
        let node = Node {
            group: 0,
            exec: executor(&sc, group),
            wiring: Wiring::NONE,
        };
        let g = TensorGroup {
            model: &sc.model,
            nodes: vec![&node],
            link: None,
            topology: Topology::Switch,
            kv_split: 1.0,
        };
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 512.0,
        };
        let mut ours = StageTime::default();
        for layer in 0..sc.model.layers {
            ours.add(&g.layer_time(layer, &pass));
        }
        ours.add(&g.head_time(&pass, 1.0));
        ours.add(&g.step_overhead());
        let theirs = pass_time(&node.exec, &sc.model, &Shard::whole(&sc.model), &pass, 1.0);
        assert!((ours.total_s() - theirs.total_s()).abs() < 1e-12 * theirs.total_s());
        assert!((ours.flops - theirs.flops).abs() < 1e-6 * theirs.flops);
    }

    #[test]
    fn two_all_reduces_per_layer() {
        // 4 nodes over RDMA (50 us, 9.375 GB/s), direct mesh; one decode token of
        // Qwen3 235B: 4096 x 2 = 8192 bytes. One-shot: 50 us + 8192 / 9.375e9 s
        // = 50.874 us; twice per layer = 101.748 us.
        let sc = scenario(
            r#"
[model]
preset = "qwen3-235b-a22b"
weights = "mlx-8bit"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "m3-ultra-80c"
memory_gb = 512
count = 4
[cluster.network]
link = "thunderbolt-5-rdma"
topology = "direct"
[parallelism]
tensor = 4
[workload]
prompt_tokens = 64
output_tokens = 4
"#,
        );
        let group = &sc.groups[0];
        let node = Node {
            group: 0,
            exec: executor(&sc, group),
            wiring: Wiring::NONE,
        };
        let g = TensorGroup {
            model: &sc.model,
            nodes: vec![&node; 4],
            link: sc.network.as_ref().map(LinkModel::from_network),
            topology: Topology::Direct,
            kv_split: 4.0,
        };
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 64.0,
        };
        let c = g.layer_communication(&pass);
        let expected = 2.0 * (50e-6 + 8192.0 / 9.375e9);
        assert!((c.communication_s - expected).abs() < 1e-15, "{c:?}");
        assert_eq!(c.exposed_communication_s, c.communication_s);
    }

    #[test]
    fn a_batch_all_reduces_every_token_and_one_part_is_layer_time() {
        // Llama-3.3 70B over 2 H100s on NVLink (3 us, 360 GB/s). Two decode groups of
        // 3 and 5 sequences: the all-reduces carry 8 tokens x 8192 x 2 bytes =
        // 131,072 bytes. On 2 nodes recursive doubling (one step, 3 us + 131,072 /
        // 360e9 s = 3.364 us) beats the ring (2 x 3 us + 131,072 / 360e9 s = 6.364
        // us); twice per layer = 6.728 us.
        let sc = scenario(
            r#"
[model]
preset = "llama-3.3-70b"
weights = "fp8"
[runtime]
preset = "trt-llm"
[[cluster.groups]]
device = "h100-sxm"
count = 2
[cluster.network]
link = "nvlink-4"
[parallelism]
tensor = 2
[workload]
prompt_tokens = 64
output_tokens = 4
"#,
        );
        let node = Node {
            group: 0,
            exec: executor(&sc, &sc.groups[0]),
            wiring: Wiring::NONE,
        };
        let g = TensorGroup {
            model: &sc.model,
            nodes: vec![&node; 2],
            link: sc.network.as_ref().map(LinkModel::from_network),
            topology: Topology::Switch,
            kv_split: 2.0,
        };
        let decode = |sequences: f64, context_before: f64| Pass {
            sequences,
            new_tokens: 1.0,
            context_before,
        };
        let t = g.batch_layer_time(0, &[decode(3.0, 100.0), decode(5.0, 900.0)]);
        let expected = 2.0 * (3e-6 + 131_072.0 / 360e9);
        assert!((t.communication_s - expected).abs() < 1e-15, "{t:?}");
        // Both groups read the layer's weights once: less than the two layers apart.
        let apart = g.layer_time(0, &decode(3.0, 100.0)).compute_s
            + g.layer_time(0, &decode(5.0, 900.0)).compute_s;
        assert!(t.compute_s < apart);
        // One part: the pass's layer time.
        let prefill = Pass {
            sequences: 1.0,
            new_tokens: 2048.0,
            context_before: 512.0,
        };
        let (a, b) = (g.batch_layer_time(0, &[prefill]), g.layer_time(0, &prefill));
        assert!(
            (a.total_s() - b.total_s()).abs() < 1e-12 * b.total_s(),
            "{a:?} vs {b:?}"
        );
        assert_eq!(a.communication_s, b.communication_s);
    }
}
