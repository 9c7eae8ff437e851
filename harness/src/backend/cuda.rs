//! The CUDA backend (feature `cuda`): cudarc with dynamic loading, so it builds
//! without a CUDA toolkit and loads `libcuda`, `libcublas`, `libcublasLt` and
//! `libnvrtc` when it runs.
//!
//! - GEMM: cuBLAS (`cublasSgemm` for fp32, `cublasGemmEx` with fp32 accumulation for
//!   fp16 and bf16) and cuBLASLt for fp8 (E4M3 inputs, bf16 output, fp32
//!   accumulation; compute capability 8.9 and later). Row-major `C = A W^T` is the
//!   column-major `C^T = W A^T`, i.e. cuBLAS "TN", the layout FP8 GEMMs require.
//! - GEMV: the same GEMMs at `m = 1` (cuBLAS picks its GEMV kernels).
//! - Bandwidth: `read`, `copy` and `triad` kernels compiled with NVRTC, grid-stride
//!   over `float4`, eight blocks per multiprocessor.
//! - Dispatch: back-to-back launches of an empty NVRTC kernel.
//!
//! Every repetition is timed with CUDA events on the stream; before each one a
//! 256 MiB buffer is cleared so that the L2 cache holds none of the operands.
//!
//! Operands hold pseudo-random values (`fill_kernel`: magnitudes in [0.25, 1), random
//! signs, every mantissa bit random), never zeros. Tensor cores draw less power, and
//! so hold higher clocks, on zeros: on the same H100 SXM, the suite with zero-filled
//! operands fitted 924 bf16 TFLOPS (93% of the 989 peak) and with random ones 805
//! (`hardware/measurements/README.md`, the zero-operands CSV against the first run).
//!
//! Run on an NVIDIA H100 80GB HBM3 and an H200 (`hardware/measurements/`).

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::cublaslt::{result as lt, sys as lt_sys, CudaBlasLT, MatmulShared};
use cudarc::driver::sys::{CUdevice_attribute, CUevent_flags};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, LaunchConfig,
    PushKernelArg,
};
use half::{bf16, f16};
use planner::hardware::ComputeDtype;
use planner::microbench::Kernel;

use super::{Backend, Timed};
use crate::measure::Policy;

/// Entry points of [`KERNELS`] the backend loads: read, copy, triad, empty (launch).
const ENTRY_POINTS: [&str; 5] = [
    "read_kernel",
    "copy_kernel",
    "triad_kernel",
    "empty_kernel",
    "fill_kernel",
];

const KERNELS: &str = r#"
extern "C" __global__ void read_kernel(const float4* __restrict__ a, unsigned long long n4, float* out) {
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n4;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        float4 v = a[i];
        acc.x += v.x; acc.y += v.y; acc.z += v.z; acc.w += v.w;
    }
    float s = acc.x + acc.y + acc.z + acc.w;
    // Never true for the data written here; keeps the loads from being removed.
    if (s == 1234567.0f) { out[0] = s; }
}

extern "C" __global__ void copy_kernel(float4* __restrict__ a, const float4* __restrict__ b, unsigned long long n4) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n4;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        a[i] = b[i];
    }
}

extern "C" __global__ void triad_kernel(float4* __restrict__ a, const float4* __restrict__ b,
                                        const float4* __restrict__ c, float s, unsigned long long n4) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n4;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        float4 x = b[i];
        float4 y = c[i];
        a[i] = make_float4(x.x + s * y.x, x.y + s * y.y, x.z + s * y.z, x.w + s * y.w);
    }
}

extern "C" __global__ void empty_kernel() {}

