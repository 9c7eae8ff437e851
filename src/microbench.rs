//! The microbenchmark CSV: one row per measured kernel and shape, written by
//! `planner-harness` (`run`, `net probe`) and read by `planner calibrate`.
//!
//! Both programs use this one struct, so the calibration reads exactly what the
//! harness writes. The columns, in order (the README's "CSV schema" section documents
//! them for people):
//!
//! | column | meaning |
//! |---|---|
//! | `backend` | `cpu`, `cuda`, `metal` or `net` |
//! | `device` | the device as the backend names it (CPU model and threads, GPU name) |
//! | `kernel` | what ran, see [`Kernel`] |
//! | `dtype` | arithmetic or element type (`fp32`, `fp16`, `bf16`, `fp8`); empty for `dispatch`, `memory_capacity` and network rows |
//! | `m`, `n`, `k` | the shape, per kernel (see [`Kernel`]) |
//! | `bytes` | bytes the kernel must move at least once (inputs read + outputs written) |
//! | `flops` | floating-point operations (a fused multiply-add counts two) |
//! | `repetitions` | timed repetitions after warm-up |
//! | `median_s`, `min_s` | median and minimum time of one repetition, seconds |
//! | `gb_s` | `bytes / median_s / 1e9` |
//! | `tflops` | `flops / median_s / 1e12` |

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::hardware::ComputeDtype;

/// What a row measured. The shape columns mean, per kernel:
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// `C[m x n] = A[m x k] B[k x n]`: `m` token rows, `k` input features, `n` output
    /// features.
    Gemm,
    /// `y[n] = W[n x k] x[k]` (`m` = 1), the weight-streaming product of a decode step.
    Gemv,
    /// Read `m` elements once (a sum reduction): the access pattern of reading weights.
    Read,
    /// STREAM copy `a[i] = b[i]` over `m` elements per array.
    Copy,
    /// STREAM triad `a[i] = b[i] + s c[i]` over `m` elements per array.
    Triad,
    /// `m` back-to-back empty kernel launches (CPU: fork-join of every worker thread),
    /// timed together; the slope over `m` is the per-dispatch cost.
    Dispatch,
    /// Not a timing: `bytes` is the device memory capacity.
    MemoryCapacity,
    /// TCP ping-pong of one `bytes`-byte message each way; `median_s` is the round trip.
    TcpPingpong,
    /// TCP stream of `bytes` bytes one way until the peer acknowledges the last byte.
    TcpStream,
}

impl Kernel {
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::Gemv => "gemv",
            Kernel::Read => "read",
            Kernel::Copy => "copy",
            Kernel::Triad => "triad",
            Kernel::Dispatch => "dispatch",
            Kernel::MemoryCapacity => "memory_capacity",
            Kernel::TcpPingpong => "tcp_pingpong",
            Kernel::TcpStream => "tcp_stream",
        }
    }

    /// Kernels whose rows describe a link rather than a device.
    pub fn is_network(self) -> bool {
        matches!(self, Kernel::TcpPingpong | Kernel::TcpStream)
    }
}

/// One CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicrobenchRow {
    pub backend: String,
    pub device: String,
    pub kernel: Kernel,
    pub dtype: Option<ComputeDtype>,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub bytes: f64,
    pub flops: f64,
    pub repetitions: u32,
    pub median_s: f64,
    pub min_s: f64,
    pub gb_s: f64,
    pub tflops: f64,
}

impl MicrobenchRow {
    /// A timed row; `gb_s` and `tflops` are derived from the median.
    #[allow(clippy::too_many_arguments)]
    pub fn timed(
        backend: &str,
        device: &str,
        kernel: Kernel,
        dtype: Option<ComputeDtype>,
        shape: [u64; 3],
        bytes: f64,
        flops: f64,
        samples_s: &[f64],
    ) -> MicrobenchRow {
        let (median_s, min_s) = median_min(samples_s);
        let per_s = |x: f64| if median_s > 0.0 { x / median_s } else { 0.0 };
        MicrobenchRow {
            backend: backend.to_string(),
            device: device.to_string(),
            kernel,
            dtype,
            m: shape[0],
            n: shape[1],
            k: shape[2],
            bytes,
            flops,
            repetitions: samples_s.len() as u32,
            median_s,
            min_s,
            gb_s: per_s(bytes) / 1e9,
            tflops: per_s(flops) / 1e12,
        }
    }

