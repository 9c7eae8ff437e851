//! Typed errors of the core. Each variant carries what a user needs to fix the input:
//! the file (its display name, given by the caller), the line and column, the key, and
//! what was expected. The binary maps [`InputError`] to exit code 2.

use std::fmt;

/// Line and column (both 1-based) of a key or value in a TOML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The location of byte offset `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where a problem is: a file's display name and, when known, a location in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub location: Option<Location>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(loc) => write!(f, "{}:{}", self.file, loc),
            None => write!(f, "{}", self.file),
        }
    }
}

/// Invalid input: a scenario or catalog file that cannot be read as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    /// TOML syntax, an unknown key or a wrong type; `message` is toml's own report,
    /// which already names the line and column and shows the line with a caret.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },

    /// An id that is not in the catalog.
    #[error("{origin}: `{key}`: unknown {kind} `{value}`{}", suggestion_text(.suggestions))]
    UnknownId {
        origin: Box<Origin>,
        key: String,
        kind: &'static str,
        value: String,
        suggestions: Vec<String>,
    },

    /// A value of the right type that breaks a rule (zero tokens, degrees that do not
    /// divide the heads, ...).
    #[error("{origin}: `{key}` = {}: {expected}", written(.value))]
    InvalidValue {
        origin: Origin,
        key: String,
        value: String,
        expected: String,
    },
}

impl InputError {
    /// Where the error is, with the key and value it names (a parse error has none:
    /// toml's own report places it).
    fn placed(&mut self) -> Option<(&mut Origin, &str, &str)> {
        match self {
            InputError::UnknownId {
                origin, key, value, ..
            } => Some((&mut **origin, key.as_str(), value.as_str())),
            InputError::InvalidValue {
                origin, key, value, ..
            } => Some((origin, key.as_str(), value.as_str())),
            InputError::Parse { .. } => None,
        }
    }

    /// The error without its line and column: for a text the program wrote (a
    /// scenario edited by `--set` or `--vary`), where they point nowhere the user can
    /// look; the file's name then says what was edited.
    pub fn without_location(mut self) -> InputError {
        if let Some((origin, _, _)) = self.placed() {
            origin.location = None;
        }
        self
    }

    /// The error with the line and column of its key's value in `text`, the TOML it
    /// was found in, when it has none: for files checked after they were read into
    /// plain values (the catalog's), whose checks know the dotted key but not where
    /// it was written. Where the key is written several times (a key under an array
    /// of tables, a list's elements), the error is placed at the first that holds its
    /// value: the checks go through a file in order, so that is the one they stopped
    /// at. Left as it is when the key is not found in `text`, or none of its places
    /// holds the error's value.
    pub fn located_in(mut self, text: &str) -> InputError {
        if let Some((origin, key, value)) = self.placed() {
            if origin.location.is_none() {
                origin.location = locate(text, key, value);
            }
        }
        self
    }
}

/// The one item of `items`, or None when there are none or several.
fn only<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}

/// Where the value of dotted `key` is written in TOML `text`. A key may pass through
/// arrays (`memory.variants.capacity_gb`: every variant has one); a sourced figure
/// (`{ value = ..., source = ... }`) is found at its `value`, and a list's elements
/// are matches besides the list. With several matches, the first whose value is
/// `value` (as a number, or as text).
fn locate(text: &str, key: &str, value: &str) -> Option<Location> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let parts: Vec<&str> = key.split('.').collect();
    let mut found = Vec::new();
    find_key(doc.as_item(), &parts, &mut found);
    let same = |written: &str| {
        let written = written.trim().trim_matches('"');
        match (written.parse::<f64>(), value.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => written == value,
        }
    };
    let offset = match found.as_slice() {
        [(offset, _)] => *offset,
        _ => found.iter().find(|(_, written)| same(written))?.0,
    };
    Some(Location::of_offset(text, offset))
}

/// Collects (offset, written value) of every item at path `parts` under `item`.
fn find_key(item: &toml_edit::Item, parts: &[&str], found: &mut Vec<(usize, String)>) {
    let Some((first, rest)) = parts.split_first() else {
        let leaf = item
            .as_table_like()
            .and_then(|t| t.get("value"))
            .unwrap_or(item);
        if let (Some(span), Some(v)) = (leaf.span(), leaf.as_value()) {
            found.push((span.start, v.to_string()));
            // An error about one id of a list holds that id: the elements compete.
            for element in v.as_array().into_iter().flatten() {
                if let Some(span) = element.span() {
                    found.push((span.start, element.to_string()));
                }
            }
        }
        return;
    };
    if let Some(child) = item.as_table_like().and_then(|t| t.get(first)) {
        match child {
            toml_edit::Item::ArrayOfTables(tables) => {
                for t in tables.iter() {
                    find_key(&toml_edit::Item::Table(t.clone()), rest, found);
                }
            }
            toml_edit::Item::Value(toml_edit::Value::Array(values)) if !rest.is_empty() => {
                for v in values.iter() {
                    find_key(&toml_edit::Item::Value(v.clone()), rest, found);
                }
            }
            _ => find_key(child, rest, found),
        }
    }
}

