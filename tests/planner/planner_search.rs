//! `planner plan`: the search screens every option, counts every rejection, and its
//! best option meets the targets when the request-level engine re-checks it.

use planner::plan::{enumerate, parse_plan, run_plan, Verdict};

use crate::common::{catalog, planner, stdout};

const SMALL_PLAN: &str = r#"
name = "small"
[model]
preset = "llama-3.1-8b"
weights = ["f16", "fp8", "q4_0"]
[workload]
prompt_tokens = 512
output_tokens = 64
requests_per_s = 2.0
[slo]
ttft_p90_s = 1.0
tpot_p90_s = 0.05
[budget]
capex_usd = 60000
[search]
devices = ["h100-sxm", "m3-ultra-80c", "dgx-spark"]
max_nodes = 4
verify_top = 1
"#;

#[test]
fn every_option_is_feasible_or_rejected_for_a_reason() {
    let catalog = catalog();
    let plan = parse_plan("small.toml", SMALL_PLAN, &catalog).unwrap();
    let options = enumerate(&plan, &catalog).len();
    let r = run_plan(&plan, &catalog, &|_| {});
    let j = &r.rejections;
    assert_eq!(r.options_evaluated, options);
    assert_eq!(
        r.feasible
            + j.invalid_layout
            + j.not_modelled
            + j.does_not_fit
            + j.misses_slo
            + j.over_budget
            + j.no_price,
        options
    );
    assert!(r.feasible > 0);
    // Ranked cheapest first, and every ranked option is feasible and within budget.
    // Options on the same nodes cost the same per token; of those, the one that
    // sustains more ranks first (the runtimes on one H100 tie here: the check is not
    // vacuous).
    let mut ties = 0;
    for pair in r.ranked.windows(2) {
        assert!(pair[0].usd_per_million_tokens <= pair[1].usd_per_million_tokens);
        if pair[0].usd_per_million_tokens == pair[1].usd_per_million_tokens
            && pair[0].capex_usd == pair[1].capex_usd
        {
            ties += 1;
            assert!(
                pair[0].capacity_tokens_per_s >= pair[1].capacity_tokens_per_s,
                "{} ranked above {}",
                pair[0].description,
                pair[1].description
            );
        }
    }
    assert!(ties > 0);
    assert!(r
        .ranked
        .iter()
        .all(|s| s.verdict == Verdict::Feasible && s.capex_usd <= 60000.0));
    // The top option is one the request-level engine re-checked and found meeting
    // the SLOs (options it found missing them were dropped from the ranking).
    let top = &r.ranked[0];
    let check = r
        .verified
        .iter()
        .find(|v| v.description == top.description)
        .expect("top option verified");
    assert!(check.meets_slo, "{check:?}");
}

#[test]
fn the_same_plan_gives_the_same_json() {
    let path = crate::common::scenario_file(SMALL_PLAN);
    let a = planner(&["plan", path.to_str().unwrap(), "--format", "json"]);
    let b = planner(&["plan", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(stdout(&a), stdout(&b));
    // CSV: the ranked options, one row each, as `ranked.csv` (it printed the table).
    let csv = planner(&["plan", path.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(csv.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&stdout(&a)).unwrap();
    let ranked = json["ranked"].as_array().unwrap().len();
    let text = stdout(&csv);
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("rank,description,kind,device"));
    assert_eq!(lines.count(), ranked);
}

#[test]
fn progress_is_plain_lines_when_stderr_is_not_a_terminal() {
    // The test's stderr is a pipe: without --progress the plan prints nothing there;
    // with it, a line per tenth of the screen and one per verified option.
    let path = crate::common::scenario_file(SMALL_PLAN);
    let quiet = planner(&["plan", path.to_str().unwrap()]);
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stderr.is_empty(), "{}", crate::common::stderr(&quiet));
    let out = planner(&["plan", path.to_str().unwrap(), "--progress"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), stdout(&quiet));
    let err = crate::common::stderr(&out);
    let catalog = catalog();
    let total = enumerate(
        &parse_plan("small.toml", SMALL_PLAN, &catalog).unwrap(),
        &catalog,
    )
    .len();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], format!("plan: screening {total} options"));
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.starts_with(&format!("plan: screened {total} of {total} options"))),
        "{err}"
    );
    // SMALL_PLAN verifies its top option (verify_top = 1).
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("plan: verifying #1 with the request-level engine: ")),
        "{err}"
    );
    assert!(lines.last().unwrap().starts_with("plan: done"), "{err}");
}