// Element i of a buffer of n elements, as the bits of a value with a random sign, a
// magnitude in [0.25, 1) and random mantissa bits. format: 0 fp32, 1 fp16, 2 bf16,
// 3 fp8 E4M3 (exponent fields 5 and 6, so never the NaN pattern S.1111.111).
extern "C" __global__ void fill_kernel(unsigned char* p, unsigned long long n, unsigned int format,
                                       unsigned int seed) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        // splitmix64 of (seed, i)
        unsigned long long z = i + 0x9E3779B97F4A7C15ull * (seed + 1ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        unsigned int h = (unsigned int)z;
        unsigned int sign = h >> 31;
        unsigned int low = (unsigned int)(z >> 32);
        unsigned int e = 1u & (h >> 30);
        if (format == 0u) {
            ((unsigned int*)p)[i] = (sign << 31) | ((125u + e) << 23) | (low & 0x7FFFFFu);
        } else if (format == 1u) {
            ((unsigned short*)p)[i] = (unsigned short)((sign << 15) | ((13u + e) << 10) | (low & 0x3FFu));
        } else if (format == 2u) {
            ((unsigned short*)p)[i] = (unsigned short)((sign << 15) | ((125u + e) << 7) | (low & 0x7Fu));
        } else {
            p[i] = (unsigned char)((sign << 7) | ((5u + e) << 3) | (low & 0x7u));
        }
    }
}
"#;

/// How [`KERNELS`]' `fill_kernel` encodes a random element.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fill {
    Fp32 = 0,
    Fp16 = 1,
    Bf16 = 2,
    Fp8E4m3 = 3,
}

/// Bytes cleared before each repetition to evict the L2 cache (50 MB on H100).
const L2_FLUSH_BYTES: usize = 256 << 20;

/// An element type cuBLAS multiplies: its one and zero (alpha and beta) and how
/// `fill_kernel` writes a random one.
pub(crate) trait Operand:
    cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits + Copy
{
    const ONE: Self;
    const ZERO: Self;
    const FILL: Fill;
}

impl Operand for f32 {
    const ONE: f32 = 1.0;
    const ZERO: f32 = 0.0;
    const FILL: Fill = Fill::Fp32;
}

impl Operand for f16 {
    const ONE: f16 = f16::ONE;
    const ZERO: f16 = f16::ZERO;
    const FILL: Fill = Fill::Fp16;
}

impl Operand for bf16 {
    const ONE: bf16 = bf16::ONE;
    const ZERO: bf16 = bf16::ZERO;
    const FILL: Fill = Fill::Bf16;
}

pub struct Cuda {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    blas_lt: CudaBlasLT,
    lt_workspace: CudaSlice<u8>,
    read: CudaFunction,
    copy: CudaFunction,
    triad: CudaFunction,
    empty: CudaFunction,
    fill: CudaFunction,
    flush: CudaSlice<u8>,
    scratch: CudaSlice<f32>,
    pool: Option<CudaSlice<f32>>,
    blocks: u32,
    capability: (i32, i32),
}

/// Fails (rather than letting cudarc panic on first use) when one of the libraries
/// the backend loads at run time cannot be found.
fn check_libraries() -> Result<()> {
    // SAFETY: each probe only tries `dlopen` on cudarc's candidate names.
    let present = unsafe {
        [
            ("cuda", cudarc::driver::sys::is_culib_present()),
            ("cublas", cudarc::cublas::sys::is_culib_present()),
            ("cublasLt", cudarc::cublaslt::sys::is_culib_present()),
            ("nvrtc", cudarc::nvrtc::sys::is_culib_present()),
        ]
    };
    let missing: Vec<&str> = present
        .iter()
        .filter(|(_, found)| !found)
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let tried: Vec<String> = missing
        .iter()
        .map(|name| {
            // The Linux names (cudarc also tries Windows-style ones).
            let prefix = format!("lib{name}.so");
            let mut names: Vec<String> = cudarc::get_lib_name_candidates(name)
                .into_iter()
                .filter(|n| n.starts_with(&prefix))
                .collect();
            names.dedup();
            format!("{name} (tried {})", names.join(", "))
        })
        .collect();
    bail!(
        "the cuda backend cannot load {}: install the NVIDIA driver and the CUDA \
         libraries, or add the folder that holds them to LD_LIBRARY_PATH (a library \
         present only under another name, such as libcublas.so.13, needs a link named \
         like one of those tried)",
        tried.join("; ")
    )
}

