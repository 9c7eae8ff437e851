//! `--out DIR` reports: every file is there, the SVGs (and the HTML page, which is
//! well-formed XML too) parse, the page needs nothing outside itself, and the same
//! inputs give the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{planner, stdout, temp_path};

/// Every file of a directory, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn run_ok(args: &[&str]) -> String {
    let out = planner(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        crate::common::stderr(&out)
    );
    stdout(&out)
}

/// Parses every SVG and the HTML page as XML, and checks the page is self-contained:
/// no scripts, no external references, every chart inline, every PNG the Markdown
/// links to present.
fn check_report(dir: &Path) {
    let all = files(dir);
    for name in ["report.md", "report.html"] {
        assert!(
            all.contains_key(name),
            "{name} missing in {}",
            dir.display()
        );
    }
    let svgs: Vec<&String> = all.keys().filter(|n| n.ends_with(".svg")).collect();
    assert!(!svgs.is_empty());
    for name in &svgs {
        let text = std::str::from_utf8(&all[*name]).unwrap();
        let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{name}");
        let png = name.replace(".svg", ".png");
        let bytes = all.get(&png).unwrap_or_else(|| panic!("{png} missing"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
    let html = std::str::from_utf8(&all["report.html"]).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("report.html: {e}"));
    let inline_svgs = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg")
        .count();
    assert_eq!(inline_svgs, svgs.len(), "every chart inline in report.html");
    for forbidden in [
        "<script",
        " src=",
        "href=",
        "@import",
        "url(",
        "<link",
        "@font-face",
    ] {
        assert!(
            !html.contains(forbidden),
            "report.html contains {forbidden}"
        );
    }
    let md = std::str::from_utf8(&all["report.md"]).unwrap();
    for name in &svgs {
        let png = name.replace(".svg", ".png");
        assert!(md.contains(&format!("]({png})")), "report.md links {png}");
    }
}

const EXO: [&str; 2] = [
    "scenarios/exo-spark-alone.toml",
    "scenarios/exo-m3-ultra-alone.toml",
];

const SMALL_PLAN: &str = r#"
name = "small report plan"
[model]
preset = "llama-3.1-8b"
weights = ["fp8", "q4_0"]
[workload]
prompt_tokens = 512
output_tokens = 64
requests_per_s = 2.0
[slo]
ttft_p90_s = 1.0
tpot_p90_s = 0.05
[search]
devices = ["h100-sxm", "dgx-spark"]
max_nodes = 2
verify_top = 1
"#;

#[test]
fn compare_writes_a_parseable_self_contained_report() {
    let dir = temp_path("compare");
    let text = run_ok(&[
        "compare",
        EXO[0],
        EXO[1],
        "--out",
        dir.to_str().unwrap(),
        "--reference-ratio",
        "1.5",
        "--reference",
        "a test figure",
    ]);
    assert!(text.contains("exo-m3-ultra-alone"), "{text}");
    assert!(
        text.contains("The reference (a test figure) gives 1.50x"),
        "{text}"
    );
    let all = files(&dir);
    for name in [
        "compare.csv",
        "compare.json",
        "cost-efficiency.png",
        "breakdown.svg",
    ] {
        assert!(all.contains_key(name), "{name}");
    }
    check_report(&dir);
    let md = std::str::from_utf8(&all["report.md"]).unwrap();
    // Every assumption is printed: cost defaults, prices with sources, power, seed.
    for needle in [
        "amortised over 3 years (default)",
        "Electricity \\$0.15/kWh (default)",
        "Utilisation 100% (default)",
        "price source",
        "Seed 7",
        "Runtime: `mlx`",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle}");
    }
}

#[test]
fn compare_ratio_is_each_tokens_per_kusd_over_the_first() {
    let text = run_ok(&["compare", EXO[0], EXO[1], "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = v["scenarios"].as_array().unwrap();
    let tpk = |i: usize| {
        s[i]["report"]["cost"]["tokens_per_s_per_kusd"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(s[0]["ratio_to_first"].as_f64(), Some(1.0));
    let r1 = s[1]["ratio_to_first"].as_f64().unwrap();
    assert!((r1 - tpk(1) / tpk(0)).abs() < 1e-12);
    // The headline's ratio is the product of its two factors.
    let h = &v["headline"];
    let product = h["capital_factor"].as_f64().unwrap() * h["throughput_factor"].as_f64().unwrap();
    assert!((h["ratio"].as_f64().unwrap() / product - 1.0).abs() < 1e-9);
    let csv = run_ok(&["compare", EXO[0], EXO[1], "--format", "csv"]);
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("scenario,path,name,fits,"));
}

#[test]
fn reports_are_byte_identical_when_regenerated() {
    let plan = crate::common::scenario_file(SMALL_PLAN);
    let mut runs = Vec::new();
    let mut plan_dirs = Vec::new();
    for i in 0..2 {
        let compare = temp_path(&format!("again-compare-{i}"));
        run_ok(&[
            "compare",
            EXO[0],
            EXO[1],
            "--out",
            compare.to_str().unwrap(),
        ]);
        let plan_dir = temp_path(&format!("again-plan-{i}"));
        run_ok(&[
            "plan",
            plan.to_str().unwrap(),
            "--out",
            plan_dir.to_str().unwrap(),
        ]);
        runs.push((files(&compare), files(&plan_dir)));
        plan_dirs.push(plan_dir);
    }
    for (which, a, b) in [
        ("compare", &runs[0].0, &runs[1].0),
        ("plan", &runs[0].1, &runs[1].1),
    ] {
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{which}"
        );
        for (name, bytes) in a {
            assert!(bytes == &b[name], "{which}/{name} differs between runs");
        }
    }
    let all = &runs[0].1;
    for name in [
        "ranked.csv",
        "pareto.csv",
        "verified.csv",
        "pareto.png",
        "cost-efficiency.svg",
        "throughput-nodes.png",
        "breakdown.png",
    ] {
        assert!(all.contains_key(name), "plan report lacks {name}");
    }
    check_report(&plan_dirs[0]);
}

#[test]
fn a_plan_reports_options_as_scenarios_that_rerun_its_engine_check() {
    let plan = crate::common::scenario_file(SMALL_PLAN);
    let dir = temp_path("plan-options");
    let json = run_ok(&["plan", plan.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ranked = v["ranked"].as_array().unwrap();
    // The top option is the first the re-check confirmed (those it found missing a
    // target left the ranking).
    let checked = v["verified"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["description"] == ranked[0]["description"])
        .expect("the top option was re-checked");
    assert_eq!(checked["meets_slo"], true, "{checked}");
    run_ok(&[
        "plan",
        plan.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    let all = files(&dir);
    // One file per option of the ranked table (at most 15), by rank.
    let shown = ranked.len().min(15);
    for rank in 1..=shown {
        assert!(
            all.contains_key(&format!("option-{rank:02}.toml")),
            "{rank}"
        );
    }
    assert!(!all.contains_key(&format!("option-{:02}.toml", shown + 1)));
    // The top option's file is its re-check's run: the engine on it gives the
    // re-check's figures exactly.
    let option = dir.join("option-01.toml");
    let text = std::str::from_utf8(&all["option-01.toml"]).unwrap();
    assert!(
        text.contains(ranked[0]["description"].as_str().unwrap()),
        "{text}"
    );
    let sim: serde_json::Value = serde_json::from_str(&run_ok(&[
        "simulate",
        option.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    let serving = &sim["serving"];
    assert_eq!(serving["ttft_s"]["p90"], checked["ttft_p90_s"], "{serving}");
    assert_eq!(serving["tpot_s"]["p90"], checked["tpot_p90_s"], "{serving}");
    // The breakdown's prefill is one prompt's: the top option's TTFT alone at batch 1,
    // not the batch the load needs (several prompts at once).
    let md = std::str::from_utf8(&all["report.md"]).unwrap();
    assert!(md.contains("| prefill (one prompt) |"), "{md}");
    // How close the model came: a row per device and runtime of the options shown,
    // counting the cases `planner validate` ran on that pair (not on the device alone:
    // the Spark's llama.cpp and MLX cases differ).
    let validate: serde_json::Value =
        serde_json::from_str(&run_ok(&["validate", "--format", "json"])).unwrap();
    let cases = validate["cases"].as_array().unwrap();
    let section = md
        .split("### How close the model came on these devices")
        .nth(1)
        .expect("the report says how close the model came")
        .split("\n### ")
        .next()
        .unwrap();
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert!(!rows.is_empty(), "{section}");
    for row in &rows {
        let (device, runtime, n) = (row[1].trim_matches('`'), row[2], row[4]);
        let on_pair = cases
            .iter()
            .filter(|c| c["device"] == device && c["runtime"] == runtime)
            .count();
        assert_eq!(n, on_pair.to_string(), "{device} {runtime}: {section}");
    }
    assert!(
        rows.iter().any(|r| r[4] != "0"),
        "some pair has published cases: {section}"
    );
}

#[test]
fn simulate_report_of_a_serving_run_keeps_its_files_and_adds_the_report() {
    let dir = temp_path("serving");
    run_ok(&[
        "simulate",
        "scenarios/serving-disaggregated-poisson.toml",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let all = files(&dir);
    for name in [
        "summary.json",
        "requests.csv",
        "queue.csv",
        "timeline.png",
        "timeline.svg",
        "latency-cdf.png",
        "breakdown.png",
        "roofline-dgx-spark.png",
        "roofline-m3-ultra-80c.svg",
        "layers.csv",
        "report.csv",
    ] {
        assert!(all.contains_key(name), "{name}");
    }
    check_report(&dir);
}

#[test]
fn sweep_of_two_keys_draws_the_heatmap() {
    let dir = temp_path("sweep");
    run_ok(&[
        "sweep",
        "scenarios/dbrx-4x-m2-ultra-10gbe.toml",
        "--vary",
        "cluster.network.latency_us=250,125",
        "--vary",
        "cluster.network.bandwidth_gb_s=1.18,2.36",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let all = files(&dir);
    for name in ["heatmap.svg", "throughput.png", "latency.png", "sweep.csv"] {
        assert!(all.contains_key(name), "{name}");
    }
    let csv = std::str::from_utf8(&all["sweep.csv"]).unwrap();
    assert_eq!(csv.lines().count(), 5);
    check_report(&dir);
}

/// The comparisons `scripts/regenerate-reports.sh` writes (same arguments).
fn committed_comparisons() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "dbrx-mac-vs-h100",
            vec![
                "scenarios/dbrx-8x-h100-sxm.toml",
                "scenarios/dbrx-2x-m2-ultra-10gbe.toml",
                "scenarios/dbrx-3x-m2-ultra-10gbe.toml",
                "scenarios/dbrx-4x-m2-ultra-10gbe.toml",
                "--title",
                "DBRX bf16: Mac Studio cluster against an 8x H100 SXM server",
                "--reference-ratio",
                "1.15",
                "--reference",
                "arXiv 2506.23635: the Mac Studio cluster is 1.15x more cost-efficient than an NVIDIA H100 AI supercomputer",
            ],
        ),
        (
            "exo-spark-mac",
            vec![
                "scenarios/exo-disaggregated.toml",
                "scenarios/exo-spark-alone.toml",
                "scenarios/exo-m3-ultra-alone.toml",
                "--title",
                "Llama-3.1 8B: DGX Spark + M3 Ultra (EXO) against each alone",
            ],
        ),
    ]
}

#[test]
fn committed_comparison_reports_are_what_the_command_writes() {
    // Text files only: PNG rasterisation may differ in the last bit across
    // platforms; the script regenerates everything.
    for (name, args) in committed_comparisons() {
        let dir = temp_path(&format!("committed-{name}"));
        let mut all = vec!["compare"];
        all.extend(args.iter().copied());
        all.extend(["--out", dir.to_str().unwrap()]);
        run_ok(&all);
        let committed = crate::common::repo().join("reports").join(name);
        for file in ["report.md", "compare.csv", "compare.json"] {
            let fresh = std::fs::read_to_string(dir.join(file)).unwrap();
            let old = std::fs::read_to_string(committed.join(file)).unwrap_or_default();
            assert!(
                fresh == old,
                "reports/{name}/{file} is stale: run scripts/regenerate-reports.sh"
            );
        }
    }
}

#[test]
fn readme_quotes_the_dbrx_headline() {
    let report =
        std::fs::read_to_string(crate::common::repo().join("reports/dbrx-mac-vs-h100/report.md"))
            .unwrap();
    let headline: Vec<String> = report
        .split("## Headline\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n## ").next())
        .expect("a headline section")
        .split("\n\n")
        .map(|p| p.replace("\\$", "$"))
        .collect();
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).unwrap();
    let quoted: Vec<String> = readme
        .split("<!-- dbrx-headline:start -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- dbrx-headline:end -->").next())
        .expect("README has the DBRX headline block")
        .split("\n>\n")
        .map(|p| p.trim().trim_start_matches("> ").to_string())
        .collect();
    assert_eq!(
        quoted, headline,
        "README's DBRX excerpt differs from the report"
    );
}

#[test]
fn readme_quotes_the_plan_report() {
    // The rows the README quotes are the committed plan report's (which
    // scripts/regenerate-reports.sh rewrites).
    let report =
        std::fs::read_to_string(crate::common::repo().join("reports/plan-llama-3.1-70b/report.md"))
            .unwrap();
    let readme = std::fs::read_to_string(crate::common::repo().join("README.md")).unwrap();
    let excerpt = readme
        .split("<!-- plan-excerpt:start -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- plan-excerpt:end -->").next())
        .expect("README has the plan excerpt");
    let rows: Vec<&str> = excerpt.lines().filter(|l| l.starts_with('|')).collect();
    assert!(rows.len() >= 8, "{excerpt}");
    for row in rows {
        assert!(
            report.lines().any(|l| l == row),
            "README row not in the plan report: {row}"
        );
    }
}

#[test]
fn summary_json_is_what_format_json_prints_and_the_report_lists_it() {
    // summary.json lacked `band`, which --format json always has, and report.md's
    // list of files left it out.
    for scenario in [
        "scenarios/exo-spark-alone.toml",
        "scenarios/cpu-decode-llama-3.2-3b.toml",
        "scenarios/serving-trace-h100-vllm.toml",
    ] {
        let dir = temp_path(&format!(
            "summary-{}",
            scenario.trim_start_matches("scenarios/")
        ));
        run_ok(&["simulate", scenario, "--out", dir.to_str().unwrap()]);
        let printed = run_ok(&["simulate", scenario, "--format", "json"]);
        let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        assert_eq!(summary, printed, "{scenario}");
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(report.contains("`summary.json`"), "{scenario}");
    }
}
