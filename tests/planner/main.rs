//! Integration tests of `planner`, one module per behaviour.

mod bad_input;
mod calibration;
mod cluster_input;
mod cluster_properties;
mod cluster_scaling;
mod common;
mod disaggregation;
mod exo_single_device;
mod expert_parallel_study;
mod memory_fit;
mod model_catalog;
mod planner_search;
mod reports;
mod serving_engine;
mod validation;
