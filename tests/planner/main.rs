//! Integration tests of `planner`, one module per behaviour.

mod bad_input;
mod common;
mod disaggregation;
mod exo_single_device;
mod memory_fit;
mod model_catalog;
mod serving_engine;
mod validation;
