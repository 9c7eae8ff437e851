//! The decode benchmark on an NVIDIA GPU (feature `cuda`): the CPU engine's
//! [`Weights`], copied to the GPU, run token by token.
//!
//! Per layer and step the engine launches twelve kernels, the count
//! `runtimes/planner-harness.toml` gives its `nvidia` family: RMSNorm, the fused QKV
//! projection, the rotary embedding, the KV-cache append, attention, the output
//! projection, the residual add, RMSNorm, the fused gate/up projection, the gated
//! activation, the down projection and the residual add. The projections (and the LM
//! head) are `cublasSgemm` with one token row, the call the suite's `gemv` rows time
//! (`backend::cuda`), so the device profile fitted from the suite covers them; the
//! other kernels are NVRTC-compiled here, one thread block per head for attention.
//! The head is four more launches: the embedding row, the final RMSNorm, the LM head
//! and the greedy argmax (which leaves the next token on the GPU).
//!
//! Each step is timed with CUDA events on the stream: start, after the layer stack,
//! after the head. The host writes the step's token before the start event and reads
//! the next one after the end event, outside both.

use std::sync::Arc;

use anyhow::{bail, Result};
use cudarc::cublas::{CudaBlas, Gemm};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
    LaunchConfig, PushKernelArg,
};

use super::cuda::{load_kernels, open_context, row_major_gemm};
use crate::decode::{first_attended, Decoder, Shape, StepTime, Target, Weights, ROPE_BASE};

/// Entry points of [`KERNELS`], in the order [`Kernels::load`] takes them.
const ENTRY_POINTS: [&str; 8] = [
    "embed_kernel",
    "rms_norm_kernel",
    "rope_kernel",
    "kv_append_kernel",
    "attention_kernel",
    "add_kernel",
    "act_kernel",
    "argmax_kernel",
];

/// Threads per block of every kernel (the one-block RMSNorm and argmax size their
/// shared arrays for it).
const BLOCK: u32 = 256;

const KERNELS: &str = r#"
extern "C" __global__ void embed_kernel(const float* table, const int* token, float* x, int d) {
    long long row = (long long)token[0] * d;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < d; i += gridDim.x * blockDim.x) {
        x[i] = table[row + i];
    }
}

// One block of 256 threads.
extern "C" __global__ void rms_norm_kernel(const float* x, const float* w, float* out, int d) {
    __shared__ float part[256];
    float s = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) { float v = x[i]; s += v * v; }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int off = blockDim.x / 2; off > 0; off >>= 1) {
        if (threadIdx.x < off) part[threadIdx.x] += part[threadIdx.x + off];
        __syncthreads();
    }
    float inv = rsqrtf(part[0] / (float)d + 1e-5f);
    for (int i = threadIdx.x; i < d; i += blockDim.x) out[i] = x[i] * inv * w[i];
}

// The first `heads` head vectors of qkv (the queries, then the keys), pairs (i, i + hd/2).
extern "C" __global__ void rope_kernel(float* qkv, int heads, int hd, int pos, float base) {
    int half = hd / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= heads * half) return;
    int h = idx / half, i = idx % half;
    float freq = powf(base, -(float)(2 * i) / (float)hd);
    float s, c;
    sincosf((float)pos * freq, &s, &c);
    float* v = qkv + h * hd;
    float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = a * s + b * c;
}

extern "C" __global__ void kv_append_kernel(const float* qkv, float* kc, float* vc, int q_len,
                                            int kv_len, int pos) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < kv_len) {
        long long row = (long long)pos * kv_len;
        kc[row + i] = qkv[q_len + i];
        vc[row + i] = qkv[q_len + kv_len + i];
    }
}

