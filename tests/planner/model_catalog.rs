//! Derived parameter counts against each model's published total.

use crate::common::catalog;

/// (model id, published total in billions, source of that figure).
const PUBLISHED_TOTALS: &[(&str, f64, &str)] = &[
    ("dbrx", 132.0, "https://www.databricks.com/blog/introducing-dbrx-new-state-art-open-llm"),
    ("deepseek-v3", 671.0, "https://huggingface.co/deepseek-ai/DeepSeek-V3 (671B main model, without the 14B MTP module)"),
    ("glm-4.7-flash", 29.94, "llama.cpp benches/mac-m2-ultra.md (build 7948): llama-bench's count for the GLM-4.7-Flash GGUF"),
    ("gemma-3-4b", 3.88, "llama.cpp benches/dgx-spark.md model table (text model)"),
    ("gpt-oss-120b", 116.83, "OpenAI gpt-oss model card, Table 1"),
    ("gpt-oss-20b", 20.91, "OpenAI gpt-oss model card, Table 1"),
    ("kimi-k2", 1040.0, "https://arxiv.org/abs/2507.20534 (1.04T total)"),
    ("llama-2-70b", 69.0, "https://huggingface.co/meta-llama/Llama-2-70b-hf"),
    ("llama-2-7b", 6.74, "https://huggingface.co/meta-llama/Llama-2-7b-hf"),
    ("llama-3-70b", 70.6, "https://huggingface.co/meta-llama/Meta-Llama-3-70B"),
    ("llama-3-8b", 8.03, "https://huggingface.co/meta-llama/Meta-Llama-3-8B"),
    ("llama-3.1-405b", 405.0, "https://ai.meta.com/blog/meta-llama-3-1/"),
    ("llama-3.1-70b", 70.6, "https://huggingface.co/meta-llama/Llama-3.1-70B"),
    ("llama-3.1-8b", 8.03, "https://huggingface.co/meta-llama/Llama-3.1-8B"),
    ("llama-3.2-3b", 3.21, "https://huggingface.co/meta-llama/Llama-3.2-3B"),
    ("llama-3.3-70b", 70.6, "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct"),
    ("mistral-7b", 7.3, "https://mistral.ai/news/announcing-mistral-7b"),
    ("mixtral-8x7b", 46.7, "https://mistral.ai/news/mixtral-of-experts"),
    ("qwen2.5-14b", 14.7, "https://huggingface.co/Qwen/Qwen2.5-14B"),
    ("qwen2.5-7b", 7.61, "https://huggingface.co/Qwen/Qwen2.5-7B"),
    ("qwen2.5-coder-7b", 7.61, "https://huggingface.co/Qwen/Qwen2.5-Coder-7B-Instruct"),
    ("qwen3-235b-a22b", 235.0, "https://huggingface.co/Qwen/Qwen3-235B-A22B"),
    ("qwen3-30b-a3b", 30.5, "https://huggingface.co/Qwen/Qwen3-30B-A3B"),
    ("qwen3-coder-30b-a3b", 30.5, "https://huggingface.co/Qwen/Qwen3-Coder-30B-A3B-Instruct"),
    ("gemma-3-27b", 27.01, "llama.cpp's count for gemma3 27B GGUFs (text model); Google's 27B includes the vision encoder"),
    ("mixtral-8x22b", 141.0, "https://mistral.ai/news/mixtral-8x22b"),
    ("phi-4", 14.7, "https://arxiv.org/abs/2412.08905 (Phi-4 technical report)"),
    ("qwen2.5-32b", 32.5, "https://huggingface.co/Qwen/Qwen2.5-32B"),
    ("qwen2.5-72b", 72.7, "https://huggingface.co/Qwen/Qwen2.5-72B"),
    ("qwen3-8b", 8.2, "https://huggingface.co/Qwen/Qwen3-8B"),
    ("qwen3-14b", 14.8, "https://huggingface.co/Qwen/Qwen3-14B"),
    ("qwen3-32b", 32.8, "https://huggingface.co/Qwen/Qwen3-32B"),
    // Meta's totals include the vision encoder, which the text model leaves out.
    ("llama-4-scout", 109.0, "https://ai.meta.com/blog/llama-4-multimodal-intelligence/"),
    ("llama-4-maverick", 400.0, "https://ai.meta.com/blog/llama-4-multimodal-intelligence/"),
    ("glm-4.5-air", 106.0, "https://huggingface.co/zai-org/GLM-4.5-Air"),
];

#[test]
fn every_model_is_listed_with_its_published_total() {
    let catalog = catalog();
    let listed: Vec<&str> = PUBLISHED_TOTALS.iter().map(|(id, _, _)| *id).collect();
    for id in catalog.models.keys() {
        assert!(
            listed.contains(&id.as_str()),
            "{id} has no published total in this test"
        );
    }
}

