//! The command line: argument parsing, file reading and output formatting. The
//! library does the modelling.

pub mod calibrate;
pub mod catalog_files;
#[allow(dead_code)] // used by the report and timeline charts
pub mod charts;
pub mod output;
pub mod show;