#[test]
fn unknown_device_in_a_plan_is_invalid_input() {
    let path = crate::common::scenario_file(&SMALL_PLAN.replace("\"dgx-spark\"", "\"dgx-sparc\""));
    let out = planner(&["plan", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::stderr(&out);
    assert!(err.contains("did you mean dgx-spark"), "{err}");
    // SMALL_PLAN starts with a newline: `devices` is line 16; `"dgx-spark"` starts at column 40 (11 + 12 + 16 characters before it).
    assert!(err.contains(":16:40: `search.devices`"), "{err}");
}

#[test]
fn a_plans_values_are_checked_where_they_are_written() {
    // Each edit, the key it breaks and its line in SMALL_PLAN (which starts with a
    // newline). A NaN target or budget used to pass: every comparison with it is
    // false, so the screen let every option through the TTFT target.
    let cases = [
        (
            "ttft_p90_s = 1.0",
            "ttft_p90_s = nan",
            "slo.ttft_p90_s",
            ":11:",
        ),
        (
            "tpot_p90_s = 0.05",
            "tpot_p90_s = -0.05",
            "slo.tpot_p90_s",
            ":12:",
        ),
        (
            "capex_usd = 60000",
            "capex_usd = nan",
            "budget.capex_usd",
            ":14:",
        ),
        (
            "requests_per_s = 2.0",
            "requests_per_s = inf",
            "workload.requests_per_s",
            ":9:",
        ),
        (
            "prompt_tokens = 512",
            "prompt_tokens = 0",
            "workload.prompt_tokens",
            ":7:",
        ),
        (
            "max_nodes = 4",
            "max_nodes = -4",
            "search.max_nodes",
            ":17:",
        ),
        (
            "verify_top = 1",
            "verify_top = -1",
            "search.verify_top",
            ":18:",
        ),
        ("\"q4_0\"]", "\"q4-0\"]", "model.weights", ":5:"),
        (
            "verify_top = 1",
            "verify_top = 1\n[cost]\nutilization = 0.0",
            "cost.utilization",
            ":20:",
        ),
    ];
    for (from, to, key, line) in cases {
        let path = crate::common::scenario_file(&SMALL_PLAN.replace(from, to));
        let out = planner(&["plan", path.to_str().unwrap()]);
        let err = crate::common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(line), "{to}: {err}");
        assert!(err.contains(&format!("`{key}`")), "{to}: {err}");
    }
}

fn screen_at(rate: f64, description: &str) -> planner::plan::Screened {
    let catalog = catalog();
    let text = SMALL_PLAN.replace("requests_per_s = 2.0", &format!("requests_per_s = {rate}"));
    let plan = parse_plan("small.toml", &text, &catalog).unwrap();
    let options = enumerate(&plan, &catalog);
    let o = options
        .iter()
        .find(|o| o.describe() == description)
        .unwrap_or_else(|| panic!("no option {description}"));
    planner::plan::screen(o, &plan, &catalog)
}

#[test]
fn replicas_add_capacity_linearly() {
    // Two replicas behind a router serve exactly twice what one node does: the
    // sustainable rate is each instance's own. The screen must hand each replica its
    // own batch (the cluster model splits a scenario's batch over its replicas), or
    // capacity grows with the square of the replica count; and it must not take the
    // prefill share at the plan's rate (half per replica with two), or two replicas
    // come out at more than twice one.
    let one = screen_at(2.0, "1 x h100-sxm (80 GB), trt-llm fp8");
    let two = screen_at(2.0, "2 x h100-sxm (80 GB), 2 replicas, trt-llm fp8");
    let ratio = two.capacity_tokens_per_s / one.capacity_tokens_per_s;
    assert!((ratio - 2.0).abs() < 1e-9, "{ratio}: {one:?} {two:?}");
    // Half the load per replica: no slower per token than one node carrying it all.
    assert!(two.tpot_p90_s <= one.tpot_p90_s * 1.0001);
}

#[test]
fn sustainable_throughput_does_not_depend_on_the_plans_rate() {
    // The most an option can serve is a property of the option. The old screen took
    // the prefill share at the plan's rate, so a lighter target load raised it.
    for description in [
        "1 x h100-sxm (80 GB), trt-llm fp8",
        "1 x dgx-spark (128 GB), trt-llm fp8",
    ] {
        let light = screen_at(0.5, description);
        let heavy = screen_at(2.0, description);
        assert!(light.capacity_tokens_per_s > 0.0, "{light:?}");
        let ratio = light.capacity_tokens_per_s / heavy.capacity_tokens_per_s;
        assert!((ratio - 1.0).abs() < 1e-9, "{description}: {ratio}");
    }
}

#[test]
fn sustainable_throughput_is_decode_in_the_time_prefill_leaves() {
    // By hand from the analytical model's two primitives for one H100 (trt-llm, fp8):
    // P, the prefill of one 512-token request (its TTFT at batch 1), and R, decode
    // tokens/s at the largest batch that fits (batch / TPOT). At λ requests/s decode
    // has 1 - λ P of the time, so λ G = R (1 - λ P) and the most it serves is
    // G R / (G + R P) output tokens/s (G = 64).
    let one = screen_at(2.0, "1 x h100-sxm (80 GB), trt-llm fp8");
    let catalog = catalog();
    let parse = |batch: u64| {
        let text = format!(
            "[model]\npreset = \"llama-3.1-8b\"\nweights = \"fp8\"\n[runtime]\npreset = \"trt-llm\"\n\
             [[cluster.groups]]\ndevice = \"h100-sxm\"\nmemory_gb = 80\n\
             [workload]\nprompt_tokens = 512\noutput_tokens = 64\nbatch = {batch}\n"
        );
        planner::scenario::Scenario::from_toml("h100.toml", &text, &catalog).unwrap()
    };
    let scenario = |batch: u64| planner::analytical::simulate(&parse(batch)).unwrap();
    let p = scenario(1).ttft_s.unwrap();
    let max_batch = parse(1).max_batch;
    // The runtime's cap (2,048 sequences) does not fit: 2,048 x 576 tokens x 128 KiB
    // of f16 KV per token (32 layers x 8 KV heads x 128 x 2 x 2 bytes) is 155 GB;
    // 1,024 is 77 GB, with the weights over 80 GB; 512 (39 GB) fits. The largest
    // batch that fits lies between, found here by bisection on the memory verdict.
    assert!(!scenario(u64::from(max_batch)).memory.fits);
    let (mut fits, mut short) = (512u64, 1024u64);
    assert!(scenario(fits).memory.fits && !scenario(short).memory.fits);
    while short - fits > 1 {
        let mid = (fits + short) / 2;
        if scenario(mid).memory.fits {
            fits = mid;
        } else {
            short = mid;
        }
    }
    let batch = fits;
    let top = scenario(batch);
    let r = batch as f64 / top.tpot_s.unwrap();
    let g = 64.0;
    let expected = g * r / (g + r * p);
    let error = one.capacity_tokens_per_s / expected - 1.0;
    assert!(
        error.abs() < 1e-9,
        "{} vs {expected}",
        one.capacity_tokens_per_s
    );
}

#[test]
fn the_frontier_leaves_out_options_the_engine_finds_missing_a_target() {
    // A TTFT target between what the screen and the engine give two B200 replicas
    // (sglang fp8: screen 64.0 ms, engine 67.9 ms): the engine drops them from the
    // ranking, and the frontier, "options meeting the targets", must drop them too.
    let text = r#"
name = "tight TTFT"
[model]
preset = "llama-3.1-70b"
weights = ["fp8", "bf16"]
[workload]
prompt_tokens = 1024
output_tokens = 256
requests_per_s = 10.0
[slo]
ttft_p90_s = 0.066
tpot_p90_s = 0.1
[budget]
capex_usd = 100000
[search]
devices = ["b200", "h200-sxm"]
max_nodes = 4
disaggregation = true
verify_top = 3
"#;
    let catalog = catalog();
    let plan = parse_plan("tight.toml", text, &catalog).unwrap();
    let r = run_plan(&plan, &catalog, &|_| {});
    let missed: Vec<&str> = r
        .verified
        .iter()
        .filter(|v| !v.meets_slo)
        .map(|v| v.description.as_str())
        .collect();
    assert!(
        !missed.is_empty(),
        "the engine should drop at least one option"
    );
    for p in &r.pareto {
        assert!(
            !missed.contains(&p.description.as_str()),
            "{} is on the frontier",
            p.description
        );
    }
    assert!(!r.pareto.is_empty());
}

#[test]
fn the_search_offers_only_formats_a_runtime_runs_on_the_device() {
    let catalog = catalog();
    let plan = parse_plan(
        "formats.toml",
        &SMALL_PLAN.replace(
            "devices = [\"h100-sxm\", \"m3-ultra-80c\", \"dgx-spark\"]",
            "devices = [\"h100-sxm\", \"a100-sxm\"]",
        ),
        &catalog,
    )
    .unwrap();
    let colocated: Vec<(String, String, String)> = enumerate(&plan, &catalog)
        .into_iter()
        .filter_map(|o| match o.layout {
            planner::plan::enumerate::Layout::Colocated(c) => {
                Some((c.device, c.runtime, o.weights))
            }
            _ => None,
        })
        .collect();
    let offered = |device: &str, runtime: &str, weights: &str| {
        colocated
            .iter()
            .any(|(d, r, w)| d == device && r == runtime && w == weights)
    };
    // TensorRT-LLM's fp8 needs FP8 tensor cores (H100: yes; A100: no); vLLM runs fp8
    // weight-only on the A100; no GPU stack loads llama.cpp's q4_0.
    assert!(offered("h100-sxm", "trt-llm", "fp8"));
    assert!(!offered("a100-sxm", "trt-llm", "fp8"));
    assert!(offered("a100-sxm", "trt-llm", "f16"));
    assert!(offered("a100-sxm", "vllm", "fp8"));
    assert!(!offered("a100-sxm", "vllm", "q4_0"));
    assert!(offered("a100-sxm", "llama.cpp", "q4_0"));
}

#[test]
fn at_a_low_rate_the_screens_best_options_pass_the_engine() {
    // DBRX at 0.2 requests/s on Macs and Sparks: llama.cpp's four slots and prefills
    // of 2-6 s. The screen used to count only the wait for prefill; its top options
    // (tensor-parallel M4 Max pairs) then held their slots for 20 s or more each, and
    // at that load requests queued for a slot: TTFT p90 20-80 s in the engine over
    // 1,000 requests, against 4-5 s screened. Now the screen counts the wait for a
    // slot (an M/D/c queue of the slots) and the top three pass the engine as ranked.
    let catalog = catalog();
    let path = crate::common::repo().join("scenarios/plans/dbrx-macs-or-sparks.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let plan = parse_plan("dbrx-macs-or-sparks.toml", &text, &catalog).unwrap();
    let r = run_plan(&plan, &catalog, &|_| {});
    assert_eq!(r.verified.len(), plan.verify_top, "{:#?}", r.verified);
    for v in &r.verified {
        assert!(v.meets_slo, "{v:?}");
        assert!(v.requests >= 1000, "{v:?}");
    }
}
