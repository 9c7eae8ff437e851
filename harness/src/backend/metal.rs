//! The Metal backend (feature `metal`, macOS only): objc2-metal and Metal Performance
//! Shaders.
//!
//! - GEMM: `MPSMatrixMultiplication` on fp32, fp16 and bf16 matrices (row-major
//!   `C = A W^T`: MPS's `transposeRight`).
//! - GEMV: the same at `m = 1`.
//! - Bandwidth: `read`, `copy` and `triad` kernels in MSL, compiled at run time from
//!   source (`newLibraryWithSource`), grid-stride over `float4`.
//! - Dispatch: back-to-back dispatches of an empty MSL kernel in one compute encoder.
//!
//! Each repetition is one command buffer, timed on the GPU clock
//! (`GPUEndTime - GPUStartTime`); before each one a 256 MiB buffer is filled by a
//! blit so the system-level cache holds none of the operands.
//!
//! It has NOT been run on Apple hardware yet: it type-checks
//! (`cargo check --target aarch64-apple-darwin -p planner-harness --features metal`).

use std::ptr::NonNull;

use anyhow::{anyhow, bail, Result};
use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2::AnyThread;
use objc2_foundation::{NSRange, NSString};
use objc2_metal::{
    MTLBlitCommandEncoder, MTLBuffer, MTLCommandBuffer, MTLCommandEncoder, MTLCommandQueue,
    MTLComputeCommandEncoder, MTLComputePipelineState, MTLCreateSystemDefaultDevice, MTLDevice,
    MTLLibrary, MTLResourceOptions, MTLSize,
};
use objc2_metal_performance_shaders::{
    MPSDataType, MPSMatrix, MPSMatrixDescriptor, MPSMatrixMultiplication,
};
use planner::hardware::ComputeDtype;
use planner::microbench::Kernel;

use super::{element_bytes, Backend, Timed};
use crate::measure::Policy;

const KERNELS: &str = r#"
#include <metal_stdlib>
using namespace metal;

kernel void read_kernel(device const float4* a [[buffer(0)]],
                        constant ulong& n4 [[buffer(1)]],
                        device float* out [[buffer(2)]],
                        uint gid [[thread_position_in_grid]],
                        uint threads [[threads_per_grid]]) {
    float4 acc = float4(0.0f);
    for (ulong i = gid; i < n4; i += threads) { acc += a[i]; }
    float s = acc.x + acc.y + acc.z + acc.w;
    // Never true for the data written here; keeps the loads from being removed.
    if (s == 1234567.0f) { out[0] = s; }
}

kernel void copy_kernel(device float4* a [[buffer(0)]],
                        device const float4* b [[buffer(1)]],
                        constant ulong& n4 [[buffer(2)]],
                        uint gid [[thread_position_in_grid]],
                        uint threads [[threads_per_grid]]) {
    for (ulong i = gid; i < n4; i += threads) { a[i] = b[i]; }
}

kernel void triad_kernel(device float4* a [[buffer(0)]],
                         device const float4* b [[buffer(1)]],
                         device const float4* c [[buffer(2)]],
                         constant float& s [[buffer(3)]],
                         constant ulong& n4 [[buffer(4)]],
                         uint gid [[thread_position_in_grid]],
                         uint threads [[threads_per_grid]]) {
    for (ulong i = gid; i < n4; i += threads) { a[i] = b[i] + s * c[i]; }
}

kernel void empty_kernel(uint gid [[thread_position_in_grid]]) {}
"#;

const CACHE_FLUSH_BYTES: usize = 256 << 20;
/// Threadgroups for the streaming kernels (enough to fill an Ultra's 80 GPU cores).
const STREAM_GROUPS: usize = 1024;
const GROUP_THREADS: usize = 256;

type Device = ProtocolObject<dyn MTLDevice>;
type Buffer = ProtocolObject<dyn MTLBuffer>;
type Pipeline = ProtocolObject<dyn MTLComputePipelineState>;
type CommandBuffer = ProtocolObject<dyn MTLCommandBuffer>;

pub struct Metal {
    device: Retained<Device>,
    queue: Retained<ProtocolObject<dyn MTLCommandQueue>>,
    read: Retained<Pipeline>,
    copy: Retained<Pipeline>,
    triad: Retained<Pipeline>,
    empty: Retained<Pipeline>,
    flush: Retained<Buffer>,
    scratch: Retained<Buffer>,
    pool: Option<Retained<Buffer>>,
}

fn buffer(device: &Device, bytes: usize) -> Result<Retained<Buffer>> {
    device
        .newBufferWithLength_options(bytes.max(16), MTLResourceOptions::StorageModePrivate)
        .ok_or_else(|| anyhow!("Metal could not allocate {bytes} bytes"))
}

