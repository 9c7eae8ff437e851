//! `planner`: a performance model and capacity planner for LLM inference on private
//! clusters.
//!
//! The library holds the catalogs' types ([`hardware`], [`model`], [`formats`],
//! [`runtime`]), the scenario contract ([`scenario`]), the analytical model
//! ([`analytical`]), costing ([`cost`]), the microbenchmark CSV schema shared with
//! `planner-harness` ([`microbench`]) and the calibration fits ([`calibrate`]). It
//! prints nothing and reads no files: the `planner` binary reads catalog, scenario
//! and CSV texts and formats the results.

pub mod analytical;
pub mod calibrate;
pub mod catalog;
pub mod cost;
pub mod error;
pub mod formats;
pub mod hardware;
pub mod microbench;
pub mod model;
pub mod network;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod sourced;

pub use catalog::{Catalog, CatalogSources, SourceText};
pub use error::InputError;
pub use report::Report;
pub use scenario::Scenario;
