//! The request-level engine: agreement with the analytical model for one request,
//! determinism, serving metrics, and TensorRT-LLM's published throughput.

use planner::analytical::simulate as analytical;
use planner::serving::simulate as serve;
use planner::Scenario;

use crate::common::{catalog, planner, repo, scenario_file, stderr};

fn text(file: &str) -> String {
    std::fs::read_to_string(repo().join(file)).unwrap()
}

fn parse(name: &str, text: &str) -> Scenario {
    Scenario::from_toml(name, text, &catalog()).unwrap()
}

/// The engine emits the first output token from the prefill, so N analytical decode
/// steps (llama-bench's convention) are N + 1 output tokens to the engine.
fn as_one_request(text: &str, output_tokens: u64) -> String {
    text.replace(
        &format!("output_tokens = {output_tokens}"),
        &format!("output_tokens = {}\nrequests = 1", output_tokens + 1),
    )
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    ((a - b) / b).abs() <= tolerance
}

#[test]
fn one_request_agrees_with_the_analytical_model_within_1_percent() {
    let h100 = r#"
[model]
preset = "llama-3.1-8b"
weights = "fp8"
kv_cache = "fp8"
[runtime]
preset = "trt-llm"
[[cluster.groups]]
device = "h100-sxm"
[workload]
prompt_tokens = 3000
output_tokens = 300
"#;
    let cached = text("scenarios/exo-m3-ultra-alone.toml").replace(
        "prompt_tokens = 8192",
        "prompt_tokens = 8192\ncached_prompt_tokens = 1000",
    );
    // Instances over several nodes: tensor parallel 2 (Llama-3.3 70B) and 8
    // (Llama-3.1 405B, a 10,000-token prompt in two 8,192-token chunks) over NVLink,
    // as in scenarios/trtllm-{2x,8x}-h100-*.toml; a 2-stage pipeline (one chunk) and
    // 2-node expert parallelism from the shipped cluster scenarios.
    let tensor = |model: &str, nodes: u32, prompt: u64, output: u64| {
        format!(
            r#"
[model]
preset = "{model}"
weights = "fp8"
kv_cache = "fp8"
[runtime]
preset = "trt-llm"
[[cluster.groups]]
device = "h100-sxm"
count = {nodes}
[cluster.network]
link = "nvlink-4"
[parallelism]
tensor = {nodes}
[workload]
prompt_tokens = {prompt}
output_tokens = {output}
"#
        )
    };
    let cases: Vec<(String, u64)> = vec![
        (text("scenarios/exo-spark-alone.toml"), 32),
        (cached, 32),
        (text("scenarios/llama-bench-m2-ultra-q4_0.toml"), 0),
        (h100.to_string(), 300),
        (text("scenarios/exo-disaggregated.toml"), 32),
        (text("scenarios/exo-disaggregated-bulk.toml"), 32),
        // Sliding-window layers send only their window's KV, in the last chunk.
        (
            text("scenarios/exo-disaggregated.toml")
                .replace("preset = \"llama-3.1-8b\"", "preset = \"gpt-oss-20b\""),
            32,
        ),
        (tensor("llama-3.3-70b", 2, 3000, 300), 300),
        (tensor("llama-3.1-405b", 8, 10_000, 200), 200),
        (
            text("scenarios/qwen3-235b-2x-m3-ultra-pipeline-tb5.toml"),
            128,
        ),
        (text("scenarios/dbrx-2x-m2-ultra-10gbe.toml"), 64),
    ];
    for (scenario_text, output) in cases {
        let output = if output == 0 {
            let line = scenario_text
                .lines()
                .find(|l| l.starts_with("output_tokens"))
                .unwrap();
            line.split('=').nth(1).unwrap().trim().parse().unwrap()
        } else {
            output
        };
        let a = analytical(&parse("a.toml", &scenario_text)).unwrap();
        let d = serve(
            &parse("d.toml", &as_one_request(&scenario_text, output)),
            None,
        )
        .unwrap();
        let s = d.report.serving.as_ref().unwrap();
        assert_eq!(s.requests_completed, 1, "{}", a.name);
        for (what, x, y) in [
            ("ttft", s.ttft_s.mean, a.ttft_s.unwrap()),
            ("e2e", s.e2e_s.mean, a.e2e_s.unwrap()),
            ("tpot", s.tpot_s.mean, a.tpot_s.unwrap()),
        ] {
            assert!(
                close(x, y, 0.01),
                "{}: {what} engine {x} vs analytical {y}",
                a.name
            );
        }
    }
}

