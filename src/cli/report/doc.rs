//! A report as a list of blocks, rendered twice: Markdown (charts linked as PNG files
//! beside it) and a self-contained HTML page (charts inlined as SVG, styles inline,
//! no scripts, fonts or other files). Text may hold `code` spans in backticks.

use std::fmt::Write;

/// One table: header, rows, and which columns are numbers (right-aligned).
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub numeric: Vec<bool>,
}

impl Table {
    /// A table whose columns after the first `text_columns` are numbers.
    pub fn new(header: &[&str], text_columns: usize) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            numeric: (0..header.len()).map(|i| i >= text_columns).collect(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

#[derive(Debug, Clone)]
pub enum Block {
    /// A section heading (level 2).
    Heading(String),
    /// A subsection heading (level 3).
    Subheading(String),
    Paragraph(String),
    List(Vec<String>),
    Table(Table),
    /// Preformatted text (a command, a table printed by the CLI).
    Code(String),
    /// A chart written as `stem.png` and `stem.svg`.
    Chart {
        stem: String,
        alt: String,
        svg: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Doc {
    pub fn new(title: impl Into<String>) -> Doc {
        Doc {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    pub fn heading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Heading(text.into()));
    }

    pub fn subheading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Subheading(text.into()));
    }

    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }

    pub fn list(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    pub fn table(&mut self, table: Table) {
        self.blocks.push(Block::Table(table));
    }

    pub fn code(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Code(text.into()));
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("# {}\n", self.title);
        for b in &self.blocks {
            s.push('\n');
            match b {
                Block::Heading(t) => {
                    let _ = writeln!(s, "## {}", md(t));
                }
                Block::Subheading(t) => {
                    let _ = writeln!(s, "### {}", md(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(s, "{}", md(t));
                }
                Block::List(items) => {
                    for i in items {
                        let _ = writeln!(s, "- {}", md(i));
                    }
                }
                Block::Table(t) => markdown_table(&mut s, t),
                Block::Code(t) => {
                    let _ = writeln!(s, "```\n{}\n```", t.trim_end());
                }
                Block::Chart { stem, alt, .. } => {
                    let _ = writeln!(s, "![{}]({stem}.png)\n\n(also `{stem}.svg`)", md(alt));
                }
            }
        }
        s
    }

    pub fn html(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>",
            escape(&self.title),
            escape(&self.title)
        );
        for b in &self.blocks {
            match b {
                Block::Heading(t) => {
                    let _ = writeln!(s, "<h2>{}</h2>", inline(t));
                }
                Block::Subheading(t) => {
                    let _ = writeln!(s, "<h3>{}</h3>", inline(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(s, "<p>{}</p>", inline(t));
                }
                Block::List(items) => {
                    let _ = writeln!(s, "<ul>");
                    for i in items {
                        let _ = writeln!(s, "<li>{}</li>", inline(i));
                    }
                    let _ = writeln!(s, "</ul>");
                }
                Block::Table(t) => html_table(&mut s, t),
                Block::Code(t) => {
                    let _ = writeln!(s, "<pre>{}</pre>", escape(t.trim_end()));
                }
                Block::Chart { alt, svg, .. } => {
                    let _ = writeln!(
                        s,
                        "<figure role=\"img\" aria-label=\"{}\">\n{}\n</figure>",
                        escape(alt),
                        strip_xml_declaration(svg).trim()
                    );
                }
            }
        }
        s.push_str("</body>\n</html>\n");
        s
    }
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;vertical-align:top}\
th{background:#f0f0f0}td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.85em}\
code{background:#f3f3f3;padding:0 0.2em}\
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}\
h2{border-bottom:1px solid #ddd;padding-bottom:0.2em;margin-top:1.8em}";

fn markdown_table(s: &mut String, t: &Table) {
    let cell = |c: &str| md(c).replace('|', "\\|");
    let _ = writeln!(
        s,
        "| {} |",
        t.header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        s,
        "|{}|",
        t.numeric
            .iter()
            .map(|&n| if n { "---:" } else { "---" })
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &t.rows {
        let _ = writeln!(
            s,
            "| {} |",
            r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
}

fn html_table(s: &mut String, t: &Table) {
    let _ = writeln!(s, "<table>\n<thead><tr>");
    for h in &t.header {
        let _ = write!(s, "<th>{}</th>", inline(h));
    }
    let _ = writeln!(s, "</tr></thead>\n<tbody>");
    for r in &t.rows {
        let _ = write!(s, "<tr>");
        for (i, c) in r.iter().enumerate() {
            if t.numeric.get(i).copied().unwrap_or(false) {
                let _ = write!(s, "<td class=\"n\">{}</td>", inline(c));
            } else {
                let _ = write!(s, "<td>{}</td>", inline(c));
            }
        }
        let _ = writeln!(s, "</tr>");
    }
    let _ = writeln!(s, "</tbody>\n</table>");
}

/// Escapes text for HTML (and XML: the page is well-formed XML as well).
pub fn escape(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            _ => s.push(c),
        }
    }
    s
}

/// Markdown text: dollar signs escaped outside code spans (GitHub reads a pair of
/// them as mathematics).
fn md(t: &str) -> String {
    t.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                part.to_string()
            } else {
                part.replace('$', "\\$")
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// Escapes text and turns `code` spans into `<code>` elements.
fn inline(t: &str) -> String {
    let mut s = String::new();
    for (i, part) in t.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(s, "<code>{}</code>", escape(part));
        } else {
            s.push_str(&escape(part));
        }
    }
    s
}

/// An SVG document without its `<?xml ...?>` line, for inlining in HTML.
fn strip_xml_declaration(svg: &str) -> &str {
    let t = svg.trim_start();
    if t.starts_with("<?xml") {
        t.find("?>").map_or(t, |i| &t[i + 2..])
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_of_a_small_doc() {
        let mut d = Doc::new("A <title>");
        d.paragraph("Run `planner simulate` & see, $5 or `$5`.");
        let mut t = Table::new(&["name", "tok/s"], 1);
        t.row(vec!["a|b".into(), "1.5".into()]);
        d.table(t);
        let md = d.markdown();
        assert!(md.starts_with("# A <title>\n"));
        assert!(md.contains("see, \\$5 or `$5`."));
        assert!(md.contains("| name | tok/s |\n|---|---:|\n| a\\|b | 1.5 |\n"));
        let html = d.html();
        assert!(html.contains("<h1>A &lt;title&gt;</h1>"));
        assert!(html.contains(
            "<p>Run <code>planner simulate</code> &amp; see, $5 or <code>$5</code>.</p>"
        ));
        assert!(html.contains("<td class=\"n\">1.5</td>"));
    }

    #[test]
    fn svg_declaration_is_dropped_for_inlining() {
        assert_eq!(
            strip_xml_declaration("<?xml version=\"1.0\"?>\n<svg/>").trim(),
            "<svg/>"
        );
        assert_eq!(strip_xml_declaration("<svg/>"), "<svg/>");
    }
}
