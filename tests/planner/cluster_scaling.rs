//! A large MoE on 1, 2 and 4 M3 Ultras: pipeline parallelism over TCP does not raise
//! single-stream decode speed, tensor parallelism over RDMA does (as exo's and
//! llama.cpp's published cluster runs show).

use crate::common::{planner, stderr, stdout};

fn decode_rate(path: &str) -> f64 {
    let out = planner(&["simulate", path, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
    let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j["memory"]["fits"], true);
    j["decode_tokens_per_s"].as_f64().unwrap()
}

#[test]
fn pipeline_over_tcp_does_not_speed_up_one_stream() {
    let one = decode_rate("scenarios/qwen3-235b-1x-m3-ultra.toml");
    let two = decode_rate("scenarios/qwen3-235b-2x-m3-ultra-pipeline-tb5.toml");
    let four = decode_rate("scenarios/qwen3-235b-4x-m3-ultra-pipeline-tb5.toml");
    assert!(two <= one && four <= two, "{one} {two} {four}");
}

#[test]
fn tensor_parallel_over_rdma_speeds_up_one_stream() {
    let one = decode_rate("scenarios/qwen3-235b-1x-m3-ultra.toml");
    let two = decode_rate("scenarios/qwen3-235b-2x-m3-ultra-tensor-rdma.toml");
    let four = decode_rate("scenarios/qwen3-235b-4x-m3-ultra-tensor-rdma.toml");
    assert!(one < two && two < four, "{one} {two} {four}");
}

#[test]
fn pipeline_stages_overlap_with_several_sequences() {
    // Batch 1: stages run one after another. Batch 8: four micro-batches keep the
    // four stages busy, so decode throughput rises well above batch 1's.
    let batch = |b: u32| {
        let out = planner(&[
            "sweep",
            "scenarios/qwen3-235b-4x-m3-ultra-pipeline-tb5.toml",
            "--vary",
            &format!("workload.batch={b}"),
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let j: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        j[0]["report"]["decode_tokens_per_s"].as_f64().unwrap()
    };
    let (one, eight) = (batch(1), batch(8));
    assert!(eight > 3.0 * one, "{one} {eight}");
}

#[test]
fn the_readme_table_is_the_models_output() {
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).unwrap();
    let one = decode_rate("scenarios/qwen3-235b-1x-m3-ultra.toml");
    let mut rows = vec![format!("| 1 | {one:.2} tok/s | {one:.2} tok/s |")];
    for n in [2, 4] {
        let pipeline = decode_rate(&format!(
            "scenarios/qwen3-235b-{n}x-m3-ultra-pipeline-tb5.toml"
        ));
        let tensor = decode_rate(&format!(
            "scenarios/qwen3-235b-{n}x-m3-ultra-tensor-rdma.toml"
        ));
        rows.push(format!("| {n} | {pipeline:.2} tok/s | {tensor:.2} tok/s |"));
    }
    for row in rows {
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
}
