//! One replica of the model laid out over its nodes: the stages of a [`Plan`], each
//! run by a tensor-parallel group ([`TensorGroup`], one node being the single-node
//! case) or an expert-parallel group ([`ExpertGroup`]), composed as a pipeline.
//!
//! Both engines time passes through it with the same stage functions:
//!
//! - the analytical cluster model ([`super::cluster`]) runs whole passes, all the
//!   sequences of the workload in the same state ([`Replica::stage_pass`]);
//! - the request-level engine ([`crate::serving`]) runs one instance of the model per
//!   replica, and times each of its iterations, a batch of decoding sequences and
//!   prefill chunks in different states ([`Replica::iteration_time`]). Layers of
//!   identical cost are timed once per class, as [`super::pass::batch_pass_time`]
//!   does on one node; with one node the two are the same pass.
//!
//! **Pipeline iterations.** An iteration cut into `m = min(sequences, P)`
//! micro-batches runs as a decode round of [`super::pipeline::decode_round`]:
//! `max(m x slowest stage, one micro-batch's loop)`, each micro-batch carrying `1/m`
//! of every part of the batch (the mean micro-batch). The loop has `P - 1` activation
//! hops, and one hop back to the first stage with the sampled tokens when the
//! iteration decodes (the analytical model charges it to every decode step, not to
//! the prefill). Iterations do not overlap one another: the next one starts when
//! this one has left the last stage, and a prompt longer than the iteration's token
//! budget runs its chunks in successive iterations (the analytical model lets one
//! prompt's chunks follow each other through the stages).

use super::expert::ExpertGroup;
use super::ops::{Pass, ACTIVATION_BYTES};
use super::pass::{layer_groups, merged_pass};
use super::pipeline::decode_round;
use super::plan::Plan;
use super::stage::{kv_split, Node, Stage, StageKind, StageTime};
use super::tensor::TensorGroup;
use crate::model::Model;
use crate::network::LinkModel;
use crate::scenario::{AttentionLayout, Scenario};

/// How one stage runs its layers.
pub enum StageModel<'a, 'b> {
    Tensor(TensorGroup<'a, 'b>),
    Expert(ExpertGroup<'a, 'b>),
}

impl StageModel<'_, '_> {
    pub fn layer_time(&self, layer: u32, pass: &Pass) -> StageTime {
        match self {
            StageModel::Tensor(g) => g.layer_time(layer, pass),
            StageModel::Expert(g) => g.layer_time(layer, pass),
        }
    }

    /// One layer for an iteration made of `parts`.
    pub fn batch_layer_time(&self, layer: u32, parts: &[Pass]) -> StageTime {
        match self {
            StageModel::Tensor(g) => g.batch_layer_time(layer, parts),
            StageModel::Expert(g) => g.batch_layer_time(layer, parts),
        }
    }

    pub fn head_time(&self, pass: &Pass, logits_rows: f64) -> StageTime {
        match self {
            StageModel::Tensor(g) => g.head_time(pass, logits_rows),
            StageModel::Expert(g) => g.head_time(pass, logits_rows),
        }
    }

    pub fn step_overhead(&self) -> StageTime {
        match self {
            StageModel::Tensor(g) => g.step_overhead(),
            StageModel::Expert(g) => g.step_overhead(),
        }
    }
}

/// One replica: its stages and how each runs.
pub struct Replica<'a, 'b> {
    pub model: &'a Model,
    pub stages: Vec<Stage>,
    pub models: Vec<StageModel<'a, 'b>>,
    pub link: Option<LinkModel>,
}

