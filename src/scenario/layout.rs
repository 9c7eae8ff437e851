//! The keys that lay a model out over a cluster, beyond the parallel degrees:
//! `[parallelism] expert_placement`, `attention` and `pipeline_split`,
//! `[cluster.network] topology`, and `[runtime] wired_memory` and `wired_limit_gb`.

use toml::Spanned;

use super::{Ctx, Parallelism, ScenarioFile};
use crate::error::InputError;
use crate::model::Model;
use crate::network::Topology;

/// Which experts each expert-parallel node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpertPlacement {
    /// Contiguous blocks of (nearly) equal size, one per node.
    Even,
    /// The experts in two halves, each half on a group of nodes that share its picks
    /// (the study's 3- and 4-node layouts).
    Replicated,
    /// Expert ids per node, as written in the scenario.
    Explicit(Vec<Vec<u32>>),
}

/// Where attention and routing run in expert parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionLayout {
    /// Every node runs attention and routing for every token; expert outputs are sent
    /// to every node (the study's send-to-all).
    Replicated,
    /// Each node runs attention for its share of the sequences; tokens go to the nodes
    /// of their experts and back (all-to-all dispatch and combine).
    Split,
}

/// How pipeline stages share the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineSplit {
    Even,
    /// In proportion to each stage's memory, as exo partitions its ring.
    Memory,
}

/// Apple Silicon memory management (see `analytical::wiring`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WiredMemory {
    /// Metal's default: weights are not kept wired; the driver wires the buffers each
    /// command buffer touches ("driver processing").
    Driver,
    /// The runtime keeps the weights wired (a residency set under a raised wired
    /// limit): the study's optimisation, and what mlx-lm does today.
    Resident,
}

/// How a multi-node scenario lays the model out, beyond the parallel degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLayout {
    pub expert_placement: ExpertPlacement,
    pub attention: AttentionLayout,
    pub pipeline_split: PipelineSplit,
    pub topology: Topology,
    pub wired_memory: WiredMemory,
    pub wired_limit_gb: Option<f64>,
}

impl Default for ClusterLayout {
    fn default() -> Self {
        ClusterLayout {
            expert_placement: ExpertPlacement::Even,
            attention: AttentionLayout::Replicated,
            pipeline_split: PipelineSplit::Even,
            topology: Topology::Switch,
            wired_memory: WiredMemory::Resident,
            wired_limit_gb: None,
        }
    }
}

/// Reads a string key that must be one of `choices`.
fn choice<T: Copy>(
    ctx: &Ctx,
    key: &str,
    value: &Option<Spanned<String>>,
    choices: &[(&str, T)],
    default: T,
) -> Result<T, InputError> {
    let Some(v) = value else {
        return Ok(default);
    };
    choices
        .iter()
        .find(|(name, _)| name == v.get_ref())
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("\"{n}\"")).collect();
            ctx.invalid(key, v, format!("expected one of {}", names.join(", ")))
        })
}

pub(super) fn validate_layout(
    ctx: &Ctx,
    raw: &ScenarioFile,
    model: &Model,
    parallelism: Parallelism,
) -> Result<ClusterLayout, InputError> {
    let p = raw.parallelism.as_ref();
    let attention = choice(
        ctx,
        "parallelism.attention",
        &p.and_then(|p| p.attention.clone()),
        &[
            ("replicated", AttentionLayout::Replicated),
            ("split", AttentionLayout::Split),
        ],
        AttentionLayout::Replicated,
    )?;
    let pipeline_split = choice(
        ctx,
        "parallelism.pipeline_split",
        &p.and_then(|p| p.pipeline_split.clone()),
        &[
            ("even", PipelineSplit::Even),
            ("memory", PipelineSplit::Memory),
        ],
        PipelineSplit::Even,
    )?;
    let topology = choice(
        ctx,
        "cluster.network.topology",
        &raw.cluster
            .network
            .as_ref()
            .and_then(|n| n.topology.clone()),
        &[
            ("switch", Topology::Switch),
            ("direct", Topology::Direct),
            ("ring", Topology::Ring),
        ],
        Topology::Switch,
    )?;
    let runtime = raw.runtime.as_ref();
    let wired_memory = choice(
        ctx,
        "runtime.wired_memory",
        &runtime.and_then(|r| r.wired_memory.clone()),
        &[
            ("driver", WiredMemory::Driver),
            ("resident", WiredMemory::Resident),
        ],
        WiredMemory::Resident,
    )?;
    let wired_limit_gb = match runtime.and_then(|r| r.wired_limit_gb.as_ref()) {
        Some(v) => Some(ctx.positive_f64("runtime.wired_limit_gb", v)?),
        None => None,
    };
    let expert_placement = match p.and_then(|p| p.expert_placement.as_ref()) {
        None => ExpertPlacement::Even,
        Some(v) => placement(ctx, v, model, parallelism.expert)?,
    };
    Ok(ClusterLayout {
        expert_placement,
        attention,
        pipeline_split,
        topology,
        wired_memory,
        wired_limit_gb,
    })
}

fn placement(
    ctx: &Ctx,
    v: &Spanned<toml::Value>,
    model: &Model,
    degree: u32,
) -> Result<ExpertPlacement, InputError> {
    const KEY: &str = "parallelism.expert_placement";
    let experts = model.moe.map_or(0, |m| m.experts);
    match v.get_ref() {
        toml::Value::String(s) if s == "even" => Ok(ExpertPlacement::Even),
        toml::Value::String(s) if s == "replicated" => {
            if degree < 2 || experts < 2 || !experts.is_multiple_of(2) {
                return Err(ctx.invalid(
                    KEY,
                    v,
                    format!(
                        "\"replicated\" puts each half of the experts on a group of nodes: it needs \
                         `expert` >= 2 and an even number of experts (`{}` has {experts}, expert = {degree})",
                        model.id
                    ),
                ));
            }
            Ok(ExpertPlacement::Replicated)
        }
        toml::Value::Array(nodes) => {
            let bad = |why: String| ctx.invalid(KEY, v, why);
            if nodes.len() != degree as usize {
                return Err(bad(format!(
                    "expected one list of expert ids per expert-parallel node ({degree}), got {}",
                    nodes.len()
                )));
            }
            let mut lists = Vec::with_capacity(nodes.len());
            let mut covered = vec![false; experts as usize];
            for (i, node) in nodes.iter().enumerate() {
                let ids = node.as_array().ok_or_else(|| {
                    bad(format!(
                        "expected node {i}'s entry to be a list of expert ids"
                    ))
                })?;
                if ids.is_empty() {
                    return Err(bad(format!("node {i} holds no expert")));
                }
                let mut list = Vec::with_capacity(ids.len());
                for id in ids {
                    let e = id
                        .as_integer()
                        .filter(|e| (0..i64::from(experts)).contains(e))
                        .ok_or_else(|| {
                            bad(format!(
                                "expected expert ids from 0 to {} on node {i}, got {id}",
                                experts.saturating_sub(1)
                            ))
                        })? as u32;
                    if list.contains(&e) {
                        return Err(bad(format!("node {i} lists expert {e} twice")));
                    }
                    covered[e as usize] = true;
                    list.push(e);
                }
                lists.push(list);
            }
            if let Some(missing) = covered.iter().position(|c| !c) {
                return Err(bad(format!("expert {missing} is on no node")));
            }
            Ok(ExpertPlacement::Explicit(lists))
        }
        _ => Err(ctx.invalid(
            KEY,
            v,
            "expected \"even\", \"replicated\" or a list of expert-id lists, one per node",
        )),
    }
}
