//! llama-bench results as measurement rows, so that `planner calibrate --runtime
//! llama.cpp --from FILE` can fit the runtime to what a user already measured.
//!
//! llama-bench writes one record per test with `-o csv`, `-o json` (an array) or
//! `-o jsonl` (one object per line). The fields read here are the ones every
//! version since 2024 writes: `model_type` (e.g. "llama 7B Q4_0"), `model_size`
//! (bytes), `model_n_params`, `n_prompt`, `n_gen`, `avg_ts` (tokens/s), and where
//! present `n_depth` (context already in the cache, 2025 builds), `n_ubatch`, `type_k`,
//! `type_v` and `build_commit`. Other fields are ignored.
//!
//! A record does not say which catalog device and model it ran on in a form the
//! catalog knows (`gpu_info` is free text, and a GGUF can hold any fine-tune), so the
//! caller names them. The model is checked against the record's parameter count. The
//! weight format comes from the quantisation label at the end of `model_type` (ggml's
//! file-type names), or from the caller; bits per weight are the record's own
//! `model_size x 8 / model_n_params`. `pp` tests become prefill rows, `tg` tests
//! decode rows, at the record's depth; combined `pg` tests and quantised KV caches are
//! listed as not imported, with the reason.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::measurements::Measurement;
use super::suite::{MicroBatch, SplitRule, SuiteFile, Unmapped};
use crate::catalog::Catalog;
use crate::error::InputError;

/// One llama-bench record (the fields the import reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LlamaBenchRow {
    pub model_type: String,
    pub model_size: f64,
    pub model_n_params: f64,
    pub n_prompt: u64,
    pub n_gen: u64,
    #[serde(default)]
    pub n_depth: u64,
    #[serde(default)]
    pub n_ubatch: Option<u64>,
    #[serde(default)]
    pub type_k: Option<String>,
    #[serde(default)]
    pub type_v: Option<String>,
    #[serde(default)]
    pub build_commit: Option<String>,
    pub avg_ts: f64,
}

/// Whether `text` looks like llama-bench output: its header (CSV) or first record
/// (JSON) has `model_type` and `avg_ts`.
pub fn looks_like_llama_bench(text: &str) -> bool {
    let head: String = text.chars().take(4096).collect();
    head.contains("model_type") && head.contains("avg_ts")
}

/// Parses llama-bench `-o csv`, `-o json` or `-o jsonl` text from `file`.
pub fn parse(file: &str, text: &str) -> Result<Vec<LlamaBenchRow>, InputError> {
    let trimmed = text.trim_start();
    let error = |message: String| InputError::Parse {
        file: file.to_string(),
        message,
    };
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).map_err(|e| error(format!("llama-bench JSON: {e}")));
    }
    if trimmed.starts_with('{') {
        return trimmed
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| error(format!("llama-bench JSON line {}: {e}", i + 1)))
            })
            .collect();
    }
    crate::error::read_csv_records(&csv::ReaderBuilder::new(), text)
        .map_err(|e| error(format!("llama-bench CSV {e}")))
}

/// ggml's file-type name (the end of `model_type`) to a weight-format id.
pub fn format_of_label(label: &str) -> Option<&'static str> {
    Some(match label.trim() {
        "all F32" | "F32" => "f32",
        "F16" => "f16",
        "BF16" => "bf16",
        "Q8_0" => "q8_0",
        "Q6_K" => "q6_k",
        "Q5_K - Medium" => "q5_k_m",
        "Q4_0" => "q4_0",
        "Q4_K - Medium" => "q4_k_m",
        "MXFP4" | "MXFP4 MoE" => "mxfp4",
        _ => return None,
    })
}