/// Reads every record of CSV `text` (read by `builder`) as a `T`; an error names the
/// file's line (1-based, counted here from the record's byte offset: the csv crate's
/// own count put the rows of measurements.csv, which has CRLF line ends, one line
/// early) and the column by its header name (the crate's message gives a 0-based
/// field index).
pub fn read_csv_records<T: serde::de::DeserializeOwned>(
    builder: &csv::ReaderBuilder,
    text: &str,
) -> Result<Vec<T>, String> {
    let mut reader = builder.from_reader(text.as_bytes());
    // With CRLF endings the crate's record offset is the `\n` of the terminator
    // before the record: step past line ends to the record's first byte.
    let line_at = |byte: u64| {
        let bytes = text.as_bytes();
        let mut start = (byte as usize).min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64
    };
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| line_at(p.byte()));
            csv_record_error(&e, &headers, None, line)
        })?;
        let line = record.position().map(|p| line_at(p.byte()));
        let row = record
            .deserialize(Some(&headers))
            .map_err(|e| csv_record_error(&e, &headers, Some(&record), line))?;
        rows.push(row);
    }
    Ok(rows)
}

/// A CSV error as `line L: column `name`: what is wrong` (`line` when known better
/// than the error's own position).
///
/// The crate knows the column of a value it failed to parse (a number), but not of
/// one a type rejected through serde's messages (an unknown enum variant: "unknown
/// variant `fp9`, expected one of ..."); for those the column is the record's only
/// field holding the value the message quotes, when exactly one does.
fn csv_record_error(
    e: &csv::Error,
    headers: &csv::StringRecord,
    record: Option<&csv::StringRecord>,
    line: Option<u64>,
) -> String {
    let line = line.or_else(|| e.position().map(|p| p.line()));
    let at = line.map_or_else(String::new, |l| format!("line {l}: "));
    let named = |i: usize| {
        headers
            .get(i)
            .map_or_else(|| format!("column {}", i + 1), |n| format!("column `{n}`"))
    };
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let message = err.kind().to_string();
            let field = err
                .field()
                .map(|i| i as usize)
                .or_else(|| record.and_then(|r| quoted_field(r, &message)));
            match field {
                Some(i) => format!("{at}{}: {message}", named(i)),
                None => format!("{at}{message}"),
            }
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{at}{len} fields where the header has {expected_len}"),
        _ => format!("{at}{e}"),
    }
}

/// The index of the one field of `record` whose value is the first backtick-quoted
/// word of `message`, if exactly one field holds it.
fn quoted_field(record: &csv::StringRecord, message: &str) -> Option<usize> {
    let quoted = message.split('`').nth(1)?;
    only(
        record
            .iter()
            .enumerate()
            .filter(|(_, v)| v.trim() == quoted),
    )
    .map(|(i, _)| i)
}

