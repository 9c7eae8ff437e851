//! The CPU backend: every worker thread of one rayon pool.
//!
//! GEMMs go through the `gemm` crate (runtime-selected AVX2/AVX-512/NEON kernels);
//! fp16 GEMMs use its `f16` path, which widens to fp32 on CPUs without fp16
//! arithmetic. Each product is split into one contiguous range of output columns
//! (weight rows) per worker thread, each range a single-threaded `gemm` call, as
//! CPU inference runtimes split a matmul (ggml's CPU backend hands each thread its
//! own output rows): the threads meet once per product.
//!
//! Why not the library's own threading (`Parallelism::Rayon`, used until
//! 2026-11-22): it forks and joins its threads per block of `k` (at least 512 deep),
//! and in fp16 twice (a parallel conversion of the block to fp32, then the multiply),
//! so the cost per weight grew with `k` against the law the planner fits (one cost
//! per weight per type): on the development VM, at `m = 8`, 0.72-0.77 ns per weight
//! for `k` = 3072 and 0.82 for 14336 (see the README's CPU results), and every
//! sync point waited for the slower vCPU. Split by columns (GEMM-only quick runs of
//! Llama-3.1 8B's shapes, fastest samples, 2026-11-22): fp16 at `m = 8` 0.726-0.751
//! ns per weight over all five shapes, `k` = 14336 included (0.733 and 0.741 in two
//! runs), against 0.759-0.948 and 0.764-0.797 with the library's threading in the
//! runs beside them; the rows' median over fastest sample 1.01-1.12 against 1.08-1.37
//! and 1.05-1.15. fp32 moved less (fastest samples within 1-7%), its library path
//! syncing once per block.
//!
//! GEMV and the streaming kernels are [`crate::kernels`],
//! the same code the decode engine runs. Caches are evicted before every timed
//! repetition (see [`Evictor`]).
//!
//! The OS places the worker threads. Pinning each to its own CPU
//! (`sched_setaffinity` in rayon's start handler) was tried and dropped (2026-11-21):
//! on the development VM the `8 x 4096 x 14336` fp32 GEMM, whose two-thread product
//! is sometimes 1.3-1.65 times its balanced 29 ms, kept its slow calls pinned (three
//! A/B pairs of a standalone program: medians 28.8-29.2 ms pinned, 28.7-28.9 not), the
//! suite's GEMM rows were no steadier (median over fastest 1.017-1.025 pinned against
//! 1.017-1.055, four pairs), and a pinned full run still missed that row by 19%.
//! Splitting the product into two fixed halves (two single-threaded `gemm` calls in
//! `rayon::join`, as the suite now does for its other reasons) did not remove the
//! slow calls either (3-7 in 40, ~35 ms against 27.5): in them one vCPU idles about
//! 10 ms with no steal time, i.e. one thread ran slower for a while. The host, not the
//! library or the placement, makes them.

use anyhow::{bail, Result};
use gemm::{f16, Parallelism};
use planner::hardware::ComputeDtype;
use planner::microbench::Kernel;
use rayon::prelude::*;

use super::{Backend, Timed};
use crate::kernels::{self, Evictor};
use crate::measure::{time_host, Policy};

pub struct Cpu {
    threads: usize,
    evictor: Evictor,
    /// Reused by the bandwidth sweep: allocated (and touched) once.
    pool: Vec<f32>,
    /// Operand buffers of the GEMMs and GEMVs, reused by every shape and pass.
    fp32: Operands<f32>,
    fp16: Operands<f16>,
}

/// A data type's GEMM operands, made once and reused by every shape and pass: each
/// product takes the leading `m x k`, `n x k` and `m x n` elements, growing a buffer
/// (to the largest shape of the suite, in its first pass) only when it is too small.
///
/// Why: making them for every product (as this backend first did) took most of a
/// quick pass. Filling, converting and first-touching up to 2 GB (an LM head) per row
/// came to most of a 13-19 s pass that times 2.7 s of kernels, and the kernel's zeroing of
/// fresh pages was a third of the suite's CPU time. Fewer seconds per pass is what
/// lets the suite take more passes ([`crate::suite`]). Contents do not change a
/// float kernel's time (uniform values in `[-1/64, 1/64)`, far from denormals and
/// overflow), only sizes and placement ([`kernels::zeroed`]), and caches are evicted
/// before every timed repetition all the same.
#[derive(Default)]
struct Operands<T> {
    /// Activations.
    a: Vec<T>,
    /// Weights.
    w: Vec<T>,
    /// Output.
    c: Vec<T>,
}

impl<T: Copy + Default + Send + Sync> Operands<T> {
    /// The leading `a`, `w` and `c` elements of the buffers, growing any that is
    /// too small with values from `make(len, seed)`.
    fn take(
        &mut self,
        a: usize,
        w: usize,
        c: usize,
        make: impl Fn(usize, u64) -> Vec<T>,
    ) -> (&[T], &[T], &mut [T]) {
        for (buffer, len, seed) in [
            (&mut self.a, a, 2),
            (&mut self.w, w, 3),
            (&mut self.c, c, 4),
        ] {
            if buffer.len() < len {
                // Free the old buffer before making the larger one.
                *buffer = Vec::new();
                *buffer = make(len, seed);
            }
        }
        (&self.a[..a], &self.w[..w], &mut self.c[..c])
    }
}

/// Uniform values in `[-1/64, 1/64)`, in fp32.
fn uniform_fp32(len: usize, seed: u64) -> Vec<f32> {
    let mut v = kernels::zeroed(len);
    kernels::fill_uniform(&mut v, seed, 1.0 / 64.0);
    v
}