    /// The memory-capacity row of a device.
    pub fn memory_capacity(backend: &str, device: &str, bytes: f64) -> MicrobenchRow {
        MicrobenchRow {
            backend: backend.to_string(),
            device: device.to_string(),
            kernel: Kernel::MemoryCapacity,
            dtype: None,
            m: 0,
            n: 0,
            k: 0,
            bytes,
            flops: 0.0,
            repetitions: 0,
            median_s: 0.0,
            min_s: 0.0,
            gb_s: 0.0,
            tflops: 0.0,
        }
    }
}

/// A row whose median is more than this multiple of its fastest sample was disturbed
/// in some passes (on the development VM a GEMM's median is within 5% of its fastest
/// pass on a quiet host; a disturbed one ran at 1.5 x in three of five passes).
/// `planner-harness` gives such rows more passes; `planner calibrate` marks them.
pub const UNSETTLED_SPREAD: f64 = 1.15;

/// A row's median over its minimum (1 when there is no positive minimum).
pub fn spread(median: f64, min: f64) -> f64 {
    if min > 0.0 {
        median / min
    } else {
        1.0
    }
}

/// Whether a row with this [`spread`] was disturbed: over [`UNSETTLED_SPREAD`].
pub fn unsettled(spread: f64) -> bool {
    spread > UNSETTLED_SPREAD
}

/// The `device` of a network probe's rows: `LOCAL -> PEER`.
pub fn link_name(local: SocketAddr, peer: SocketAddr) -> String {
    format!("{local} -> {peer}")
}

/// The two ends of a probe's `device`, when it is a name [`link_name`] wrote.
pub fn link_ends(name: &str) -> Option<(SocketAddr, SocketAddr)> {
    let (local, peer) = name.split_once(" -> ")?;
    Some((local.trim().parse().ok()?, peer.trim().parse().ok()?))
}

/// Median (mean of the middle two for an even count) and minimum; (0, 0) when empty.
pub fn median_min(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    (median, sorted[0])
}

/// Writes rows as CSV with a header line.
pub fn write_csv<W: std::io::Write>(writer: W, rows: &[MicrobenchRow]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(writer);
    for row in rows {
        w.serialize(row)?;
    }
    w.flush()?;
    Ok(())
}

/// Reads rows from CSV text with a header line; an error names the line and column
/// ([`crate::error::read_csv_records`]).
pub fn read_csv(text: &str) -> Result<Vec<MicrobenchRow>, String> {
    crate::error::read_csv_records(&csv::ReaderBuilder::new(), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        // Sorted 1, 2, 9: median 2, min 1.
        assert_eq!(median_min(&[9.0, 1.0, 2.0]), (2.0, 1.0));
        // Sorted 1, 2, 4, 9: median (2 + 4) / 2 = 3.
        assert_eq!(median_min(&[4.0, 9.0, 1.0, 2.0]), (3.0, 1.0));
    }

    #[test]
    fn rows_round_trip_through_csv() {
        // 2 x 1024 x 1024 x 1024 = 2.147e9 FLOP in 0.01 s = 0.2147 TFLOPS.
        let gemm = MicrobenchRow::timed(
            "cpu",
            "test cpu",
            Kernel::Gemm,
            Some(ComputeDtype::Fp32),
            [1024, 1024, 1024],
            3.0 * 4.0 * 1024.0 * 1024.0,
            2.0 * 1024f64.powi(3),
            &[0.01, 0.02, 0.01],
        );
        assert!((gemm.tflops - 0.2147483648).abs() < 1e-9);
        let rows = vec![gemm, MicrobenchRow::memory_capacity("cpu", "test cpu", 8e9)];
        let mut buffer = Vec::new();
        write_csv(&mut buffer, &rows).unwrap();
        let text = String::from_utf8(buffer).unwrap();
        assert!(text.starts_with(
            "backend,device,kernel,dtype,m,n,k,bytes,flops,repetitions,median_s,min_s,gb_s,tflops\n"
        ));
        assert!(text.contains(",memory_capacity,,0,0,0,"), "{text}");
        assert_eq!(read_csv(&text).unwrap(), rows);
    }
}
