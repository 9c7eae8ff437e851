//! CPU kernels shared by the microbenchmark suite and the decode engine, so that what
//! the suite measures is what the decode benchmark runs.
//!
//! Every parallel kernel is one rayon fork-join over the worker threads: the CPU's
//! "dispatch". Dot products keep 16 independent accumulators so the compiler
//! vectorises them without reassociating floating-point sums itself.

use rayon::prelude::*;

/// Elements per parallel task for streaming kernels (256 KiB of f32).
const STREAM_CHUNK: usize = 1 << 16;

/// `sum a[i] b[i]`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

/// Four dot products against one `x`: each chunk of `x` is loaded once for four rows,
/// so `x` costs a quarter of the cache traffic it would one row at a time (a 14336-wide
/// `x` does not fit a 32 KiB L1).
#[inline]
fn dot4(rows: [&[f32]; 4], x: &[f32]) -> [f32; 4] {
    let k = x.len();
    let mut acc = [[0f32; 8]; 4];
    let full = k / 8 * 8;
    let mut j = 0;
    while j < full {
        let xs = &x[j..j + 8];
        for (r, row) in rows.iter().enumerate() {
            let ws = &row[j..j + 8];
            for i in 0..8 {
                acc[r][i] += ws[i] * xs[i];
            }
        }
        j += 8;
    }
    let mut out = [0f32; 4];
    for (r, row) in rows.iter().enumerate() {
        let tail: f32 = row[full..k]
            .iter()
            .zip(&x[full..])
            .map(|(a, b)| a * b)
            .sum();
        out[r] = acc[r].iter().sum::<f32>() + tail;
    }
    out
}

/// `y[n] = W[n x k] x[k]` with `W` row-major (one output feature per row, as
/// inference engines store linear layers): one fork-join over row blocks.
pub fn gemv(w: &[f32], x: &[f32], y: &mut [f32]) {
    let k = x.len();
    let n = y.len();
    assert_eq!(w.len(), n * k, "gemv: W must be n x k");
    // About 8 blocks per thread (a multiple of 4 rows): enough to balance, few enough
    // to stay cheap.
    let block = (n / (rayon::current_num_threads() * 8)).max(4) / 4 * 4;
    y.par_chunks_mut(block)
        .zip(w.par_chunks(block * k))
        .for_each(|(ys, ws)| {
            let mut rows = ws.chunks_exact(k);
            let mut outs = ys.chunks_exact_mut(4);
            for out in &mut outs {
                let r = [
                    rows.next().unwrap_or_default(),
                    rows.next().unwrap_or_default(),
                    rows.next().unwrap_or_default(),
                    rows.next().unwrap_or_default(),
                ];
                out.copy_from_slice(&dot4(r, x));
            }
            for (yi, row) in outs.into_remainder().iter_mut().zip(rows) {
                *yi = dot(row, x);
            }
        });
}

fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut chunks = a.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Reads every element once (a sum), in parallel.
pub fn read(a: &[f32]) -> f32 {
    a.par_chunks(STREAM_CHUNK).map(sum).sum()
}

/// STREAM copy: `a[i] = b[i]`.
pub fn copy(a: &mut [f32], b: &[f32]) {
    a.par_chunks_mut(STREAM_CHUNK)
        .zip(b.par_chunks(STREAM_CHUNK))
        .for_each(|(a, b)| a.copy_from_slice(b));
}

/// STREAM triad: `a[i] = b[i] + s c[i]`.
pub fn triad(a: &mut [f32], b: &[f32], c: &[f32], s: f32) {
    a.par_chunks_mut(STREAM_CHUNK)
        .zip(b.par_chunks(STREAM_CHUNK).zip(c.par_chunks(STREAM_CHUNK)))
        .for_each(|(a, (b, c))| {
            for ((ai, bi), ci) in a.iter_mut().zip(b).zip(c) {
                *ai = bi + s * ci;
            }
        });
}

/// One empty fork-join over every worker thread: the CPU's kernel launch.
pub fn dispatch() {
    rayon::broadcast(|ctx| {
        std::hint::black_box(ctx.index());
    });
}

/// Evicts a benchmark's buffers from the caches before a timed repetition, so that
/// every repetition starts cold, as a decode step that streams more weights than the
/// caches hold does.
///
/// On x86-64 the buffers' own cache lines are flushed (`clflush`), which is exact.
/// Streaming a large unrelated buffer through the caches is not: on the development
/// machine (a 2-vCPU AMD EPYC guest) a 33 MB array still read at cache speed after
/// 512 MiB had been streamed, since the last-level cache keeps reused lines over
/// streaming ones. Other architectures fall back to streaming a buffer of
/// `fallback_bytes`.
pub struct Evictor {
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    buffer: Vec<f32>,
}

impl Evictor {
    pub fn new(fallback_bytes: usize) -> Evictor {
        let buffer = if cfg!(target_arch = "x86_64") {
            Vec::new()
        } else {
            vec![0.0; (fallback_bytes / 4).max(1)]
        };
        Evictor { buffer }
    }