/// Uniform values in `[-1/64, 1/64)`, in fp16 (converted chunk by chunk).
fn uniform_fp16(len: usize, seed: u64) -> Vec<f16> {
    let mut v: Vec<f16> = kernels::zeroed(len);
    v.par_chunks_mut(1 << 20)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut wide = vec![0f32; chunk.len()];
            kernels::fill_uniform(&mut wide, seed ^ ((i as u64) << 32), 1.0 / 64.0);
            for (h, x) in chunk.iter_mut().zip(&wide) {
                *h = f16::from_f32(*x);
            }
        });
    v
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
            fp32: Operands::default(),
            fp16: Operands::default(),
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

/// `C = A W^T` for row-major `A [m x k]`, `W [n x k]` and `C [m x n]`, split into
/// `threads` contiguous ranges of output columns (weight rows), each a
/// single-threaded library call on its own worker (see the module docs for why).
#[allow(clippy::too_many_arguments)]
fn run_gemm<T: Copy + Send + Sync + 'static>(
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
    let parts = threads.max(1);
    let c_ptr = c.as_mut_ptr() as usize;
    rayon::scope(|scope| {
        for p in 0..parts {
            let (j0, j1) = (n * p / parts, n * (p + 1) / parts);
            if j0 == j1 {
                continue;
            }
            scope.spawn(move |_| {
                // SAFETY: the slices hold m*k, n*k and m*n elements. Columns j0..j1 of
                // C (row stride n) are written by this part only; W's rows j0..j1 (read
                // as columns of W^T, column stride k) start at j0 x k.
                unsafe {
                    gemm::gemm(
                        m,
                        j1 - j0,
                        k,
                        (c_ptr as *mut T).add(j0),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        1,
                        k as isize,
                        w.as_ptr().add(j0 * k),
                        k as isize,
                        1,
                        zero,
                        one,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            });
        }
    });
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
        let threads = self.threads;
        let evictor = &mut self.evictor;
        Ok(match dtype {
            ComputeDtype::Fp32 => {
                let mut state = self.fp32.take(m * k, n * k, m * n, uniform_fp32);
                time_host(
                    policy,
                    &mut state,
                    |(a, w, c)| evictor.evict(&[&a[..], &w[..], &c[..]]),
                    |(a, w, c)| run_gemm(m, n, k, a, w, c, 1.0, 0.0, threads),
                )
            }
            ComputeDtype::Fp16 => {
                let mut state = self.fp16.take(m * k, n * k, m * n, uniform_fp16);
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
        let evictor = &mut self.evictor;
        // The vector is the activations' first row, the output the output's.
        let mut state = self.fp32.take(k, n * k, n, uniform_fp32);
        Ok(time_host(
            policy,
            &mut state,
            |(x, w, y)| evictor.evict(&[&w[..], &x[..], &y[..]]),
            |(x, w, y)| kernels::gemv(w, x, y),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_split_computes_the_product() {
        // C = A W^T for small integer-valued operands, against the triple loop, with
        // more threads than some shapes have columns (empty ranges are skipped) and
        // ranges that do not divide evenly.
        for (m, n, k, threads) in [(3, 7, 5, 2), (1, 2, 4, 3), (4, 9, 2, 4)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
            let w: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect();
            let mut c = vec![f32::NAN; m * n];
            run_gemm(m, n, k, &a, &w, &mut c, 1.0, 0.0, threads);
            for i in 0..m {
                for j in 0..n {
                    let want: f32 = (0..k).map(|p| a[i * k + p] * w[j * k + p]).sum();
                    assert_eq!(c[i * n + j], want, "{m}x{n}x{k} on {threads}: ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn operands_are_made_once_and_grown_only_when_too_small() {
        let mut ops: Operands<f32> = Operands::default();
        let made = std::cell::Cell::new(0);
        let make = |len: usize, seed: u64| {
            made.set(made.get() + 1);
            uniform_fp32(len, seed)
        };
        // First product, 2 x 3 x 4: a 2 x 4, w 3 x 4, c 2 x 3: three buffers made.
        let (a, w, c) = ops.take(8, 12, 6, make);
        assert_eq!((a.len(), w.len(), c.len()), (8, 12, 6));
        assert_eq!(made.get(), 3);
        let weights = w.as_ptr();
        // A smaller product reuses all three.
        let (a, w, c) = ops.take(4, 12, 3, make);
        assert_eq!((a.len(), w.len(), c.len()), (4, 12, 3));
        assert_eq!((made.get(), w.as_ptr()), (3, weights));
        // More rows grow the activations and output only.
        let (_, w, _) = ops.take(32, 12, 24, make);
        assert_eq!((made.get(), w.as_ptr()), (5, weights));
    }

    #[test]
    fn fp16_operands_hold_the_fp32_values_rounded() {
        let wide = uniform_fp32(3 << 20, 7);
        let narrow = uniform_fp16(3 << 20, 7);
        // Chunk 0 of the fp16 buffer draws from seed 7 ^ 0 = 7, as the fp32 one
        // does, so its values are the fp32 ones rounded to fp16 (relative error
        // at most 2^-11 for values in the normal range).
        for (h, x) in narrow[..1000].iter().zip(&wide) {
            assert!((h.to_f32() - x).abs() <= x.abs() / 2048.0 + 1e-7);
        }
        assert!(narrow.iter().all(|h| h.to_f32().abs() <= 1.0 / 64.0));
    }
}