/// The CUDA device `ordinal`, once the libraries the backend loads are found.
pub(crate) fn open_context(ordinal: usize) -> Result<Arc<CudaContext>> {
    check_libraries()?;
    CudaContext::new(ordinal).context("cannot open CUDA device (is the driver installed?)")
}

/// Compiles `source` (the `what` kernels) with NVRTC and loads its `entries`.
pub(crate) fn load_kernels<const N: usize>(
    ctx: &Arc<CudaContext>,
    source: &str,
    entries: [&str; N],
    what: &str,
) -> Result<[CudaFunction; N]> {
    let ptx = cudarc::nvrtc::compile_ptx(source)
        .with_context(|| format!("NVRTC could not compile the {what} kernels"))?;
    let module = ctx.load_module(ptx)?;
    let mut functions = Vec::with_capacity(N);
    for name in entries {
        functions.push(module.load_function(name)?);
    }
    Ok(functions
        .try_into()
        .unwrap_or_else(|_| unreachable!("one function per entry point")))
}

/// Row-major `C[m x n] = A[m x k] W[n x k]^T` as cuBLAS's column-major
/// `C^T = W A^T` ("TN": W read as `k x n` transposed, A as `k x m`), the call every
/// GEMM and matrix-vector product of the suite and the decode engine makes.
pub(crate) fn row_major_gemm<T: Operand>(m: usize, n: usize, k: usize) -> GemmConfig<T> {
    GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_T,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: n as i32,
        n: m as i32,
        k: k as i32,
        alpha: T::ONE,
        lda: k as i32,
        ldb: k as i32,
        beta: T::ZERO,
        ldc: n as i32,
    }
}

impl Cuda {
    pub fn new(ordinal: usize) -> Result<Cuda> {
        let ctx = open_context(ordinal)?;
        let stream = ctx.default_stream();
        let [read, copy, triad, empty, fill] =
            load_kernels(&ctx, KERNELS, ENTRY_POINTS, "bandwidth")?;
        let sms = ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let capability = ctx.compute_capability()?;
        Ok(Cuda {
            blas: CudaBlas::new(stream.clone())?,
            blas_lt: CudaBlasLT::new(stream.clone())?,
            lt_workspace: stream.alloc_zeros::<u8>(32 << 20)?,
            read,
            copy,
            triad,
            empty,
            fill,
            flush: stream.alloc_zeros::<u8>(L2_FLUSH_BYTES)?,
            scratch: stream.alloc_zeros::<f32>(1)?,
            pool: None,
            blocks: (sms.max(1) as u32) * 8,
            capability,
            ctx,
            stream,
        })
    }