fn pipeline(
    device: &Device,
    library: &ProtocolObject<dyn MTLLibrary>,
    name: &str,
) -> Result<Retained<Pipeline>> {
    let function = library
        .newFunctionWithName(&NSString::from_str(name))
        .ok_or_else(|| anyhow!("MSL function {name} missing"))?;
    device
        .newComputePipelineStateWithFunction_error(&function)
        .map_err(|e| anyhow!("pipeline {name}: {}", e.localizedDescription()))
}

fn size(width: usize) -> MTLSize {
    MTLSize {
        width,
        height: 1,
        depth: 1,
    }
}

impl Metal {
    pub fn new() -> Result<Metal> {
        let device = MTLCreateSystemDefaultDevice().ok_or_else(|| anyhow!("no Metal device"))?;
        let queue = device
            .newCommandQueue()
            .ok_or_else(|| anyhow!("Metal could not create a command queue"))?;
        let library = device
            .newLibraryWithSource_options_error(&NSString::from_str(KERNELS), None)
            .map_err(|e| anyhow!("MSL compilation failed: {}", e.localizedDescription()))?;
        Ok(Metal {
            read: pipeline(&device, &library, "read_kernel")?,
            copy: pipeline(&device, &library, "copy_kernel")?,
            triad: pipeline(&device, &library, "triad_kernel")?,
            empty: pipeline(&device, &library, "empty_kernel")?,
            flush: buffer(&device, CACHE_FLUSH_BYTES)?,
            scratch: buffer(&device, 16)?,
            pool: None,
            queue,
            device,
        })
    }

    fn command_buffer(&self) -> Result<Retained<CommandBuffer>> {
        self.queue
            .commandBuffer()
            .ok_or_else(|| anyhow!("Metal could not create a command buffer"))
    }

    /// Fills the flush buffer in its own command buffer and waits for it.
    fn evict(&self) -> Result<()> {
        let cb = self.command_buffer()?;
        let blit = cb
            .blitCommandEncoder()
            .ok_or_else(|| anyhow!("no blit encoder"))?;
        blit.fillBuffer_range_value(&self.flush, NSRange::new(0, CACHE_FLUSH_BYTES), 0);
        blit.endEncoding();
        cb.commit();
        cb.waitUntilCompleted();
        Ok(())
    }

    /// Times `encode` (which fills one command buffer) on the GPU clock.
    fn time(
        &self,
        policy: &Policy,
        encode: impl Fn(&CommandBuffer) -> Result<()>,
    ) -> Result<Vec<f64>> {
        let run = |timed: bool| -> Result<Option<f64>> {
            let cb = self.command_buffer()?;
            encode(&cb)?;
            cb.commit();
            cb.waitUntilCompleted();
            if let Some(error) = cb.error() {
                bail!(
                    "Metal command buffer failed: {}",
                    error.localizedDescription()
                );
            }
            Ok(timed.then(|| cb.GPUEndTime() - cb.GPUStartTime()))
        };
        run(false)?;
        let mut samples = Vec::new();
        while policy.more(&samples) {
            self.evict()?;
            if let Some(t) = run(true)? {
                samples.push(t);
            }
        }
        Ok(samples)
    }

    fn matrix(
        &self,
        rows: usize,
        cols: usize,
        dtype: MPSDataType,
        bytes_per: usize,
    ) -> Result<Retained<MPSMatrix>> {
        let buf = buffer(&self.device, rows * cols * bytes_per)?;
        // SAFETY: the descriptor matches the buffer just allocated (rows x cols, packed).
        unsafe {
            let desc = MPSMatrixDescriptor::matrixDescriptorWithRows_columns_rowBytes_dataType(
                rows,
                cols,
                cols * bytes_per,
                dtype,
            );
            Ok(MPSMatrix::initWithBuffer_descriptor(
                MPSMatrix::alloc(),
                &buf,
                &desc,
            ))
        }
    }

    /// Encodes one dispatch of `pso` with `binds` at indices 0, 1, 2, ...
    fn encode_stream(&self, cb: &CommandBuffer, pso: &Pipeline, binds: &[Bind]) -> Result<()> {
        let enc = cb
            .computeCommandEncoder()
            .ok_or_else(|| anyhow!("no compute encoder"))?;
        enc.setComputePipelineState(pso);
        for (index, bind) in binds.iter().enumerate() {
            match bind {
                // SAFETY: each offset lies inside its buffer.
                Bind::Buffer(buf, offset) => unsafe {
                    enc.setBuffer_offset_atIndex(Some(buf), *offset, index)
                },
                // SAFETY: the bytes are alive for the call, which copies them.
                Bind::Bytes(b) => unsafe {
                    enc.setBytes_length_atIndex(
                        NonNull::new(b.as_ptr() as *mut _).expect("non-null"),
                        b.len(),
                        index,
                    )
                },
            }
        }
        enc.dispatchThreadgroups_threadsPerThreadgroup(size(STREAM_GROUPS), size(GROUP_THREADS));
        enc.endEncoding();
        Ok(())
    }
}

