//! Rendering a simulation report as a table for people, or JSON / CSV for scripts.

use std::fmt::Write;

use anyhow::Result;
use planner::analytical::band::Band;
use planner::report::{PhaseBreakdown, Report};

use crate::Format;

/// The report, with the prediction band: always in JSON (`band`, null when there is
/// none), in the table when `show_band`. CSV is unchanged.
pub fn render_with_band(
    report: &Report,
    band: Option<&Band>,
    show_band: bool,
    format: Format,
) -> Result<String> {
    Ok(match format {
        Format::Json => {
            let mut value = serde_json::to_value(report)?;
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("band".to_string(), serde_json::to_value(band)?);
            }
            serde_json::to_string_pretty(&value)? + "\n"
        }
        Format::Csv => csv_row(report)?,
        Format::Table => {
            let mut text = table(report);
            if show_band {
                text.push_str(&band_table(band));
            }
            text
        }
    })
}

fn band_table(band: Option<&Band>) -> String {
    let mut s = String::new();
    let Some(b) = band else {
        let _ = writeln!(
            s,
            "\nPrediction band: none (no device in this scenario has a calibrated [uncertainty])"
        );
        return s;
    };
    let _ = writeln!(
        s,
        "\nPrediction band (+/- one sigma of the calibration fits)"
    );
    for d in &b.devices {
        let _ = writeln!(
            s,
            "  {}: compute {:.1}%, bandwidth {:.1}%, dispatch {:.1}%",
            d.device,
            d.compute_relative_sd * 100.0,
            d.bandwidth_relative_sd * 100.0,
            d.dispatch_relative_sd * 100.0
        );
    }
    let secs = |v: Option<[f64; 2]>| {
        v.map_or_else(
            || "-".to_string(),
            |[lo, hi]| format!("{} .. {}", seconds(lo), seconds(hi)),
        )
    };
    let rate = |v: Option<[f64; 2]>| {
        v.map_or_else(
            || "-".to_string(),
            |[lo, hi]| format!("{lo:.1} .. {hi:.1} tok/s"),
        )
    };
    let _ = writeln!(s, "  {:<22}{}", "time to first token", secs(b.ttft_s));
    let _ = writeln!(s, "  {:<22}{}", "time per output token", secs(b.tpot_s));
    let _ = writeln!(s, "  {:<22}{}", "end to end", secs(b.e2e_s));
    let _ = writeln!(s, "  {:<22}{}", "decode", rate(b.decode_tokens_per_s));
    s
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{x}"))
}

/// Human-friendly seconds: ms below one second.
pub fn seconds(v: f64) -> String {
    if v < 1e-3 {
        format!("{:.1} us", v * 1e6)
    } else if v < 1.0 {
        format!("{:.2} ms", v * 1e3)
    } else {
        format!("{v:.3} s")
    }
}

fn opt_seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), seconds)
}