/// A value as its writer would have written it: a number whose display runs past 24
/// characters (an f64 of 1e300 displays as 301 digits, 1e-300 as 302) in exponent
/// form; anything else as it is.
fn written(value: &str) -> String {
    match value.parse::<f64>() {
        Ok(x) if value.len() > 24 && x.is_finite() => format!("{x:e}"),
        _ => value.to_string(),
    }
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

impl InputError {
    /// A value of the right type that breaks a rule, in `file` (no line known).
    pub fn invalid(
        file: &str,
        key: &str,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> InputError {
        InputError::InvalidValue {
            origin: Origin {
                file: file.to_string(),
                location: None,
            },
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// An id that is not in the catalog, given in `file` (or "command line") at no
    /// known line.
    pub fn unknown_id(
        file: &str,
        key: &str,
        kind: &'static str,
        value: &str,
        suggestions: Vec<String>,
    ) -> InputError {
        InputError::UnknownId {
            origin: Box::new(Origin {
                file: file.to_string(),
                location: None,
            }),
            key: key.to_string(),
            kind,
            value: value.to_string(),
            suggestions,
        }
    }

    /// An input file that cannot be read.
    pub fn unreadable(path: &std::path::Path, error: std::io::Error) -> InputError {
        InputError::Parse {
            file: path.display().to_string(),
            message: format!("cannot read: {error}"),
        }
    }

    /// Wraps a toml deserialisation error from file `file`.
    pub fn parse(file: &str, error: toml::de::Error) -> InputError {
        InputError::Parse {
            file: file.to_string(),
            message: error.to_string().trim_end().to_string(),
        }
    }
}

/// Ids from `known` closest to `wanted` by edit distance, best first (at most three).
pub fn nearest_ids<'a>(wanted: &str, known: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = known
        .into_iter()
        .map(|k| (edit_distance(wanted, k), k))
        .collect();
    scored.sort();
    let limit = (wanted.len() / 2).max(3);
    scored
        .into_iter()
        .filter(|(d, k)| *d <= limit || k.contains(wanted) || wanted.contains(k.as_str()))
        .take(3)
        .map(|(_, k)| k.clone())
        .collect()
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_columns_from_one() {
        // "a = 1\nbc = 2": offset 6 is the 'b' at the start of line 2.
        let text = "a = 1\nbc = 2";
        assert_eq!(
            Location::of_offset(text, 6),
            Location { line: 2, column: 1 }
        );
        assert_eq!(
            Location::of_offset(text, 8),
            Location { line: 2, column: 3 }
        );
    }

    #[test]
    fn a_value_written_twice_is_placed_at_its_first() {
        // Two variants with the same bad capacity: line 3, after `  { capacity_gb = `
        // (18 characters). The same misspelt link twice: line 2, after `links = [` (9).
        // Both used to get no place at all, as if neither held the value.
        let text = "[memory]\nvariants = [\n  { capacity_gb = -1 },\n  { capacity_gb = -1 },\n]\n";
        let err = InputError::invalid("d.toml", "memory.variants.capacity_gb", -1, "expected > 0");
        assert!(err
            .located_in(text)
            .to_string()
            .starts_with("d.toml:3:19: "));
        let text = "[connectivity]\nlinks = [\"x\", \"x\"]\n";
        let err = InputError::invalid("d.toml", "connectivity.links", "x", "unknown link");
        assert!(err
            .located_in(text)
            .to_string()
            .starts_with("d.toml:2:10: "));
        // A value written nowhere gets no place.
        let err = InputError::invalid("d.toml", "connectivity.links", "y", "unknown link");
        assert!(err.located_in(text).to_string().starts_with("d.toml: "));
    }

    #[test]
    fn edit_distance_of_known_pairs() {
        // kitten -> sitting: substitute k->s, e->i, insert g = 3.
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn nearest_ids_prefers_small_edits() {
        let known: Vec<String> = ["m3-ultra-80c", "m2-ultra-76c", "dgx-spark"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest_ids("m3-ultra-80", &known)[0], "m3-ultra-80c");
    }

    #[test]
    fn a_huge_or_tiny_number_in_an_error_is_shown_in_exponent_form() {
        let err = InputError::invalid("f.toml", "k", 1e300, "expected a fraction");
        assert_eq!(err.to_string(), "f.toml: `k` = 1e300: expected a fraction");
        let err = InputError::invalid("f.toml", "k", 1e-300, "expected a number");
        assert_eq!(err.to_string(), "f.toml: `k` = 1e-300: expected a number");
        // Integers up to u64's range and ordinary values are left as written.
        let err = InputError::invalid("f.toml", "k", u64::MAX, "expected less");
        assert_eq!(
            err.to_string(),
            "f.toml: `k` = 18446744073709551615: expected less"
        );
        let err = InputError::invalid("f.toml", "k", 0.25, "expected more");
        assert_eq!(err.to_string(), "f.toml: `k` = 0.25: expected more");
    }
}

#[cfg(test)]
mod csv_tests {
    use super::read_csv_records;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Row {
        id: String,
        note: String,
        value: f64,
    }

    #[test]
    fn a_csv_error_names_the_files_line_and_the_column() {
        // The bad value is on line 4, in the third column, `value` (a quoted comma
        // in the rows before, as measurements.csv has).
        let text = "id,note,value\na,\"x, y\",1.5\nb,\"z, w\",2.5\nc,\"u, v\",2.8x7\n";
        let err = read_csv_records::<Row>(&csv::ReaderBuilder::new(), text).unwrap_err();
        assert_eq!(err, "line 4: column `value`: invalid float literal");
        // CRLF line ends, as measurements.csv has: the bad value on line 3 (the
        // crate's count said line 2).
        let long = "id,note,value\r\na,x,1.5\r\nb,x,2.8x7\r\n";
        let err = read_csv_records::<Row>(&csv::ReaderBuilder::new(), long).unwrap_err();
        assert_eq!(err, "line 3: column `value`: invalid float literal");
    }

    #[test]
    fn a_short_row_says_how_many_fields_it_has() {
        // The crate's message repeated the line and a byte offset after ours.
        let text = "id,note,value\na,x,1.5\nb,2.5\n";
        let err = read_csv_records::<Row>(&csv::ReaderBuilder::new(), text).unwrap_err();
        assert_eq!(err, "line 3: 2 fields where the header has 3");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Read,
        Gemm,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Typed {
        id: String,
        kind: Kind,
        other: String,
    }

    #[test]
    fn an_unknown_variant_names_the_column_that_holds_it() {
        // serde's message for an enum carries no column; the record's one field
        // holding the quoted value is `kind`, the second.
        let text = "id,kind,other\na,read,x\nb,gemv,y\n";
        let err = read_csv_records::<Typed>(&csv::ReaderBuilder::new(), text).unwrap_err();
        assert_eq!(
            err,
            "line 3: column `kind`: unknown variant `gemv`, expected `read` or `gemm`"
        );
        // Two fields hold the value: no column is named rather than a wrong one.
        let text = "id,kind,other\na,read,x\nb,gemv,gemv\n";
        let err = read_csv_records::<Typed>(&csv::ReaderBuilder::new(), text).unwrap_err();
        assert_eq!(
            err,
            "line 3: unknown variant `gemv`, expected `read` or `gemm`"
        );
    }
}
