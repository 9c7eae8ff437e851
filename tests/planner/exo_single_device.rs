//! EXO Labs' single-device figures (DGX Spark + Mac Studio blog, Oct 2025), predicted
//! from specifications and efficiencies that were not fitted to them.

use planner::analytical::simulate;
use planner::Scenario;

use crate::common::{catalog, repo};

fn run(file: &str) -> planner::Report {
    let catalog = catalog();
    let path = repo().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let scenario = Scenario::from_toml(file, &text, &catalog).unwrap();
    simulate(&scenario).unwrap()
}

fn within(predicted: f64, published: f64, tolerance: f64) -> bool {
    ((predicted - published) / published).abs() <= tolerance
}

/// Generation time = the 32 decode steps after the prefill.
fn generation_s(r: &planner::Report) -> f64 {
    r.e2e_s.unwrap() - r.ttft_s.unwrap()
}

#[test]
fn spark_alone_prefill_within_15_percent_of_1_47_s() {
    let r = run("scenarios/exo-spark-alone.toml");
    let ttft = r.ttft_s.unwrap();
    assert!(within(ttft, 1.47, 0.15), "predicted {ttft:.3} s");
}

#[test]
fn spark_alone_generation_within_25_percent_of_2_87_s() {
    let r = run("scenarios/exo-spark-alone.toml");
    let g = generation_s(&r);
    assert!(within(g, 2.87, 0.25), "predicted {g:.3} s");
}

#[test]
fn m3_ultra_alone_prefill_within_15_percent_of_5_57_s() {
    let r = run("scenarios/exo-m3-ultra-alone.toml");
    let ttft = r.ttft_s.unwrap();
    assert!(within(ttft, 5.57, 0.15), "predicted {ttft:.3} s");
}

#[test]
fn m3_ultra_alone_generation_within_15_percent_of_0_85_s() {
    let r = run("scenarios/exo-m3-ultra-alone.toml");
    let g = generation_s(&r);
    assert!(within(g, 0.85, 0.15), "predicted {g:.3} s");
}

#[test]
fn decode_is_memory_bound_and_prefill_compute_bound() {
    // The premise of the disaggregation: on the Spark, prefill is limited by compute
    // and decode by memory bandwidth.
    let r = run("scenarios/exo-spark-alone.toml");
    let layers = r.layers.unwrap();
    let ffn_prefill = layers
        .prefill
        .iter()
        .find(|o| o.kind.name() == "ffn")
        .unwrap();
    let ffn_decode = layers
        .decode
        .iter()
        .find(|o| o.kind.name() == "ffn")
        .unwrap();
    assert!(!ffn_prefill.memory_bound());
    assert!(ffn_decode.memory_bound());
}

#[test]
fn the_readme_layer_excerpt_is_the_commands_output() {
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).unwrap();
    let head = "Layer 0 in decode (1 new token per sequence after 8208 in cache)\n";
    let start = readme.find(head).expect("README shows the M3 Ultra layer");
    let excerpt = &readme[start..start + readme[start..].find("```").unwrap()];
    let out = crate::common::planner(&["simulate", "scenarios/exo-m3-ultra-alone.toml"]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let text = crate::common::stdout(&out);
    assert!(
        text.contains(excerpt),
        "README excerpt:\n{excerpt}\noutput:\n{text}"
    );
}
