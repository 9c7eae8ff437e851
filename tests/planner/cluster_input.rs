//! The multi-node keys are validated like the rest of the contract: exit 2 with the
//! file, key and what was expected.

use crate::common::{planner, scenario_file, stderr};

const DBRX: &str = r#"
[model]
preset = "dbrx"
weights = "bf16"

[[cluster.groups]]
device = "m2-ultra-76c"
memory_gb = 192
count = 2

[cluster.network]
link = "ethernet-10g"

[parallelism]
expert = 2

[workload]
prompt_tokens = 64
output_tokens = 4
"#;

fn rejected(text: &str) -> String {
    let path = scenario_file(text);
    let out = planner(&["simulate", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    err
}

#[test]
fn unknown_topology_lists_the_choices() {
    let err = rejected(&DBRX.replace(
        "link = \"ethernet-10g\"",
        "link = \"ethernet-10g\"\ntopology = \"star\"",
    ));
    assert!(err.contains("cluster.network.topology"), "{err}");
    assert!(err.contains("\"switch\", \"direct\", \"ring\""), "{err}");
}

#[test]
fn explicit_placement_needs_one_list_per_node_and_every_expert() {
    let err = rejected(&DBRX.replace(
        "expert = 2",
        "expert = 2\nexpert_placement = [[0, 1, 2, 3, 4, 5, 6, 7]]",
    ));
    assert!(
        err.contains("one list of expert ids per expert-parallel node (2)"),
        "{err}"
    );
    let err = rejected(&DBRX.replace(
        "expert = 2",
        "expert = 2\nexpert_placement = [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14]]",
    ));
    assert!(err.contains("expert 15 is on no node"), "{err}");
    let err = rejected(&DBRX.replace(
        "expert = 2",
        "expert = 2\nexpert_placement = [[0, 16], [1]]",
    ));
    assert!(err.contains("expected expert ids from 0 to 15"), "{err}");
}

#[test]
fn bad_wired_memory_and_attention_values() {
    let err = rejected(&DBRX.replace(
        "[[cluster.groups]]",
        "[runtime]\nwired_memory = \"pinned\"\n\n[[cluster.groups]]",
    ));
    assert!(err.contains("runtime.wired_memory"), "{err}");
    let err = rejected(&DBRX.replace("expert = 2", "expert = 2\nattention = \"sharded\""));
    assert!(err.contains("\"replicated\", \"split\""), "{err}");
}

#[test]
fn an_explicit_placement_runs() {
    let path = scenario_file(&DBRX.replace(
        "expert = 2",
        "expert = 2\nexpert_placement = [[0, 1, 2, 3, 4, 5, 6, 7, 8], [8, 9, 10, 11, 12, 13, 14, 15]]",
    ));
    let out = planner(&["simulate", path.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn sweep_rejects_unknown_keys() {
    let out = planner(&[
        "sweep",
        "scenarios/dbrx-2x-m2-ultra-10gbe.toml",
        "--vary",
        "cluster.network.latency=1,2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown field `latency`"), "{err}");
    assert!(err.contains("--vary cluster.network.latency=1"), "{err}");
}

/// `simulate --set` runs what editing the file would: the shipped 2-node DBRX scenario
/// with `count` and `expert` set to 3 gives the same figures as a copy of the file
/// with those two lines changed, and its name lists the assignments.
#[test]
fn simulate_set_runs_what_editing_the_file_would() {
    let shipped = "scenarios/dbrx-2x-m2-ultra-10gbe.toml";
    let text = std::fs::read_to_string(shipped).unwrap();
    assert!(text.contains("count = 2") && text.contains("expert = 2\n"));
    let edited = scenario_file(
        &text
            .replace("count = 2", "count = 3")
            .replace("expert = 2\n", "expert = 3\n"),
    );
    let json = |args: &[&str]| -> serde_json::Value {
        let out = planner(args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let by_file = json(&["simulate", edited.to_str().unwrap(), "--format", "json"]);
    let by_set = json(&[
        "simulate",
        shipped,
        "--format",
        "json",
        "--set",
        "cluster.groups.0.count=3",
        "--set",
        "parallelism.expert=3",
    ]);
    for key in [
        "ttft_s",
        "tpot_s",
        "decode_tokens_per_s",
        "memory",
        "breakdown",
    ] {
        assert_eq!(by_set[key], by_file[key], "{key}");
    }
    let unchanged = json(&["simulate", shipped, "--format", "json"]);
    assert_ne!(by_set["tpot_s"], unchanged["tpot_s"]);
    assert_eq!(
        by_set["name"],
        "DBRX bf16 on 2 M2 Ultra, expert parallel over 10 GbE \
         (--set cluster.groups.0.count=3 parallelism.expert=3)"
    );
}

#[test]
fn simulate_set_rejects_unknown_keys_and_bad_assignments() {
    let shipped = "scenarios/dbrx-2x-m2-ultra-10gbe.toml";
    for (set, expected) in [
        ("cluster.network.latency=1", "unknown field `latency`"),
        ("cluster.groups.4.count=1", "no index 4"),
        ("latency_us", "expected KEY=VALUE"),
        ("workload.prompt_tokens=", "expected a value after `=`"),
        ("cluster.groups.0.count=0", "expected a positive integer"),
        ("model.preset=dbrxx", "unknown model `dbrxx`"),
    ] {
        let out = planner(&["simulate", shipped, "--set", set]);
        assert_eq!(out.status.code(), Some(2), "{set}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{set}: {err}");
        assert!(err.contains("--set"), "{set}: {err}");
        // No line and column: they would point into the edited text, which the user
        // never sees (`file (--set k=v):4:9:`).
        let located = err
            .match_indices("):")
            .any(|(i, _)| err[i + 2..].starts_with(|c: char| c.is_ascii_digit()));
        assert!(!located, "{set}: a location after the name: {err}");
    }
}
