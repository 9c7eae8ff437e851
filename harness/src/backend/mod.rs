//! Backends: where the suite's kernels run.
//!
//! - `cpu` (always built): GEMM through the `gemm` crate (fp32, and fp16 which it
//!   widens to fp32 on CPUs without fp16 arithmetic), the shared GEMV and streaming
//!   kernels of [`crate::kernels`], rayon fork-join as the dispatch.
//! - `cuda` (feature `cuda`): cuBLAS / cuBLASLt GEMMs, NVRTC-compiled bandwidth and
//!   empty kernels, CUDA events.
//! - `metal` (feature `metal`, macOS): Metal Performance Shaders GEMM, MSL kernels
//!   compiled at run time, command-buffer GPU timestamps.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod cuda_decode;
#[cfg(all(feature = "metal", target_os = "macos"))]
pub mod metal;

use anyhow::Result;
use planner::hardware::ComputeDtype;
use planner::microbench::Kernel;

use crate::measure::Policy;

/// Samples of one measurement (seconds per repetition) and the bytes one repetition
/// moves, when the backend decides them (bandwidth kernels round sizes to whole
/// elements and arrays).
pub struct Timed {
    pub samples_s: Vec<f64>,
    pub bytes: f64,
}

pub trait Backend {
    /// `cpu`, `cuda` or `metal`.
    fn backend(&self) -> &'static str;
    /// The device as the backend names it.
    fn device(&self) -> String;
    /// Data types this backend has GEMMs for, on this device.
    fn gemm_dtypes(&self) -> Vec<ComputeDtype>;
    /// Device memory in bytes, when known.
    fn memory_capacity_bytes(&self) -> Option<f64>;
    /// The largest transfer the bandwidth sweep may use.
    fn max_stream_bytes(&self, quick: bool) -> u64;
    /// The most FLOPs one GEMM may take (keeps slow devices inside the time budget).
    fn max_gemm_flops(&self, quick: bool) -> f64;
    /// `C[m x n] = A[m x k] W[n x k]^T`.
    fn gemm(
        &mut self,
        dtype: ComputeDtype,
        m: u64,
        n: u64,
        k: u64,
        policy: &Policy,
    ) -> Result<Vec<f64>>;
    /// `y[n] = W[n x k] x[k]`.
    fn gemv(&mut self, dtype: ComputeDtype, n: u64, k: u64, policy: &Policy) -> Result<Vec<f64>>;
    /// `read`, `copy` or `triad` over about `bytes` bytes in all arrays.
    fn stream(&mut self, kernel: Kernel, bytes: u64, policy: &Policy) -> Result<Timed>;
    /// `launches` empty kernels back to back, timed together.
    fn dispatch(&mut self, launches: u64, policy: &Policy) -> Result<Vec<f64>>;
}

/// Bytes per element of a data type.
pub fn element_bytes(dtype: ComputeDtype) -> f64 {
    match dtype {
        ComputeDtype::Fp32 => 4.0,
        ComputeDtype::Fp16 | ComputeDtype::Bf16 => 2.0,
        ComputeDtype::Fp8 | ComputeDtype::Int8 => 1.0,
        ComputeDtype::Fp4 => 0.5,
    }
}

/// Opens a backend by name.
pub fn open(
    name: &str,
    threads: Option<usize>,
    flush_bytes: Option<usize>,
) -> Result<Box<dyn Backend>> {
    match name {
        "cpu" => Ok(Box::new(cpu::Cpu::new(threads, flush_bytes)?)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Box::new(cuda::Cuda::new(0)?)),
        #[cfg(not(feature = "cuda"))]
        "cuda" => anyhow::bail!("this planner-harness was built without the `cuda` feature (cargo build -p planner-harness --features cuda)"),
        #[cfg(all(feature = "metal", target_os = "macos"))]
        "metal" => Ok(Box::new(metal::Metal::new()?)),
        #[cfg(not(all(feature = "metal", target_os = "macos")))]
        "metal" => anyhow::bail!("the metal backend needs macOS and the `metal` feature (cargo build -p planner-harness --features metal)"),
        other => anyhow::bail!("unknown backend `{other}`: expected cpu, cuda or metal"),
    }
}
