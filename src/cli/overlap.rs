//! `planner overlap SCENARIO`: the shortest prompt from which layer-wise KV streaming
//! hides behind the prefill, for the scenario's model, KV format, prefill device and
//! link.

use std::fmt::Write;

use anyhow::Result;
use planner::analytical::disaggregated::OverlapReport;

use super::output::seconds;
use crate::Format;

pub fn render(r: &OverlapReport, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(r)? + "\n",
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "model",
                "kv_cache",
                "device",
                "link",
                "threshold_tokens",
                "attention_only_threshold_tokens",
                "envelope_threshold_tokens",
            ])?;
            let opt = |v: Option<u64>| v.map_or_else(String::new, |x| x.to_string());
            w.write_record([
                r.model.clone(),
                r.kv_cache.clone(),
                r.device.clone(),
                r.link.clone(),
                opt(r.threshold_tokens),
                opt(r.attention_only_threshold_tokens),
                r.envelope_threshold_tokens.to_string(),
            ])?;
            String::from_utf8(w.into_inner()?)?
        }
        Format::Table => table(r),
    })
}

fn tokens(v: Option<u64>) -> String {
    match v {
        Some(1) => "every prompt length (from 1 token)".to_string(),
        Some(t) => format!("{t} tokens"),
        None => "never within the model's context".to_string(),
    }
}

fn table(r: &OverlapReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Layer-wise KV streaming: {} with {} KV cache, prefill on {} ({}), link {} ({} GB/s, {} us)",
        r.model, r.kv_cache, r.device, r.runtime, r.link, r.link_bandwidth_gb_s, r.link_latency_us
    );
    let _ = writeln!(
        s,
        "  KV per token per layer: {:.0} bytes; prefill chunk: {}",
        r.kv_bytes_per_token_per_layer,
        r.prefill_chunk_tokens
            .map_or("whole prompt".to_string(), |c| format!("{c} tokens"))
    );
    let rows = [
        (
            "the link keeps up with the whole layer's compute from",
            r.threshold_tokens,
        ),
        (
            "counting attention's compute alone, from",
            r.attention_only_threshold_tokens,
        ),
    ];
    let _ = writeln!(s);
    for (label, v) in rows {
        let _ = writeln!(s, "  {label:<54}{}", tokens(v));
    }
    let _ = writeln!(
        s,
        "  {:<54}{} tokens\n    \
         (all s x s query-key pairs at the {} TFLOPS fp16 peak against the KV at the {} GB/s line\n     \
         rate: the arithmetic of EXO's \"s > 5k tokens\"; it leaves out the layer's other compute)",
        "back of the envelope, attention alone, from",
        r.envelope_threshold_tokens,
        r.envelope_peak_tflops,
        r.link_line_rate_gb_s,
    );
    let chunk = if r.first_chunk_tokens < r.prompt_tokens {
        format!("its first chunk of {} tokens", r.first_chunk_tokens)
    } else {
        "the prompt".to_string()
    };
    let _ = writeln!(
        s,
        "\n  at the scenario's {} tokens: one layer computes {chunk} in {}, whose KV takes {} to send; \
         exposed {}\n  \
         (when the link keeps up, only the last layer's message is exposed, less the LM head's time)",
        r.prompt_tokens,
        seconds(r.layer_compute_s),
        seconds(r.layer_transfer_s),
        seconds(r.exposed_s)
    );
    s
}
