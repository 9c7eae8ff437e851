//! A cluster as the model sees it: nodes, each with its device, runtime and wiring
//! cost; stages of nodes (tensor- or expert-parallel groups) each running a range of
//! layers; and the time parts every stage reports.
//!
//! Nodes are numbered in the order of `[[cluster.groups]]` and their counts; pipeline
//! stage `s` takes the `s`-th run of `tensor x expert` consecutive nodes. A group with
//! more nodes than the degrees need holds several replicas of the model, which split
//! the batch between them.

use std::ops::Range;

use serde::Serialize;

use super::memory;
use super::timing::Executor;
use super::wiring::Wiring;
use crate::model::Model;
use crate::runtime::MlaPrefill;
use crate::scenario::AttentionLayout;

/// Time of one pass (or part of one) split the way the contract's breakdown reports
/// it. `total_s` is compute + exposed communication + overhead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTime {
    pub compute_s: f64,
    /// All time messages are in flight.
    pub communication_s: f64,
    /// The part of the communication not hidden behind compute.
    pub exposed_communication_s: f64,
    /// Dispatch, host and memory-management overhead.
    pub overhead_s: f64,
    pub flops: f64,
    pub bytes: f64,
}

impl StageTime {
    pub fn total_s(&self) -> f64 {
        self.compute_s + self.exposed_communication_s + self.overhead_s
    }

    pub fn add(&mut self, o: &StageTime) {
        self.compute_s += o.compute_s;
        self.communication_s += o.communication_s;
        self.exposed_communication_s += o.exposed_communication_s;
        self.overhead_s += o.overhead_s;
        self.flops += o.flops;
        self.bytes += o.bytes;
    }

    pub fn scaled(&self, f: f64) -> StageTime {
        StageTime {
            compute_s: self.compute_s * f,
            communication_s: self.communication_s * f,
            exposed_communication_s: self.exposed_communication_s * f,
            overhead_s: self.overhead_s * f,
            flops: self.flops * f,
            bytes: self.bytes * f,
        }
    }

    /// Communication that nothing hides: in flight and exposed alike.
    pub fn communication(seconds: f64) -> StageTime {
        StageTime {
            communication_s: seconds,
            exposed_communication_s: seconds,
            ..StageTime::default()
        }
    }
}

/// One node: its group, how it computes, and what wiring costs it.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub group: usize,
    pub exec: Executor<'a>,
    pub wiring: Wiring,
}

impl Node<'_> {
    /// Runs `ops` on this node: device time, its wiring cost, and the work done.
    pub fn run(&self, ops: &[super::ops::Op]) -> StageTime {
        let (time, flops, bytes, weight_bytes) = super::tensor::time_ops(&self.exec, ops);
        StageTime {
            compute_s: time,
            overhead_s: self.wiring.overhead_s(weight_bytes),
            flops,
            bytes,
            ..StageTime::default()
        }
    }
}

/// How a group of nodes runs latent attention over a prompt: its first node's
/// runtime's way (the nodes of one group run one stack).
pub fn group_mla_prefill(nodes: &[&Node]) -> MlaPrefill {
    nodes[0].exec.runtime.mla_prefill
}

/// Work done by several nodes at once: the slowest node's device time and wiring
/// (the stage waits for it), the work summed over nodes.
pub fn slowest_node(runs: impl IntoIterator<Item = StageTime>) -> StageTime {
    let mut out = StageTime::default();
    let mut slowest = f64::NEG_INFINITY;
    for run in runs {
        if run.compute_s + run.overhead_s > slowest {
            slowest = run.compute_s + run.overhead_s;
            out.compute_s = run.compute_s;
            out.overhead_s = run.overhead_s;
        }
        out.flops += run.flops;
        out.bytes += run.bytes;
    }
    out
}

/// How the nodes of a stage share its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// Weights split `n` ways (1: a single node).
    Tensor(usize),
    /// Experts spread over `n` nodes.
    Expert(usize),
}

impl StageKind {
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Tensor(1) => "single",
            StageKind::Tensor(_) => "tensor",
            StageKind::Expert(_) => "expert",
        }
    }
}

/// A pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Global node indices, in order.
    pub nodes: Vec<usize>,
    pub layers: Range<u32>,
    /// Holds the embedding table (first stage).
    pub embedding: bool,
    /// Holds and runs the LM head (last stage); the embedding gather is timed here too.
    pub lm_head: bool,
    pub kind: StageKind,
}

/// Memory of one node, in GB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeMemory {
    pub weights_gb: f64,
    pub kv_cache_gb: f64,
    pub activations_gb: f64,
    pub reserve_gb: f64,
}

impl NodeMemory {
    pub fn used_gb(&self) -> f64 {
        self.weights_gb + self.kv_cache_gb + self.activations_gb + self.reserve_gb
    }
}

