//! `planner hardware`, `planner models` and `planner runtimes`: catalog listings.

use std::fmt::Write;

use anyhow::Result;
use planner::analytical::ops::{head_ops, layer_ops, Pass};
use planner::catalog::CatalogKind;
use planner::hardware::ComputeDtype;
use planner::runtime::MlaPrefill;
use planner::{Catalog, InputError};

/// Width of a left-aligned text column: its longest entry (or header) and two spaces.
fn column<'a>(header: &str, entries: impl Iterator<Item = &'a str>) -> usize {
    crate::cli::output::text_width(header, entries) + 2
}

pub fn hardware_list(catalog: &Catalog) -> String {
    let mut s = String::new();
    let devices = catalog.devices.values();
    let (iw, nw) = (
        column("device", devices.clone().map(|d| d.id.as_str())),
        column("name", devices.map(|d| d.name.as_str())),
    );
    let _ = writeln!(
        s,
        "{:<iw$}{:<nw$}{:>8}{:>10}{:>10}  memory variants (GB: USD)",
        "device", "name", "fp16 TF", "fp8 TF", "GB/s"
    );
    for d in catalog.devices.values() {
        let fp8 = d
            .peak_tflops
            .get(&ComputeDtype::Fp8)
            .map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
        let variants: Vec<String> = d
            .variants
            .iter()
            .map(|v| match v.price_usd {
                Some(p) => format!("{}: {p:.0}", v.capacity_gb),
                None => format!("{}: -", v.capacity_gb),
            })
            .collect();
        let _ = writeln!(
            s,
            "{:<iw$}{:<nw$}{:>8.1}{:>10}{:>10.0}  {}",
            d.id,
            d.name,
            d.peak_tflops_for(ComputeDtype::Fp16).1,
            fp8,
            d.memory_bandwidth_gb_s,
            variants.join(", ")
        );
    }
    let links = catalog.links.values();
    let (iw, nw) = (
        column("link", links.clone().map(|l| l.id.as_str())),
        column("name", links.map(|l| l.name.as_str())),
    );
    let _ = writeln!(
        s,
        "\n{:<iw$}{:<nw$}{:>6}{:>15}{:>12}",
        "link", "name", "kind", "GB/s each way", "latency us"
    );
    for l in catalog.links.values() {
        let _ = writeln!(
            s,
            "{:<iw$}{:<nw$}{:>6}{:>15.2}{:>12.1}",
            l.id,
            l.name,
            format!("{:?}", l.transport).to_lowercase(),
            l.bandwidth_gb_s,
            l.latency_us
        );
    }
    s
}

pub fn hardware_show(catalog: &Catalog, id: &str) -> Result<String> {
    if let Some(d) = catalog.devices.get(id) {
        return Ok(format!(
            "# device `{id}`\n{}",
            toml::to_string_pretty(&d.file)?
        ));
    }
    if let Some(l) = catalog.links.get(id) {
        return Ok(format!(
            "# link `{id}`\n{}",
            toml::to_string_pretty(&l.file)?
        ));
    }
    let mut known: Vec<String> = catalog.devices.keys().cloned().collect();
    known.extend(catalog.links.keys().cloned());
    let suggestions = planner::error::nearest_ids(id, known.iter());
    Err(InputError::unknown_id(
        "command line",
        "hardware show",
        "device or link",
        id,
        suggestions,
    )
    .into())
}