#[test]
fn derived_totals_are_within_2_percent_of_published() {
    let catalog = catalog();
    for (id, published_b, source) in PUBLISHED_TOTALS {
        let model = catalog
            .models
            .get(*id)
            .unwrap_or_else(|| panic!("{id} missing"));
        let derived_b = model.total_params() as f64 / 1e9;
        let error = (derived_b - published_b) / published_b;
        assert!(
            error.abs() <= 0.02,
            "{id}: derived {derived_b:.3} B vs published {published_b} B ({source}): {:+.2}%",
            error * 100.0
        );
    }
}

#[test]
fn moe_active_parameters_are_far_below_the_total() {
    // DBRX: 36 B active of 132 B (databricks.com blog); derived 36.47 B.
    let catalog = catalog();
    let dbrx = &catalog.models["dbrx"];
    let active_b = dbrx.active_params() as f64 / 1e9;
    assert!((active_b - 36.0).abs() / 36.0 < 0.02, "{active_b}");
}

#[test]
fn llama_4_maverick_alternates_dense_and_expert_layers() {
    // Maverick: 24 of 48 layers have 128 experts. Active per token = 48 x attention
    // (q, o 5120 x 5120 and k, v 5120 x 1024: 62,914,560) + 24 dense FFNs (3 x 5120 x
    // 16384 = 251,658,240) + 24 x (one routed + one shared expert, 2 x 3 x 5120 x 8192
    // = 251,658,240, + router 5120 x 128 = 655,360) + embedding and LM head (2 x
    // 202048 x 5120 = 2,068,971,520) + 97 norms x 5120 = 3,019,898,880 + 6,039,797,760
    // + 6,055,526,400 + 2,068,971,520 + 496,640 = 17,184,691,200.
    let catalog = catalog();
    let m = &catalog.models["llama-4-maverick"];
    assert_eq!(m.moe_layer_count(), 24);
    assert!(!m.is_moe_layer(0) && m.is_moe_layer(1) && m.is_moe_layer(47));
    assert_eq!(m.active_params(), 17_184_691_200);
}

#[test]
fn the_contract_ids_are_all_in_the_catalog() {
    let catalog = catalog();
    for id in [
        "m1-max-32c",
        "m1-ultra-64c",
        "m2-max-38c",
        "m2-ultra-60c",
        "m2-ultra-76c",
        "m3-max-40c",
        "m3-ultra-60c",
        "m3-ultra-80c",
        "m4-max-40c",
        "dgx-spark",
        "h100-sxm",
        "h100-pcie",
        "h200-sxm",
        "b200",
        "a100-sxm",
        "a100-pcie",
        "rtx-4090",
        "rtx-5090",
    ] {
        assert!(catalog.devices.contains_key(id), "device {id}");
    }
    for id in [
        "thunderbolt-4",
        "thunderbolt-5",
        "thunderbolt-5-rdma",
        "ethernet-10g",
        "connectx-7-200g",
        "nvlink-3",
        "nvlink-4",
        "nvlink-5",
        "infiniband-hdr",
        "infiniband-ndr",
        "pcie-4",
        "pcie-5",
    ] {
        assert!(catalog.links.contains_key(id), "link {id}");
    }
    for id in [
        "f32", "f16", "bf16", "fp8", "q8_0", "q6_k", "q5_k_m", "q4_0", "q4_k_m", "mxfp4", "nvfp4",
        "mlx-4bit", "mlx-8bit", "int4",
    ] {
        assert!(catalog.formats.contains_key(id), "format {id}");
    }
    for id in ["ideal", "llama.cpp", "mlx", "vllm", "sglang", "trt-llm"] {
        assert!(catalog.runtimes.contains_key(id), "runtime {id}");
    }
}

#[test]
fn models_show_gives_the_kv_traffic_of_a_decode_step() {
    // Llama 3.1 8B: 32 layers x 8 KV heads x 128 x 2 (K and V) x 2 B = 131,072 B per
    // token. At 4,096 tokens of context one decode step reads 4,097 tokens' keys and
    // values (the context and its own) and writes one: 4,098 x 131,072 B = 537.1 MB.
    let out = crate::common::stdout(&crate::common::planner(&["models", "show", "llama-3.1-8b"]));
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("4096 "))
        .expect("a 4,096-token row");
    assert!(row.trim_end().ends_with(" 537.1"), "{row}");
    assert!(out.contains("KV traffic MB (f16)"), "{out}");
}

#[test]
fn models_show_gives_the_weights_in_each_format() {
    // DBRX: 131.597 B parameters (the derived count the same page prints). bf16, 16
    // bits: 131.597 x 2 = 263.19 GB. Q4_K_M, 4.85 bits: 131.597 x 4.85 / 8 = 79.78 GB.
    // The fattest format first.
    let out = crate::common::stdout(&crate::common::planner(&["models", "show", "dbrx"]));
    let row = |id: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("a row for {id}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("bf16"), ["bf16", "16.0000", "263.2"]);
    assert_eq!(row("q4_k_m"), ["q4_k_m", "4.8500", "79.8"]);
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("bits/weight"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(table.len() >= 14, "{out}");
    assert!(table[0].trim_start().starts_with("f32 "), "{out}");
}
