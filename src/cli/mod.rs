//! The command line: argument parsing, file reading and output formatting. The
//! library does the modelling.

pub mod calibrate;
pub mod calibrate_runtime;
pub mod catalog_files;
pub mod charts;
pub mod compare;
pub mod edit;
pub mod files;
pub mod output;
pub mod overlap;
pub mod plan;
pub mod report;
pub mod serve;
pub mod show;
pub mod sweep;
pub mod validate;

pub use files::{with_temp_paths, write_atomic};