// One block of 256 threads per query head; dynamic shared memory holds the scores of
// positions first..=pos and 256 floats for the reductions.
extern "C" __global__ void attention_kernel(const float* qkv, const float* kc, const float* vc,
                                            float* out, int heads, int kv_heads, int hd,
                                            int first, int pos, float scale) {
    extern __shared__ float shared[];
    int n = pos - first + 1;
    float* scores = shared;
    float* red = shared + n;
    int head = blockIdx.x;
    int g = head / (heads / kv_heads);
    const float* q = qkv + head * hd;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float* k = kc + ((long long)(first + j) * kv_heads + g) * hd;
        float s = 0.f;
        for (int e = 0; e < hd; ++e) s += q[e] * k[e];
        scores[j] = s * scale;
    }
    __syncthreads();
    float m = -3.0e38f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, scores[j]);
    red[threadIdx.x] = m;
    __syncthreads();
    for (int off = blockDim.x / 2; off > 0; off >>= 1) {
        if (threadIdx.x < off) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + off]);
        __syncthreads();
    }
    m = red[0];
    __syncthreads();
    float t = 0.f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float e = expf(scores[j] - m);
        scores[j] = e;
        t += e;
    }
    red[threadIdx.x] = t;
    __syncthreads();
    for (int off = blockDim.x / 2; off > 0; off >>= 1) {
        if (threadIdx.x < off) red[threadIdx.x] += red[threadIdx.x + off];
        __syncthreads();
    }
    float total = red[0];
    for (int e = threadIdx.x; e < hd; e += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j < n; ++j) {
            acc += scores[j] * vc[((long long)(first + j) * kv_heads + g) * hd + e];
        }
        out[head * hd + e] = acc / total;
    }
}

extern "C" __global__ void add_kernel(float* x, const float* p, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += p[i];
}

// SiLU(gate) * up when gated (gate rows first, then up rows), else SiLU(in).
extern "C" __global__ void act_kernel(const float* in, float* act, int ffn, int gated) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < ffn) {
        float g = in[i];
        float s = g / (1.f + expf(-g));
        act[i] = gated ? s * in[ffn + i] : s;
    }
}

// One block of 256 threads; the first index of the largest value.
extern "C" __global__ void argmax_kernel(const float* v, int n, int* token) {
    __shared__ float best[256];
    __shared__ int where[256];
    float b = -3.0e38f;
    int w = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        if (v[i] > b) { b = v[i]; w = i; }
    }
    best[threadIdx.x] = b;
    where[threadIdx.x] = w;
    __syncthreads();
    for (int off = blockDim.x / 2; off > 0; off >>= 1) {
        if (threadIdx.x < off) {
            float o = best[threadIdx.x + off];
            int ow = where[threadIdx.x + off];
            if (o > best[threadIdx.x] || (o == best[threadIdx.x] && ow < where[threadIdx.x])) {
                best[threadIdx.x] = o;
                where[threadIdx.x] = ow;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) token[0] = where[0];
}
"#;

struct Kernels {
    embed: CudaFunction,
    rms_norm: CudaFunction,
    rope: CudaFunction,
    kv_append: CudaFunction,
    attention: CudaFunction,
    add: CudaFunction,
    act: CudaFunction,
    argmax: CudaFunction,
}

impl Kernels {
    fn load(ctx: &Arc<CudaContext>) -> Result<Kernels> {
        let [embed, rms_norm, rope, kv_append, attention, add, act, argmax] =
            load_kernels(ctx, KERNELS, ENTRY_POINTS, "decode")?;
        Ok(Kernels {
            embed,
            rms_norm,
            rope,
            kv_append,
            attention,
            add,
            act,
            argmax,
        })
    }

    /// `out = RMSNorm(x) * w` over `d` floats.
    fn rms_norm(
        &self,
        s: &CudaStream,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
        d: i32,
    ) -> Result<()> {
        let mut b = s.launch_builder(&self.rms_norm);
        b.arg(x).arg(w).arg(out).arg(&d);
        // SAFETY: every vector holds d floats.
        unsafe { b.launch(ONE_BLOCK) }?;
        Ok(())
    }

    /// The residual add `x += p` over `d` floats.
    fn add(
        &self,
        s: &CudaStream,
        x: &mut CudaSlice<f32>,
        p: &CudaSlice<f32>,
        d: i32,
    ) -> Result<()> {
        let mut b = s.launch_builder(&self.add);
        b.arg(x).arg(p).arg(&d);
        // SAFETY: both hold d floats.
        unsafe { b.launch(grid(d as usize)) }?;
        Ok(())
    }
}

struct GpuLayer {
    attn_norm: CudaSlice<f32>,
    wqkv: CudaSlice<f32>,
    wo: CudaSlice<f32>,
    ffn_norm: CudaSlice<f32>,
    w_in: CudaSlice<f32>,
    w_down: CudaSlice<f32>,
    k_cache: CudaSlice<f32>,
    v_cache: CudaSlice<f32>,
    span: planner::model::AttentionSpan,
}

pub struct CudaEngine {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    k: Kernels,
    shape: Shape,
    max_context: usize,
    embedding: CudaSlice<f32>,
    lm_head: Option<CudaSlice<f32>>,
    final_norm: CudaSlice<f32>,
    layers: Vec<GpuLayer>,
    x: CudaSlice<f32>,
    xn: CudaSlice<f32>,
    qkv: CudaSlice<f32>,
    attn: CudaSlice<f32>,
    proj: CudaSlice<f32>,
    ffn_in: CudaSlice<f32>,
    act: CudaSlice<f32>,
    logits: CudaSlice<f32>,
    token: CudaSlice<i32>,
    events: [CudaEvent; 3],
}

/// The CUDA engine on device `ordinal`.
pub fn target(ordinal: usize) -> Result<Target<'static>> {
    let ctx = open_context(ordinal)?;
    let device = ctx.name()?;
    Ok(Target {
        backend: "cuda",
        device,
        threads: 1,
        open: Box::new(move |w, max_context| Ok(Box::new(CudaEngine::new(ctx, w, max_context)?))),
    })
}

