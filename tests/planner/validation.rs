//! The validation suite: every measurement row is a case or listed with a reason; the
//! accuracy gate; runtime profiles regenerate byte for byte from the measurements.

use std::collections::BTreeMap;

use planner::runtime::RuntimeFile;
use planner::runtime_fit::{fit_runtime, render_profile};
use planner::validate::measurements::parse_measurements;
use planner::validate::{
    build_suite, evaluate, parse_suite, run_scenario, summarise, Case, SuiteFile, Unmapped,
};

use crate::common::{catalog, planner, repo, stderr, stdout};

const REGENERATE: &str =
    "planner calibrate --runtime all --from validation/measurements.csv --write";

fn suite() -> (SuiteFile, Vec<Case>, Vec<Unmapped>, usize) {
    let dir = repo().join("validation");
    let text = std::fs::read_to_string(dir.join("suite.toml")).unwrap();
    let suite = parse_suite("validation/suite.toml", &text).unwrap();
    let csv = std::fs::read_to_string(dir.join(&suite.measurements)).unwrap();
    let rows = parse_measurements("validation/measurements.csv", &csv).unwrap();
    let mut files = BTreeMap::new();
    for s in &suite.scenario_rows {
        if let Ok(t) = std::fs::read_to_string(dir.join(&s.scenario)) {
            files.insert(s.scenario.clone(), t);
        }
    }
    let (cases, unmapped) = build_suite(&rows, &suite, &catalog(), &files);
    (suite, cases, unmapped, rows.len())
}

#[test]
fn every_row_is_a_case_or_listed_with_a_reason() {
    let (_, cases, unmapped, rows) = suite();
    assert_eq!(cases.len() + unmapped.len(), rows);
    for u in &unmapped {
        assert!(!u.reason.is_empty(), "{}", u.id);
    }
}

#[test]
fn accuracy_gate_and_targets_hold() {
    let (suite, cases, _, _) = suite();
    let results = evaluate(&cases, &run_scenario);
    let summary = summarise(&results);
    let check = summary.check.median_abs_pct_error.unwrap();
    assert!(
        check <= suite.gate.check_median_abs_pct_error,
        "check-half median error {check:.1}% above the committed gate {}%",
        suite.gate.check_median_abs_pct_error
    );
    // Issue targets: check p90 <= 30%, fit median <= 10%.
    let p90 = summary.check.p90_abs_pct_error.unwrap();
    assert!(p90 <= 30.0, "check-half p90 {p90:.1}%");
    let fit = summary.fit.median_abs_pct_error.unwrap();
    assert!(fit <= 10.0, "fit-half median {fit:.1}%");
    // Every case can be told apart by what the table shows of it (the same device,
    // model and metric recur with other weights, batches or depths).
    let mut seen = std::collections::BTreeSet::new();
    for r in &results {
        let shown = (
            &r.device,
            &r.runtime,
            &r.model,
            &r.weights,
            r.workload(),
            &r.metric,
        );
        assert!(
            seen.insert(shown.clone()),
            "{} looks like another case: {shown:?}",
            r.id
        );
    }
}

#[test]
fn fitted_runtime_profiles_regenerate_from_the_measurements() {
    let (suite, cases, _, _) = suite();
    for spec in &suite.fit {
        let fit = fit_runtime(
            &spec.runtime,
            &spec.family_params,
            &spec.joint_params,
            &cases,
            &run_scenario,
            &|_| {},
        )
        .unwrap();
        let path = repo()
            .join("runtimes")
            .join(format!("{}.toml", spec.runtime));
        let committed = std::fs::read_to_string(&path).unwrap();
        let file: RuntimeFile = toml::from_str(&committed).unwrap();
        let regenerated = render_profile(&file, &fit, REGENERATE).unwrap();
        assert!(
            committed == regenerated,
            "{} differs from what `{REGENERATE}` writes",
            path.display()
        );
    }
}

