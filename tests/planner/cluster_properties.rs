//! Invariants of the cluster model, checked on random inputs (proptest): a faster
//! network is never slower, and adding a node never turns a fit into a miss.

use planner::analytical::simulate;
use planner::Scenario;
use proptest::prelude::*;

use crate::common::catalog;

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml("prop.toml", text, &catalog()).unwrap()
}

/// DBRX expert-parallel over 10 GbE, Qwen3 tensor-parallel over RDMA, or Qwen3
/// pipelined over TCP, on `nodes` nodes.
fn cluster(kind: u8, nodes: u32, topology: &str) -> Scenario {
    let (model, weights, device, memory, link, degree) = match kind {
        0 => (
            "dbrx",
            "bf16",
            "m2-ultra-76c",
            192,
            "ethernet-10g",
            "expert",
        ),
        1 => (
            "qwen3-235b-a22b",
            "mlx-8bit",
            "m3-ultra-80c",
            512,
            "thunderbolt-5-rdma",
            "tensor",
        ),
        _ => (
            "qwen3-235b-a22b",
            "mlx-8bit",
            "m3-ultra-80c",
            512,
            "thunderbolt-5",
            "pipeline",
        ),
    };
    scenario(&format!(
        r#"
[model]
preset = "{model}"
weights = "{weights}"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "{device}"
memory_gb = {memory}
count = {nodes}
[cluster.network]
link = "{link}"
topology = "{topology}"
[parallelism]
{degree} = {nodes}
[workload]
prompt_tokens = 96
output_tokens = 3
batch = 2
"#
    ))
}

fn times(s: &Scenario) -> (f64, f64) {
    let r = simulate(s).unwrap();
    (r.ttft_s.unwrap(), r.tpot_s.unwrap())
}

fn not_slower(faster: (f64, f64), base: (f64, f64)) -> bool {
    faster.0 <= base.0 * (1.0 + 1e-12) && faster.1 <= base.1 * (1.0 + 1e-12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn lower_latency_is_never_slower(
        kind in 0u8..3,
        nodes in prop::sample::select(vec![2u32, 4]),
        topology in prop::sample::select(vec!["switch", "direct", "ring"]),
        latency_us in 0.0f64..2000.0,
        factor in 0.0f64..1.0,
    ) {
        let mut base = cluster(kind, nodes, topology);
        base.network.as_mut().unwrap().latency_us = latency_us;
        let mut faster = base.clone();
        faster.network.as_mut().unwrap().latency_us = latency_us * factor;
        prop_assert!(not_slower(times(&faster), times(&base)));
    }

    #[test]
    fn higher_bandwidth_is_never_slower(
        kind in 0u8..3,
        nodes in prop::sample::select(vec![2u32, 4]),
        topology in prop::sample::select(vec!["switch", "direct", "ring"]),
        bandwidth in 0.01f64..100.0,
        factor in 1.0f64..10.0,
    ) {
        let mut base = cluster(kind, nodes, topology);
        base.network.as_mut().unwrap().bandwidth_gb_s = bandwidth;
        let mut faster = base.clone();
        faster.network.as_mut().unwrap().bandwidth_gb_s = bandwidth * factor;
        prop_assert!(not_slower(times(&faster), times(&base)));
    }

    #[test]
    fn adding_a_node_never_stops_a_fit(
        model in prop::sample::select(vec![
            ("dbrx", "bf16"), ("qwen3-235b-a22b", "mlx-8bit"), ("mixtral-8x7b", "f16"),
            ("llama-3.1-70b", "f16"), ("deepseek-v3", "mlx-4bit"),
        ]),
        memory in prop::sample::select(vec![64u32, 128, 192]),
        degree in prop::sample::select(vec!["pipeline", "expert"]),
        nodes in 1u32..6,
        prompt in 16u64..4096,
        batch in 1u64..8,
        placement in prop::sample::select(vec!["even", "replicated"]),
    ) {
        let (model, weights) = model;
        let moe = model != "llama-3.1-70b";
        let degree = if moe { degree } else { "pipeline" };
        let text = |n: u32| {
            let placement = if degree == "expert" && n >= 2 {
                format!("expert_placement = \"{placement}\"")
            } else {
                String::new()
            };
            format!(
                r#"
[model]
preset = "{model}"
weights = "{weights}"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "m2-ultra-76c"
memory_gb = {memory}
count = {n}
[cluster.network]
link = "ethernet-10g"
[parallelism]
{degree} = {n}
{placement}
[workload]
prompt_tokens = {prompt}
output_tokens = 2
batch = {batch}
"#
            )
        };
        let fits = |n: u32| {
            let r = simulate(&scenario(&text(n))).unwrap();
            r.memory.fits
        };
        if fits(nodes) {
            prop_assert!(fits(nodes + 1), "{model} {degree} {nodes} -> {}", nodes + 1);
        }
    }
}
