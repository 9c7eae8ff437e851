//! `planner plan PLAN.toml`: search cluster options, print the ranked table, the
//! Pareto frontier and the rejection counts, with a progress bar on stderr.

use std::fmt::Write;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use planner::plan::{parse_plan, run_plan, PlanResult, Progress, Screened};
use planner::Catalog;

use crate::cli::output::{seconds, text_width};

pub fn load(catalog: &Catalog, path: &Path) -> Result<planner::plan::Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read plan {}", path.display()))?;
    Ok(parse_plan(&path.display().to_string(), &text, catalog)?)
}

/// Runs the search, showing its progress on stderr: a bar on a terminal; with
/// `--progress` and no terminal (a log file, CI), plain lines, one per tenth of the
/// screen and one per option the request-level engine verifies.
pub fn search(catalog: &Catalog, plan: &planner::plan::Plan, progress: bool) -> PlanResult {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} options, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("screening");
        let result = run_plan(plan, catalog, &|p| match p {
            Progress::Screening { options } => bar.set_length(options as u64),
            Progress::Screened => bar.inc(1),
            Progress::Verifying { rank, description } => {
                bar.set_message(format!("verifying #{rank} ({description})"))
            }
        });
        bar.finish_and_clear();
        result
    } else if progress {
        let start = Instant::now();
        let total = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let result = run_plan(plan, catalog, &|p| match p {
            Progress::Screening { options } => {
                total.store(options, Ordering::Relaxed);
                eprintln!("plan: screening {options} options");
            }
            Progress::Screened => {
                let total = total.load(Ordering::Relaxed);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n * 10 / total.max(1) > (n - 1) * 10 / total.max(1) {
                    eprintln!(
                        "plan: screened {n} of {total} options ({:.1} s)",
                        start.elapsed().as_secs_f64()
                    );
                }
            }
            Progress::Verifying { rank, description } => eprintln!(
                "plan: verifying #{rank} with the request-level engine: {description} ({:.1} s)",
                start.elapsed().as_secs_f64()
            ),
        });
        eprintln!("plan: done ({:.1} s)", start.elapsed().as_secs_f64());
        result
    } else {
        run_plan(plan, catalog, &|_| {})
    }
}

/// Ranked options, one row each, the option column as wide as its longest description
/// (a fixed width cut disaggregated options' weight format off).
fn options_table<'a>(s: &mut String, options: impl Iterator<Item = &'a Screened> + Clone) {
    let w = text_width("option", options.clone().map(|o| o.description.as_str()));
    let _ = writeln!(
        s,
        "{:>4}  {:<w$} {:>10} {:>9} {:>9} {:>9} {:>8} {:>12}",
        "rank", "option", "capex $", "TTFT p90", "TPOT p90", "max tok/s", "$/Mtok", "max tok/s/k$"
    );
    for (i, o) in options.enumerate() {
        let _ = writeln!(
            s,
            "{:>4}  {:<w$} {:>10.0} {:>9} {:>9} {:>9.0} {:>8.2} {:>12.1}",
            i + 1,
            o.description,
            o.capex_usd,
            seconds(o.ttft_p90_s),
            seconds(o.tpot_p90_s),
            o.capacity_tokens_per_s,
            o.usd_per_million_tokens,
            crate::cli::report::plan::capacity_per_kusd(o)
        );
    }
}

pub fn table(plan: &planner::plan::Plan, r: &PlanResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", plan.name);
    let _ = writeln!(
        s,
        "  {} at {} requests/s ({} prompt + {} output tokens); SLO TTFT p90 < {} s, TPOT p90 < {} s; budget {}",
        plan.model,
        plan.requests_per_s,
        plan.prompt_tokens,
        plan.output_tokens,
        plan.ttft_p90_s,
        plan.tpot_p90_s,
        plan.budget_usd.map_or_else(|| "none".to_string(), crate::cli::report::dollars)
    );
    let a = &plan.cost;
    let _ = writeln!(
        s,
        "  cost assumptions: amortisation {} years, electricity ${:.2}/kWh, utilisation {}%",
        a.amortization_years,
        a.electricity_usd_per_kwh,
        a.utilization * 100.0
    );
    let _ = writeln!(
        s,
        "\n{} options evaluated, {} feasible. Rejected: {} do not fit, {} miss an SLO, {} over budget, {} without a price, {} invalid layouts, {} not modelled.",
        r.options_evaluated,
        r.feasible,
        r.rejections.does_not_fit,
        r.rejections.misses_slo,
        r.rejections.over_budget,
        r.rejections.no_price,
        r.rejections.invalid_layout,
        r.rejections.not_modelled
    );
    let _ = writeln!(
        s,
        "\nBest options (cheapest per million output tokens at the target rate; of equal cost, the highest max tok/s)"
    );
    options_table(&mut s, r.ranked.iter().take(15));
    let _ = writeln!(
        s,
        "\nBest options re-checked with the request-level engine: {}",
        planner::plan::verify::describe(plan)
    );
    for v in &r.verified {
        match &v.failure {
            Some(f) => {
                let _ = writeln!(s, "  {}: not run: {f}", v.description);
            }
            None => {
                let _ = writeln!(
                    s,
                    "  {}: {} requests, TTFT p90 {}, TPOT p90 {}, {:.0} tok/s: {}",
                    v.description,
                    v.requests,
                    v.ttft_p90_s.map_or_else(|| "-".to_string(), seconds),
                    v.tpot_p90_s.map_or_else(|| "-".to_string(), seconds),
                    v.throughput_tokens_per_s.unwrap_or(0.0),
                    if v.meets_slo {
                        "meets the SLOs"
                    } else {
                        "MISSES the SLOs"
                    }
                );
            }
        }
    }
    let _ = writeln!(s, "\nPareto frontier (capital cost, sustainable throughput, TTFT p90), options meeting the SLOs (budget ignored)");
    options_table(&mut s, r.pareto.iter());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_option_descriptions_are_shown_whole_and_the_figures_line_up() {
        // A disaggregated option's description ran to 83 characters and the fixed
        // 78-character column cut its weight format off.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let catalog = crate::cli::catalog_files::load_catalog(root).unwrap();
        let text = r#"
name = "tiny"
[model]
preset = "llama-3.1-8b"
weights = ["f16", "fp8"]
[workload]
prompt_tokens = 512
output_tokens = 64
requests_per_s = 1.0
[slo]
ttft_p90_s = 2.0
tpot_p90_s = 0.1
[search]
devices = ["h100-sxm"]
max_nodes = 1
verify_top = 0
"#;
        let plan = parse_plan("tiny.toml", text, &catalog).unwrap();
        let mut ranked = run_plan(&plan, &catalog, &|_| {}).ranked;
        assert!(ranked.len() >= 2, "{ranked:?}");
        let long = format!("{} END", "a long option description, ".repeat(4));
        ranked[0].description = long.clone();
        let mut s = String::new();
        options_table(&mut s, ranked.iter());
        assert!(s.contains(&long), "{s}");
        // Every row's capex ends where the header's "capex $" does.
        let mut lines = s.lines();
        let header = lines.next().unwrap();
        let end = header.find("capex $").unwrap() + "capex $".len();
        for line in lines {
            assert!(
                line.as_bytes()[end - 1].is_ascii_digit(),
                "{header}\n{line}"
            );
            assert_eq!(line.as_bytes()[end], b' ', "{header}\n{line}");
        }
    }
}
