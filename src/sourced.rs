//! A published or fitted figure together with where it came from.
//!
//! Every number in the catalogs (`hardware/`, `models/`, `runtimes/`) is written as
//! `{ value = 819.0, source = "https://..." }` so that a reader can check it. A fitted
//! number says which command produced it, e.g. "fitted from measurements.csv by
//! `planner calibrate --runtime llama.cpp ...`".

use serde::{Deserialize, Serialize};

/// A value with its source (a URL, a document, or the command that fitted it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

impl<T: Copy> Sourced<T> {
    pub fn get(&self) -> T {
        self.value
    }
}

impl<T> Sourced<T> {
    /// Whether a command fitted the value (its source says "fitted from ..."), rather
    /// than a publication, a prior or a definition.
    pub fn is_fitted(&self) -> bool {
        self.source.starts_with("fitted from")
    }
}
