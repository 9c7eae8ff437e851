//! A model that does not fit is an answer: exit 3, `memory.fits = false`, and a reason
//! saying what is short and by how much.

use crate::common::{planner, repo, scenario_file, stderr, stdout};

#[test]
fn dbrx_bf16_does_not_fit_one_192_gb_m2_ultra() {
    let out = planner(&[
        "simulate",
        "scenarios/dbrx-one-m2-ultra.toml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["memory"]["fits"], false);
    let reason = json["reason"].as_str().unwrap();
    // 131.6 B parameters x 2 bytes = 263.2 GB of weights alone, against 192 GB.
    assert!(reason.contains("weights 263.2 GB"), "{reason}");
    assert!(reason.contains("has 192 GB"), "{reason}");
    let group = &json["memory"]["groups"][0];
    assert_eq!(group["capacity_gb"], 192.0);
    assert!(group["used_gb"].as_f64().unwrap() > 263.0);
    assert!(json["ttft_s"].is_null());
    assert!(stderr(&out).contains("does not fit"));
}

#[test]
fn a_fitting_scenario_exits_zero_with_every_contract_key() {
    let out = planner(&[
        "simulate",
        "scenarios/exo-m3-ultra-alone.toml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in [
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "throughput_tokens_per_s",
    ] {
        assert!(json[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert_eq!(json["memory"]["fits"], true);
    for phase in ["prefill", "decode"] {
        for key in [
            "compute_s",
            "communication_s",
            "exposed_communication_s",
            "overhead_s",
        ] {
            assert!(json["breakdown"][phase][key].is_number(), "{phase}.{key}");
        }
    }
    for key in [
        "capex_usd",
        "power_w",
        "usd_per_million_tokens",
        "tokens_per_s_per_kusd",
    ] {
        assert!(json["cost"][key].is_number(), "cost.{key}");
    }
}

#[test]
fn csv_is_one_header_and_one_row() {
    let out = planner(&[
        "simulate",
        "scenarios/exo-spark-alone.toml",
        "--format",
        "csv",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("name,model,weights"));
}

#[test]
fn csv_memory_columns_are_the_fullest_nodes() {
    // Llama-3 70B in f16 does not fit the 128 GB Spark (141 GB of weights) but would
    // fit the 256 GB Mac: the CSV's used and capacity must both be the Spark's, so
    // that they read as not fitting.
    let text = std::fs::read_to_string(repo().join("scenarios/exo-overlap-llama-3-70b.toml"))
        .unwrap()
        .replace("weights = \"mlx-8bit\"", "weights = \"f16\"");
    let path = scenario_file(&text);
    let out = planner(&["simulate", path.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let get = |key: &str| row[headers.iter().position(|h| h == key).unwrap()].to_string();
    assert_eq!(get("memory_fits"), "false");
    let used: f64 = get("memory_used_gb").parse().unwrap();
    let capacity: f64 = get("memory_capacity_gb").parse().unwrap();
    assert_eq!(capacity, 128.0);
    assert!(used > capacity, "{used} of {capacity}");
}

#[test]
fn the_table_says_does_not_fit_once_and_prices_a_node_without_a_price_as_a_bound() {
    let out = planner(&["simulate", "scenarios/dbrx-one-m2-ultra.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(text.contains("  DOES NOT FIT: group `mac`"), "{text}");
    assert!(!text.to_lowercase().contains("does not fit: does not fit"));
    // The CPU profile has no price: the JSON gives a cost per token from power alone,
    // and the table shows it too, marked as a lower bound (it showed none).
    let out = planner(&["simulate", "scenarios/cpu-decode-llama-3.2-3b.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("per million output tokens (a lower bound)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn vllm_leaves_eight_percent_of_the_node_unallocated() {
    // Llama-3.1 70B fp8 on one 80 GB H100, an 8,192-token prompt, whatever the stack:
    // - weights: 70.554 B parameters (the catalog's derived count) x 1 byte = 70.554 GB;
    // - fp8 KV cache: 80 layers x 8 KV heads x 128 x 2 (K, V) x 1 byte = 163,840 B
    //   per token, x (8,192 + 64) tokens = 1.353 GB;
    // - activations (an 8,192-token prefill chunk in both stacks): 8,192 tokens x
    //   (4 x 8,192 + 3 x 28,672) x 2 bytes + 128,256 fp32 logits = 1.947 GB;
    // 73.853 GB in all. SGLang keeps its 1 GB of buffers plus the driver's 1 GB:
    // 75.85 GB, fits. vLLM allocates at most 0.92 of the node
    // (`gpu_memory_utilization`), so its 1 GB of buffers plus the larger of the
    // driver's 1 GB and 0.08 x 80 = 6.4 GB are kept: 7.4 GB, 81.25 GB in all, 1.25
    // (printed 1.3) GB short.
    let run = |runtime: &str| {
        let text = format!(
            "[model]\npreset = \"llama-3.1-70b\"\nweights = \"fp8\"\nkv_cache = \"fp8\"\n\
             [runtime]\npreset = \"{runtime}\"\n[[cluster.groups]]\ndevice = \"h100-sxm\"\n\
             [workload]\nprompt_tokens = 8192\noutput_tokens = 64\n"
        );
        let path = scenario_file(&text);
        let out = planner(&["simulate", path.to_str().unwrap(), "--format", "json"]);
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        (out.status.code(), json)
    };
    let (code, json) = run("sglang");
    assert_eq!(code, Some(0));
    let reserve = json["memory"]["groups"][0]["reserve_gb"].as_f64().unwrap();
    assert!((reserve - 2.0).abs() < 1e-9, "{reserve}");
    let (code, json) = run("vllm");
    assert_eq!(code, Some(3));
    let reserve = json["memory"]["groups"][0]["reserve_gb"].as_f64().unwrap();
    assert!((reserve - 7.4).abs() < 1e-9, "{reserve}");
    let reason = json["reason"].as_str().unwrap();
    assert!(reason.contains("reserve 7.4 GB"), "{reason}");
    assert!(reason.contains("1.3 GB short"), "{reason}");
}