/// A kernel argument: a buffer at an offset, or bytes copied into the encoder.
enum Bind<'a> {
    Buffer(&'a Buffer, usize),
    Bytes(&'a [u8]),
}

fn mps_type(dtype: ComputeDtype) -> Result<MPSDataType> {
    Ok(match dtype {
        ComputeDtype::Fp32 => MPSDataType::Float32,
        ComputeDtype::Fp16 => MPSDataType::Float16,
        ComputeDtype::Bf16 => MPSDataType::BFloat16,
        other => bail!("the metal backend has no {other} GEMM"),
    })
}

impl Backend for Metal {
    fn backend(&self) -> &'static str {
        "metal"
    }

    fn device(&self) -> String {
        self.device.name().to_string()
    }

    fn gemm_dtypes(&self) -> Vec<ComputeDtype> {
        vec![ComputeDtype::Fp32, ComputeDtype::Fp16, ComputeDtype::Bf16]
    }

    fn memory_capacity_bytes(&self) -> Option<f64> {
        Some(self.device.recommendedMaxWorkingSetSize() as f64)
    }

    fn max_stream_bytes(&self, quick: bool) -> u64 {
        let cap: u64 = if quick { 1 << 30 } else { 4 << 30 };
        cap.min(self.device.recommendedMaxWorkingSetSize() / 4)
    }

    fn max_gemm_flops(&self, quick: bool) -> f64 {
        if quick {
            2e12
        } else {
            2e13
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
        let t = mps_type(dtype)?;
        let bpe = element_bytes(dtype) as usize;
        let a = self.matrix(m, k, t, bpe)?;
        let w = self.matrix(n, k, t, bpe)?;
        let c = self.matrix(m, n, t, bpe)?;
        // SAFETY: C[m x n] = A[m x k] W[n x k]^T, dimensions as allocated.
        let mm = unsafe {
            MPSMatrixMultiplication::initWithDevice_transposeLeft_transposeRight_resultRows_resultColumns_interiorColumns_alpha_beta(
                MPSMatrixMultiplication::alloc(),
                &self.device,
                false,
                true,
                m,
                n,
                k,
                1.0,
                0.0,
            )
        };
        self.time(policy, |cb| {
            // SAFETY: the matrices match the kernel's dimensions.
            unsafe { mm.encodeToCommandBuffer_leftMatrix_rightMatrix_resultMatrix(cb, &a, &w, &c) };
            Ok(())
        })
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
        let n4 = ((bytes / 16) as usize / arrays).max(1);
        let total = n4 * 16 * arrays;
        if self.pool.as_ref().is_none_or(|p| p.length() < total) {
            self.pool = Some(buffer(&self.device, total)?);
        }
        let pool = self.pool.clone().expect("allocated above");
        let n4_bytes = (n4 as u64).to_ne_bytes();
        let s_bytes = 0.5f32.to_ne_bytes();
        let third = n4 * 16;
        let samples = self.time(policy, |cb| match kernel {
            Kernel::Read => self.encode_stream(
                cb,
                &self.read,
                &[
                    Bind::Buffer(&pool, 0),
                    Bind::Bytes(&n4_bytes),
                    Bind::Buffer(&self.scratch, 0),
                ],
            ),
            Kernel::Copy => self.encode_stream(
                cb,
                &self.copy,
                &[
                    Bind::Buffer(&pool, 0),
                    Bind::Buffer(&pool, third),
                    Bind::Bytes(&n4_bytes),
                ],
            ),
            _ => self.encode_stream(
                cb,
                &self.triad,
                &[
                    Bind::Buffer(&pool, 0),
                    Bind::Buffer(&pool, third),
                    Bind::Buffer(&pool, 2 * third),
                    Bind::Bytes(&s_bytes),
                    Bind::Bytes(&n4_bytes),
                ],
            ),
        })?;
        Ok(Timed {
            samples_s: samples,
            bytes: total as f64,
        })
    }

    fn dispatch(&mut self, launches: u64, policy: &Policy) -> Result<Vec<f64>> {
        self.time(policy, |cb| {
            let enc = cb
                .computeCommandEncoder()
                .ok_or_else(|| anyhow!("no compute encoder"))?;
            enc.setComputePipelineState(&self.empty);
            for _ in 0..launches {
                enc.dispatchThreadgroups_threadsPerThreadgroup(size(1), size(32));
            }
            enc.endEncoding();
            Ok(())
        })
    }
}
