//! `planner`: a performance model and capacity planner for LLM inference on private
//! clusters.
//!
//! The library holds the catalogs' types ([`hardware`], [`model`], [`formats`],
//! [`runtime`]), the scenario contract ([`scenario`]), the analytical model
//! ([`analytical`]) and costing ([`cost`]). It prints nothing and reads no files: the
//! `planner` binary reads catalog and scenario texts and formats the results.

pub mod analytical;
pub mod catalog;
pub mod cost;
pub mod error;
pub mod formats;
pub mod hardware;
pub mod model;
pub mod network;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod serving;
pub mod sourced;
#[cfg(test)]
mod test_support;

pub use catalog::{Catalog, CatalogSources, SourceText};
pub use error::InputError;
pub use report::Report;
pub use scenario::Scenario;
