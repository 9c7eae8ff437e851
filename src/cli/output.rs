//! Rendering a simulation report as a table for people, or JSON / CSV for scripts.

use std::fmt::Write;

use anyhow::Result;
use planner::analytical::band::Band;
use planner::report::{ClusterReport, PhaseBreakdown, Report};

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

/// A fraction as a percentage with one decimal, or as many more (up to four) as it
/// takes not to round a fraction short of 1 up to 100.0% (16 misses in 100,000) or a
/// positive one down to 0.0%.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    let mut decimals = 1;
    while decimals < 4 {
        let shown: f64 = format!("{p:.decimals$}").parse().unwrap_or(p);
        let misleading = (shown == 100.0 && fraction < 1.0) || (shown == 0.0 && fraction > 0.0);
        if !misleading {
            break;
        }
        decimals += 1;
    }
    format!("{p:.decimals$}%")
}

/// Human-friendly seconds: ms below one second.
pub fn seconds(v: f64) -> String {
    if v < 1e-3 {
        format!("{:.1} us", v * 1e6)
    } else if v < 1.0 {
        format!("{:.2} ms", v * 1e3)
    } else if v < 1e6 {
        format!("{v:.3} s")
    } else {
        // Past 11 days (a what-if far out of range, e.g. a link latency of 1e300 us):
        // a plain decimal would run to hundreds of digits.
        format!("{v:.3e} s")
    }
}

fn opt_seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), seconds)
}

/// The report as one CSV row with its header.
pub fn csv_row(r: &Report) -> Result<String> {
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
    // One pair, from one group: the fullest node, used over capacity (the largest use
    // and the largest capacity of two different groups read as fitting when it did
    // not: 150.8 GB on a 128 GB Spark beside a 256 GB Mac).
    let (used, capacity) = r
        .memory
        .groups
        .iter()
        .max_by(|a, b| (a.used_gb / a.capacity_gb).total_cmp(&(b.used_gb / b.capacity_gb)))
        .map_or((0.0, 0.0), |g| (g.used_gb, g.capacity_gb));
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
    match &r.serving {
        // The requests' own lengths: a trace's, or drawn from the distributions.
        Some(v) => {
            let _ = writeln!(
                s,
                "  workload: {} requests, {:.1} prompt and {:.1} output tokens on average",
                v.requests, v.mean_prompt_tokens, v.mean_output_tokens
            );
        }
        None => {
            let _ = writeln!(
                s,
                "  workload: prompt {} tokens ({} cached), {} output tokens, batch {}",
                w.prompt_tokens, w.cached_prompt_tokens, w.output_tokens, w.batch
            );
        }
    }
    let _ = writeln!(s);
    let rate = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.1} tok/s"));
    // A serving run's figures are means over its requests, and its rates are per
    // second of the whole run (prefill_tokens_per_s and decode_tokens_per_s in the
    // JSON are the prompt and output tokens over the makespan).
    let rows: [(&str, String, &str, String); 3] = match &r.serving {
        Some(v) => [
            (
                "mean TTFT",
                opt_seconds(r.ttft_s),
                "prompt tokens served",
                rate(r.prefill_tokens_per_s),
            ),
            (
                "mean TPOT",
                opt_seconds(r.tpot_s),
                "output tokens served",
                rate(r.throughput_tokens_per_s),
            ),
            (
                "mean end to end",
                opt_seconds(r.e2e_s),
                "requests completed",
                format!("{:.3} req/s", v.requests_per_s),
            ),
        ],
        None => [
            (
                "time to first token",
                opt_seconds(r.ttft_s),
                "prefill",
                rate(r.prefill_tokens_per_s),
            ),
            (
                "time per output token",
                opt_seconds(r.tpot_s),
                "decode",
                rate(r.decode_tokens_per_s),
            ),
            (
                "end to end",
                opt_seconds(r.e2e_s),
                "throughput",
                rate(r.throughput_tokens_per_s),
            ),
        ],
    };
    for (left, a, right, b) in rows {
        let _ = writeln!(s, "  {left:<22}{a:>14}   {right:<22}{b:>14}");
    }

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
            let reason = reason.strip_prefix("does not fit: ").unwrap_or(reason);
            let _ = writeln!(s, "  DOES NOT FIT: {reason}");
        }
        None => {
            let _ = writeln!(s, "  fits");
        }
    }

    if let Some(b) = &r.breakdown {
        time_parts_table(
            &mut s,
            "Breakdown",
            19,
            &[
                ("prefill (whole)", phase_parts(&b.prefill)),
                ("decode (one step)", phase_parts(&b.decode)),
            ],
        );
    }

    if let Some(c) = &r.cluster {
        cluster_view(&mut s, c);
    }

    if let Some(l) = &r.layers {
        for phase in l.phases() {
            let _ = writeln!(s, "\n{}", phase.heading(l.layer));
            let _ = writeln!(
                s,
                "  {:<18}{:>12}{:>12}{:>12}{:>12}{:>12}  bound",
                "operation", "GFLOP", "MB", "compute", "memory", "time"
            );
            for op in phase.ops {
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
                seconds(phase.overhead_s)
            );
        }
    }

    if let Some(v) = &r.serving {
        serving_table(&mut s, v, r.seed);
    }

    let c = &r.cost;
    let _ = writeln!(s, "\nCost");
    let _ = writeln!(
        s,
        "  capital {}{}, power {:.0} W under load ({:.0} W idle)",
        crate::cli::report::dollars(c.capex_usd),
        if c.prices_complete {
            ""
        } else {
            " (some prices unpublished: lower bound)"
        },
        c.power_w,
        c.idle_power_w
    );
    // The JSON and CSV give the cost per token whenever there is output; with a price
    // missing it counts the known prices and the power only.
    if let Some(usd) = c.usd_per_million_tokens {
        let bound = if c.prices_complete {
            ""
        } else {
            " (a lower bound)"
        };
        let per_k = c.tokens_per_s_per_kusd.map_or_else(String::new, |k| {
            format!(", {k:.3} tokens/s per $1,000 of capital")
        });
        let _ = writeln!(s, "  ${usd:.2} per million output tokens{bound}{per_k}");
    }
    let a = &c.assumptions;
    let _ = writeln!(
        s,
        "  assumptions: amortisation {} years, electricity ${:.2}/kWh, utilisation {}%",
        a.amortization_years,
        a.electricity_usd_per_kwh,
        a.utilization * 100.0
    );
    s
}