/// One line per runtime and device family: the efficiencies the timing model
/// multiplies in, and whether they were fitted or are priors.
pub fn runtimes_list(catalog: &Catalog) -> String {
    let mut s = String::new();
    let runtimes = catalog.runtimes.values();
    let iw = column("runtime", runtimes.clone().map(|r| r.id.as_str()));
    let _ = writeln!(
        s,
        "{:<iw$}{:<8}{:>9}{:>11}{:>11}{:>10}{:>10}{:>11}  fitted",
        "runtime",
        "family",
        "compute",
        "bandwidth",
        "attention",
        "dispatch",
        "step us",
        "max batch"
    );
    for r in catalog.runtimes.values() {
        for (family, e) in &r.families {
            let f = &r.file.families[family];
            let values = [
                &f.compute_fraction,
                &f.bandwidth_fraction,
                &f.attention_fraction,
                &f.dispatch_scale,
                &f.per_step_overhead_us,
            ];
            let fitted = values.iter().filter(|v| v.is_fitted()).count();
            let _ = writeln!(
                s,
                "{:<iw$}{:<8}{:>9.3}{:>11.3}{:>11.3}{:>10.3}{:>10.1}{:>11}  {fitted} of {}",
                r.id,
                family,
                e.compute_fraction,
                e.bandwidth_fraction,
                e.attention_fraction,
                e.dispatch_scale,
                e.per_step_overhead_s * 1e6,
                r.default_max_batch,
                values.len()
            );
        }
    }
    s.push_str(
        "\n(compute, bandwidth, attention: fractions of the device's achievable rates;\n \
         dispatch: the share of the per-kernel launch cost paid; step us: host time per \
         pass;\n fitted: how many of these five were fitted to measurements, not priors \
         or definitions;\n `planner runtimes show ID` prints every value with its source)\n",
    );
    s
}

pub fn runtimes_show(catalog: &Catalog, id: &str) -> Result<String> {
    let r = catalog.runtimes.get(id).ok_or_else(|| {
        let suggestions = catalog.suggestions(CatalogKind::Runtime, id);
        InputError::unknown_id("command line", "runtimes show", "runtime", id, suggestions)
    })?;
    Ok(format!(
        "# runtime `{id}`\n{}",
        toml::to_string_pretty(&r.file)?
    ))
}

pub fn models_list(catalog: &Catalog) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<22}{:<30}{:>7}{:>8}{:>10}{:>12}{:>10}{:>10}",
        "model", "name", "layers", "hidden", "heads/kv", "experts", "total B", "active B"
    );
    for m in catalog.models.values() {
        let experts = m.moe.map_or_else(
            || "-".to_string(),
            |e| format!("{} (top {})", e.experts, e.experts_per_token),
        );
        let _ = writeln!(
            s,
            "{:<22}{:<30}{:>7}{:>8}{:>10}{:>12}{:>10.2}{:>10.2}",
            m.id,
            m.name,
            m.layers,
            m.hidden_size,
            format!("{}/{}", m.attention_heads, m.kv_heads),
            experts,
            m.total_params() as f64 / 1e9,
            m.active_params() as f64 / 1e9
        );
    }
    s
}

