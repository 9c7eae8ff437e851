//! The command line: argument parsing, file reading and output formatting. The
//! library does the modelling.

pub mod catalog_files;
pub mod output;
pub mod show;