    #[cfg(target_arch = "x86_64")]
    pub fn evict<T: Sync>(&mut self, buffers: &[&[T]]) {
        use std::arch::x86_64::{_mm_clflush, _mm_mfence};
        const LINE: usize = 64;
        for buffer in buffers {
            let bytes = std::mem::size_of_val(*buffer);
            let base = buffer.as_ptr() as usize;
            (0..bytes.div_ceil(LINE))
                .into_par_iter()
                .with_min_len(1 << 14)
                .for_each(|line| {
                    // SAFETY: the address lies inside `buffer`; clflush only evicts.
                    unsafe { _mm_clflush((base + line * LINE) as *const u8) };
                });
        }
        // SAFETY: a fence has no preconditions.
        unsafe { _mm_mfence() };
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn evict<T: Sync>(&mut self, _buffers: &[&[T]]) {
        let r = self.buffer.first().copied().unwrap_or(0.0) + 1.0;
        self.buffer
            .par_chunks_mut(STREAM_CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v = r));
        std::hint::black_box(read(&self.buffer));
    }
}

/// Fallback eviction buffer: 8 x the last-level cache sysfs reports, at least 256 MiB.
pub fn default_flush_bytes() -> usize {
    (8 * last_level_cache_bytes().unwrap_or(32 << 20)).max(256 << 20)
}

/// The largest cache size sysfs reports for CPU 0, in bytes.
pub fn last_level_cache_bytes() -> Option<usize> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("size")).ok())
        .filter_map(|s| parse_size(s.trim()))
        .max()
}

fn parse_size(s: &str) -> Option<usize> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = digits.parse().ok()?;
    Some(match unit {
        "K" => n << 10,
        "M" => n << 20,
        "G" => n << 30,
        _ => n,
    })
}

/// A zeroed `Vec` of `len` elements, backed by transparent huge pages where Linux
/// offers them on request (`madvise`): 2 MiB pages keep the TLB (and a virtual
/// machine's nested page tables) from limiting streams over gigabytes of weights. The
/// memory is touched here, so page faults are not timed later.
///
/// Every buffer a kernel times comes from here, whatever its element type: the fp16
/// GEMM operands were once collected into plain `Vec`s, which on a host whose
/// huge pages are `madvise`-only (the development VM) left them on 4 KiB pages while
/// the fp32 operands had 2 MiB ones.
pub fn zeroed<T: Copy + Default>(len: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_ptr() as usize;
        let end = start + len * std::mem::size_of::<T>();
        let aligned = start.div_ceil(HUGE) * HUGE;
        if end > aligned + HUGE {
            // SAFETY: the range lies inside the allocation just made; the advice only
            // changes how the kernel backs it.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    (end - aligned) / HUGE * HUGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v.resize(len, T::default());
    v
}

/// Fills `a` with uniform values in `[-scale, scale)` from a seeded generator, in
/// parallel and deterministically (each chunk has its own stream).
pub fn fill_uniform(a: &mut [f32], seed: u64, scale: f32) {
    a.par_chunks_mut(STREAM_CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut state = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for v in chunk.iter_mut() {
                // SplitMix64.
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
                *v = (2.0 * unit - 1.0) * scale;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_gemv_match_the_definition() {
        // a = 1..=35, b = 1: dot = 35 x 36 / 2 = 630 (tail of 3 after two chunks of 16).
        let a: Vec<f32> = (1..=35).map(|i| i as f32).collect();
        assert_eq!(dot(&a, &[1.0; 35]), 630.0);
        // W = [[1, 2], [3, 4], [5, 6]], x = [1, -1]: y = [-1, -1, -1].
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut y = [0.0; 3];
        gemv(&w, &[1.0, -1.0], &mut y);
        assert_eq!(y, [-1.0, -1.0, -1.0]);
        // 9 rows of 19 (four-row blocks plus remainders in both directions): row r is
        // all r, x is all 1, so y[r] = 19 r.
        let w: Vec<f32> = (0..9).flat_map(|r| vec![r as f32; 19]).collect();
        let mut y = [0.0; 9];
        gemv(&w, &[1.0; 19], &mut y);
        let expected: Vec<f32> = (0..9).map(|r| 19.0 * r as f32).collect();
        assert_eq!(y.to_vec(), expected);
    }

    #[test]
    fn streaming_kernels() {
        // 100,000 ones sum to 100,000 (exact in f32 below 2^24).
        assert_eq!(read(&vec![1.0; 100_000]), 100_000.0);
        let b = vec![2.0; 70_000];
        let c = vec![3.0; 70_000];
        let mut a = vec![0.0; 70_000];
        copy(&mut a, &b);
        assert!(a.iter().all(|v| *v == 2.0));
        // 2 + 0.5 x 3 = 3.5.
        triad(&mut a, &b, &c, 0.5);
        assert!(a.iter().all(|v| *v == 3.5));
    }

    #[test]
    fn uniform_fill_is_deterministic_and_bounded() {
        let mut a = vec![0.0; 200_000];
        let mut b = vec![0.0; 200_000];
        fill_uniform(&mut a, 7, 0.5);
        fill_uniform(&mut b, 7, 0.5);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| (-0.5..0.5).contains(v)));
        // The mean of 200,000 uniforms on [-0.5, 0.5) is within 0.01 of 0 (sd 0.29/447).
        let mean: f32 = a.iter().sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.01);
    }

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_size("32768K"), Some(32 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
    }
}
