//! Bad input gets a clear error naming the file, line, key and what was expected,
//! exit code 2, and never a panic.

use crate::common::{planner, scenario_file, stderr, BASE};

/// Runs `planner args` and returns stderr after checking exit 2 (invalid input).
fn input_error(args: &[&str]) -> String {
    let out = planner(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    err
}

/// Runs `simulate` on `text` and returns stderr after checking exit 2 and no panic.
fn rejected(text: &str) -> String {
    let path = scenario_file(text);
    let err = input_error(&["simulate", path.to_str().unwrap()]);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(path.to_str().unwrap()),
        "names the file: {err}"
    );
    err
}

#[test]
fn unknown_device_suggests_the_nearest_ids() {
    let err = rejected(&BASE.replace("m3-ultra-80c", "m3-ultra-80"));
    assert!(err.contains("cluster.groups.device"), "{err}");
    assert!(err.contains("unknown device `m3-ultra-80`"), "{err}");
    assert!(err.contains("did you mean m3-ultra-80c"), "{err}");
    // The device line is line 10 of BASE (which starts with a newline).
    assert!(err.contains(":10:"), "{err}");
}

#[test]
fn unknown_model_suggests_the_nearest_ids() {
    let err = rejected(&BASE.replace("llama-3.1-8b", "llama3.1-8b"));
    assert!(err.contains("unknown model `llama3.1-8b`"), "{err}");
    assert!(err.contains("llama-3.1-8b"), "{err}");
}

#[test]
fn unknown_key_names_line_and_column() {
    let err = rejected(&BASE.replace(
        "output_tokens = 16",
        "output_tokens = 16\noutput_tokenz = 3",
    ));
    assert!(err.contains("unknown field `output_tokenz`"), "{err}");
    // BASE opens with an empty line, so output_tokens is line 15 and the typo line 16.
    assert!(err.contains("line 16, column 1"), "{err}");
}