/// `count` threads in blocks of [`BLOCK`].
fn grid(count: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (count.div_ceil(BLOCK as usize).max(1) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

const ONE_BLOCK: LaunchConfig = LaunchConfig {
    grid_dim: (1, 1, 1),
    block_dim: (BLOCK, 1, 1),
    shared_mem_bytes: 0,
};

/// Attention keeps this many scores (4 bytes each) in a block's shared memory, with
/// the reduction's 256 floats: under the 48 KiB every CUDA device gives a block.
const MAX_ATTENDED: usize = 11_000;

impl CudaEngine {
    fn new(ctx: Arc<CudaContext>, w: Weights, max_context: usize) -> Result<CudaEngine> {
        let shape = w.shape;
        if !shape.heads.is_multiple_of(shape.kv_heads) || !shape.head_dim.is_multiple_of(2) {
            bail!("the CUDA decode engine needs heads divisible by KV heads and an even head size");
        }
        if max_context > MAX_ATTENDED {
            bail!(
                "the CUDA decode engine attends to at most {MAX_ATTENDED} positions; \
                 prompt + tokens is {max_context}"
            );
        }
        let kv_len = shape.kv_len();
        let cache_bytes = 2 * 4 * max_context * kv_len * w.layers.len();
        let total = ctx.total_mem()? as f64;
        let needed = w.resident_bytes() + cache_bytes as f64;
        // The rest of the GPU's memory is left to the CUDA context, cuBLAS's workspace
        // and the scratch vectors (an allowance, not a measurement).
        if needed > 0.95 * total {
            bail!(
                "the weights and cache need {:.1} GB, the GPU has {:.1} GB: run fewer layers \
                 (--layers)",
                needed / 1e9,
                total / 1e9
            );
        }
        let stream = ctx.default_stream();
        let k = Kernels::load(&ctx)?;
        let up = |v: &Vec<f32>| stream.clone_htod(v);
        let mut layers = Vec::with_capacity(w.layers.len());
        for l in &w.layers {
            layers.push(GpuLayer {
                attn_norm: up(&l.attn_norm)?,
                wqkv: up(&l.wqkv)?,
                wo: up(&l.wo)?,
                ffn_norm: up(&l.ffn_norm)?,
                w_in: up(&l.w_in)?,
                w_down: up(&l.w_down)?,
                k_cache: stream.alloc_zeros(max_context * kv_len)?,
                v_cache: stream.alloc_zeros(max_context * kv_len)?,
                span: l.span,
            });
        }
        let new_event = || ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT));
        let engine = CudaEngine {
            blas: CudaBlas::new(stream.clone())?,
            k,
            shape,
            max_context,
            embedding: up(&w.embedding)?,
            lm_head: w.lm_head.as_ref().map(up).transpose()?,
            final_norm: up(&w.final_norm)?,
            layers,
            x: stream.alloc_zeros(shape.hidden)?,
            xn: stream.alloc_zeros(shape.hidden)?,
            qkv: stream.alloc_zeros(shape.qkv_rows())?,
            attn: stream.alloc_zeros(shape.heads * shape.head_dim)?,
            proj: stream.alloc_zeros(shape.hidden)?,
            ffn_in: stream.alloc_zeros(shape.ffn_rows())?,
            act: stream.alloc_zeros(shape.ffn)?,
            logits: stream.alloc_zeros(shape.vocab)?,
            token: stream.alloc_zeros(1)?,
            events: [new_event()?, new_event()?, new_event()?],
            stream,
        };
        engine.stream.synchronize()?;
        Ok(engine)
    }
}

