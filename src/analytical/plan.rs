//! Laying a scenario out over its nodes: which node runs which stage and which
//! experts, and what each node holds in memory.
//!
//! Nodes are numbered in the order of `[[cluster.groups]]` and their counts. One
//! replica of the model takes `pipeline x tensor x expert` nodes; pipeline stage `s`
//! is the `s`-th run of `tensor x expert` consecutive nodes. A single group with more
//! nodes than that holds several identical replicas, which split the batch.

use super::executor;
use super::pipeline::split_layers;
use super::routing::Placement;
use super::stage::{node_kv_bytes, node_memory, MemoryInputs, Node, NodeMemory, Stage, StageKind};
use super::wiring::Wiring;
use super::RunError;
use crate::network::LinkModel;
use crate::report::GroupMemory;
use crate::scenario::{PipelineSplit, Scenario};

/// The layout of one replica, and the memory of each of its nodes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub replicas: usize,
    pub total_nodes: usize,
    /// Group index of each node of replica 0.
    pub group_of: Vec<usize>,
    pub stages: Vec<Stage>,
    pub placement: Option<Placement>,
    /// Sequences per replica.
    pub sequences: f64,
    /// Prompt tokens to compute (not cached) per sequence.
    pub uncached: f64,
    /// Tokens per sequence in one prefill pass.
    pub chunk: f64,
    pub node_memory: Vec<NodeMemory>,
    pub link: Option<LinkModel>,
}

