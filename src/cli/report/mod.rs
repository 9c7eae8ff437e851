//! Report files for `simulate`, `sweep`, `plan` and `compare` with `--out DIR`:
//! `report.md`, a self-contained `report.html` (charts inlined as SVG, no scripts,
//! fonts or other files), CSV of every row, and every chart as PNG and SVG.
//!
//! Everything is rendered in memory first and then written file by file, each under
//! a temporary name renamed into place, so a file is complete or absent. Nothing in
//! a report depends on the clock, the machine or the directory it is written to:
//! the same inputs give the same bytes.

pub mod assumptions;
pub mod compare;
pub mod doc;
pub mod plan;
pub mod simulate;
pub mod sweep;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::charts::{render_in_memory, Chart, SIZE};
use doc::{Block, Doc};

/// A report being assembled: the document and the files that go with it.
pub struct ReportFiles {
    pub doc: Doc,
    files: BTreeMap<String, Vec<u8>>,
}

impl ReportFiles {
    pub fn new(title: impl Into<String>) -> ReportFiles {
        ReportFiles {
            doc: Doc::new(title),
            files: BTreeMap::new(),
        }
    }

    /// Renders `chart` as `stem.png` and `stem.svg` and places it in the document.
    pub fn chart(&mut self, stem: &str, alt: &str, chart: &impl Chart) -> Result<()> {
        self.chart_sized(stem, alt, chart, SIZE)
    }

    pub fn chart_sized(
        &mut self,
        stem: &str,
        alt: &str,
        chart: &impl Chart,
        size: (u32, u32),
    ) -> Result<()> {
        let r = render_in_memory(chart, size)?;
        self.files.insert(format!("{stem}.png"), r.png);
        self.files
            .insert(format!("{stem}.svg"), r.svg.clone().into_bytes());
        self.doc.blocks.push(Block::Chart {
            stem: stem.to_string(),
            alt: alt.to_string(),
            svg: r.svg,
        });
        Ok(())
    }

    /// Adds a data file (CSV, JSON) to the report.
    pub fn file(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.insert(name.to_string(), bytes);
    }

    /// Names of the files added so far, sorted.
    pub fn names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Ends the document with the list of its files, renders it, and writes
    /// everything into `dir` (created if needed).
    pub fn write(mut self, dir: &Path) -> Result<()> {
        let mut names = self.names();
        names.push("report.md".to_string());
        names.push("report.html".to_string());
        names.sort();
        self.doc.heading("Files");
        self.doc.paragraph(
            "Written together by one command; each file is complete or absent. Charts are \
             PNG and SVG of the same drawing; the HTML page holds the SVGs inline.",
        );
        self.doc
            .list(names.iter().map(|n| format!("`{n}`")).collect());
        let md = self.doc.markdown();
        let html = self.doc.html();
        self.files.insert("report.md".to_string(), md.into_bytes());
        self.files
            .insert("report.html".to_string(), html.into_bytes());
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, bytes) in &self.files {
            crate::cli::write_atomic(&dir.join(name), bytes)?;
        }
        Ok(())
    }
}

/// CSV bytes of serialisable rows (header from the field names).
pub fn csv_of<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    Ok(w.into_inner()?)
}

/// CSV bytes of a header and string rows.
pub fn csv_table(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    Ok(w.into_inner()?)
}

/// Numbers for tables: seconds in a readable unit, and a dash for none.
pub fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), crate::cli::output::seconds)
}

/// A number with `digits` decimals, or a dash.
pub fn num(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

/// Dollars with thousands separators: 199000 -> "$199,000".
pub fn dollars(v: f64) -> String {
    let whole = v.round() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}${out}", if whole < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_by_hand() {
        assert_eq!(dollars(199000.0), "$199,000");
        assert_eq!(dollars(6599.0), "$6,599");
        assert_eq!(dollars(999.4), "$999");
        assert_eq!(dollars(1234567.0), "$1,234,567");
    }
}