#[test]
fn wrong_type_is_reported_with_its_location() {
    let err = rejected(&BASE.replace("prompt_tokens = 1024", "prompt_tokens = \"many\""));
    // prompt_tokens is line 14; its value starts at column 17.
    assert!(err.contains("line 14, column 17"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn negative_and_zero_token_counts_are_rejected() {
    let err = rejected(&BASE.replace("prompt_tokens = 1024", "prompt_tokens = -5"));
    assert!(
        err.contains("workload.prompt_tokens` = -5: expected a positive integer"),
        "{err}"
    );
    let err = rejected(&BASE.replace("output_tokens = 16", "output_tokens = 0"));
    assert!(
        err.contains("workload.output_tokens` = 0: expected a positive integer"),
        "{err}"
    );
}

#[test]
fn a_request_longer_than_the_context_names_the_key_that_is_over() {
    // BASE runs llama-3.1-8b, whose context is 131,072 tokens.
    // A prompt of 200,000 is over on its own: the error points at prompt_tokens (line 14).
    let err = rejected(&BASE.replace("prompt_tokens = 1024", "prompt_tokens = 200000"));
    assert!(err.contains(":14:"), "{err}");
    assert!(err.contains("`workload.prompt_tokens` = 200000"), "{err}");
    assert!(err.contains("131072 tokens of context"), "{err}");
    // 131,000 + 16 fits; 131,000 + 100 does not, and the output is what tips it over.
    let err = rejected(
        &BASE
            .replace("prompt_tokens = 1024", "prompt_tokens = 131000")
            .replace("output_tokens = 16", "output_tokens = 100"),
    );
    assert!(err.contains("`workload.output_tokens` = 100"), "{err}");
}

#[test]
fn tensor_degree_must_divide_the_heads() {
    // Llama-3.1 8B has 32 heads and 8 KV heads: 3 divides neither.
    let text = BASE.replace("memory_gb = 256", "memory_gb = 256\ncount = 3")
        + "\n[parallelism]\ntensor = 3\n";
    let err = rejected(&text);
    assert!(err.contains("parallelism.tensor` = 3"), "{err}");
    assert!(err.contains("32 attention heads"), "{err}");
}

#[test]
fn pipeline_deeper_than_the_layers_is_rejected() {
    // 32 layers cannot make 40 stages.
    let text = BASE.replace("memory_gb = 256", "memory_gb = 256\ncount = 40")
        + "\n[parallelism]\npipeline = 40\n";
    let err = rejected(&text);
    assert!(err.contains("parallelism.pipeline` = 40"), "{err}");
    assert!(err.contains("32 layers"), "{err}");
}

#[test]
fn degrees_must_match_the_node_count() {
    let text = BASE.to_string() + "\n[parallelism]\ntensor = 2\n";
    let err = rejected(&text);
    assert!(
        err.contains("multiple of the product of the degrees"),
        "{err}"
    );
}

#[test]
fn memory_size_must_be_one_the_device_is_sold_with() {
    let err = rejected(&BASE.replace("memory_gb = 256", "memory_gb = 300"));
    assert!(err.contains("cluster.groups.memory_gb` = 300"), "{err}");
    assert!(err.contains("256"), "{err}");
}

#[test]
fn runtime_without_a_profile_for_the_device_is_rejected() {
    // TensorRT-LLM runs on NVIDIA GPUs only.
    let err = rejected(&BASE.replace("preset = \"mlx\"", "preset = \"trt-llm\""));
    assert!(
        err.contains("no profile for device family `apple`"),
        "{err}"
    );
}

#[test]
fn toml_syntax_error_is_invalid_input() {
    let err = rejected("[model\npreset = 1");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn missing_file_is_invalid_input() {
    let out = planner(&["simulate", "no/such/scenario.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such/scenario.toml"));
}

#[test]
fn calibrate_inputs_that_cannot_be_fitted_are_invalid_input() {
    // A runtime the suite does not fit, and a harness CSV missing a column.
    let err = input_error(&[
        "calibrate",
        "--runtime",
        "nope",
        "--from",
        "validation/measurements.csv",
    ]);
    assert!(err.contains("`--runtime` = nope"), "{err}");
    let dir = crate::common::temp_dir();
    let csv = dir.path().join("missing-column.csv");
    std::fs::write(&csv, "backend,device\ncpu,x\n").unwrap();
    let err = input_error(&["calibrate", csv.to_str().unwrap()]);
    assert!(err.contains("missing field `kernel`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn catalog_lookups_name_the_command_and_suggest_once() {
    let err = input_error(&["models", "show", "dbrx2"]);
    assert!(
        err.contains("`models show`: unknown model `dbrx2` (did you mean dbrx?)"),
        "{err}"
    );
    assert_eq!(err.matches("did you mean").count(), 1, "{err}");
    let err = input_error(&["hardware", "show", "m2-ultra"]);
    assert!(
        err.contains("did you mean m2-ultra-60c, m2-ultra-76c"),
        "{err}"
    );
    let err = input_error(&["runtimes", "show", "llama.cp"]);
    assert!(
        err.contains("`runtimes show`: unknown runtime `llama.cp` (did you mean llama.cpp?)"),
        "{err}"
    );
}

#[test]
fn calibrating_an_empty_measurement_file_is_an_input_error() {
    // A header and no rows: nothing to fit, so no profile and exit 2.
    let dir = crate::common::temp_dir();
    let path = dir.path().join("empty.csv");
    std::fs::write(
        &path,
        "backend,device,kernel,dtype,m,n,k,bytes,flops,repetitions,median_s,min_s,gb_s,tflops\n",
    )
    .unwrap();
    let out_toml = dir.path().join("empty.toml");
    let err = input_error(&[
        "calibrate",
        path.to_str().unwrap(),
        "--name",
        "empty",
        "--out",
        out_toml.to_str().unwrap(),
    ]);
    assert!(err.contains("no measurement rows"), "{err}");
    assert!(!out_toml.exists());
}

#[test]
fn a_static_batch_above_the_scenarios_own_cap_is_invalid_input() {
    // max_batch = 2 with batch = 4: the cap was read and then ignored (every number
    // the same as without it). The runtime's default (mlx: 1) does not cap a static
    // batch the scenario asks for.
    let base =
        std::fs::read_to_string(crate::common::repo().join("scenarios/exo-m3-ultra-alone.toml"))
            .unwrap()
            .replace("output_tokens = 32", "output_tokens = 32\nbatch = 4");
    let ok = crate::common::scenario_file(&base);
    let out = crate::common::planner(&["simulate", ok.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::common::stderr(&out)
    );
    let capped = crate::common::scenario_file(
        &base.replace("preset = \"mlx\"", "preset = \"mlx\"\nmax_batch = 2"),
    );
    let out = crate::common::planner(&["simulate", capped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::stderr(&out);
    assert!(
        err.contains("`workload.batch` = 4: expected at most runtime.max_batch (2)"),
        "{err}"
    );
}

#[test]
fn a_bad_measurement_names_the_files_line_and_column() {
    // S002's value, on line 3 of measurements.csv (CRLF line ends), made unreadable:
    // the error said "row at line 3: ... record 2 (line: 2, byte: 310): field 13".
    let temp = crate::common::temp_dir();
    let dir = temp.path();
    let source = crate::common::repo().join("validation");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let csv = dir.join("measurements.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.lines().nth(2).unwrap().starts_with("S002,"));
    std::fs::write(&csv, text.replacen(",2.87,s,", ",2.8x7,s,", 1)).unwrap();
    let suite = dir.join("suite.toml");
    let out = crate::common::planner(&["validate", "--suite", suite.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::common::stderr(&out);
    assert!(
        err.contains("measurements.csv: line 3: column `value`: invalid float literal"),
        "{err}"
    );
}

#[test]
fn a_runtime_must_load_the_weights_and_have_their_arithmetic() {
    let on = |runtime: &str, weights: &str, device: &str| {
        BASE.replace("weights = \"f16\"", &format!("weights = \"{weights}\""))
            .replace("preset = \"mlx\"", &format!("preset = \"{runtime}\""))
            .replace("m3-ultra-80c", device)
            .replace("memory_gb = 256", "memory_gb = 80")
    };
    // vLLM does not load llama.cpp's q4_0 (runtimes/vllm.toml weight_formats).
    let err = rejected(&on("vllm", "q4_0", "h100-sxm"));
    assert!(err.contains("model.weights"), "{err}");
    assert!(err.contains("`vllm` does not load `q4_0`"), "{err}");
    // TensorRT-LLM runs fp8 only on FP8 tensor cores: an H100 has them, an A100 not.
    let err = rejected(&on("trt-llm", "fp8", "a100-sxm"));
    assert!(err.contains("only in fp8 arithmetic"), "{err}");
    assert!(err.contains("`a100-sxm` does not have"), "{err}");
    let ok = planner(&[
        "simulate",
        scenario_file(&on("trt-llm", "fp8", "h100-sxm"))
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

/// The error of loading the shipped catalog with one edit, `from` -> `to`, in the file
/// of `id` among the files `files` picks (devices, runtimes, ...).
fn catalog_error(
    files: fn(&mut planner::CatalogSources) -> &mut Vec<planner::SourceText>,
    id: &str,
    from: &str,
    to: &str,
) -> String {
    let mut sources = planner::CatalogSources::read_dir(&crate::common::repo()).unwrap();
    let file = files(&mut sources).iter_mut().find(|s| s.id == id).unwrap();
    assert!(file.text.contains(from), "the shipped {id} has {from}");
    file.text = file.text.replacen(from, to, 1);
    planner::Catalog::from_sources(&sources)
        .unwrap_err()
        .to_string()
}

#[test]
fn a_runtime_naming_a_format_the_catalog_lacks_is_rejected_at_load() {
    let with = |from: &str, to: &str| catalog_error(|c| &mut c.runtimes, "trt-llm", from, to);
    // A misspelt native format (the last entry of native_formats, before the
    // prefill_chunk_tokens table).
    let err = with(
        "\"nvfp4\",\n]\n\n[prefill_chunk_tokens]",
        "\"nvpf4\",\n]\n\n[prefill_chunk_tokens]",
    );
    assert!(err.contains("trt-llm.toml"), "{err}");
    assert!(err.contains("native_formats"), "{err}");
    assert!(err.contains("nvpf4"), "{err}");
    // A native format the stack does not load.
    let err = with("native_formats = [", "native_formats = [\n    \"q4_0\",");
    assert!(err.contains("native_formats"), "{err}");
    assert!(err.contains("weight_formats also lists"), "{err}");
}

#[test]
fn a_catalog_devices_bad_values_and_links_are_named_at_their_line() {
    let with = |from: &str, to: &str| catalog_error(|c| &mut c.devices, "m2-ultra-76c", from, to);
    // Each edit, and where its value is in hardware/m2-ultra-76c.toml: line 11
    // (`bandwidth_gb_s = { value = ` is 27 characters); the 128 GB variant, line
    // 15, the second of three `capacity_gb` under one key (`  { capacity_gb = `
    // is 18); the last line, `links = [` then `"thunderbolt-4", ` (9 + 17).
    let err = with("value = 800.0", "value = 0.0");
    assert!(
        err.contains("m2-ultra-76c.toml:11:28: `memory.bandwidth_gb_s` = 0"),
        "{err}"
    );
    let err = with("capacity_gb = 128,", "capacity_gb = -128,");
    assert!(
        err.contains("m2-ultra-76c.toml:15:19: `memory.variants.capacity_gb` = -128"),
        "{err}"
    );
    // Two variants of one capacity: a scenario's `memory_gb = 192` could not tell
    // which price it meant. Placed at the first 192, line 15.
    let err = with("capacity_gb = 128,", "capacity_gb = 192,");
    assert!(
        err.contains("m2-ultra-76c.toml:15:19: `memory.variants.capacity_gb` = 192"),
        "{err}"
    );
    assert!(err.contains("expected each capacity once"), "{err}");
    // A misspelt link the node has ports for used to pass: the plan then never
    // joined these nodes by 10 GbE.
    let err = with("\"ethernet-10g\"]", "\"ethernet-10gb\"]");
    assert!(
        err.contains(":31:27: `connectivity.links`: unknown link `ethernet-10gb`"),
        "{err}"
    );
    assert!(err.contains("did you mean ethernet-10g"), "{err}");
}

#[test]
fn an_out_directory_is_made_before_the_work_and_removed_if_the_command_fails() {
    let dir = crate::common::temp_dir();
    // A plain file cannot be the report directory: the plan fails at once (exit 1),
    // before its search (which would print the ranked table on stdout).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = planner(&[
        "plan",
        "scenarios/plans/llama-3.1-70b-10rps.toml",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot create"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    // A directory made for a command that then fails is not left behind.
    let fresh = dir.path().join("report");
    let bad = scenario_file(&BASE.replace("output_tokens = 16", "output_tokens = 0"));
    let out = planner(&[
        "simulate",
        bad.to_str().unwrap(),
        "--out",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!fresh.exists());
}