    /// Times `work` with CUDA events; the L2 is cleared before every repetition.
    fn time(
        &mut self,
        policy: &Policy,
        mut work: impl FnMut(&mut Self) -> Result<()>,
    ) -> Result<Vec<f64>> {
        let start = self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        let end = self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))?;
        // Warm-up: module loading, cuBLAS heuristics, lazy allocations.
        work(self)?;
        self.stream.synchronize()?;
        let mut samples = Vec::new();
        while policy.more(&samples) {
            self.stream.memset_zeros(&mut self.flush)?;
            start.record(&self.stream)?;
            work(self)?;
            end.record(&self.stream)?;
            samples.push(f64::from(start.elapsed_ms(&end)?) * 1e-3);
        }
        Ok(samples)
    }

    /// Fills `buffer` with random values of `format` (element `i` depends only on
    /// `seed` and `i`: the same operands in every run).
    fn fill_random<T>(&self, buffer: &mut CudaSlice<T>, format: Fill, seed: u32) -> Result<()>
    where
        T: cudarc::driver::DeviceRepr,
    {
        let n = buffer.len() as u64;
        let format = format as u32;
        let mut launch = self.stream.launch_builder(&self.fill);
        launch.arg(buffer).arg(&n).arg(&format).arg(&seed);
        // SAFETY: the kernel writes n elements of the format's size, the buffer's type.
        unsafe { launch.launch(self.launch_config()) }?;
        Ok(())
    }

    fn launch_config(&self) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (self.blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    fn gemm_typed<T>(&mut self, m: usize, n: usize, k: usize, policy: &Policy) -> Result<Vec<f64>>
    where
        T: Operand,
        CudaBlas: Gemm<T>,
    {
        let mut a = self.stream.alloc_zeros::<T>(m * k)?;
        let mut w = self.stream.alloc_zeros::<T>(n * k)?;
        self.fill_random(&mut a, T::FILL, 1)?;
        self.fill_random(&mut w, T::FILL, 2)?;
        let mut c = self.stream.alloc_zeros::<T>(m * n)?;
        let cfg = row_major_gemm::<T>(m, n, k);
        self.time(policy, |me| {
            // SAFETY: the buffers hold n*k, m*k and m*n elements, as the strides say.
            unsafe { me.blas.gemm(cfg, &w, &a, &mut c) }?;
            Ok(())
        })
    }

    /// FP8 (E4M3) GEMM through cuBLASLt: `D[bf16] = W^T[e4m3] A[e4m3]`, fp32 accumulate.
    fn gemm_fp8(&mut self, m: usize, n: usize, k: usize, policy: &Policy) -> Result<Vec<f64>> {
        if self.capability < (8, 9) {
            bail!(
                "fp8 GEMMs need compute capability 8.9 or later (this device: {}.{})",
                self.capability.0,
                self.capability.1
            );
        }
        let mut a = self.stream.alloc_zeros::<u8>(m * k)?;
        let mut w = self.stream.alloc_zeros::<u8>(n * k)?;
        self.fill_random(&mut a, Fill::Fp8E4m3, 1)?;
        self.fill_random(&mut w, Fill::Fp8E4m3, 2)?;
        let mut d = self.stream.alloc_zeros::<u16>(m * n)?;
        let e4m3 = lt_sys::cudaDataType_t::CUDA_R_8F_E4M3;
        let bf16_t = lt_sys::cudaDataType_t::CUDA_R_16BF;
        // Column-major: W is k x n read transposed, A is k x m, D is n x m.
        let w_layout = lt::create_matrix_layout(e4m3, k as u64, n as u64, k as i64)?;
        let a_layout = lt::create_matrix_layout(e4m3, k as u64, m as u64, k as i64)?;
        let d_layout = lt::create_matrix_layout(bf16_t, n as u64, m as u64, n as i64)?;
        let desc = lt::create_matmul_desc(
            lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            lt_sys::cudaDataType_t::CUDA_R_32F,
        )?;
        let transpose = cublasOperation_t::CUBLAS_OP_T;
        let pref = lt::create_matmul_pref()?;
        let workspace_bytes = self.lt_workspace.len();
        // SAFETY: the descriptors were just created; the attribute buffers outlive the calls.
        let heuristic = unsafe {
            lt::set_matmul_desc_attribute(
                desc,
                lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
                (&transpose) as *const _ as *const _,
                std::mem::size_of_val(&transpose),
            )?;
            lt::set_matmul_pref_attribute(
                pref,
                lt_sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                (&workspace_bytes) as *const _ as *const _,
                std::mem::size_of_val(&workspace_bytes),
            )?;
            lt::get_matmul_algo_heuristic(
                *self.blas_lt.handle(),
                desc,
                w_layout,
                a_layout,
                d_layout,
                d_layout,
                pref,
            )?
        };
        let (alpha, beta) = (1f32, 0f32);
        let samples = self.time(policy, |me| {
            let stream = me.stream.clone();
            let (w_ptr, _w_rec) = w.device_ptr(&stream);
            let (a_ptr, _a_rec) = a.device_ptr(&stream);
            let (d_ptr, _d_rec) = d.device_ptr_mut(&stream);
            let (ws_ptr, _ws_rec) = me.lt_workspace.device_ptr_mut(&stream);
            // SAFETY: pointers and layouts describe the buffers allocated above.
            unsafe {
                lt::matmul(
                    *me.blas_lt.handle(),
                    desc,
                    (&alpha) as *const f32 as *const _,
                    (&beta) as *const f32 as *const _,
                    w_ptr as *const _,
                    w_layout,
                    a_ptr as *const _,
                    a_layout,
                    d_ptr as *const _,
                    d_layout,
                    d_ptr as *mut _,
                    d_layout,
                    (&heuristic.algo) as *const _,
                    ws_ptr as *mut _,
                    workspace_bytes,
                    stream.cu_stream() as *mut _,
                )?;
            }
            Ok(())
        });
        // SAFETY: created above and no longer used.
        unsafe {
            lt::destroy_matmul_pref(pref)?;
            lt::destroy_matmul_desc(desc)?;
            lt::destroy_matrix_layout(w_layout)?;
            lt::destroy_matrix_layout(a_layout)?;
            lt::destroy_matrix_layout(d_layout)?;
        }
        samples
    }
}