/// What a node of `stage` holds, for `sequences` sequences of up to `context`
/// tokens, prefilled in chunks of `chunk` tokens.
pub struct MemoryInputs<'a> {
    pub model: &'a Model,
    pub weight_bytes: f64,
    pub kv_bytes: f64,
    pub sequences: f64,
    pub context: f64,
    pub chunk: f64,
    pub attention: AttentionLayout,
}

/// Parameters node `position` of `stage` holds; `experts_held` is its expert count
/// when the stage is expert-parallel.
pub fn node_params(model: &Model, stage: &Stage, experts_held: u32) -> f64 {
    let d = model.hidden_size as f64;
    let mut params = 0.0;
    let split = match stage.kind {
        StageKind::Tensor(t) => t as f64,
        StageKind::Expert(_) => 1.0,
    };
    for layer in stage.layers.clone() {
        let attention = model.attention_params_per_layer() as f64;
        let ffn = if model.is_moe_layer(layer) {
            let experts = match (stage.kind, model.moe) {
                (StageKind::Expert(_), _) => f64::from(experts_held),
                (_, Some(moe)) => f64::from(moe.experts),
                _ => 0.0,
            };
            params += model.router_params() as f64;
            experts * model.expert_params() as f64 / split
                + model.shared_expert_params() as f64 / split
        } else {
            model.dense_ffn_params() as f64 / split
        };
        params += attention / split + ffn + 2.0 * d;
    }
    if stage.embedding {
        params += model.embedding_params() as f64 / split;
    }
    if stage.lm_head {
        params += model.lm_head_params() as f64 / split + d;
    }
    params
}

/// KV heads each node of a tensor-parallel stage keeps a share of: the cache is
/// split `min(t, kv_heads)` ways (beyond that, heads are replicated); MLA's latent
/// is not split by heads.
pub fn kv_split(model: &Model, kind: StageKind) -> f64 {
    match kind {
        StageKind::Tensor(t) if model.mla.is_none() => (t as u64).min(model.kv_heads) as f64,
        _ => 1.0,
    }
}

/// KV-cache bytes a node of `stage` keeps for one sequence of `context` tokens: the
/// stage's layers (sliding-window layers up to their window), split
/// [`kv_split`] ways; `kv_bytes` per element.
pub fn node_kv_bytes(model: &Model, stage: &Stage, kv_bytes: f64, context: f64) -> f64 {
    memory::kv_elements_per_sequence(model, stage.layers.clone(), context) * kv_bytes
        / kv_split(model, stage.kind)
}

/// Memory of a node of `stage` holding `experts_held` experts (expert stages), with
/// `reserve_gb` kept from the model (device and runtime together).
pub fn node_memory(
    inputs: &MemoryInputs,
    stage: &Stage,
    reserve_gb: f64,
    experts_held: u32,
) -> NodeMemory {
    let model = inputs.model;
    let sequences = match (stage.kind, inputs.attention) {
        (StageKind::Expert(n), AttentionLayout::Split) => (inputs.sequences / n as f64).ceil(),
        _ => inputs.sequences,
    };
    let weights_gb = node_params(model, stage, experts_held) * inputs.weight_bytes / 1e9;
    let kv_cache_gb =
        sequences * node_kv_bytes(model, stage, inputs.kv_bytes, inputs.context) / 1e9;
    let activations_gb = memory::activation_bytes(model, inputs.chunk * sequences, sequences) / 1e9;
    NodeMemory {
        weights_gb,
        kv_cache_gb,
        activations_gb,
        reserve_gb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up() {
        // 3 + 1 exposed (of 2 in flight) + 0.5 = 4.5 s.
        let t = StageTime {
            compute_s: 3.0,
            communication_s: 2.0,
            exposed_communication_s: 1.0,
            overhead_s: 0.5,
            ..StageTime::default()
        };
        assert_eq!(t.total_s(), 4.5);
        assert_eq!(t.scaled(2.0).total_s(), 9.0);
        assert_eq!(StageTime::communication(1.0).total_s(), 1.0);
    }
}

#[cfg(test)]
mod whole_model_tests {
    use super::*;
    use crate::analytical::test_support::catalog;

    #[test]
    fn one_stage_holds_every_parameter() {
        let catalog = catalog();
        for id in ["dbrx", "deepseek-v3", "qwen3-235b-a22b", "gemma-3-4b"] {
            let model = &catalog.models[id];
            let stage = Stage {
                nodes: vec![0],
                layers: 0..model.layers,
                embedding: true,
                lm_head: true,
                kind: StageKind::Tensor(1),
            };
            assert_eq!(
                node_params(model, &stage, 0),
                model.total_params() as f64,
                "{id}"
            );
        }
    }
}

impl super::pass::StepTime for StageTime {
    fn add_step(&mut self, other: &Self) {
        self.add(other);
    }
    fn scaled_by(&self, factor: f64) -> Self {
        self.scaled(factor)
    }
}