#[test]
fn readme_accuracy_table_is_the_commands_output() {
    let out = crate::common::planner(&["validate", "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(0));
    let table = crate::common::stdout(&out);
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("<!-- accuracy:start -->\n")
        .expect("start marker")
        + 24;
    let end = readme.find("<!-- accuracy:end -->").expect("end marker");
    assert_eq!(
        &readme[start..end],
        table,
        "README accuracy table is stale: regenerate it"
    );
}

#[test]
fn show_case_prints_a_scenario_that_simulates_and_refuses_unknown_ids() {
    let o = crate::common::planner(&["validate", "--show-case", "V025"]);
    assert!(o.status.success(), "{}", crate::common::stderr(&o));
    let text = crate::common::stdout(&o);
    // V025 is llama.cpp's pp512 of LLaMA-2 7B F16 on the 76-core M2 Ultra.
    assert!(text.starts_with("# case V025 (check half)"), "{text}");
    assert!(text.contains("preset = \"llama-2-7b\""), "{text}");
    let file = crate::common::scenario_file(&text);
    let o = crate::common::planner(&["simulate", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", crate::common::stderr(&o));

    let o = crate::common::planner(&["validate", "--show-case", "V999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        crate::common::stderr(&o).contains("`--show-case` = V999"),
        "{}",
        crate::common::stderr(&o)
    );
}

#[test]
fn readme_tensor_parallel_table_is_the_suites_output() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let (_, cases, _, _) = suite();
    let thousands = |v: f64| {
        let n = v.round() as u64;
        if n >= 1000 {
            format!("{},{:03}", n / 1000, n % 1000)
        } else {
            n.to_string()
        }
    };
    for (label, first, last) in [
        ("2x H100, Llama-3.3 70B FP8", 366, 375),
        ("8x H100, Llama-3.1 405B FP8", 396, 405),
    ] {
        let ids: Vec<String> = (first..=last).map(|i| format!("V{i}")).collect();
        let picked: Vec<_> = cases
            .iter()
            .filter(|c| ids.contains(&c.id))
            .cloned()
            .collect();
        assert_eq!(picked.len(), 10, "{label}");
        let results = evaluate(&picked, &run_scenario);
        let mut errors: Vec<f64> = results.iter().map(|r| r.error_pct.unwrap()).collect();
        errors.sort_by(f64::total_cmp);
        let mut abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let median = |v: &[f64]| (v[4] + v[5]) / 2.0;
        // The first row of each table is 128/128.
        let r = results
            .iter()
            .find(|r| r.id == format!("V{first}"))
            .unwrap();
        let row = format!(
            "| {label} (V{first}-V{last}) | {} tok/s | {} tok/s | {:.1}% | {:+.1}% |",
            thousands(r.measured),
            thousands(r.predicted.unwrap()),
            median(&abs),
            median(&errors)
        );
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
}

#[test]
fn disaggregated_cases_belong_to_the_device_of_their_phase_and_bias_is_on_speed() {
    let out = crate::common::planner(&["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(&crate::common::stdout(&out)).unwrap();
    let case = |id: &str| {
        json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no case {id}"))
            .clone()
    };
    // EXO's split: the TTFT is the Spark's prefill, the generation the Mac's, the total
    // both (S005 was credited to the Mac).
    assert_eq!(case("S005")["device"], "dgx-spark");
    assert_eq!(case("S006")["device"], "m3-ultra-80c");
    assert_eq!(case("S007")["device"], "dgx-spark+m3-ultra-80c");
    // A time predicted 13.0% long is a speed 1 / 1.13 - 1 = 11.5% short; a rate's
    // speed error is its error.
    for c in json["cases"].as_array().unwrap() {
        let (m, p) = (
            c["measured"].as_f64().unwrap(),
            c["predicted"].as_f64().unwrap(),
        );
        let speed = c["speed_error_pct"].as_f64().unwrap();
        let expected = if c["unit"] == "s" {
            (m / p - 1.0) * 100.0
        } else {
            (p / m - 1.0) * 100.0
        };
        assert!((speed - expected).abs() < 1e-9, "{}", c["id"]);
    }
}

#[test]
fn runtimes_list_shows_each_familys_efficiencies_and_what_was_fitted() {
    let out = crate::common::stdout(&crate::common::planner(&["runtimes", "list"]));
    // The llama.cpp Apple row carries the profile's values (read here from the file)
    // and all five fitted; TensorRT-LLM's three of five (the suite fits its compute and
    // bandwidth fractions and host time, not attention or dispatch); MLX's none.
    let text = std::fs::read_to_string(repo().join("runtimes/llama.cpp.toml")).unwrap();
    let profile: toml::Value = toml::from_str(&text).unwrap();
    let value = |k: &str| profile["families"]["apple"][k]["value"].as_float().unwrap();
    let row = |runtime: &str, family: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|c| c.len() > 2 && c[0] == runtime && c[1] == family)
            .unwrap_or_else(|| panic!("no {runtime} {family} row in\n{out}"))
    };
    let apple = row("llama.cpp", "apple");
    assert_eq!(apple[2], format!("{:.3}", value("compute_fraction")));
    assert_eq!(apple[3], format!("{:.3}", value("bandwidth_fraction")));
    assert_eq!(apple[4], format!("{:.3}", value("attention_fraction")));
    assert_eq!(apple[8..], ["5", "of", "5"]);
    assert_eq!(row("trt-llm", "nvidia")[8..], ["3", "of", "5"]);
    assert_eq!(row("mlx", "apple")[8..], ["0", "of", "5"]);

    let show = crate::common::stdout(&crate::common::planner(&["runtimes", "show", "llama.cpp"]));
    assert!(show.starts_with("# runtime `llama.cpp`"), "{show}");
    assert!(
        show.contains("[families.apple.attention_heads_per_tile]"),
        "{show}"
    );
}

/// `calibrate --runtime --progress` off a terminal prints the fit as plain lines: the
/// start, each Levenberg-Marquardt iteration with an RMS log error that never rises
/// (a step is taken only when it lowers the error), and the end; without the flag
/// stderr stays quiet.
#[test]
fn runtime_calibration_shows_its_progress_when_asked() {
    let args = [
        "calibrate",
        "--runtime",
        "llama.cpp",
        "--from",
        "validation/measurements.csv",
    ];
    let quiet = planner(&args);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert!(!stderr(&quiet).contains("calibrate:"), "{}", stderr(&quiet));

    let out = planner(&[&args[..], &["--progress"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("calibrate:"))
        .collect();
    assert!(
        lines[0].starts_with("calibrate: llama.cpp: fitting "),
        "{err}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("calibrate: llama.cpp: done ("),
        "{err}"
    );
    let rms: Vec<f64> = lines
        .iter()
        .filter(|l| l.contains(": iteration "))
        .map(|l| {
            let after = l.split("RMS log error ").nth(1).unwrap();
            after.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(rms.len() >= 2, "{err}");
    assert!(rms.windows(2).all(|w| w[1] <= w[0]), "{rms:?}");
    // The stdout table is the same with or without progress.
    assert_eq!(stdout(&out), stdout(&quiet));
}