/// "llama 7B Q4_K - Medium" -> "Q4_K - Medium": what follows the architecture and the
/// size.
fn quant_label(model_type: &str) -> String {
    model_type
        .split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the caller says the records ran on.
#[derive(Debug, Clone)]
pub struct Import {
    /// Catalog device id.
    pub device: String,
    /// Catalog model id.
    pub model: String,
    /// Weight format id, overriding the label in `model_type`.
    pub weights: Option<String>,
}

/// Records turned into measurement rows.
#[derive(Debug, Clone)]
pub struct Imported {
    /// Ids `LB001`, ... (the record's position); framework `llama.cpp`; source
    /// `llama-bench FILE (build ..., ub N)`.
    pub rows: Vec<Measurement>,
    /// Records that are not imported, with the reason.
    pub skipped: Vec<Unmapped>,
    /// One rule per distinct `n_ubatch`: the rows' micro-batch, matched by source.
    pub micro_batch: Vec<MicroBatch>,
}

/// The bits per weight a GGUF file's `model_size` can give: its types hold 1.5625
/// (IQ1_S) to 32 (F32) bits per weight, scales included (ggml-common.h block
/// layouts: `block_iq1_s` is 50 bytes per 256 weights), and a file's other tensors
/// only raise the mean. The range is those ends with a margin (an allowance).
const GGUF_BITS_PER_WEIGHT: std::ops::RangeInclusive<f64> = 1.5..=33.0;

/// The records as measurement rows, and the records that are not imported.
pub fn to_measurements(
    rows: &[LlamaBenchRow],
    file: &str,
    import: &Import,
    catalog: &Catalog,
) -> Result<Imported, InputError> {
    let invalid =
        |key: &str, value: &str, expected: String| InputError::invalid(file, key, value, expected);
    if !catalog.devices.contains_key(&import.device) {
        return Err(invalid(
            "--device",
            &import.device,
            "a device id of the catalog (planner hardware list)".to_string(),
        ));
    }
    let model = catalog.models.get(&import.model).ok_or_else(|| {
        invalid(
            "--model",
            &import.model,
            "a model id of the catalog (planner models list)".to_string(),
        )
    })?;
    if let Some(w) = &import.weights {
        if !catalog.formats.contains_key(w) {
            return Err(invalid(
                "--weights",
                w,
                "a weight format id of formats/weights.toml".to_string(),
            ));
        }
    }
    let catalog_params = model.total_params() as f64;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut micro_batch: Vec<MicroBatch> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let id = format!("LB{:03}", i + 1);
        let mut skip = |reason: String| {
            skipped.push(Unmapped {
                id: id.clone(),
                reason,
            })
        };
        // llama-bench counts every tensor of the GGUF; the catalog's count is derived
        // from the architecture. Within 5% is the same model.
        if (r.model_n_params / catalog_params - 1.0).abs() > 0.05 {
            return Err(invalid(
                "--model",
                &import.model,
                format!(
                    "a model with about {:.3} B parameters, as record {} (`{}`) has; `{}` has \
                     {:.3} B",
                    r.model_n_params / 1e9,
                    i + 1,
                    r.model_type,
                    import.model,
                    catalog_params / 1e9
                ),
            ));
        }
        let label = quant_label(&r.model_type);
        let Some(format) = import
            .weights
            .clone()
            .or_else(|| format_of_label(&label).map(str::to_string))
        else {
            skip(format!(
                "weight type `{label}` has no catalog format; give --weights"
            ));
            continue;
        };
        let kv: Vec<&str> = [&r.type_k, &r.type_v]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if kv.iter().any(|t| *t != "f16") {
            skip(format!(
                "KV cache type {} is not imported (f16 only)",
                kv.join("/")
            ));
            continue;
        }
        let depth = if r.n_depth > 0 {
            format!(" @ depth {}", r.n_depth)
        } else {
            String::new()
        };
        let (phase, metric) = match (r.n_prompt, r.n_gen) {
            (p, 0) if p > 0 => ("prefill", format!("pp{p}{depth}")),
            (0, g) if g > 0 => ("decode", format!("tg{g}{depth}")),
            (p, g) => {
                skip(format!(
                    "combined test (n_prompt {p}, n_gen {g}) is not imported"
                ));
                continue;
            }
        };
        if !(r.avg_ts.is_finite() && r.avg_ts > 0.0) {
            skip(format!("avg_ts {} is not a rate", r.avg_ts));
            continue;
        }
        let bits = r.model_size * 8.0 / r.model_n_params;
        if !GGUF_BITS_PER_WEIGHT.contains(&bits) {
            skip(format!(
                "model_size {:e} bytes is {bits:.3e} bits per weight for {:e} parameters, \
                 not a GGUF size ({} to {} bits)",
                r.model_size,
                r.model_n_params,
                GGUF_BITS_PER_WEIGHT.start(),
                GGUF_BITS_PER_WEIGHT.end()
            ));
            continue;
        }
        let build = r.build_commit.as_deref().unwrap_or("unknown");
        let ub = r.n_ubatch.map_or_else(String::new, |u| format!(", ub {u}"));
        if let Some(u) = r.n_ubatch {
            if !micro_batch.iter().any(|m| m.tokens == u) {
                micro_batch.push(MicroBatch {
                    source_contains: format!(", ub {u})"),
                    tokens: u,
                    reason: "the record's n_ubatch".to_string(),
                });
            }
        }
        out.push(Measurement {
            id,
            hardware: import.device.clone(),
            nodes: "1".to_string(),
            model: import.model.clone(),
            params_b: format!("{}", r.model_n_params / 1e9),
            active_params_b: String::new(),
            dtype: format,
            bits_per_weight: format!("{bits:.2}"),
            phase: phase.to_string(),
            prompt_tokens: r.n_prompt.to_string(),
            gen_tokens: r.n_gen.to_string(),
            batch: "1".to_string(),
            metric,
            value: r.avg_ts,
            unit: "tok/s".to_string(),
            framework: "llama.cpp".to_string(),
            source: format!("llama-bench {file} (build {build}{ub})"),
        });
    }
    Ok(Imported {
        rows: out,
        skipped,
        micro_batch,
    })
}