/// `y[n] = W[n x k] x[k]` with W row-major: the suite's `gemv` call, a GEMM of one
/// token row ([`row_major_gemm`]).
fn gemv<W, X, Y>(blas: &CudaBlas, w: &W, x: &X, y: &mut Y, n: usize, k: usize) -> Result<()>
where
    W: DevicePtr<f32>,
    X: DevicePtr<f32>,
    Y: DevicePtrMut<f32>,
{
    // SAFETY: W holds n x k, x k and y n floats, as the strides say.
    unsafe { blas.gemm(row_major_gemm::<f32>(1, n, k), w, x, y) }?;
    Ok(())
}

impl Decoder for CudaEngine {
    fn step(&mut self, token: usize, pos: usize) -> Result<(usize, StepTime)> {
        if pos >= self.max_context {
            bail!(
                "position {pos} beyond the KV cache ({} tokens)",
                self.max_context
            );
        }
        let shape = self.shape;
        let (d, h, kv, hd) = (shape.hidden, shape.heads, shape.kv_heads, shape.head_dim);
        let (q_len, kv_len) = ((h * hd) as i32, shape.kv_len() as i32);
        let (d_i, hd_i, pos_i) = (d as i32, hd as i32, pos as i32);
        let scale = 1.0f32 / (hd as f32).sqrt();
        let s = self.stream.clone();
        s.memcpy_htod(&[(token % shape.vocab) as i32], &mut self.token)?;
        let [start, mid, end] = &self.events;
        start.record(&s)?;
        let mut b = s.launch_builder(&self.k.embed);
        b.arg(&self.embedding)
            .arg(&self.token)
            .arg(&mut self.x)
            .arg(&d_i);
        // SAFETY: the token is below the vocabulary; x holds d floats.
        unsafe { b.launch(grid(d)) }?;
        for layer in &mut self.layers {
            self.k
                .rms_norm(&s, &self.x, &layer.attn_norm, &mut self.xn, d_i)?;
            gemv(
                &self.blas,
                &layer.wqkv,
                &self.xn,
                &mut self.qkv,
                shape.qkv_rows(),
                d,
            )?;
            let rotated = (h + kv) as i32;
            let mut b = s.launch_builder(&self.k.rope);
            b.arg(&mut self.qkv)
                .arg(&rotated)
                .arg(&hd_i)
                .arg(&pos_i)
                .arg(&ROPE_BASE);
            // SAFETY: qkv holds (h + 2 kv) hd floats; the kernel touches the first h + kv heads.
            unsafe { b.launch(grid((h + kv) * hd / 2)) }?;
            let mut b = s.launch_builder(&self.k.kv_append);
            b.arg(&self.qkv)
                .arg(&mut layer.k_cache)
                .arg(&mut layer.v_cache)
                .arg(&q_len)
                .arg(&kv_len)
                .arg(&pos_i);
            // SAFETY: pos < max_context, so the row fits the caches.
            unsafe { b.launch(grid(kv * hd)) }?;
            let first = first_attended(layer.span, pos);
            let attended = pos - first + 1;
            let (heads_i, kv_i, first_i) = (h as i32, kv as i32, first as i32);
            let mut b = s.launch_builder(&self.k.attention);
            b.arg(&self.qkv)
                .arg(&layer.k_cache)
                .arg(&layer.v_cache)
                .arg(&mut self.attn)
                .arg(&heads_i)
                .arg(&kv_i)
                .arg(&hd_i)
                .arg(&first_i)
                .arg(&pos_i)
                .arg(&scale);
            let cfg = LaunchConfig {
                grid_dim: (h as u32, 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: (4 * (attended + BLOCK as usize)) as u32,
            };
            // SAFETY: positions first..=pos of the caches are written; attended <=
            // MAX_ATTENDED keeps the shared memory under 48 KiB.
            unsafe { b.launch(cfg) }?;
            gemv(&self.blas, &layer.wo, &self.attn, &mut self.proj, d, h * hd)?;
            self.k.add(&s, &mut self.x, &self.proj, d_i)?;
            self.k
                .rms_norm(&s, &self.x, &layer.ffn_norm, &mut self.xn, d_i)?;
            gemv(
                &self.blas,
                &layer.w_in,
                &self.xn,
                &mut self.ffn_in,
                shape.ffn_rows(),
                d,
            )?;
            let (ffn_i, gated_i) = (shape.ffn as i32, i32::from(shape.gated));
            let mut b = s.launch_builder(&self.k.act);
            b.arg(&self.ffn_in)
                .arg(&mut self.act)
                .arg(&ffn_i)
                .arg(&gated_i);
            // SAFETY: ffn_in holds ffn_rows floats, act ffn.
            unsafe { b.launch(grid(shape.ffn)) }?;
            gemv(
                &self.blas,
                &layer.w_down,
                &self.act,
                &mut self.proj,
                d,
                shape.ffn,
            )?;
            self.k.add(&s, &mut self.x, &self.proj, d_i)?;
        }
        mid.record(&s)?;
        self.k
            .rms_norm(&s, &self.x, &self.final_norm, &mut self.xn, d_i)?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embedding);
        gemv(&self.blas, head, &self.xn, &mut self.logits, shape.vocab, d)?;
        let vocab_i = shape.vocab as i32;
        let mut b = s.launch_builder(&self.k.argmax);
        b.arg(&self.logits).arg(&vocab_i).arg(&mut self.token);
        // SAFETY: logits holds vocab floats; token one int.
        unsafe { b.launch(ONE_BLOCK) }?;
        end.record(&s)?;
        let layers_ms = start.elapsed_ms(mid)?;
        let head_ms = mid.elapsed_ms(end)?;
        let next = s.clone_dtoh(&self.token)?[0];
        Ok((
            next.max(0) as usize,
            StepTime {
                layers_s: f64::from(layers_ms) * 1e-3,
                head_s: f64::from(head_ms) * 1e-3,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decode kernels compile and define the entry points the engine loads (see
    /// `backend::cuda`'s test of the same kind).
    #[test]
    fn the_decode_kernels_compile_with_nvrtc() {
        super::super::cuda::assert_compiles_with_nvrtc(KERNELS, &ENTRY_POINTS);
    }
}