fn serving_table(s: &mut String, v: &planner::serving::metrics::ServingReport, seed: u64) {
    let _ = writeln!(
        s,
        "\nServing: {} of {} requests completed ({} rejected, {} preemptions) in {}, seed {seed}",
        v.requests_completed,
        v.requests,
        v.requests_rejected,
        v.preemptions,
        seconds(v.makespan_s)
    );
    let _ = writeln!(
        s,
        "  {:<22}{:>12}{:>12}{:>12}{:>12}{:>12}",
        "", "mean", "p50", "p90", "p99", "max"
    );
    for (label, st) in [
        ("time to first token", &v.ttft_s),
        ("time per output token", &v.tpot_s),
        ("inter-token latency", &v.itl_s),
        ("end to end", &v.e2e_s),
    ] {
        let _ = writeln!(
            s,
            "  {:<22}{:>12}{:>12}{:>12}{:>12}{:>12}",
            label,
            seconds(st.mean),
            seconds(st.p50),
            seconds(st.p90),
            seconds(st.p99),
            seconds(st.max)
        );
    }
    let _ = writeln!(
        s,
        "  throughput {:.1} output tokens/s, {:.1} prompt tokens/s, {:.3} requests/s",
        v.throughput_tokens_per_s, v.prompt_tokens_per_s, v.requests_per_s
    );
    let g = &v.goodput;
    if g.ttft_slo_s.is_some() || g.tpot_slo_s.is_some() {
        let slo = |x: Option<f64>| x.map_or_else(|| "-".to_string(), seconds);
        let _ = writeln!(
            s,
            "  goodput (TTFT <= {}, TPOT <= {}): {} of {} requests ({}), {:.3} requests/s, {:.1} tokens/s",
            slo(g.ttft_slo_s),
            slo(g.tpot_slo_s),
            g.requests_within_slo,
            v.requests,
            percent(g.fraction_within_slo),
            g.requests_per_s,
            g.tokens_per_s
        );
    }
    if let Some(k) = &v.kv_transfer {
        let _ = writeln!(
            s,
            "  KV transfer ({}): {} mean on the link, {} mean exposed after the prefill (p99 {})",
            k.mode,
            seconds(k.transfer_s.mean),
            seconds(k.exposed_s.mean),
            seconds(k.exposed_s.p99)
        );
    }
    let _ = writeln!(
        s,
        "  {:<20}{:>16}{:>8}{:>11}{:>13}{:>13}{:>10}",
        "instance", "role", "busy", "iterations", "KV blocks", "mean queue", "max queue"
    );
    for i in &v.instances {
        let _ = writeln!(
            s,
            "  {:<20}{:>16}{:>7.1}%{:>11}{:>13}{:>13.1}{:>10}",
            i.name,
            i.role,
            i.utilization * 100.0,
            i.iterations,
            format!("{}/{}", i.peak_kv_blocks, i.kv_blocks),
            i.mean_waiting,
            i.max_waiting
        );
    }
    for l in &v.links {
        let _ = writeln!(
            s,
            "  link {:<30} busy {:.1}%, {:.2} GB sent",
            l.name,
            l.utilization * 100.0,
            l.gigabytes
        );
    }
}

