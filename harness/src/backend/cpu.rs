//! The CPU backend: every worker thread of one rayon pool.
//!
//! GEMMs go through the `gemm` crate (runtime-selected AVX2/AVX-512/NEON kernels,
//! rayon-parallel); fp16 GEMMs use its `f16` path, which widens to fp32 on CPUs
//! without fp16 arithmetic. GEMV and the streaming kernels are [`crate::kernels`],
//! the same code the decode engine runs. Caches are evicted before every timed
//! repetition (see [`Evictor`]).

use anyhow::{bail, Result};
use gemm::{f16, Parallelism};
use planner::hardware::ComputeDtype;
use planner::microbench::Kernel;

use super::{Backend, Timed};
use crate::kernels::{self, Evictor};
use crate::measure::{time_host, Policy};

pub struct Cpu {
    threads: usize,
    evictor: Evictor,
    /// Reused by the bandwidth sweep: allocated (and touched) once.
    pool: Vec<f32>,
}

impl Cpu {
    /// `flush_bytes`: the eviction buffer where `clflush` is not available (default
    /// [`kernels::default_flush_bytes`]).
    pub fn new(threads: Option<usize>, flush_bytes: Option<usize>) -> Result<Cpu> {
        if let Some(n) = threads {
            // Fails only if the global pool was already built, e.g. by an earlier call.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global();
        }
        Ok(Cpu {
            threads: rayon::current_num_threads(),
            evictor: Evictor::new(flush_bytes.unwrap_or_else(kernels::default_flush_bytes)),
            pool: Vec::new(),
        })
    }
}

/// The first `elements` of `pool`, growing (and filling) it when too small.
fn ensure(pool: &mut Vec<f32>, elements: usize) -> &mut [f32] {
    if pool.len() < elements {
        *pool = kernels::zeroed(elements);
        kernels::fill_uniform(pool, 1, 1.0);
    }
    &mut pool[..elements]
}

/// "model name" from /proc/cpuinfo, or the architecture.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// MemTotal from /proc/meminfo, in bytes.
pub fn host_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

#[allow(clippy::too_many_arguments)]
fn run_gemm<T: Copy + 'static>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    w: &[T],
    c: &mut [T],
    one: T,
    zero: T,
    threads: usize,
) {
    // Row-major A [m x k], W [n x k] read as W^T [k x n] (column stride k), C [m x n].
    // SAFETY: the slices hold m*k, n*k and m*n elements, matching the strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            zero,
            one,
            false,
            false,
            false,
            Parallelism::Rayon(threads),
        );
    }
}

impl Backend for Cpu {
    fn backend(&self) -> &'static str {
        "cpu"
    }

    fn device(&self) -> String {
        format!("{} ({} threads)", cpu_model(), self.threads)
    }

    fn gemm_dtypes(&self) -> Vec<ComputeDtype> {
        vec![ComputeDtype::Fp32, ComputeDtype::Fp16]
    }

    fn memory_capacity_bytes(&self) -> Option<f64> {
        host_memory_bytes()
    }

    fn max_stream_bytes(&self, quick: bool) -> u64 {
        if quick {
            1 << 30
        } else {
            4 << 30
        }
    }

    fn max_gemm_flops(&self, quick: bool) -> f64 {
        if quick {
            2.5e10
        } else {
            2e11
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
        let mut a32 = kernels::zeroed(m * k);
        let mut w32 = kernels::zeroed(n * k);
        kernels::fill_uniform(&mut a32, 2, 1.0);
        kernels::fill_uniform(&mut w32, 3, 1.0 / (k as f32).sqrt());
        let threads = self.threads;
        let evictor = &mut self.evictor;
        Ok(match dtype {
            ComputeDtype::Fp32 => {
                let mut state = (a32, w32, kernels::zeroed(m * n));
                time_host(
                    policy,
                    &mut state,
                    |(a, w, c)| evictor.evict(&[&a[..], &w[..], &c[..]]),
                    |(a, w, c)| run_gemm(m, n, k, a, w, c, 1.0, 0.0, threads),
                )
            }
            ComputeDtype::Fp16 => {
                let a: Vec<f16> = a32.iter().map(|v| f16::from_f32(*v)).collect();
                let w: Vec<f16> = w32.iter().map(|v| f16::from_f32(*v)).collect();
                drop((a32, w32));
                let mut state = (a, w, vec![f16::ZERO; m * n]);
                time_host(
                    policy,
                    &mut state,
                    |(a, w, c)| evictor.evict(&[&a[..], &w[..], &c[..]]),
                    |(a, w, c)| run_gemm(m, n, k, a, w, c, f16::ONE, f16::ZERO, threads),
                )
            }
            other => bail!("the cpu backend has no {other} GEMM"),
        })
    }

    fn gemv(&mut self, dtype: ComputeDtype, n: u64, k: u64, policy: &Policy) -> Result<Vec<f64>> {
        if dtype != ComputeDtype::Fp32 {
            bail!("the cpu backend's GEMV is fp32 (the decode engine's)");
        }
        let (n, k) = (n as usize, k as usize);
        let mut w = kernels::zeroed(n * k);
        let mut x = vec![0f32; k];
        kernels::fill_uniform(&mut w, 4, 1.0 / (k as f32).sqrt());
        kernels::fill_uniform(&mut x, 5, 1.0);
        let evictor = &mut self.evictor;
        let mut state = (w, x, vec![0f32; n]);
        Ok(time_host(
            policy,
            &mut state,
            |(w, x, y)| evictor.evict(&[&w[..], &x[..], &y[..]]),
            |(w, x, y)| kernels::gemv(w, x, y),
        ))
    }

    fn stream(&mut self, kernel: Kernel, bytes: u64, policy: &Policy) -> Result<Timed> {
        let arrays = match kernel {
            Kernel::Read => 1,
            Kernel::Copy => 2,
            Kernel::Triad => 3,
            other => bail!("{} is not a streaming kernel", other.name()),
        };
        let len = ((bytes / 4) as usize / arrays).max(1);
        let evictor = &mut self.evictor;
        let mut pool = ensure(&mut self.pool, len * arrays);
        let evict = |p: &mut &mut [f32]| evictor.evict(&[&p[..]]);
        let samples = match kernel {
            Kernel::Read => time_host(policy, &mut pool, evict, |p| {
                std::hint::black_box(kernels::read(p));
            }),
            Kernel::Copy => time_host(policy, &mut pool, evict, |p| {
                let (a, b) = p.split_at_mut(len);
                kernels::copy(a, b)
            }),
            _ => time_host(policy, &mut pool, evict, |p| {
                let (a, rest) = p.split_at_mut(len);
                let (b, c) = rest.split_at(len);
                kernels::triad(a, b, c, 0.5)
            }),
        };
        Ok(Timed {
            samples_s: samples,
            bytes: (len * arrays * 4) as f64,
        })
    }

    fn dispatch(&mut self, launches: u64, policy: &Policy) -> Result<Vec<f64>> {
        Ok(time_host(
            policy,
            &mut (),
            |_| {},
            |_| {
                for _ in 0..launches {
                    kernels::dispatch();
                }
            },
        ))
    }
}
