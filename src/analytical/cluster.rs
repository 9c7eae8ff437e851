//! A model spread over several nodes: tensor, pipeline and expert parallelism.

use super::RunError;
use crate::report::Report;
use crate::scenario::Scenario;

pub fn simulate(scenario: &Scenario) -> Result<Report, RunError> {
    Err(RunError::Unsupported(format!(
        "this build models one node; the scenario uses {} nodes",
        scenario.total_nodes()
    )))
}