fn poisson_scenario(seed: u64) -> String {
    format!(
        r#"
[model]
preset = "llama-3.1-8b"
weights = "bf16"
[runtime]
preset = "vllm"
[[cluster.groups]]
device = "h100-sxm"
count = 2
[scheduler]
router = "least_loaded"
chunked_prefill = true
[workload]
prompt_tokens = 700
output_tokens = 90
prompt_distribution = {{ kind = "lognormal", sigma = 0.7 }}
output_distribution = {{ kind = "uniform", min = 10, max = 200 }}
requests = 400
arrival_rate_per_s = 30.0
seed = {seed}
ttft_slo_s = 0.2
tpot_slo_s = 0.02
"#
    )
}

#[test]
fn same_seed_gives_identical_json() {
    let json = |seed| {
        let run = serve(&parse("p.toml", &poisson_scenario(seed)), None).unwrap();
        serde_json::to_string(&run.report).unwrap()
    };
    assert_eq!(json(5), json(5));
    assert_ne!(json(5), json(6));
    // And through the command line, byte for byte.
    let path = scenario_file(&poisson_scenario(9));
    let a = planner(&["simulate", path.to_str().unwrap(), "--format", "json"]);
    let b = planner(&["simulate", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn every_request_completes_and_tokens_are_conserved() {
    let run = serve(&parse("p.toml", &poisson_scenario(3)), None).unwrap();
    let s = run.report.serving.as_ref().unwrap();
    assert_eq!(s.requests_completed, 400);
    let tokens: u64 = run.requests.iter().map(|r| r.output_tokens).sum();
    // Throughput x makespan = all output tokens.
    assert!(close(
        s.throughput_tokens_per_s * s.makespan_s,
        tokens as f64,
        1e-9
    ));
    for r in &run.requests {
        let (ttft, e2e) = (r.ttft_s.unwrap(), r.e2e_s.unwrap());
        assert!(ttft > 0.0 && e2e >= ttft);
    }
    assert!(s.ttft_s.p50 <= s.ttft_s.p90 && s.ttft_s.p90 <= s.ttft_s.p99);
    // Both instances got work from the least-loaded router.
    assert!(s.instances.iter().all(|i| i.iterations > 0));
}

#[test]
fn queue_means_follow_littles_law_on_a_lightly_loaded_instance() {
    // Little's law: the mean number of requests in an instance (waiting + running)
    // is the sum of their times in it over the run. One H100 at 0.2 requests/s is
    // mostly idle; the queue lengths once held their last iteration's values through
    // the idle gaps (mean running 0.97 where requests were in the system a quarter of
    // the time).
    let text = poisson_scenario(5)
        .replace("count = 2", "count = 1")
        .replace("arrival_rate_per_s = 30.0", "arrival_rate_per_s = 0.2")
        .replace("requests = 400", "requests = 200");
    let run = serve(&parse("p.toml", &text), None).unwrap();
    let s = run.report.serving.as_ref().unwrap();
    let in_system: f64 = run.requests.iter().map(|r| r.e2e_s.unwrap()).sum();
    let little = in_system / s.makespan_s;
    let i = &s.instances[0];
    let mean = i.mean_waiting + i.mean_running;
    assert!(little < 0.5, "a light load: {little}");
    assert!(close(mean, little, 0.05), "{mean} against {little}");
}

#[test]
fn goodput_counts_rejected_requests_as_missing_the_objectives() {
    // Prompts up to 60,000 tokens on one 80 GB H100 with Llama-3.1 70B fp8: the
    // longest can never fit its KV cache and are rejected. The share within the
    // objectives is of all requests; it was of the completed ones only. (SGLang's
    // profile, not vLLM's: vLLM leaves 8% of the node unallocated, 6.4 GB, and 70 GB
    // of weights then leave it no KV cache at all.)
    let text = r#"
[model]
preset = "llama-3.1-70b"
weights = "fp8"
kv_cache = "fp8"
[runtime]
preset = "sglang"
[[cluster.groups]]
device = "h100-sxm"
memory_gb = 80
[workload]
prompt_tokens = 30500
output_tokens = 64
prompt_distribution = { kind = "uniform", min = 1000, max = 60000 }
requests = 60
arrival_rate_per_s = 0.05
seed = 3
ttft_slo_s = 5.0
tpot_slo_s = 0.05
"#;
    let run = serve(&parse("rejects.toml", text), None).unwrap();
    let s = run.report.serving.as_ref().unwrap();
    assert!(s.requests_rejected > 0, "{}", s.requests_rejected);
    let g = &s.goodput;
    assert_eq!(
        g.fraction_within_slo,
        g.requests_within_slo as f64 / 60.0,
        "{} within, {} completed",
        g.requests_within_slo,
        s.requests_completed
    );
}

#[test]
fn kv_memory_pressure_preempts_and_still_finishes() {
    // An RTX 4090 (24 GB) holding 16 GB of fp16 weights has a few GB of KV cache.
    // KV per token: 32 layers x 2 x 8 heads x 128 x 2 bytes = 131,072 bytes; 64
    // requests of 2,048 + 1,024 tokens need 64 x 3,072 x 131,072 = 25.8 GB, so
    // decoding sequences are preempted and recomputed.
    let text = r#"
[model]
preset = "llama-3.1-8b"
weights = "f16"
[runtime]
preset = "vllm"
max_batch = 64
[[cluster.groups]]
device = "rtx-4090"
[workload]
prompt_tokens = 2048
output_tokens = 1024
requests = 64
"#;
    let run = serve(&parse("p.toml", text), None).unwrap();
    let s = run.report.serving.as_ref().unwrap();
    assert!(s.preemptions > 0, "no preemption");
    assert_eq!(s.requests_completed, 64);
}

#[test]
fn static_batches_run_to_completion_before_the_next() {
    // Batches of 4 identical requests at t = 0: requests 0-3 finish together, before
    // 4-7 produce their first token.
    let text = r#"
[model]
preset = "llama-3.1-8b"
weights = "bf16"
[runtime]
preset = "vllm"
[[cluster.groups]]
device = "h100-sxm"
[scheduler]
batching = "static"
[workload]
prompt_tokens = 256
output_tokens = 16
batch = 4
requests = 8
"#;
    let run = serve(&parse("p.toml", text), None).unwrap();
    let r = &run.requests;
    let first_batch_end = r[0].finish_s.unwrap();
    assert!(r[..4].iter().all(|x| x.finish_s == Some(first_batch_end)));
    assert!(r[4..]
        .iter()
        .all(|x| x.first_token_s.unwrap() > first_batch_end));
}

#[test]
fn trtllm_h100_llama_8b_fp8_throughput_within_25_percent() {
    // TensorRT-LLM perf overview (V346): 28,312 output tokens/s for 128/128.
    let run = serve(
        &parse(
            "t.toml",
            &text("scenarios/trtllm-h100-llama-3.1-8b-fp8.toml"),
        ),
        None,
    )
    .unwrap();
    let t = run.report.serving.unwrap().throughput_tokens_per_s;
    assert!(close(t, 28_312.0, 0.25), "predicted {t:.0} tokens/s");
}

#[test]
fn trace_scenario_writes_complete_result_files() {
    let temp = crate::common::temp_dir();
    let dir = temp.path().join("out");
    let out = planner(&[
        "simulate",
        "scenarios/serving-trace-h100-vllm.toml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = std::fs::read_to_string(dir.join("requests.csv")).unwrap();
    // A header and one row per trace request (300).
    assert_eq!(requests.lines().count(), 301);
    for f in ["summary.json", "queue.csv", "timeline.png", "timeline.svg"] {
        assert!(dir.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    // No temporary files left behind.
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for key in ["ttft_s", "tpot_s", "e2e_s"] {
        for stat in ["p50", "p90", "p99", "mean"] {
            assert!(summary["serving"][key][stat].is_number(), "{key}.{stat}");
        }
    }
    assert_eq!(summary["serving"]["requests_completed"], 300);
    assert!(summary["serving"]["makespan_s"].is_number());
    // The report's assumptions name the trace as the requests' source (they gave
    // "18446744073709551615 requests, all arriving at t = 0").
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("Serving: the requests of trace `traces/conversation-sample.csv`"));
    assert!(!report.contains("18446744073709551615"));
    // The table's workload line gives the trace's own mean lengths (it gave the
    // scenario's prompt_tokens and output_tokens, which a trace leaves unused).
    let trace = text("scenarios/traces/conversation-sample.csv");
    let rows: Vec<Vec<f64>> = trace
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("arrival"))
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    let mean = |i: usize| rows.iter().map(|r| r[i]).sum::<f64>() / rows.len() as f64;
    let line = format!(
        "workload: 300 requests, {:.1} prompt and {:.1} output tokens on average",
        mean(1),
        mean(2)
    );
    let table = planner(&["simulate", "scenarios/serving-trace-h100-vllm.toml"]);
    assert!(crate::common::stdout(&table).contains(&line), "{line}");
}

#[test]
fn serving_keys_without_serving_mode_are_invalid() {
    let text =
        crate::common::BASE.replace("output_tokens = 16", "output_tokens = 16\nttft_slo_s = 1.0");
    let path = scenario_file(&text);
    let out = planner(&["simulate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("serving mode only"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_distribution_and_trace_are_invalid_input() {
    let text = crate::common::BASE.replace(
        "output_tokens = 16",
        "output_tokens = 16\nrequests = 5\nprompt_distribution = { kind = \"gaussian\" }",
    );
    let out = planner(&["simulate", scenario_file(&text).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("prompt_distribution.kind"),
        "{}",
        stderr(&out)
    );

    let path = scenario_file(&crate::common::BASE.replace(
        "output_tokens = 16",
        "output_tokens = 16\ntrace = \"missing.csv\"",
    ));
    let out = planner(&["simulate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.csv"));
}

#[test]
fn tensor_parallel_instances_serve_and_unsupported_layouts_exit_3() {
    // The shipped TP 2 scenario: one instance of two GPUs, every request served.
    let out = planner(&[
        "simulate",
        "scenarios/trtllm-2x-h100-llama-3.3-70b-fp8.toml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["serving"]["requests_completed"], 2000);
    assert_eq!(json["serving"]["instances"].as_array().unwrap().len(), 1);

    // Disaggregated instances over several nodes are not modelled.
    let disaggregated = text("scenarios/serving-disaggregated-poisson.toml").replace(
        "[disaggregation]",
        "[parallelism]\ntensor = 2\n\n[disaggregation]",
    );
    let out = planner(&["simulate", scenario_file(&disaggregated).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("disaggregation"), "{}", stderr(&out));

    // Nor is expert parallelism with split (data-parallel) attention.
    let split = text("scenarios/dbrx-2x-m2-ultra-10gbe.toml")
        .replace("attention = \"replicated\"", "attention = \"split\"")
        .replace("output_tokens = 64", "output_tokens = 64\nrequests = 4");
    let out = planner(&["simulate", scenario_file(&split).to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("split"), "{}", stderr(&out));
}

#[test]
fn sweep_runs_serving_scenarios_in_the_request_level_engine() {
    // Two points of a serving scenario: each is simulated request by request (a
    // serving report has no decode-step breakdown, so those columns are empty).
    let out = crate::common::planner(&[
        "sweep",
        "scenarios/trtllm-8x-h100-llama-3.1-405b-fp8.toml",
        "--vary",
        "workload.output_tokens=128,256",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let text = crate::common::stdout(&out);
    assert!(!text.contains("cannot run"), "{text}");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let rates: Vec<f64> = rows
        .records()
        .map(|r| r.unwrap()[4].parse().unwrap())
        .collect();
    assert_eq!(rates.len(), 2);
    assert!(rates.iter().all(|r| *r > 0.0), "{text}");
}

#[test]
fn arrivals_past_the_simulators_clock_are_refused() {
    // The clock counts nanoseconds in a u64 (1.8e10 s); arrivals are accepted up to
    // 1e9 s. Past that, a run's times saturated and it reported zero latencies.
    let serving = |extra: &str| {
        crate::common::BASE.replace(
            "output_tokens = 16",
            &format!("output_tokens = 16\n{extra}"),
        )
    };

    // A trace row at 1e30 s names the file, the row and the limit.
    let path = scenario_file(&serving("trace = \"late.csv\""));
    let trace = path.with_file_name("late.csv");
    std::fs::write(
        &trace,
        "arrival_s,prompt_tokens,output_tokens\n0,64,4\n1e30,64,4\n",
    )
    .unwrap();
    let out = planner(&["simulate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("late.csv: row 2: arrival_s = ")
            && stderr(&out).contains("expected a time from 0 to 1e9 s"),
        "{}",
        stderr(&out)
    );
    // At the limit itself the row runs.
    std::fs::write(&trace, "arrival_s,prompt_tokens,output_tokens\n1e9,64,4\n").unwrap();
    let out = planner(&["simulate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // 200 requests at 1e-7 per second are expected to span 2e9 s: the rate is refused,
    // with its line (BASE's output_tokens is line 15, so requests is 16, the rate 17).
    let err = stderr(&planner(&[
        "simulate",
        scenario_file(&serving("requests = 200\narrival_rate_per_s = 1e-7"))
            .to_str()
            .unwrap(),
    ]));
    assert!(
        err.contains(":17:") && err.contains("`workload.arrival_rate_per_s` = 0.0000001"),
        "{err}"
    );
    assert!(err.contains("expected at least 2e-7 per second"), "{err}");

    // One request at 1e-9 per second is expected at 1e9 s, so the scenario passes, and
    // its exponential draw lands past the limit with probability e^-1: over sixteen
    // seeds some runs are refused (exit 3, cannot run) and the others complete.
    let mut codes = Vec::new();
    for seed in 0..16 {
        let path = scenario_file(&serving(&format!(
            "requests = 1\narrival_rate_per_s = 1e-9\nseed = {seed}"
        )));
        let out = planner(&["simulate", path.to_str().unwrap()]);
        if out.status.code() == Some(3) {
            assert!(
                stderr(&out).contains("clock limit of 1e9 s"),
                "{}",
                stderr(&out)
            );
        }
        codes.push(out.status.code());
    }
    assert!(
        codes.contains(&Some(3)) && codes.contains(&Some(0)),
        "{codes:?}"
    );
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 3))), "{codes:?}");
}
