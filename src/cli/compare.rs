//! `planner compare SCENARIO... [--out DIR] [--format table|json|csv]`: simulates
//! several scenarios and sets them side by side: latency, throughput, capital,
//! power, dollars per million output tokens, tokens/s per $1,000 of capital, and the
//! ratio of each scenario's tokens/s per $1,000 to the first's ("Mac cluster against
//! an H100 server": list the server first).
//!
//! The headline splits the best ratio into its two factors, since tokens/s per
//! $1,000 = throughput / capital: how much more (or less) the best scenario
//! produces, and how much less (or more) it costs. Given a published ratio
//! (`--reference-ratio`), it says what either factor would have to be to reach it.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use planner::{Catalog, Report, Scenario};
use serde::Serialize;

use super::report::{dollars, num, secs};
use crate::{Failure, Format};

/// One compared scenario.
pub struct Entry {
    pub path: PathBuf,
    /// Short name for tables and charts: the file stem.
    pub label: String,
    pub scenario: Scenario,
    /// `None` when the model cannot run it (the reason is in `cannot_run`).
    pub report: Option<Report>,
    pub cannot_run: Option<String>,
}

impl Entry {
    pub fn tokens_per_s_per_kusd(&self) -> Option<f64> {
        self.report
            .as_ref()
            .filter(|r| r.memory.fits)
            .and_then(|r| r.cost.tokens_per_s_per_kusd)
    }
}

/// The published figure to set the computed ratio against.
#[derive(Debug, Clone, Serialize)]
pub struct Reference {
    pub ratio: f64,
    pub source: String,
}

/// The best scenario against the first, factor by factor.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    pub first: String,
    pub best: String,
    /// Best's tokens/s per $1,000 over the first's.
    pub ratio: f64,
    /// First's capital over best's (above 1: the best is cheaper).
    pub capital_factor: f64,
    /// Best's throughput over the first's (above 1: the best is faster).
    pub throughput_factor: f64,
    pub first_capex_usd: f64,
    pub best_capex_usd: f64,
    pub first_tokens_per_s: f64,
    pub best_tokens_per_s: f64,
    /// "capital" or "throughput": the factor further from 1 (in log terms).
    pub dominant: String,
    pub reference: Option<Reference>,
}

/// The headline of a comparison: the scenario (after the first) with the most
/// tokens/s per $1,000, against the first.
pub fn headline(entries: &[Entry], reference: Option<Reference>) -> Option<Headline> {
    let first = entries.first()?;
    let first_r = first.report.as_ref()?;
    let first_tpk = first.tokens_per_s_per_kusd()?;
    let (best, best_tpk) = entries
        .iter()
        .skip(1)
        .filter_map(|e| e.tokens_per_s_per_kusd().map(|t| (e, t)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let best_r = best.report.as_ref()?;
    let first_tput = first_r.throughput_tokens_per_s?;
    let best_tput = best_r.throughput_tokens_per_s?;
    let capital_factor = first_r.cost.capex_usd / best_r.cost.capex_usd;
    let throughput_factor = best_tput / first_tput;
    Some(Headline {
        first: first.label.clone(),
        best: best.label.clone(),
        ratio: best_tpk / first_tpk,
        capital_factor,
        throughput_factor,
        first_capex_usd: first_r.cost.capex_usd,
        best_capex_usd: best_r.cost.capex_usd,
        first_tokens_per_s: first_tput,
        best_tokens_per_s: best_tput,
        dominant: if capital_factor.ln().abs() >= throughput_factor.ln().abs() {
            "capital"
        } else {
            "throughput"
        }
        .to_string(),
        reference,
    })
}

fn times(f: f64, more: &str, less: &str) -> String {
    if f >= 1.0 {
        format!("{f:.2}x {more}")
    } else {
        format!("{:.2}x {less}", 1.0 / f)
    }
}

impl Headline {
    /// The result and its two factors, in words.
    pub fn sentences(&self) -> Vec<String> {
        let mut out = vec![format!(
            "`{}` reaches {:.2}x the tokens/s per $1,000 of capital of `{}`: it costs {} ({} against {}) and produces {} ({:.2} against {:.2} output tokens/s), so the {} term dominates.",
            self.best,
            self.ratio,
            self.first,
            times(self.capital_factor, "less", "more"),
            dollars(self.best_capex_usd),
            dollars(self.first_capex_usd),
            times(self.throughput_factor, "the output", "less output"),
            self.best_tokens_per_s,
            self.first_tokens_per_s,
            self.dominant
        )];
        if let Some(r) = &self.reference {
            let agree = (self.ratio / r.ratio - 1.0).abs() <= 0.05;
            let mut s = format!(
                "The reference ({}) gives {:.2}x; the model gives {:.2}x{}",
                r.source,
                r.ratio,
                self.ratio,
                if agree { ", within 5%." } else { "." }
            );
            if !agree {
                // ratio = throughput factor x capital factor: either factor alone
                // would have to change by reference / ratio.
                let k = r.ratio / self.ratio;
                let _ = write!(
                    s,
                    " The model's ratio is {}; in it {}. At these prices `{}` would need {:.2} output tokens/s (now {:.2}) to reach {:.2}x, or, at these speeds, `{}` would have to cost {} (now {}).",
                    if self.ratio < r.ratio { "lower" } else { "higher" },
                    if self.dominant == "throughput" {
                        format!(
                            "the throughput gap ({}) outweighs the capital gap ({})",
                            times(self.throughput_factor, "more output", "less output"),
                            times(self.capital_factor, "cheaper", "dearer")
                        )
                    } else {
                        format!(
                            "the capital gap ({}) outweighs the throughput gap ({})",
                            times(self.capital_factor, "cheaper", "dearer"),
                            times(self.throughput_factor, "more output", "less output")
                        )
                    },
                    self.best,
                    self.best_tokens_per_s * k,
                    self.best_tokens_per_s,
                    r.ratio,
                    self.first,
                    dollars(self.first_capex_usd * k),
                    dollars(self.first_capex_usd)
                );
            }
            out.push(s);
        }
        out
    }
}

/// Reads and simulates every scenario. Invalid input stops the comparison (exit 2);
/// a scenario that does not fit or that the model cannot run stays in it, marked.
pub fn load(catalog: &Catalog, paths: &[PathBuf]) -> Result<Vec<Entry>, Failure> {
    let mut entries = Vec::new();
    for path in paths {
        let scenario = crate::read_scenario(catalog, path, &[])?;
        let trace = super::serve::read_trace(path, &scenario)?;
        let (report, cannot_run) = match planner::simulate_scenario(&scenario, trace.as_deref()) {
            Ok(r) => (Some(r), None),
            Err(planner::analytical::RunError::Unsupported(why)) => (None, Some(why)),
        };
        entries.push(Entry {
            label: path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into(),
            ),
            path: path.clone(),
            scenario,
            report,
            cannot_run,
        });
    }
    Ok(entries)
}

/// Ratio of an entry's tokens/s per $1,000 to the first's.
pub fn ratio_to_first(entries: &[Entry], i: usize) -> Option<f64> {
    let first = entries.first()?.tokens_per_s_per_kusd()?;
    entries[i].tokens_per_s_per_kusd().map(|t| t / first)
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    path: String,
    label: &'a str,
    ratio_to_first: Option<f64>,
    cannot_run: Option<&'a str>,
    report: Option<&'a Report>,
}

#[derive(Serialize)]
struct JsonComparison<'a> {
    title: &'a str,
    scenarios: Vec<JsonEntry<'a>>,
    headline: Option<Headline>,
}

