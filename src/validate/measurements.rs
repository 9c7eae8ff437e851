//! Rows of `measurements.csv`: published figures, one per row, with their source.
//! The columns are those of the reference file; values are kept as published.

use serde::Deserialize;

use crate::error::InputError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Measurement {
    pub id: String,
    pub hardware: String,
    pub nodes: String,
    pub model: String,
    pub params_b: String,
    pub active_params_b: String,
    pub dtype: String,
    pub bits_per_weight: String,
    pub phase: String,
    pub prompt_tokens: String,
    pub gen_tokens: String,
    pub batch: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    pub framework: String,
    pub source: String,
}

impl Measurement {
    pub fn nodes(&self) -> u64 {
        self.nodes.trim().parse().unwrap_or(1)
    }

    pub fn bits_per_weight(&self) -> Option<f64> {
        self.bits_per_weight.trim().parse().ok()
    }

    pub fn prompt_tokens(&self) -> Option<u64> {
        self.prompt_tokens.trim().parse().ok()
    }

    pub fn gen_tokens(&self) -> Option<u64> {
        self.gen_tokens.trim().parse().ok()
    }

    /// The batch column when it is a number (llama-batched-bench's B).
    pub fn batch(&self) -> Option<u64> {
        self.batch.trim().parse().ok()
    }
}

/// Parses the CSV text of a measurements file named `file`.
pub fn parse_measurements(file: &str, text: &str) -> Result<Vec<Measurement>, InputError> {
    crate::error::read_csv_records(&csv::ReaderBuilder::new(), text).map_err(|message| {
        InputError::Parse {
            file: file.to_string(),
            message,
        }
    })
}
