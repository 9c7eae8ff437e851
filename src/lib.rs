//! `planner`: a performance model and capacity planner for LLM inference on private
//! clusters.
//!
//! The library holds the catalogs' types ([`hardware`], [`model`], [`formats`],
//! [`runtime`]), the scenario contract ([`scenario`]), the analytical model
//! ([`analytical`]), costing ([`cost`]), the microbenchmark CSV schema shared with
//! `planner-harness` ([`microbench`]) and the calibration fits ([`calibrate`]). It
//! prints nothing and reads no files but the catalog directories
//! ([`CatalogSources::read_dir`]): the `planner` binary reads scenario and CSV texts
//! and formats the results.

pub mod analytical;
pub mod calibrate;
pub mod catalog;
pub mod cost;
pub mod error;
pub mod files;
pub mod formats;
pub mod hardware;
pub mod microbench;
pub mod model;
pub mod network;
pub mod plan;
pub mod report;
pub mod runtime;
pub mod runtime_fit;
pub mod scenario;
pub mod serving;
pub mod sourced;
pub mod stats;
#[cfg(test)]
mod test_support;
pub mod validate;

pub use catalog::{catalog_root, Catalog, CatalogSources, SourceText};

/// Runs a scenario with the engine it needs: the request-level discrete-event engine
/// in serving mode, the analytical model otherwise. `trace` holds the rows of the
/// scenario's trace file when it names one.
pub fn simulate_scenario(
    scenario: &Scenario,
    trace: Option<&[serving::workload::TraceRow]>,
) -> Result<Report, analytical::RunError> {
    if scenario.workload.serving.is_some() {
        serving::simulate(scenario, trace).map(|run| run.report)
    } else {
        analytical::simulate(scenario)
    }
}
pub use error::InputError;
pub use report::Report;
pub use scenario::Scenario;
