//! Integration tests of `planner`, one module per behaviour.

mod bad_input;
mod calibration;
mod common;
mod exo_single_device;
mod memory_fit;
mod model_catalog;