impl Plan {
    pub fn new(scenario: &Scenario) -> Result<Plan, RunError> {
        let par = scenario.parallelism;
        let (t, p, e) = (
            par.tensor as usize,
            par.pipeline as usize,
            par.expert as usize,
        );
        let group_of: Vec<usize> = scenario
            .groups
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| std::iter::repeat_n(gi, g.count as usize))
            .take(t * e * p)
            .collect();
        Plan::on_nodes(scenario, group_of)
    }

    /// The layout of one replica on nodes of the groups `group_of` names, one entry per
    /// node in order (`tensor x expert x pipeline` of them; fewer when the scenario has
    /// fewer nodes).
    pub fn on_nodes(scenario: &Scenario, group_of: Vec<usize>) -> Result<Plan, RunError> {
        let model = &scenario.model;
        let w = &scenario.workload;
        let layout = &scenario.layout;
        let par = scenario.parallelism;
        let (t, p, e) = (
            par.tensor as usize,
            par.pipeline as usize,
            par.expert as usize,
        );
        if t > 1 && e > 1 {
            return Err(RunError::Unsupported(
                "tensor and expert parallelism within one pipeline stage is not modelled; use one of them per stage"
                    .to_string(),
            ));
        }
        let width = t * e;
        let per_replica = width * p;
        let total_nodes = scenario.total_nodes() as usize;
        let replicas = (total_nodes / per_replica).max(1);
        let link = scenario.network.as_ref().map(LinkModel::from_network);
        if per_replica > 1 && link.is_none() {
            return Err(RunError::Unsupported(
                "a model spread over several nodes needs a [cluster.network] link".to_string(),
            ));
        }

        let stage_weight = |s: usize| -> f64 {
            match layout.pipeline_split {
                PipelineSplit::Even => 1.0,
                PipelineSplit::Memory => (s * width..(s + 1) * width)
                    .map(|n| scenario.groups[group_of[n]].memory_gb)
                    .sum(),
            }
        };
        let ranges = split_layers(model.layers, &(0..p).map(stage_weight).collect::<Vec<_>>());
        let kind = if e > 1 {
            StageKind::Expert(e)
        } else {
            StageKind::Tensor(t)
        };
        let stages: Vec<Stage> = ranges
            .into_iter()
            .enumerate()
            .map(|(s, layers)| Stage {
                nodes: (s * width..(s + 1) * width).collect(),
                layers,
                embedding: s == 0,
                lm_head: s + 1 == p,
                kind,
            })
            .collect();
        let placement = model
            .moe
            .filter(|_| e > 1)
            .map(|moe| Placement::new(&layout.expert_placement, moe.experts, e));

        let sequences = (w.batch as f64 / replicas as f64).ceil();
        let uncached = (w.prompt_tokens - w.cached_prompt_tokens) as f64;
        let chunk = super::pass::chunk_per_sequence(
            scenario.groups[0].runtime.prefill_chunk_tokens,
            sequences,
            uncached,
        );
        let inputs = MemoryInputs {
            model,
            weight_bytes: scenario.weights.bytes_per_weight(),
            kv_bytes: scenario.kv_cache.bytes_per_weight(),
            sequences,
            context: (w.prompt_tokens + w.output_tokens) as f64,
            chunk,
            attention: layout.attention,
        };
        let mut plan = Plan {
            replicas,
            total_nodes,
            group_of,
            stages,
            placement,
            sequences,
            uncached,
            chunk,
            node_memory: Vec::new(),
            link,
        };
        plan.node_memory = plan.memory_with(scenario, &inputs);
        Ok(plan)
    }

    /// What each node of the replica holds for `inputs` (see [`node_memory`]).
    pub fn memory_with(&self, scenario: &Scenario, inputs: &MemoryInputs) -> Vec<NodeMemory> {
        let mut memory = vec![NodeMemory::default(); self.group_of.len()];
        for stage in &self.stages {
            for (pos, &n) in stage.nodes.iter().enumerate() {
                let group = &scenario.groups[self.group_of[n]];
                let held = self
                    .placement
                    .as_ref()
                    .map_or(0, |pl| pl.node_experts[pos].len() as u32);
                let reserve = executor(scenario, group)
                    .runtime
                    .reserve_gb_on(group.device.reserved_gb, group.memory_gb);
                memory[n] = node_memory(inputs, stage, reserve, held);
            }
        }
        memory
    }

    /// KV-cache bytes one token of a sequence takes on each node of the replica: its
    /// stage's layers, split as the stage splits the cache (see [`node_kv_bytes`]).
    pub fn kv_bytes_per_token(&self, scenario: &Scenario) -> Vec<f64> {
        let mut bytes = vec![0.0; self.group_of.len()];
        for stage in &self.stages {
            for &n in &stage.nodes {
                bytes[n] = node_kv_bytes(
                    &scenario.model,
                    stage,
                    scenario.kv_cache.bytes_per_weight(),
                    1.0,
                );
            }
        }
        bytes
    }

    /// The nodes of replica 0, with their executors and wiring costs.
    pub fn nodes<'a>(&self, scenario: &'a Scenario) -> Vec<Node<'a>> {
        let layout = &scenario.layout;
        self.group_of
            .iter()
            .enumerate()
            .map(|(n, &gi)| {
                let group = &scenario.groups[gi];
                Node {
                    group: gi,
                    exec: executor(scenario, group),
                    wiring: Wiring::new(
                        &group.device,
                        group.memory_gb,
                        self.node_memory[n].weights_gb,
                        layout.wired_memory,
                        layout.wired_limit_gb,
                    ),
                }
            })
            .collect()
    }

    /// Memory per group: its fullest node.
    pub fn group_memory(&self, scenario: &Scenario) -> Vec<GroupMemory> {
        scenario
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let worst = self
                    .group_of
                    .iter()
                    .enumerate()
                    .filter(|(_, &of)| of == gi)
                    .map(|(n, _)| self.node_memory[n])
                    .max_by(|a, b| a.used_gb().total_cmp(&b.used_gb()))
                    .unwrap_or_default();
                GroupMemory {
                    name: g.name.clone(),
                    device: g.device.id.clone(),
                    nodes: g.count,
                    used_gb: worst.used_gb(),
                    capacity_gb: g.memory_gb,
                    weights_gb: worst.weights_gb,
                    kv_cache_gb: worst.kv_cache_gb,
                    activations_gb: worst.activations_gb,
                    reserve_gb: worst.reserve_gb,
                }
            })
            .collect()
    }
}