/// The comparison as JSON: every scenario's full report, its ratio, the headline.
pub fn json(title: &str, entries: &[Entry], headline: Option<&Headline>) -> Result<String> {
    let c = JsonComparison {
        title,
        scenarios: entries
            .iter()
            .enumerate()
            .map(|(i, e)| JsonEntry {
                path: e.path.display().to_string(),
                label: &e.label,
                ratio_to_first: ratio_to_first(entries, i),
                cannot_run: e.cannot_run.as_deref(),
                report: e.report.as_ref(),
            })
            .collect(),
        headline: headline.cloned(),
    };
    Ok(serde_json::to_string_pretty(&c)? + "\n")
}

pub const CSV_HEADER: [&str; 16] = [
    "scenario",
    "path",
    "name",
    "fits",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "decode_tokens_per_s",
    "throughput_tokens_per_s",
    "capex_usd",
    "power_w",
    "usd_per_million_tokens",
    "tokens_per_s_per_kusd",
    "tokens_per_joule",
    "ratio_to_first",
    "reason",
];

/// One CSV row per scenario (full precision).
pub fn csv_rows(entries: &[Entry]) -> Vec<Vec<String>> {
    let f = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x}"));
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let r = e.report.as_ref();
            vec![
                e.label.clone(),
                e.path.display().to_string(),
                e.scenario.name.clone(),
                r.map_or_else(String::new, |r| r.memory.fits.to_string()),
                f(r.and_then(|r| r.ttft_s)),
                f(r.and_then(|r| r.tpot_s)),
                f(r.and_then(|r| r.e2e_s)),
                f(r.and_then(|r| r.decode_tokens_per_s)),
                f(r.and_then(|r| r.throughput_tokens_per_s)),
                f(r.map(|r| r.cost.capex_usd)),
                f(r.map(|r| r.cost.power_w)),
                f(r.and_then(|r| r.cost.usd_per_million_tokens)),
                f(r.and_then(|r| r.cost.tokens_per_s_per_kusd)),
                f(r.and_then(|r| r.cost.tokens_per_joule)),
                f(ratio_to_first(entries, i)),
                e.cannot_run
                    .clone()
                    .or_else(|| r.and_then(|r| r.reason.clone()))
                    .unwrap_or_default(),
            ]
        })
        .collect()
}