pub fn models_show(catalog: &Catalog, id: &str) -> Result<String> {
    let m = catalog.models.get(id).ok_or_else(|| {
        let suggestions = catalog.suggestions(CatalogKind::Model, id);
        InputError::unknown_id("command line", "models show", "model", id, suggestions)
    })?;
    let mut s = format!("# model `{id}`\n{}\n", toml::to_string_pretty(&m.file)?);
    let b = |x: u64| x as f64 / 1e9;
    let _ = writeln!(s, "# derived");
    let _ = writeln!(
        s,
        "total parameters      {:>12.3} B (published {} B)",
        b(m.total_params()),
        m.file.published_total_params_b.value
    );
    let _ = writeln!(s, "active per token      {:>12.3} B", b(m.active_params()));
    let _ = writeln!(
        s,
        "  attention per layer {:>12.4} B",
        b(m.attention_params_per_layer())
    );
    if m.moe.is_some() {
        let _ = writeln!(s, "  one expert          {:>12.4} B", b(m.expert_params()));
        let moe_layers = m.moe_layer_count();
        let _ = writeln!(
            s,
            "  layers with experts {:>12} of {}",
            moe_layers, m.layers
        );
        if moe_layers < m.layers {
            let _ = writeln!(
                s,
                "  dense FFN per layer {:>12.4} B (the other layers)",
                b(m.dense_ffn_params())
            );
        }
    } else {
        let _ = writeln!(
            s,
            "  FFN per layer       {:>12.4} B",
            b(m.dense_ffn_params())
        );
    }
    let _ = writeln!(
        s,
        "  embedding + LM head {:>12.4} B",
        b(m.embedding_params() + m.lm_head_params())
    );
    let kv_bytes = (0..m.layers).count() as f64 * m.kv_elements_per_token_per_layer() as f64 * 2.0;
    let _ = writeln!(
        s,
        "KV cache per token    {:>12.1} KB in f16 (all layers, before window caps)",
        kv_bytes / 1e3
    );
    let _ = writeln!(
        s,
        "\nweights in each format (every parameter at the format's bits per weight; a \
         node also holds KV cache, activations and a reserve: `planner simulate` adds them):"
    );
    let _ = writeln!(s, "{:>12}{:>16}{:>12}", "format", "bits/weight", "GB");
    let mut formats: Vec<_> = catalog.formats.values().collect();
    formats.sort_by(|a, b| {
        b.bits_per_weight
            .total_cmp(&a.bits_per_weight)
            .then(a.id.cmp(&b.id))
    });
    for f in formats {
        let _ = writeln!(
            s,
            "{:>12}{:>16.4}{:>12.1}",
            f.id,
            f.bits_per_weight,
            planner::analytical::memory::weights_gb(m, f)
        );
    }
    let _ = writeln!(
        s,
        "\nper output token (decode, batch 1, one token; the KV column reads the context \
         and the new token and writes the new token):"
    );
    let _ = writeln!(
        s,
        "{:>12}{:>14}{:>18}{:>21}",
        "context", "GFLOP", "weights GB (f16)", "KV traffic MB (f16)"
    );
    for context in [0.0, 4096.0, 32768.0] {
        let pass = Pass {
            sequences: 1.0,
            new_tokens: 1.0,
            context_before: context,
        };
        let mut flops = 0.0;
        let mut weights = 0.0;
        let mut kv = 0.0;
        for layer in 0..m.layers {
            for op in layer_ops(m, layer, &pass, MlaPrefill::default()) {
                flops += op.flops;
                weights += op.weight_params;
                kv += op.kv_elements;
            }
        }
        for op in head_ops(m, &pass, 1.0) {
            flops += op.flops;
            weights += op.weight_params;
        }
        let _ = writeln!(
            s,
            "{:>12}{:>14.2}{:>18.2}{:>21.1}",
            context,
            flops / 1e9,
            weights * 2.0 / 1e9,
            kv * 2.0 / 1e6
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_list_columns_line_up_whatever_the_names() {
        // The catalog's longest device name (local-cpu's, 69 characters) used to push
        // its row's figures out of the fixed 52-character column.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = hardware_list(&crate::cli::catalog_files::load_catalog(root).unwrap());
        let (devices, links) = text.split_once("\n\n").unwrap();
        let tables = [
            (devices, &["fp16 TF", "fp8 TF", "GB/s  "][..]),
            (links, &["GB/s each way", "latency us"][..]),
        ];
        for (table, titles) in tables {
            let mut lines = table.lines();
            let header = lines.next().unwrap();
            // Every row's right-aligned figures end where the header's titles end.
            let ends: Vec<usize> = titles
                .iter()
                .map(|t| header.find(t).unwrap() + t.trim_end().len())
                .collect();
            for line in lines {
                for &end in &ends {
                    let before = line.as_bytes()[end - 1];
                    let after = line.as_bytes().get(end).copied().unwrap_or(b' ');
                    assert!(
                        (before.is_ascii_digit() || before == b'-') && after == b' ',
                        "column ending at {end} is misaligned in:\n{header}\n{line}"
                    );
                }
            }
        }
    }
}
