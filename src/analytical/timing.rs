//! Roofline timing of operations on one device under one runtime.
//!
//! An operation takes `max(compute, memory) + (1 - overlap) x min(compute, memory)`:
//! the roofline when the runtime overlaps the two fully (`overlap_fraction` 1), their
//! sum when it does not overlap them at all.
//!
//! - compute time = FLOPs / (peak for the arithmetic type x the device's achievable
//!   fraction x the GEMM-size curve `rows / (rows + half)` (half: the runtime's
//!   `gemm_half_rows` where it has one, else the device's for that arithmetic type) x
//!   the runtime's
//!   fraction), plus dequantisation work on the vector units. Where the runtime
//!   multiplies small batches with matrix-vector kernels (`matvec_max_rows`), those
//!   run at the vector rate with no tile padding, and stream their weights at the
//!   device's `matvec_bandwidth_fraction` of the achievable bandwidth (a dot-product
//!   kernel may stream slower than a plain read; 1 unless calibrated), plus the
//!   device's `matvec_output_ns` per output element (token rows x the weights'
//!   output features: each dot product's reduction and store; 0 unless calibrated).
//!   A runtime whose matrix-vector kernel serves at most `matvec_rows_per_pass` rows
//!   per pass over the weights reads them `ceil(rows / matvec_rows_per_pass)` times
//!   (llama.cpp's Metal `mul_mv_ext`: 6 to 8 rows take two passes). A runtime whose
//!   GEMM kernels tile the token rows (`gemm_tile_rows`: llama.cpp's Metal `mul_mm`,
//!   32) pays for whole tiles: `rows` rows cost the work of `ceil(rows / tile) x tile`
//!   rows at that size's rate (a routed expert's rows are padded per expert), and
//!   each tile unpacks its quantised weights again. Attention's rows are its query
//!   rows, each new token's heads that share a KV head counted as rows of one product
//!   over that head's keys; a runtime whose attention kernels hold fewer heads per
//!   tile (`attention_heads_per_tile`: llama.cpp's Metal flash attention runs one head
//!   per threadgroup) has that many rows per query, on its attention kernels' own
//!   size curve where it has one (`attention_half_rows`). The re-reads of a KV head's
//!   keys by each of its heads' tiles are not counted as memory traffic (they come
//!   from the cache; their cost is in the fitted rate);
//! - memory time = bytes / (spec bandwidth x the device's achievable fraction x the
//!   transfer-size curve `bytes / (bytes + bandwidth_half_bytes)` x the runtime's
//!   fraction). The size curve amounts to a fixed latency per operation of
//!   `bandwidth_half_bytes / achievable bandwidth`, paid once per operation: the
//!   routed experts a step touches are read by one launch (llama.cpp's `mul_mat_id`
//!   spans the picked experts in one grid), concurrently, so their start-up
//!   latencies overlap. Where the device has a [`crate::hardware::BandwidthBySize`]
//!   law, the time per byte also scales with the operation's bytes.
//!
//! Dispatch overhead is charged per kernel: each operation's kernel count (see
//! `OpKind::kernels`) times the device's per-kernel dispatch cost times the runtime's
//! `dispatch_scale`.

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
        let (used, peak_tflops) = self.device.peak_tflops_for(dtype);
        let e = &self.device.efficiency;
        let size_curve = if rows > 0.0 {
            let runtime_half = if attention {
                self.runtime
                    .attention_half_rows
                    .or(self.runtime.gemm_half_rows)
            } else {
                self.runtime.gemm_half_rows
            };
            let half = runtime_half.unwrap_or_else(|| e.half_rows_for(used));
            rows / (rows + half)
        } else {
            1.0
        };
        // Attention kernels have their own efficiency relative to the device's
        // achievable GEMM rate; other matmuls take the runtime's GEMM fraction.
        let software = if attention {
            self.runtime.attention_fraction
        } else {
            self.runtime.compute_fraction
        };
        peak_tflops * 1e12 * e.fraction_for(used) * size_curve * software
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
        let per_byte = e
            .bandwidth_by_size
            .map_or(1.0, |law| law.time_per_byte_factor(bytes));
        (bytes * per_byte + e.bandwidth_half_bytes) / rate
    }

    /// Vector (non-matrix) FLOP/s, for element-wise work, matrix-vector kernels and
    /// dequantisation: the device's achievable fp32 rate.
    fn vector_rate(&self) -> f64 {
        let (_, peak) = self.device.peak_tflops_for(ComputeDtype::Fp32);
        peak * 1e12 * self.device.efficiency.compute_fraction
    }

    /// The arithmetic weight matmuls run in: the runtime's choice for quantised
    /// formats where it has one, else the format's own.
    pub fn weights_compute_dtype(&self) -> ComputeDtype {
        match self.runtime.quantized_compute_dtype {
            Some(dtype) if self.weights.dequant_ops_per_weight > 0.0 => dtype,
            _ => self.weights.compute_dtype,
        }
    }

    /// The rows one tile of `op`'s kernel computes: an attention op's rows hold
    /// `heads_per_kv` heads per query, of which a tile takes the runtime's
    /// `attention_heads_per_tile` where it has one.
    fn compute_rows(&self, op: &Op) -> f64 {
        match self.runtime.attention_heads_per_tile {
            Some(per_tile) if op.kind == OpKind::Attention => {
                op.rows / op.heads_per_kv * op.heads_per_kv.min(per_tile)
            }
            _ => op.rows,
        }
    }

    pub fn time(&self, op: &Op) -> OpTime {
        let weight_matvec = op.weight_params > 0.0
            && self
                .runtime
                .matvec_max_rows
                .is_some_and(|max| op.rows <= max);
        let weight_passes = match self.runtime.matvec_rows_per_pass {
            Some(per_pass) if weight_matvec => (op.rows / per_pass).ceil().max(1.0),
            _ => 1.0,
        };
        let weight_bytes = op.weight_params * self.weights.bytes_per_weight() * weight_passes;
        let kv_bytes = op.kv_elements * self.kv_cache.bytes_per_weight();
        let bytes = weight_bytes + kv_bytes + op.activation_bytes;
        let (dtype, attention) = match op.kind {
            OpKind::Attention => (self.kv_cache.compute_dtype, true),
            OpKind::Elementwise | OpKind::Embedding => (ComputeDtype::Fp32, false),
            _ => (self.weights_compute_dtype(), false),
        };
        let matvec = weight_matvec || matches!(op.kind, OpKind::Elementwise | OpKind::Embedding);
        let mut compute_s = if op.flops <= 0.0 {
            0.0
        } else if matvec {
            op.flops / self.vector_rate()
        } else {
            // A tiled GEMM kernel pays for whole tiles of token rows: the work of
            // `padded` rows at the rate of a GEMM that size.
            match self.runtime.gemm_tile_rows {
                Some(tile) if !attention && op.rows > 0.0 => {
                    let padded = (op.rows / tile).ceil() * tile;
                    op.flops * (padded / op.rows) / self.compute_rate(dtype, padded, false)
                }
                _ => op.flops / self.compute_rate(dtype, self.compute_rows(op), attention),
            }
        };
        if op.dequant_params > 0.0 && self.weights.dequant_ops_per_weight > 0.0 {
            let tile = self.runtime.gemm_tile_rows.unwrap_or(DEQUANT_TILE_ROWS);
            let tiles = (op.rows / tile).ceil().max(1.0);
            compute_s += op.dequant_params * self.weights.dequant_ops_per_weight * tiles
                / self.vector_rate();
        }
        let mut memory_s = self.memory_time(bytes);
        if weight_matvec {
            let e = &self.device.efficiency;
            memory_s = memory_s / e.matvec_bandwidth_fraction + op.dot_products * e.matvec_output_s;
        }
        OpTime {
            kind: op.kind,
            flops: op.flops,
            bytes,
            compute_s,
            memory_s,
            time_s: compute_s.max(memory_s)
                + (1.0 - self.runtime.overlap_fraction) * compute_s.min(memory_s),
        }
    }

    /// Dispatch overhead of launching `ops`: their kernels times the device's
    /// per-kernel cost times the runtime's `dispatch_scale`.
    pub fn dispatch_overhead_s(&self, ops: &[Op]) -> f64 {
        let kernels: f64 = ops.iter().map(|op| op.kernels).sum();
        kernels * self.device.efficiency.dispatch_overhead_s * self.runtime.dispatch_scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::{predict_row, row_executor, row_format};
    use crate::microbench::{Kernel, MicrobenchRow};

    /// A bare device: 100 GB/s, no size curve, fp32 10 TFLOPS with half point 8 rows
    /// (fp16: 20 TFLOPS, half point 32), and matrix-vector streams at half the rate.
    fn device() -> Device {
        Device::from_toml("t", "t.toml", DEVICE).unwrap()
    }

    const DEVICE: &str = r#"
name = "t"
family = "cpu"
[peak_tflops]
fp32 = { value = 10.0, source = "t" }
fp16 = { value = 20.0, source = "t" }
[memory]
bandwidth_gb_s = { value = 100.0, source = "t" }
reserved_gb = { value = 0.0, source = "t" }
variants = [{ capacity_gb = 64.0, source = "t" }]
[power]
idle_w = { value = 0.0, source = "t" }
load_w = { value = 100.0, source = "t" }
[efficiency]
compute_fraction = { value = 1.0, source = "t" }
compute_half_rows = { value = 8.0, source = "t" }
bandwidth_fraction = { value = 1.0, source = "t" }
bandwidth_half_mb = { value = 0.0, source = "t" }
dispatch_overhead_us = { value = 0.0, source = "t" }
matvec_bandwidth_fraction = { value = 0.5, source = "t" }
[efficiency.compute_half_rows_by_dtype]
fp16 = { value = 32.0, source = "t" }
"#;

    /// The same device with a size law (5% of the time per byte per doubling, from
    /// 1000/512 MB to 1000 MB) and a matrix-vector cost of 10 ns per output element.
    fn sized_device(decline: f64) -> Result<Device, crate::error::InputError> {
        let text = DEVICE.replace(
            "[efficiency.compute_half_rows_by_dtype]",
            &format!(
                "matvec_output_ns = {{ value = 10.0, source = \"t\" }}\n\
                 [efficiency.bandwidth_by_size]\n\
                 decline_per_doubling = {{ value = {decline:?}, source = \"t\" }}\n\
                 from_mb = {{ value = 1.953125, source = \"t\" }}\n\
                 to_mb = {{ value = 1000.0, source = \"t\" }}\n\
                 [efficiency.compute_half_rows_by_dtype]"
            ),
        );
        Device::from_toml("t", "t.toml", &text)
    }

    fn row(kernel: Kernel, dtype: ComputeDtype, m: u64, bytes: f64, flops: f64) -> MicrobenchRow {
        MicrobenchRow::timed(
            "cpu",
            "t",
            kernel,
            Some(dtype),
            [m, 1, 1],
            bytes,
            flops,
            &[1.0],
        )
    }

    #[test]
    fn one_row_products_stream_at_the_matvec_fraction() {
        // 1 GB at 100 GB/s x 0.5 = 20 ms; 2 GFLOP at the vector rate (10 TFLOPS) 0.2 ms.
        let d = device();
        let t = predict_row(&d, &row(Kernel::Gemv, ComputeDtype::Fp32, 1, 1e9, 2e9)).unwrap();
        assert!((t - 0.02).abs() < 1e-12, "{t}");
        // A plain read of 1 GB is not a matrix-vector product: 10 ms.
        let t = predict_row(&d, &row(Kernel::Read, ComputeDtype::Fp32, 1, 1e9, 0.0)).unwrap();
        assert!((t - 0.01).abs() < 1e-12, "{t}");
    }

    #[test]
    fn the_size_law_scales_the_time_per_byte_within_its_range() {
        let d = sized_device(0.05).unwrap();
        let read = |bytes: f64| {
            predict_row(&d, &row(Kernel::Read, ComputeDtype::Fp32, 1, bytes, 0.0)).unwrap()
        };
        // 1 GB = to_mb: the plain rate, 1e9 / 100 GB/s = 10 ms.
        assert!((read(1e9) - 0.01).abs() < 1e-12);
        // 125 MB: 3 halvings below 1000 MB, factor 1 - 3 x 0.05 = 0.85: 1.25 ms x 0.85.
        assert!((read(125e6) - 1.0625e-3).abs() < 1e-12);
        // 4 GB: above the range, the plain rate (40 ms); 1 MB: below it, the factor at
        // from_mb, 9 halvings: 1 - 0.45 = 0.55, so 10 us x 0.55.
        assert!((read(4e9) - 0.04).abs() < 1e-12);
        assert!((read(1e6) - 5.5e-6).abs() < 1e-15);
    }

    #[test]
    fn matrix_vector_products_pay_per_output_element() {
        // 1000 outputs of a 1 GB gemv: 1 GB at 100 GB/s x 0.5 = 20 ms, plus 1000 x 10 ns.
        let d = sized_device(0.05).unwrap();
        let mut gemv = row(Kernel::Gemv, ComputeDtype::Fp32, 1, 1e9, 2e9);
        gemv.n = 1000;
        let t = predict_row(&d, &gemv).unwrap();
        assert!((t - (0.02 + 1e-5)).abs() < 1e-12, "{t}");
    }

    /// A feed-forward matmul of `rows` token rows over `weights` fp32 weights.
    fn weight_op(flops: f64, weights: f64, rows: f64) -> Op {
        Op {
            kind: OpKind::Ffn,
            flops,
            weight_params: weights,
            dequant_params: 0.0,
            kv_elements: 0.0,
            activation_bytes: 0.0,
            rows,
            heads_per_kv: 1.0,
            kernels: 1.0,
            dot_products: 0.0,
            ffn_elements: 0.0,
        }
    }

    #[test]
    fn attention_tiles_hold_the_runtimes_heads() {
        // 1 TFLOP of decode attention: one new token, 8 query heads per KV head, in fp32
        // (10 TFLOPS, half point 8 rows; attention fraction 1). Grouped, the 8 heads are
        // 8 rows: 10 x 8/16 = 5 TFLOPS, 0.2 s. One head per tile: 1 row, 10 x 1/9
        // TFLOPS, 0.9 s; two per tile: 2 rows, 10 x 2/10 = 2 TFLOPS, 0.5 s. One head per
        // tile with the attention kernel's own half point of 4 rows: 10 x 1/5, 0.5 s.
        let d = device();
        let format = row_format(ComputeDtype::Fp32);
        let mut exec = row_executor(&d, &format);
        let attention = Op {
            rows: 8.0,
            heads_per_kv: 8.0,
            kind: OpKind::Attention,
            ..weight_op(1e12, 0.0, 8.0)
        };
        let compute = |exec: &Executor| exec.time(&attention).compute_s;
        assert!((compute(&exec) - 0.2).abs() < 1e-12);
        exec.runtime.attention_heads_per_tile = Some(1.0);
        assert!((compute(&exec) - 0.9).abs() < 1e-12);
        exec.runtime.attention_heads_per_tile = Some(2.0);
        assert!((compute(&exec) - 0.5).abs() < 1e-12);
        exec.runtime.attention_heads_per_tile = Some(1.0);
        exec.runtime.attention_half_rows = Some(4.0);
        assert!((compute(&exec) - 0.5).abs() < 1e-12);
        // The attention kernel's half point leaves weight products alone: 8 rows at
        // 10 x 8/16 TFLOPS, 0.2 s.
        let t = exec.time(&weight_op(1e12, 2.5e5, 8.0)).compute_s;
        assert!((t - 0.2).abs() < 1e-12, "{t}");
    }

    #[test]
    fn rows_beyond_one_pass_read_the_weights_again() {
        // 1e8 fp32 weights = 400 MB, streamed by a matrix-vector kernel at 100 GB/s x 0.5
        // = 8 ms per pass. A runtime whose kernel serves 5 rows per pass, up to 8 rows:
        // 5 rows, one pass (8 ms); 6 and 8 rows, ceil(6/5) = ceil(8/5) = 2 passes (16 ms);
        // 9 rows are a tiled GEMM, one pass at the full rate (4 ms).
        let d = device();
        let format = row_format(ComputeDtype::Fp32);
        let mut exec = row_executor(&d, &format);
        exec.runtime.matvec_max_rows = Some(8.0);
        exec.runtime.matvec_rows_per_pass = Some(5.0);
        let memory = |exec: &Executor, rows: f64| exec.time(&weight_op(0.0, 1e8, rows)).memory_s;
        for (rows, expected) in [
            (1.0, 8e-3),
            (5.0, 8e-3),
            (6.0, 16e-3),
            (8.0, 16e-3),
            (9.0, 4e-3),
        ] {
            let t = memory(&exec, rows);
            assert!((t - expected).abs() < 1e-12, "{rows} rows: {t}");
        }
        // Without the limit, all 8 rows share one pass.
        exec.runtime.matvec_rows_per_pass = None;
        assert!((memory(&exec, 8.0) - 8e-3).abs() < 1e-12);
    }

    #[test]
    fn a_size_law_that_makes_reads_free_is_refused() {
        // 9 halvings from to_mb to from_mb: a decline of 1/9 or more leaves no time per
        // byte at from_mb.
        let err = sized_device(0.12).unwrap_err().to_string();
        assert!(
            err.contains("efficiency.bandwidth_by_size.decline_per_doubling"),
            "{err}"
        );
        assert!(sized_device(0.11).is_ok());
    }

    #[test]
    fn tiled_gemms_pay_for_whole_tiles() {
        // 1 TFLOP in fp32 (10 TFLOPS, half point 8 rows), weights 1 MB (10 us, not
        // binding). No tiles: 16 rows run at 10 x 16/24 TFLOPS, 0.15 s. Tiles of 32
        // rows: 16 rows do the work of 32, 2 TFLOP, at 10 x 32/40 = 8 TFLOPS: 0.25 s;
        // 32 rows fill their tile, 1 TFLOP at 8 TFLOPS: 0.125 s; 33 rows do the work
        // of 64, 64/33 TFLOP at 10 x 64/72 TFLOPS: (64 x 72) / (33 x 640) = 4608 / 21120
        // = 0.2182 s.
        let d = device();
        let format = row_format(ComputeDtype::Fp32);
        let mut exec = row_executor(&d, &format);
        let compute =
            |exec: &Executor, rows: f64| exec.time(&weight_op(1e12, 2.5e5, rows)).compute_s;
        assert!((compute(&exec, 16.0) - 0.15).abs() < 1e-12);
        exec.runtime.gemm_tile_rows = Some(32.0);
        for (rows, expected) in [(16.0, 0.25), (32.0, 0.125), (33.0, 4608.0 / 21120.0)] {
            let t = compute(&exec, rows);
            assert!((t - expected).abs() < 1e-12, "{rows} rows: {t}");
        }

        // Unpacking: 1e9 quantised weights at 1 op each, no FLOPs, 128 rows. Every
        // tile unpacks again: 128 / 32 = 4 tiles, 4e9 ops at the vector rate (fp32
        // 10 TFLOPS): 0.4 ms; without the runtime's tiles, 128 / 64 = 2: 0.2 ms.
        let quantised = WeightFormat {
            dequant_ops_per_weight: 1.0,
            ..row_format(ComputeDtype::Fp32)
        };
        let mut exec = row_executor(&d, &quantised);
        let unpacking = |exec: &Executor| {
            let op = Op {
                dequant_params: 1e9,
                ..weight_op(0.0, 1e9, 128.0)
            };
            exec.time(&op).compute_s
        };
        assert!((unpacking(&exec) - 2e-4).abs() < 1e-15);
        exec.runtime.gemm_tile_rows = Some(32.0);
        assert!((unpacking(&exec) - 4e-4).abs() < 1e-15);
    }

    #[test]
    fn gemm_half_rows_follow_the_arithmetic_type() {
        // 8 rows, 1 TFLOP: fp32 at 10 x 8/16 = 5 TFLOPS takes 0.2 s; fp16 at
        // 20 x 8/40 = 4 TFLOPS takes 0.25 s (memory 1 MB: 10 us, not binding).
        let d = device();
        let t32 = predict_row(&d, &row(Kernel::Gemm, ComputeDtype::Fp32, 8, 1e6, 1e12)).unwrap();
        let t16 = predict_row(&d, &row(Kernel::Gemm, ComputeDtype::Fp16, 8, 1e6, 1e12)).unwrap();
        assert!((t32 - 0.2).abs() < 1e-12, "{t32}");
        assert!((t16 - 0.25).abs() < 1e-12, "{t16}");
    }
}
