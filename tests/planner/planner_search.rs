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
    let r = run_plan(&plan, &catalog, &|| {});
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
    for pair in r.ranked.windows(2) {
        assert!(pair[0].usd_per_million_tokens <= pair[1].usd_per_million_tokens);
    }
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
}

#[test]
fn unknown_device_in_a_plan_is_invalid_input() {
    let path = crate::common::scenario_file(&SMALL_PLAN.replace("\"dgx-spark\"", "\"dgx-sparc\""));
    let out = planner(&["plan", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::common::stderr(&out).contains("did you mean dgx-spark"));
}

#[test]
fn replicas_add_capacity_linearly() {
    // Two replicas behind a router serve twice what one node does, give or take the
    // prefill share: at 2 requests/s one node prefills 2 x P of every second, each of
    // two replicas 1 x P, so each replica decodes a little more of the time. The
    // screen must hand each replica its own batch (the cluster model splits a
    // scenario's batch over its replicas), or capacity grows with the square of the
    // replica count.
    let catalog = catalog();
    let plan = parse_plan("small.toml", SMALL_PLAN, &catalog).unwrap();
    let options = enumerate(&plan, &catalog);
    let find = |description: &str| {
        let o = options
            .iter()
            .find(|o| o.describe() == description)
            .unwrap_or_else(|| panic!("no option {description}"));
        planner::plan::screen(o, &plan, &catalog)
    };
    let one = find("1 x h100-sxm (80 GB), trt-llm fp8");
    let two = find("2 x h100-sxm (80 GB), 2 replicas, trt-llm fp8");
    let ratio = two.capacity_tokens_per_s / one.capacity_tokens_per_s;
    assert!((1.95..2.1).contains(&ratio), "{ratio}: {one:?} {two:?}");
    // Half the load per replica: no slower per token than one node carrying it all.
    assert!(two.tpot_p90_s <= one.tpot_p90_s * 1.0001);
}