impl<'a, 'b> Replica<'a, 'b> {
    /// The replica of `plan` on `nodes` (from [`Plan::nodes`]).
    pub fn new(scenario: &'a Scenario, plan: &Plan, nodes: &'b [Node<'a>]) -> Replica<'a, 'b> {
        let model = &scenario.model;
        let layout = &scenario.layout;
        let models = plan
            .stages
            .iter()
            .map(|stage| {
                let members: Vec<&'b Node<'a>> = stage.nodes.iter().map(|&n| &nodes[n]).collect();
                match (stage.kind, &plan.placement) {
                    (StageKind::Expert(_), Some(pl)) => StageModel::Expert(ExpertGroup::new(
                        model,
                        members,
                        pl.clone(),
                        layout.attention,
                        plan.link,
                        layout.topology,
                        scenario.workload.seed,
                    )),
                    _ => StageModel::Tensor(TensorGroup {
                        model,
                        nodes: members,
                        link: plan.link,
                        topology: layout.topology,
                        kv_split: kv_split(model, stage.kind),
                    }),
                }
            })
            .collect();
        Replica {
            model,
            stages: plan.stages.clone(),
            models,
            link: plan.link,
        }
    }

    /// Why the request-level engine cannot time iterations on this replica, if it
    /// cannot: expert parallelism with split attention assigns whole sequences to
    /// nodes, which a batch of parts in different states does not say how to do.
    pub fn unbatchable(&self) -> Option<String> {
        self.models.iter().find_map(|m| match m {
            StageModel::Expert(g) if g.attention == AttentionLayout::Split => Some(
                "expert parallelism with `attention = \"split\"` (data-parallel attention) is not \
                 modelled by the request-level engine; use `attention = \"replicated\"`"
                    .to_string(),
            ),
            _ => None,
        })
    }

    /// One pass through stage `s`: its layers, the LM head on the last stage, and the
    /// host overhead of a step.
    pub fn stage_pass(&self, s: usize, pass: &Pass, logits_rows: f64) -> StageTime {
        let sm = &self.models[s];
        let mut out = StageTime::default();
        for (layer, count) in layer_groups(self.model, self.stages[s].layers.clone()) {
            out.add(&sm.layer_time(layer, pass).scaled(count));
        }
        if self.stages[s].lm_head {
            out.add(&sm.head_time(pass, logits_rows));
        }
        out.add(&sm.step_overhead());
        out
    }

    /// One iteration made of `parts` through stage `s`, `logits_rows` sequences
    /// emitting a token. With one part this is [`Replica::stage_pass`].
    pub fn stage_batch(&self, s: usize, parts: &[Pass], logits_rows: f64) -> StageTime {
        let sm = &self.models[s];
        let mut out = StageTime::default();
        for (layer, count) in layer_groups(self.model, self.stages[s].layers.clone()) {
            out.add(&sm.batch_layer_time(layer, parts).scaled(count));
        }
        if self.stages[s].lm_head {
            out.add(&sm.head_time(&merged_pass(parts), logits_rows));
        }
        out.add(&sm.step_overhead());
        out
    }

    /// One message of `bytes` between stages.
    fn hop(&self, bytes: f64) -> f64 {
        self.link.map_or(0.0, |l| l.message_time(bytes))
    }

    /// One iteration of the request-level engine: `parts` (decoding sequences and
    /// prefill chunks) through every stage, `logits_rows` sequences emitting a token,
    /// `decoding` of them decoding (their last token comes back to the first stage).
    /// One stage: [`Replica::stage_batch`]. Several: a pipeline round (module docs).
    pub fn iteration_time(&self, parts: &[Pass], logits_rows: f64, decoding: f64) -> StageTime {
        let p = self.stages.len();
        if p == 1 {
            return self.stage_batch(0, parts, logits_rows);
        }
        let sequences: f64 = parts.iter().map(|x| x.sequences).sum();
        let m = (sequences.round() as usize).clamp(1, p);
        let share = 1.0 / m as f64;
        let micro: Vec<Pass> = parts
            .iter()
            .map(|x| Pass {
                sequences: x.sequences * share,
                ..*x
            })
            .collect();
        let times: Vec<StageTime> = (0..p)
            .map(|s| self.stage_batch(s, &micro, logits_rows * share))
            .collect();
        let d = self.model.hidden_size as f64;
        let tokens: f64 = micro.iter().map(Pass::tokens).sum();
        let back = if decoding > 0.0 {
            self.hop(decoding * share * 4.0)
        } else {
            0.0
        };
        decode_round(&times, m, self.hop(tokens * d * ACTIVATION_BYTES), back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytical::test_support::scenario;

    fn pipeline_scenario() -> Scenario {
        scenario(
            r#"
[model]
preset = "llama-3.1-8b"
weights = "f16"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "m3-ultra-80c"
memory_gb = 256
count = 2
[cluster.network]
link = "ethernet-10g"
[parallelism]
pipeline = 2
[workload]
prompt_tokens = 512
output_tokens = 8
"#,
        )
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    #[test]
    fn one_part_is_the_stage_pass() {
        let sc = pipeline_scenario();
        let plan = Plan::new(&sc).unwrap();
        let nodes = plan.nodes(&sc);
        let r = Replica::new(&sc, &plan, &nodes);
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 300.0,
            context_before: 100.0,
        };
        for s in 0..2 {
            let (a, b) = (r.stage_batch(s, &[pass], 1.0), r.stage_pass(s, &pass, 1.0));
            assert!(close(a.total_s(), b.total_s()), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn pipeline_iterations_hop_between_stages_and_back_when_decoding() {
        // Two stages of 16 layers over 10 GbE (250 us, 1.18 GB/s). One sequence: one
        // micro-batch, the stages in turn plus one hop of its hidden state (4096 x 2
        // = 8,192 bytes: 250 us + 6.94 us); decoding adds the token's way back
        // (4 bytes: 250 us + 3.4 ns).
        let sc = pipeline_scenario();
        let plan = Plan::new(&sc).unwrap();
        let nodes = plan.nodes(&sc);
        let r = Replica::new(&sc, &plan, &nodes);
        let one = [Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: 512.0,
        }];
        let stages = r.stage_batch(0, &one, 1.0).total_s() + r.stage_batch(1, &one, 1.0).total_s();
        let forward = 250e-6 + 8192.0 / 1.18e9;
        let back = 250e-6 + 4.0 / 1.18e9;
        let prefill_like = r.iteration_time(&one, 1.0, 0.0).total_s();
        let decode = r.iteration_time(&one, 1.0, 1.0).total_s();
        assert!(close(prefill_like, stages + forward), "{prefill_like}");
        assert!(close(decode, stages + forward + back), "{decode}");
        // Six decoding sequences: two micro-batches of three chase each other; the
        // round is the longer of twice the slowest stage and one micro-batch's loop
        // (stages + 250 us + 3 x 8,192 / 1.18e9 s forward + 250 us + 12 / 1.18e9 s
        // back).
        let six = [Pass {
            sequences: 6.0,
            ..one[0]
        }];
        let three = [Pass {
            sequences: 3.0,
            ..one[0]
        }];
        let (s0, s1) = (
            r.stage_batch(0, &three, 3.0).total_s(),
            r.stage_batch(1, &three, 3.0).total_s(),
        );
        let round = (2.0 * s0.max(s1))
            .max(s0 + s1 + 250e-6 + 3.0 * 8192.0 / 1.18e9 + 250e-6 + 12.0 / 1.18e9);
        assert!(close(r.iteration_time(&six, 6.0, 6.0).total_s(), round));
    }
}