fn csv_row(r: &Report) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let b = r.breakdown;
    let bp = b.map(|b| b.prefill);
    let bd = b.map(|b| b.decode);
    let f = |p: Option<PhaseBreakdown>, g: fn(&PhaseBreakdown) -> f64| opt(p.as_ref().map(g));
    w.write_record([
        "name",
        "model",
        "weights",
        "runtime",
        "prompt_tokens",
        "output_tokens",
        "batch",
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "prefill_tokens_per_s",
        "decode_tokens_per_s",
        "throughput_tokens_per_s",
        "memory_fits",
        "memory_used_gb",
        "memory_capacity_gb",
        "prefill_compute_s",
        "prefill_communication_s",
        "prefill_exposed_communication_s",
        "prefill_overhead_s",
        "decode_compute_s",
        "decode_communication_s",
        "decode_exposed_communication_s",
        "decode_overhead_s",
        "capex_usd",
        "power_w",
        "usd_per_million_tokens",
        "tokens_per_s_per_kusd",
        "reason",
    ])?;
    let used = r
        .memory
        .groups
        .iter()
        .map(|g| g.used_gb)
        .fold(0.0, f64::max);
    let capacity = r
        .memory
        .groups
        .iter()
        .map(|g| g.capacity_gb)
        .fold(0.0, f64::max);
    w.write_record([
        r.name.clone(),
        r.model.clone(),
        r.weights.clone(),
        r.runtime.clone(),
        r.workload.prompt_tokens.to_string(),
        r.workload.output_tokens.to_string(),
        r.workload.batch.to_string(),
        opt(r.ttft_s),
        opt(r.tpot_s),
        opt(r.e2e_s),
        opt(r.prefill_tokens_per_s),
        opt(r.decode_tokens_per_s),
        opt(r.throughput_tokens_per_s),
        r.memory.fits.to_string(),
        format!("{used}"),
        format!("{capacity}"),
        f(bp, |p| p.compute_s),
        f(bp, |p| p.communication_s),
        f(bp, |p| p.exposed_communication_s),
        f(bp, |p| p.overhead_s),
        f(bd, |p| p.compute_s),
        f(bd, |p| p.communication_s),
        f(bd, |p| p.exposed_communication_s),
        f(bd, |p| p.overhead_s),
        format!("{}", r.cost.capex_usd),
        format!("{}", r.cost.power_w),
        opt(r.cost.usd_per_million_tokens),
        opt(r.cost.tokens_per_s_per_kusd),
        r.reason.clone().unwrap_or_default(),
    ])?;
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn table(r: &Report) -> String {
    let mut s = String::new();
    let w = &r.workload;
    let _ = writeln!(s, "{}", r.name);
    let _ = writeln!(
        s,
        "  model {} ({} weights, {} KV cache), runtime {}",
        r.model, r.weights, r.kv_cache, r.runtime
    );
    let _ = writeln!(
        s,
        "  workload: prompt {} tokens ({} cached), {} output tokens, batch {}",
        w.prompt_tokens, w.cached_prompt_tokens, w.output_tokens, w.batch
    );
    let _ = writeln!(s);
    let rate = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.1} tok/s"));
    let _ = writeln!(
        s,
        "  {:<22}{:>14}   {:<22}{:>14}",
        "time to first token",
        opt_seconds(r.ttft_s),
        "prefill",
        rate(r.prefill_tokens_per_s)
    );
    let _ = writeln!(
        s,
        "  {:<22}{:>14}   {:<22}{:>14}",
        "time per output token",
        opt_seconds(r.tpot_s),
        "decode",
        rate(r.decode_tokens_per_s)
    );
    let _ = writeln!(
        s,
        "  {:<22}{:>14}   {:<22}{:>14}",
        "end to end",
        opt_seconds(r.e2e_s),
        "throughput",
        rate(r.throughput_tokens_per_s)
    );

    let _ = writeln!(s, "\nMemory per node");
    for g in &r.memory.groups {
        let _ = writeln!(
            s,
            "  {} ({} x{}): weights {:.1} + KV cache {:.2} + activations {:.2} + reserve {:.1} = {:.1} GB of {:.0} GB",
            g.name, g.device, g.nodes, g.weights_gb, g.kv_cache_gb, g.activations_gb, g.reserve_gb, g.used_gb, g.capacity_gb
        );
    }
    match &r.memory.reason {
        Some(reason) => {
            let _ = writeln!(s, "  DOES NOT FIT: {reason}");
        }
        None => {
            let _ = writeln!(s, "  fits");
        }
    }

    if let Some(b) = &r.breakdown {
        let _ = writeln!(
            s,
            "\nBreakdown            {:>12}{:>15}{:>12}{:>12}{:>12}",
            "compute", "communication", "exposed", "overhead", "total"
        );
        for (label, p) in [
            ("prefill (whole)", &b.prefill),
            ("decode (one step)", &b.decode),
        ] {
            let _ = writeln!(
                s,
                "  {:<19}{:>12}{:>15}{:>12}{:>12}{:>12}",
                label,
                seconds(p.compute_s),
                seconds(p.communication_s),
                seconds(p.exposed_communication_s),
                seconds(p.overhead_s),
                seconds(p.total_s)
            );
        }
    }

    if let Some(l) = &r.layers {
        for (label, ops, new, before) in [
            (
                "prefill",
                &l.prefill,
                l.prefill_new_tokens,
                l.prefill_context_before,
            ),
            ("decode", &l.decode, 1.0, l.decode_context_before),
        ] {
            let _ = writeln!(
                s,
                "\nLayer {} in {label} ({new} new tokens per sequence after {before} in cache)",
                l.layer
            );
            let _ = writeln!(
                s,
                "  {:<18}{:>12}{:>12}{:>12}{:>12}{:>12}  bound",
                "operation", "GFLOP", "MB", "compute", "memory", "time"
            );
            for op in ops.iter() {
                let _ = writeln!(
                    s,
                    "  {:<18}{:>12.3}{:>12.2}{:>12}{:>12}{:>12}  {}",
                    op.kind.name(),
                    op.flops / 1e9,
                    op.bytes / 1e6,
                    seconds(op.compute_s),
                    seconds(op.memory_s),
                    seconds(op.time_s),
                    if op.memory_bound() {
                        "memory"
                    } else {
                        "compute"
                    }
                );
            }
            let _ = writeln!(
                s,
                "  {:<18}{:>60}",
                "dispatch overhead",
                seconds(l.layer_overhead_s)
            );
        }
    }

    let c = &r.cost;
    let _ = writeln!(s, "\nCost");
    let _ = writeln!(
        s,
        "  capital ${:.0}{}, power {:.0} W under load ({:.0} W idle)",
        c.capex_usd,
        if c.prices_complete {
            ""
        } else {
            " (some prices unpublished: lower bound)"
        },
        c.power_w,
        c.idle_power_w
    );
    if let (Some(usd), Some(per_k)) = (c.usd_per_million_tokens, c.tokens_per_s_per_kusd) {
        let _ = writeln!(
            s,
            "  ${usd:.2} per million output tokens, {per_k:.3} tokens/s per $1,000 of capital"
        );
    }
    let a = &c.assumptions;
    let _ = writeln!(
        s,
        "  assumptions: amortisation {} years, electricity ${}/kWh, utilisation {}%",
        a.amortization_years,
        a.electricity_usd_per_kwh,
        a.utilization * 100.0
    );
    s
}