/// The comparison table for people.
pub fn table(title: &str, entries: &[Entry], headline: Option<&Headline>) -> String {
    let mut s = format!("{title}\n\n");
    let w = entries
        .iter()
        .map(|e| e.label.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        s,
        "  {:<w$}{:>11}{:>11}{:>11}{:>10}{:>11}{:>9}{:>9}{:>10}{:>9}",
        "scenario",
        "ttft",
        "tpot",
        "e2e",
        "tok/s",
        "capex $",
        "power W",
        "$/Mtok",
        "tok/s/k$",
        "ratio"
    );
    for (i, e) in entries.iter().enumerate() {
        let _ = write!(s, "  {:<w$}", e.label);
        match &e.report {
            Some(r) if r.memory.fits => {
                let _ = writeln!(
                    s,
                    "{:>11}{:>11}{:>11}{:>10}{:>11.0}{:>9.0}{:>9}{:>10}{:>9}",
                    secs(r.ttft_s),
                    secs(r.tpot_s),
                    secs(r.e2e_s),
                    num(r.throughput_tokens_per_s, 2),
                    r.cost.capex_usd,
                    r.cost.power_w,
                    num(r.cost.usd_per_million_tokens, 2)
                        + if r.cost.prices_complete { "" } else { "*" },
                    num(r.cost.tokens_per_s_per_kusd, 3),
                    ratio_to_first(entries, i)
                        .map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"))
                );
            }
            Some(r) => {
                let _ = writeln!(s, "  {}", r.reason.as_deref().unwrap_or("does not fit"));
            }
            None => {
                let _ = writeln!(s, "  cannot run: {}", e.cannot_run.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(
        s,
        "(tok/s: output tokens per second end to end; ratio: tokens/s per $1,000 over the first scenario's)"
    );
    if entries
        .iter()
        .any(|e| e.report.as_ref().is_some_and(|r| !r.cost.prices_complete))
    {
        let _ = writeln!(
            s,
            "(*: a device without a published price: capital and cost per token are lower bounds)"
        );
    }
    if let Some(h) = headline {
        let _ = writeln!(s);
        for line in h.sentences() {
            let _ = writeln!(s, "{}", line.replace('`', ""));
        }
    }
    s
}

/// Runs the command: prints the comparison and, with `out`, writes the report.
#[allow(clippy::too_many_arguments)]
pub fn run(
    catalog: &Catalog,
    paths: &[PathBuf],
    format: Format,
    out: Option<&Path>,
    title: Option<String>,
    reference_ratio: Option<f64>,
    reference: Option<String>,
) -> Result<(), Failure> {
    let entries = load(catalog, paths)?;
    let title = title.unwrap_or_else(|| format!("Comparison of {} scenarios", entries.len()));
    let reference = reference_ratio.map(|ratio| Reference {
        ratio,
        source: reference.unwrap_or_else(|| "a published figure".to_string()),
    });
    let head = headline(&entries, reference);
    let text = match format {
        Format::Table => table(&title, &entries, head.as_ref()),
        Format::Json => json(&title, &entries, head.as_ref()).map_err(Failure::Other)?,
        Format::Csv => String::from_utf8(
            super::report::csv_table(&CSV_HEADER, &csv_rows(&entries)).map_err(Failure::Other)?,
        )
        .map_err(|e| Failure::Other(e.into()))?,
    };
    print!("{text}");
    if let Some(dir) = out {
        super::report::compare::write(dir, &title, &entries, head.as_ref())
            .map_err(Failure::Other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(ratio: f64, capital: f64, throughput: f64, reference: Option<f64>) -> Headline {
        Headline {
            first: "server".into(),
            best: "cluster".into(),
            ratio,
            capital_factor: capital,
            throughput_factor: throughput,
            first_capex_usd: 200_000.0,
            best_capex_usd: 200_000.0 / capital,
            first_tokens_per_s: 200.0,
            best_tokens_per_s: 200.0 * throughput,
            dominant: if capital.ln().abs() >= throughput.ln().abs() {
                "capital"
            } else {
                "throughput"
            }
            .into(),
            reference: reference.map(|ratio| Reference {
                ratio,
                source: "paper".into(),
            }),
        }
    }

    #[test]
    fn headline_sentences_by_hand() {
        // 10x cheaper, 20x slower: ratio 0.5. Against a reference of 1.0, the cluster
        // would need 1.0 / 0.5 = 2x its 10 tokens/s = 20, or the server would have to
        // cost 2 x $200,000 = $400,000.
        let h = head(0.5, 10.0, 0.05, Some(1.0));
        let s = h.sentences();
        assert!(s[0].contains("reaches 0.50x"), "{}", s[0]);
        assert!(
            s[0].contains("costs 10.00x less ($20,000 against $200,000)"),
            "{}",
            s[0]
        );
        assert!(
            s[0].contains("20.00x less output (10.00 against 200.00"),
            "{}",
            s[0]
        );
        assert!(s[0].contains("the throughput term dominates"), "{}", s[0]);
        assert!(
            s[1].contains("would need 20.00 output tokens/s (now 10.00)"),
            "{}",
            s[1]
        );
        assert!(
            s[1].contains("would have to cost $400,000 (now $200,000)"),
            "{}",
            s[1]
        );
        // Within 5% of the reference: no explanation needed.
        let h = head(1.02, 10.0, 0.102, Some(1.0));
        assert!(h.sentences()[1].ends_with("within 5%."));
    }
}
