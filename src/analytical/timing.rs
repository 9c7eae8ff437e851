//! Roofline timing of operations on one device under one runtime.
//!
//! An operation takes `max(compute time, memory time)`:
//!
//! - compute time = FLOPs / (peak for the arithmetic type x the device's achievable
//!   fraction x the GEMM-size curve `rows / (rows + compute_half_rows)` x the runtime's
//!   fraction), plus dequantisation work on the vector units;
//! - memory time = bytes / (spec bandwidth x the device's achievable fraction x the
//!   transfer-size curve `bytes / (bytes + bandwidth_half_bytes)` x the runtime's
//!   fraction). The size curve amounts to a fixed latency per operation of
//!   `bandwidth_half_bytes / achievable bandwidth`.
//!
//! Dispatch overhead is charged per layer: the runtime's kernels per layer times the
//! device's per-kernel dispatch cost times the runtime's `dispatch_scale`.

use serde::Serialize;

use super::ops::{Op, OpKind};
use crate::formats::{WeightFormat, DEQUANT_TILE_ROWS};
use crate::hardware::{ComputeDtype, Device};
use crate::runtime::RuntimeEfficiency;

/// One device running one runtime with given weight and KV formats.
#[derive(Debug, Clone, Copy)]
pub struct Executor<'a> {
    pub device: &'a Device,
    pub runtime: RuntimeEfficiency,
    pub weights: &'a WeightFormat,
    pub kv_cache: &'a WeightFormat,
}

/// Timing of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OpTime {
    pub kind: OpKind,
    pub flops: f64,
    pub bytes: f64,
    pub compute_s: f64,
    pub memory_s: f64,
    pub time_s: f64,
}

impl OpTime {
    pub fn memory_bound(&self) -> bool {
        self.memory_s >= self.compute_s
    }
}

impl Executor<'_> {
    /// Achievable FLOP/s for a GEMM of `rows` token rows in `dtype`.
    pub fn compute_rate(&self, dtype: ComputeDtype, rows: f64, attention: bool) -> f64 {
        let (_, peak_tflops) = self.device.peak_tflops_for(dtype);
        let e = &self.device.efficiency;
        let size_curve = if rows > 0.0 {
            rows / (rows + e.compute_half_rows)
        } else {
            1.0
        };
        let attention_factor = if attention {
            self.runtime.attention_fraction
        } else {
            1.0
        };
        peak_tflops
            * 1e12
            * e.compute_fraction
            * size_curve
            * self.runtime.compute_fraction
            * attention_factor
    }

    /// Achievable bytes/s for a transfer of `bytes`: spec x fractions, and the time
    /// includes a fixed `bandwidth_half_bytes` worth of latency.
    pub fn memory_time(&self, bytes: f64) -> f64 {
        if bytes <= 0.0 {
            return 0.0;
        }
        let e = &self.device.efficiency;
        let rate = self.device.memory_bandwidth_gb_s
            * 1e9
            * e.bandwidth_fraction
            * self.runtime.bandwidth_fraction;
        (bytes + e.bandwidth_half_bytes) / rate
    }

    /// Vector (non-matrix) FLOP/s used for dequantisation: the fp32 rate.
    fn vector_rate(&self) -> f64 {
        let (_, peak) = self.device.peak_tflops_for(ComputeDtype::Fp32);
        peak * 1e12 * self.device.efficiency.compute_fraction * self.runtime.compute_fraction
    }

    pub fn time(&self, op: &Op) -> OpTime {
        let weight_bytes = op.weight_params * self.weights.bytes_per_weight();
        let kv_bytes = op.kv_elements * self.kv_cache.bytes_per_weight();
        let bytes = weight_bytes + kv_bytes + op.activation_bytes;
        let (dtype, attention) = match op.kind {
            OpKind::Attention => (self.kv_cache.compute_dtype, true),
            OpKind::Elementwise | OpKind::Embedding => (ComputeDtype::Fp32, false),
            _ => (self.weights.compute_dtype, false),
        };
        let mut compute_s = if op.flops > 0.0 {
            let rows = if matches!(op.kind, OpKind::Elementwise | OpKind::Embedding) {
                0.0
            } else {
                op.rows
            };
            op.flops / self.compute_rate(dtype, rows, attention)
        } else {
            0.0
        };
        if op.dequant_params > 0.0 && self.weights.dequant_ops_per_weight > 0.0 {
            let tiles = (op.rows / DEQUANT_TILE_ROWS).ceil().max(1.0);
            compute_s += op.dequant_params * self.weights.dequant_ops_per_weight * tiles
                / self.vector_rate();
        }
        let memory_s = self.memory_time(bytes);
        OpTime {
            kind: op.kind,
            flops: op.flops,
            bytes,
            compute_s,
            memory_s,
            time_s: compute_s.max(memory_s),
        }
    }

    /// Dispatch overhead of one layer.
    pub fn layer_overhead_s(&self) -> f64 {
        self.runtime.kernels_per_layer
            * self.device.efficiency.dispatch_overhead_s
            * self.runtime.dispatch_scale
    }
}