/// Compact expert ranges: [0, 1, 2, 5] -> "0-2,5".
fn expert_ranges(ids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", ids[i], ids[j])
        } else {
            ids[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The multi-node layout, one layer's time parts, and the expert-parallel
/// decomposition.
fn cluster_view(s: &mut String, c: &ClusterReport) {
    let _ = writeln!(
        s,
        "\nCluster: {} nodes ({} replica(s) of tensor {} x pipeline {} x expert {}), wired memory {}",
        c.nodes, c.replicas, c.tensor, c.pipeline, c.expert, c.wired_memory
    );
    if let (Some(link), Some(transport), Some(lat), Some(bw)) =
        (&c.link, &c.transport, c.latency_us, c.bandwidth_gb_s)
    {
        let _ = writeln!(
            s,
            "  link {link} ({transport}): {lat} us, {bw} GB/s each way, {} per extra message per node; topology {}",
            seconds(c.per_message_overhead_us.unwrap_or(0.0) * 1e-6),
            c.topology
        );
    }
    for (i, st) in c.stages.iter().enumerate() {
        let _ = writeln!(
            s,
            "  stage {i}: {} x{} node(s), layers {}-{}",
            st.kind,
            st.nodes,
            st.first_layer,
            st.first_layer + st.layers - 1
        );
    }
    time_parts_table(
        s,
        "One layer",
        23,
        &[
            ("prefill (first chunk)", layer_parts(&c.layer_prefill)),
            ("decode (one step)", layer_parts(&c.layer_decode)),
        ],
    );
    if let Some(e) = &c.expert_parallel {
        let placement: Vec<String> = e
            .placement
            .iter()
            .map(|ids| format!("[{}]", expert_ranges(ids)))
            .collect();
        let _ = writeln!(
            s,
            "\nExpert parallelism: attention {}, exchange {}, experts per node {}",
            e.attention,
            e.exchange,
            placement.join(" ")
        );
        let _ = writeln!(
            s,
            "  experts run per node per layer (decode): mean {:.3}, busiest node expected {:.3}",
            e.mean_experts_per_node, e.expected_busiest_experts
        );
        let _ = writeln!(
            s,
            "  time per token = {} layers x (expert compute {} + communication {} + everything else {}) = {}",
            e.moe_layers,
            seconds(e.expert_compute_s),
            seconds(e.communication_s),
            seconds(e.everything_else_s),
            seconds(e.time_per_token_s)
        );
        let _ = writeln!(
            s,
            "  everything else includes memory wiring (\"driver processing\") of {} per layer",
            seconds(e.wiring_s)
        );
        let v = &e.node_view;
        let _ = writeln!(
            s,
            "  as a node's own timers see it (mean node): expert compute {} + communication {} \
             (of which waiting for the busiest node {}) + everything else {}",
            seconds(v.expert_compute_s),
            seconds(v.communication_s),
            seconds(v.waiting_s),
            seconds(v.everything_else_s)
        );
    }
}

/// (compute, communication, exposed communication, overhead, total) in seconds.
type Parts = [f64; 5];

fn phase_parts(p: &PhaseBreakdown) -> Parts {
    [
        p.compute_s,
        p.communication_s,
        p.exposed_communication_s,
        p.overhead_s,
        p.total_s,
    ]
}

fn layer_parts(p: &planner::report::TimeParts) -> Parts {
    [
        p.compute_s,
        p.communication_s,
        p.exposed_communication_s,
        p.overhead_s,
        p.total_s,
    ]
}

/// A table of time parts, one row per label, labels `label_width` wide.
fn time_parts_table(s: &mut String, title: &str, label_width: usize, rows: &[(&str, Parts)]) {
    let _ = writeln!(
        s,
        "\n{title:<width$}{:>12}{:>15}{:>12}{:>12}{:>12}",
        "compute",
        "communication",
        "exposed",
        "overhead",
        "total",
        width = label_width + 2
    );
    for (label, p) in rows {
        let _ = writeln!(
            s,
            "  {label:<label_width$}{:>12}{:>15}{:>12}{:>12}{:>12}",
            seconds(p[0]),
            seconds(p[1]),
            seconds(p[2]),
            seconds(p[3]),
            seconds(p[4])
        );
    }
}

/// Characters of the longest entry of a text column, or of its header.
pub fn text_width<'a>(header: &str, entries: impl Iterator<Item = &'a str>) -> usize {
    entries
        .map(|e| e.chars().count())
        .max()
        .unwrap_or(0)
        .max(header.chars().count())
}

#[cfg(test)]
mod tests {
    use super::{percent, seconds};

    #[test]
    fn seconds_pick_their_unit_and_stay_short() {
        assert_eq!(seconds(250e-6), "250.0 us");
        assert_eq!(seconds(0.10097), "100.97 ms");
        assert_eq!(seconds(6.946), "6.946 s");
        assert_eq!(seconds(999_999.0), "999999.000 s");
        // 3.2e296 s, from a link latency of 1e300 us: not 297 digits.
        assert_eq!(seconds(3.2e296), "3.200e296 s");
    }

    #[test]
    fn percentages_do_not_round_to_all_or_nothing() {
        assert_eq!(percent(0.5), "50.0%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.0), "0.0%");
        // 99,984 of 100,000 met the objectives: not 100.0%.
        assert_eq!(percent(0.99984), "99.98%");
        assert_eq!(percent(0.0000004), "0.0000%");
        assert_eq!(percent(0.00001), "0.001%");
    }
}