impl Backend for Cuda {
    fn backend(&self) -> &'static str {
        "cuda"
    }

    fn device(&self) -> String {
        self.ctx
            .name()
            .unwrap_or_else(|_| "CUDA device".to_string())
    }

    fn gemm_dtypes(&self) -> Vec<ComputeDtype> {
        let mut dtypes = vec![ComputeDtype::Fp32, ComputeDtype::Fp16, ComputeDtype::Bf16];
        if self.capability >= (8, 9) {
            dtypes.push(ComputeDtype::Fp8);
        }
        dtypes
    }

    fn memory_capacity_bytes(&self) -> Option<f64> {
        self.ctx.total_mem().ok().map(|b| b as f64)
    }

    fn max_stream_bytes(&self, quick: bool) -> u64 {
        let cap = if quick { 1 << 30 } else { 4 << 30 };
        // Leave room for the GEMM buffers and the runtime.
        let memory = self.ctx.total_mem().map_or(cap, |b| b as u64 / 4);
        cap.min(memory)
    }

    fn max_gemm_flops(&self, quick: bool) -> f64 {
        if quick {
            2e13
        } else {
            2e14
        }
    }

    fn gemm(
        &mut self,
        dtype: ComputeDtype,
        m: u64,
        n: u64,
        k: u64,
        policy: &Policy,
    ) -> Result<Vec<f64>> {
        let (m, n, k) = (m as usize, n as usize, k as usize);
        match dtype {
            ComputeDtype::Fp32 => self.gemm_typed::<f32>(m, n, k, policy),
            ComputeDtype::Fp16 => self.gemm_typed::<f16>(m, n, k, policy),
            ComputeDtype::Bf16 => self.gemm_typed::<bf16>(m, n, k, policy),
            ComputeDtype::Fp8 => self.gemm_fp8(m, n, k, policy),
            other => bail!("the cuda backend has no {other} GEMM"),
        }
    }

    fn gemv(&mut self, dtype: ComputeDtype, n: u64, k: u64, policy: &Policy) -> Result<Vec<f64>> {
        self.gemm(dtype, 1, n, k, policy)
    }

    fn stream(&mut self, kernel: Kernel, bytes: u64, policy: &Policy) -> Result<Timed> {
        let arrays = match kernel {
            Kernel::Read => 1,
            Kernel::Copy => 2,
            Kernel::Triad => 3,
            other => bail!("{} is not a streaming kernel", other.name()),
        };
        // Whole float4s per array.
        let n4 = ((bytes / 16) as usize / arrays).max(1);
        let floats = n4 * 4 * arrays;
        if self.pool.as_ref().is_none_or(|p| p.len() < floats) {
            let mut pool = self.stream.alloc_zeros::<f32>(floats)?;
            self.fill_random(&mut pool, Fill::Fp32, 3)?;
            self.pool = Some(pool);
        }
        let cfg = self.launch_config();
        let samples = self.time(policy, |me| {
            let stream = me.stream.clone();
            let pool = me.pool.as_mut().expect("allocated above");
            let n4_arg = n4 as u64;
            match kernel {
                Kernel::Read => {
                    let mut launch = stream.launch_builder(&me.read);
                    launch.arg(&*pool).arg(&n4_arg).arg(&mut me.scratch);
                    // SAFETY: the kernel reads n4 float4s of the pool.
                    unsafe { launch.launch(cfg) }?;
                }
                Kernel::Copy => {
                    // Views are passed as `&mut` whether the kernel writes them or not.
                    let (mut a, mut b) = pool.split_at_mut(n4 * 4);
                    let mut launch = stream.launch_builder(&me.copy);
                    launch.arg(&mut a).arg(&mut b).arg(&n4_arg);
                    // SAFETY: both halves hold n4 float4s.
                    unsafe { launch.launch(cfg) }?;
                }
                _ => {
                    let (mut a, mut rest) = pool.split_at_mut(n4 * 4);
                    let (mut b, mut c) = rest.split_at_mut(n4 * 4);
                    let s = 0.5f32;
                    let mut launch = stream.launch_builder(&me.triad);
                    launch
                        .arg(&mut a)
                        .arg(&mut b)
                        .arg(&mut c)
                        .arg(&s)
                        .arg(&n4_arg);
                    // SAFETY: the three thirds hold n4 float4s each.
                    unsafe { launch.launch(cfg) }?;
                }
            }
            Ok(())
        })?;
        Ok(Timed {
            samples_s: samples,
            bytes: (n4 * 16 * arrays) as f64,
        })
    }

    fn dispatch(&mut self, launches: u64, policy: &Policy) -> Result<Vec<f64>> {
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (32, 1, 1),
            shared_mem_bytes: 0,
        };
        self.time(policy, |me| {
            for _ in 0..launches {
                let mut launch = me.stream.launch_builder(&me.empty);
                // SAFETY: the kernel takes no arguments and touches no memory.
                unsafe { launch.launch(cfg) }?;
            }
            Ok(())
        })
    }
}

