//! Prefill on one group, decode on another, with the KV cache sent between them.

use super::RunError;
use crate::report::Report;
use crate::scenario::{Disaggregation, Scenario};

pub fn simulate(_scenario: &Scenario, _d: Disaggregation) -> Result<Report, RunError> {
    Err(RunError::Unsupported(
        "prefill/decode disaggregation is not modelled in this build".to_string(),
    ))
}