/// The suite for imported rows: the catalog ids map to themselves, every row is in the
/// fit half, and each row's micro-batch is its record's `n_ubatch`.
pub fn import_suite(base: &SuiteFile, imported: &Imported) -> SuiteFile {
    let rows = &imported.rows;
    let mut suite = base.clone();
    let identity = |map: &mut BTreeMap<String, String>, key: &str| {
        map.insert(key.to_string(), key.to_string());
    };
    for r in rows {
        identity(&mut suite.hardware, &r.hardware);
        identity(&mut suite.models, &r.model);
        identity(&mut suite.formats, &r.dtype);
    }
    suite.split.fit = vec![SplitRule {
        source_contains: "llama-bench ".to_string(),
        metric_contains: None,
        model: None,
        hardware: None,
    }];
    suite.excluded.clear();
    suite.scenario_rows.clear();
    suite.kv_cache.clear();
    suite.micro_batch = imported.micro_batch.clone();
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "\
build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads,type_k,type_v,n_gpu_layers,flash_attn,n_prompt,n_gen,n_depth,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts
\"8e672ef\",\"1\",\"Apple M2 Ultra\",\"Apple M2 Ultra\",\"Metal,BLAS\",\"llama-2-7b.Q4_0.gguf\",\"llama 7B Q4_0\",\"3825065984\",\"6738415616\",\"2048\",\"512\",\"16\",\"f16\",\"f16\",\"99\",\"0\",\"512\",\"0\",\"0\",\"2024-01-01T00:00:00Z\",\"413000000\",\"1000\",\"1238.48\",\"2.0\"
\"8e672ef\",\"1\",\"Apple M2 Ultra\",\"Apple M2 Ultra\",\"Metal,BLAS\",\"llama-2-7b.Q4_0.gguf\",\"llama 7B Q4_0\",\"3825065984\",\"6738415616\",\"2048\",\"512\",\"16\",\"f16\",\"f16\",\"99\",\"0\",\"0\",\"128\",\"2048\",\"2024-01-01T00:00:00Z\",\"1357000000\",\"1000\",\"94.27\",\"0.1\"
\"8e672ef\",\"1\",\"Apple M2 Ultra\",\"Apple M2 Ultra\",\"Metal,BLAS\",\"llama-2-7b.Q4_0.gguf\",\"llama 7B Q4_0\",\"3825065984\",\"6738415616\",\"2048\",\"512\",\"16\",\"q8_0\",\"q8_0\",\"99\",\"0\",\"0\",\"128\",\"0\",\"2024-01-01T00:00:00Z\",\"1357000000\",\"1000\",\"90.0\",\"0.1\"
";

    #[test]
    fn csv_json_and_jsonl_records_parse_alike() {
        let rows = parse("b.csv", CSV).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].model_type, "llama 7B Q4_0");
        assert_eq!(
            (rows[0].n_prompt, rows[0].n_gen, rows[0].n_depth),
            (512, 0, 0)
        );
        assert_eq!(rows[1].n_depth, 2048);
        assert_eq!(rows[0].n_ubatch, Some(512));
        let json = r#"[{"model_type": "llama 7B F16", "model_size": 13476839424,
            "model_n_params": 6738415616, "n_prompt": 0, "n_gen": 128, "avg_ts": 41.02,
            "samples_ts": [41.0, 41.04]}]"#;
        let j = parse("b.json", json).unwrap();
        assert_eq!((j[0].n_gen, j[0].n_depth, j[0].n_ubatch), (128, 0, None));
        let jsonl = "{\"model_type\": \"llama 7B F16\", \"model_size\": 1, \"model_n_params\": 2, \"n_prompt\": 512, \"n_gen\": 0, \"avg_ts\": 1.0}\n\n{\"model_type\": \"llama 7B F16\", \"model_size\": 1, \"model_n_params\": 2, \"n_prompt\": 0, \"n_gen\": 16, \"avg_ts\": 2.0}\n";
        assert_eq!(parse("b.jsonl", jsonl).unwrap().len(), 2);
        assert!(looks_like_llama_bench(CSV));
        assert!(!looks_like_llama_bench("id,hardware,nodes,model\n"));
        // A record without avg_ts is an error naming the file.
        let err = parse("bad.csv", "model_type,model_size\nx,1\n").unwrap_err();
        assert!(err.to_string().contains("bad.csv"), "{err}");
    }

    #[test]
    fn labels_map_to_catalog_formats() {
        assert_eq!(quant_label("llama 7B Q4_K - Medium"), "Q4_K - Medium");
        assert_eq!(format_of_label("Q4_K - Medium"), Some("q4_k_m"));
        assert_eq!(
            format_of_label(&quant_label("gpt-oss 120B MXFP4 MoE")),
            Some("mxfp4")
        );
        assert_eq!(format_of_label("IQ2_XXS - 2.0625 bpw"), None);
    }

    #[test]
    fn records_become_prefill_and_decode_rows() {
        let catalog = crate::test_support::catalog();
        let rows = parse("b.csv", CSV).unwrap();
        let import = Import {
            device: "m2-ultra-76c".to_string(),
            model: "llama-2-7b".to_string(),
            weights: None,
        };
        let imported = to_measurements(&rows, "b.csv", &import, &catalog).unwrap();
        let (m, skipped) = (&imported.rows, &imported.skipped);
        assert_eq!(imported.micro_batch.len(), 1);
        assert_eq!(imported.micro_batch[0].tokens, 512);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].phase.as_str(), m[0].metric.as_str()),
            ("prefill", "pp512")
        );
        assert_eq!(m[1].metric, "tg128 @ depth 2048");
        assert_eq!(m[0].dtype, "q4_0");
        // 3,825,065,984 B x 8 / 6,738,415,616 parameters = 4.541 bits.
        assert_eq!(m[0].bits_per_weight, "4.54");
        assert!(
            m[0].source.ends_with("(build 8e672ef, ub 512)"),
            "{}",
            m[0].source
        );
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("q8_0"), "{:?}", skipped);
        // Through the suite: fit-half cases of llama.cpp at the record's micro-batch.
        let base = crate::validate::parse_suite(
            "suite.toml",
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/validation/suite.toml"
            ))
            .unwrap(),
        )
        .unwrap();
        let suite = import_suite(&base, &imported);
        let (cases, unmapped) = crate::validate::build_suite(m, &suite, &catalog, &BTreeMap::new());
        assert!(unmapped.is_empty(), "{unmapped:?}");
        assert_eq!(cases.len(), 2);
        for c in &cases {
            assert_eq!(c.split, crate::validate::Split::Fit);
            assert_eq!(c.runtime, "llama.cpp");
            assert!(
                c.scenario_text.contains("prefill_chunk_tokens = 512"),
                "{}",
                c.scenario_text
            );
        }
        // tg128 at depth 2048: 2048 tokens of prompt, then 128 decode steps.
        assert!(
            cases[1].scenario_text.contains("prompt_tokens = 2048"),
            "{}",
            cases[1].scenario_text
        );
        // The wrong model is refused by its parameter count.
        let wrong = Import {
            model: "llama-3.1-8b".to_string(),
            ..import
        };
        let err = to_measurements(&rows, "b.csv", &wrong, &catalog).unwrap_err();
        assert!(err.to_string().contains("6.738 B"), "{err}");
    }

    #[test]
    fn a_model_size_that_is_no_gguf_size_skips_the_record() {
        // 1e30 bytes x 8 / 6,738,415,616 parameters = 1.187e21 bits per weight; 1e9
        // bytes = 1.187 bits, below the smallest GGUF type (IQ1_S, 1.5625). Both
        // records are skipped with the reason; the first used to reach the suite and
        // fail there with "no value".
        let catalog = crate::test_support::catalog();
        let text = CSV.replacen("\"3825065984\"", "\"1e30\"", 1).replacen(
            "\"3825065984\"",
            "\"1000000000\"",
            1,
        );
        let rows = parse("b.csv", &text).unwrap();
        let import = Import {
            device: "m2-ultra-76c".to_string(),
            model: "llama-2-7b".to_string(),
            weights: None,
        };
        let imported = to_measurements(&rows, "b.csv", &import, &catalog).unwrap();
        assert!(imported.rows.is_empty(), "{:?}", imported.rows);
        let reasons: Vec<&str> = imported.skipped.iter().map(|u| u.reason.as_str()).collect();
        assert!(
            reasons[0].contains("1.187e21 bits per weight"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].contains("1.187e0 bits per weight"),
            "{reasons:?}"
        );
    }
}