/// Compiles `source` with NVRTC and checks the PTX defines each of `entries` (a test
/// helper: skipped where libnvrtc is absent, unless `PLANNER_REQUIRE_NVRTC` is set).
#[cfg(test)]
pub(crate) fn assert_compiles_with_nvrtc(source: &str, entries: &[&str]) {
    // SAFETY: only probes dlopen.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        assert!(
            std::env::var_os("PLANNER_REQUIRE_NVRTC").is_none(),
            "PLANNER_REQUIRE_NVRTC is set but libnvrtc was not found (LD_LIBRARY_PATH)"
        );
        eprintln!("skipped: libnvrtc not found (LD_LIBRARY_PATH)");
        return;
    }
    let ptx = cudarc::nvrtc::compile_ptx(source).expect("the kernels compile");
    let text = ptx.to_src();
    for entry in entries {
        assert!(
            text.contains(&format!(".entry {entry}(")),
            "no entry point {entry} in the PTX"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_libraries_are_an_error_not_a_panic() {
        // SAFETY: only probes dlopen.
        let driver = unsafe { cudarc::driver::sys::is_culib_present() };
        match check_libraries() {
            Ok(()) => assert!(driver, "Ok although libcuda is absent"),
            Err(e) => {
                let text = format!("{e:#}");
                assert!(text.contains("LD_LIBRARY_PATH"), "{text}");
                if !driver {
                    assert!(text.contains("cuda (tried libcuda.so"), "{text}");
                }
            }
        }
        // Opening the backend must not panic either way.
        if !driver {
            assert!(Cuda::new(0).is_err());
        }
    }

    /// The NVRTC kernels compile, and define the entry points the backend loads.
    /// Needs only `libnvrtc` (no driver, no GPU): `.ci/run` fetches NVIDIA's
    /// `nvidia-cuda-nvrtc-cu12` wheel where pip can and runs the tests named
    /// `*compile_with_nvrtc` with `PLANNER_REQUIRE_NVRTC=1`, under which a missing
    /// library fails them; without that variable they are skipped where the library is
    /// absent.
    #[test]
    fn the_kernels_compile_with_nvrtc() {
        assert_compiles_with_nvrtc(KERNELS, &ENTRY_POINTS);
    }
}
