//! The microbenchmark suite: which shapes and sizes run, on any backend.
//!
//! - **GEMM** shapes are the linear layers of catalog models: QKV projection
//!   (`n = (heads + 2 kv_heads) head_dim`, `k = hidden`), output projection
//!   (`n = hidden`, `k = heads head_dim`), fused gate/up (`n = 2 ffn`, `k = hidden`) and
//!   down (`n = hidden`, `k = ffn`), at token rows `m` from 1 to 8192 (quick: 1 to
//!   2048), in every data type the backend has, skipping GEMMs above the backend's
//!   FLOP budget.
//! - **GEMV**: the same weight shapes at `m = 1`, fp32, and each model's LM head
//!   (`n = vocabulary`, `k = hidden`). The head multiplies one row per sequence, the
//!   last position, in prefill as in decode, so it is timed only as a GEMV; with a
//!   short `k` it streams a little slower than the layers' shapes and it is the
//!   largest single matrix of a small model's decode step.
//! - **Bandwidth**: `read`, `copy`, `triad` over 1 MiB to 4 GiB (quick: 1 GiB),
//!   doubling.
//! - **Dispatch**: chains of 1 to 1024 empty launches.
//! - one `memory_capacity` row.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};
use planner::hardware::ComputeDtype;
use planner::microbench::{self, median_min, Kernel, MicrobenchRow, UNSETTLED_SPREAD};
use planner::model::Model;

use crate::backend::{element_bytes, Backend};
use crate::measure::Policy;

/// A linear layer's weight shape: `n` outputs, `k` inputs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WeightShape {
    pub label: String,
    pub n: u64,
    pub k: u64,
}

pub const QUICK_MODELS: [&str; 2] = ["llama-3.2-3b", "llama-3.1-8b"];
pub const FULL_MODELS: [&str; 4] = [
    "llama-3.2-3b",
    "llama-3.1-8b",
    "qwen2.5-7b",
    "llama-3.1-70b",
];

/// The four dense linear layers of `model`.
pub fn weight_shapes(model: &Model) -> Vec<WeightShape> {
    let d = model.hidden_size;
    let hd = model.head_dim;
    let q = model.attention_heads * hd;
    let kv = model.kv_heads * hd;
    let shape = |what: &str, n: u64, k: u64| WeightShape {
        label: format!("{} {what}", model.id),
        n,
        k,
    };
    vec![
        shape("qkv", q + 2 * kv, d),
        shape("o", d, q),
        shape("gate_up", 2 * model.ffn_hidden, d),
        shape("down", d, model.ffn_hidden),
    ]
}

/// The LM head of `model`: vocabulary x hidden.
pub fn lm_head_shape(model: &Model) -> WeightShape {
    WeightShape {
        label: format!("{} lm_head", model.id),
        n: model.vocab_size,
        k: model.hidden_size,
    }
}

/// Reads `models/<id>.toml` from the catalog root.
pub fn load_model(catalog: &Path, id: &str) -> Result<Model> {
    let path = catalog.join("models").join(format!("{id}.toml"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read model {}", path.display()))?;
    Ok(Model::from_toml(id, &path.display().to_string(), &text)?)
}

/// The catalog root ([`planner::catalog_root`]), with the workspace checkout this
/// binary was built from as the last resort.
pub fn catalog_root(flag: Option<&Path>) -> std::path::PathBuf {
    planner::catalog_root(flag, &Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

pub struct Plan {
    /// Kernels to run (all when empty).
    pub kernels: Vec<Kernel>,
    /// GEMM shapes (the models' linear layers).
    pub shapes: Vec<WeightShape>,
    /// GEMV shapes: the linear layers and the LM heads.
    pub gemv_shapes: Vec<WeightShape>,
    pub rows: Vec<u64>,
    pub stream_bytes: Vec<u64>,
    pub dispatch_chains: Vec<u64>,
    pub quick: bool,
    /// Passes over the whole plan; each row's samples come from all of them. Quick:
    /// 9 (a pass takes about 6 s on the development VM once the CPU backend keeps
    /// its operands, [`crate::backend::cpu`]; it took 13-19 s when it made them for
    /// every row, and the suite then ran 5); full: 5, of two samples each.
    pub passes: usize,
}

impl Plan {
    pub fn new(models: &[Model], quick: bool, max_stream_bytes: u64) -> Plan {
        let add = |list: &mut Vec<WeightShape>, s: WeightShape| {
            if !list.iter().any(|t| t.n == s.n && t.k == s.k) {
                list.push(s);
            }
        };
        let mut shapes: Vec<WeightShape> = Vec::new();
        for model in models {
            for s in weight_shapes(model) {
                add(&mut shapes, s);
            }
        }
        let mut gemv_shapes = shapes.clone();
        for model in models {
            add(&mut gemv_shapes, lm_head_shape(model));
        }
        let rows = if quick {
            vec![1, 8, 32, 128, 512, 2048]
        } else {
            (0..=13).map(|e| 1u64 << e).collect()
        };
        let mut stream_bytes = Vec::new();
        let mut b: u64 = 1 << 20;
        while b <= max_stream_bytes {
            stream_bytes.push(b);
            b *= 2;
        }
        Plan {
            kernels: Vec::new(),
            shapes,
            gemv_shapes,
            rows,
            stream_bytes,
            dispatch_chains: vec![1, 4, 16, 64, 256, 1024],
            quick,
            passes: if quick { 9 } else { 5 },
        }
    }
}

/// One timed kernel and shape: what becomes a CSV row once every pass has run.
struct Measured {
    /// Position in the plan's fixed order (the same in every pass).
    index: usize,
    kernel: Kernel,
    dtype: Option<ComputeDtype>,
    shape: [u64; 3],
    bytes: f64,
    flops: f64,
    label: String,
    samples: Vec<f64>,
}

/// Runs the plan in `plan.passes` passes, each timing every kernel and shape, and
/// gives each row the samples of all passes, printing progress to stderr.
///
/// Why passes: on a shared machine the host's state drifts over the run (the
/// development VM's memory bandwidth moved between 35 and 72 GB/s within minutes).
/// Timed back to back, a row's repetitions all see one state and rows measured a
/// minute apart see different ones, which a fit reads as a difference between
/// shapes. Spread over the run, every row samples the same states, so the median
/// and the minimum of each row describe the same machine.
pub fn run(backend: &mut dyn Backend, plan: &Plan) -> Result<Vec<MicrobenchRow>> {
    let policy = Policy::per_pass(plan.quick);
    let name = backend.backend();
    let device = backend.device();
    eprintln!(
        "planner-harness: {name} backend, device `{device}`, {} passes",
        plan.passes
    );
    let mut measured: Vec<Measured> = Vec::new();
    for pass in 0..plan.passes {
        let start = std::time::Instant::now();
        let this = run_pass(backend, plan, &policy, None)?;
        if pass == 0 {
            measured = this;
        } else {
            for t in this {
                measured[t.index].samples.extend(t.samples);
            }
        }
        eprintln!(
            "  pass {}/{} took {:.1} s",
            pass + 1,
            plan.passes,
            start.elapsed().as_secs_f64()
        );
    }
    // Rows whose passes disagree get as many passes again, of those rows only.
    let unsettled: BTreeSet<usize> = measured
        .iter()
        .filter(|m| unsettled(&m.samples))
        .map(|m| m.index)
        .collect();
    if !unsettled.is_empty() {
        let start = std::time::Instant::now();
        for _ in 0..plan.passes {
            for t in run_pass(backend, plan, &policy, Some(&unsettled))? {
                measured[t.index].samples.extend(t.samples);
            }
        }
        eprintln!(
            "  {} of {} rows had a median over {UNSETTLED_SPREAD} x their fastest pass: {} more \
             passes of those took {:.1} s",
            unsettled.len(),
            measured.len(),
            plan.passes,
            start.elapsed().as_secs_f64()
        );
    }
    let mut rows = Vec::new();
    if let Some(bytes) = backend.memory_capacity_bytes() {
        rows.push(MicrobenchRow::memory_capacity(name, &device, bytes));
    }
    for m in measured {
        let row = MicrobenchRow::timed(
            name, &device, m.kernel, m.dtype, m.shape, m.bytes, m.flops, &m.samples,
        );
        match m.kernel {
            Kernel::Dispatch => eprintln!(
                "  dispatch x{:<5} {:>10.2} us each",
                m.shape[0],
                row.median_s / m.shape[0] as f64 * 1e6
            ),
            Kernel::Gemm => eprintln!(
                "  gemm {} {:<22} m={:<5} {:>8.3} TFLOPS {:>8.2} GB/s",
                m.dtype.map_or("-", |d| d.name()),
                m.label,
                m.shape[0],
                row.tflops,
                row.gb_s
            ),
            Kernel::Gemv => eprintln!("  gemv fp32 {:<22} {:>8.2} GB/s", m.label, row.gb_s),
            _ => eprintln!(
                "  {:<6} {:>10.1} MB {:>9.2} GB/s",
                m.kernel.name(),
                row.bytes / 1e6,
                row.gb_s
            ),
        }
        rows.push(row);
    }
    Ok(rows)
}

fn unsettled(samples: &[f64]) -> bool {
    let (median, min) = median_min(samples);
    microbench::unsettled(microbench::spread(median, min))
}

/// Times every kernel and shape of the plan once (with `policy`'s repetitions), in a
/// fixed order; with `only`, just the rows at those positions of that order.
///
/// Why more passes for unsettled rows: a host disturbance that lasts several passes
/// can hold one shape's median (fp32, m = 8, 4096 x 14336: 42.2 ms median, 28.2 ms
/// fastest, 28.5-29.7 ms medians in three other runs), and the calibration then reads
/// it as the shape's cost. Doubling the samples of such rows lets the undisturbed
/// passes decide the median where they are the majority, and changes nothing where
/// the slow state is the machine's usual one.
fn run_pass(
    backend: &mut dyn Backend,
    plan: &Plan,
    policy: &Policy,
    only: Option<&BTreeSet<usize>>,
) -> Result<Vec<Measured>> {
    let wanted = |k: Kernel| plan.kernels.is_empty() || plan.kernels.contains(&k);
    let mut position = 0usize;
    // The next row's position, where this pass times it.
    let mut next = || {
        let index = position;
        position += 1;
        only.is_none_or(|set| set.contains(&index)).then_some(index)
    };
    let mut out = Vec::new();
    for kernel in [Kernel::Read, Kernel::Copy, Kernel::Triad] {
        if !wanted(kernel) {
            continue;
        }
        // Largest first, so buffers are allocated once.
        for &bytes in plan.stream_bytes.iter().rev() {
            let Some(index) = next() else {
                continue;
            };
            let timed = backend.stream(kernel, bytes, policy)?;
            out.push(Measured {
                index,
                kernel,
                dtype: Some(ComputeDtype::Fp32),
                shape: [(timed.bytes / 4.0) as u64, 0, 0],
                bytes: timed.bytes,
                flops: 0.0,
                label: String::new(),
                samples: timed.samples_s,
            });
        }
    }
    for &launches in plan
        .dispatch_chains
        .iter()
        .filter(|_| wanted(Kernel::Dispatch))
    {
        let Some(index) = next() else {
            continue;
        };
        out.push(Measured {
            index,
            kernel: Kernel::Dispatch,
            dtype: None,
            shape: [launches, 0, 0],
            bytes: 0.0,
            flops: 0.0,
            label: String::new(),
            samples: backend.dispatch(launches, policy)?,
        });
    }
    let max_flops = backend.max_gemm_flops(plan.quick);
    for dtype in backend
        .gemm_dtypes()
        .into_iter()
        .filter(|_| wanted(Kernel::Gemm))
    {
        let bpe = element_bytes(dtype);
        for shape in &plan.shapes {
            for &m in &plan.rows {
                let flops = 2.0 * (m * shape.n * shape.k) as f64;
                if flops > max_flops {
                    continue;
                }
                let Some(index) = next() else {
                    continue;
                };
                out.push(Measured {
                    index,
                    kernel: Kernel::Gemm,
                    dtype: Some(dtype),
                    shape: [m, shape.n, shape.k],
                    bytes: bpe * (m * shape.k + shape.n * shape.k + m * shape.n) as f64,
                    flops,
                    label: shape.label.clone(),
                    samples: backend.gemm(dtype, m, shape.n, shape.k, policy)?,
                });
            }
        }
    }
    for shape in plan.gemv_shapes.iter().filter(|_| wanted(Kernel::Gemv)) {
        let dtype = ComputeDtype::Fp32;
        let Some(index) = next() else {
            continue;
        };
        out.push(Measured {
            index,
            kernel: Kernel::Gemv,
            dtype: Some(dtype),
            shape: [1, shape.n, shape.k],
            bytes: 4.0 * (shape.k + shape.n * shape.k + shape.n) as f64,
            flops: 2.0 * (shape.n * shape.k) as f64,
            label: shape.label.clone(),
            samples: backend.gemv(dtype, shape.n, shape.k, policy)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Timed;

    /// A backend whose every kernel takes 1 s, except the GEMM with `m = 8`, which is
    /// disturbed (3 s) on its first three calls.
    struct Disturbed {
        slow_calls_left: usize,
    }

    impl Backend for Disturbed {
        fn backend(&self) -> &'static str {
            "cpu"
        }
        fn device(&self) -> String {
            "fake".to_string()
        }
        fn gemm_dtypes(&self) -> Vec<ComputeDtype> {
            vec![ComputeDtype::Fp32]
        }
        fn memory_capacity_bytes(&self) -> Option<f64> {
            None
        }
        fn max_stream_bytes(&self, _: bool) -> u64 {
            1 << 20
        }
        fn max_gemm_flops(&self, _: bool) -> f64 {
            f64::INFINITY
        }
        fn gemm(
            &mut self,
            _: ComputeDtype,
            m: u64,
            _: u64,
            _: u64,
            _: &Policy,
        ) -> Result<Vec<f64>> {
            if m == 8 && self.slow_calls_left > 0 {
                self.slow_calls_left -= 1;
                return Ok(vec![3.0]);
            }
            Ok(vec![1.0])
        }
        fn gemv(&mut self, _: ComputeDtype, _: u64, _: u64, _: &Policy) -> Result<Vec<f64>> {
            Ok(vec![1.0])
        }
        fn stream(&mut self, _: Kernel, bytes: u64, _: &Policy) -> Result<Timed> {
            Ok(Timed {
                samples_s: vec![1.0],
                bytes: bytes as f64,
            })
        }
        fn dispatch(&mut self, _: u64, _: &Policy) -> Result<Vec<f64>> {
            Ok(vec![1.0])
        }
    }

    #[test]
    fn rows_whose_passes_disagree_get_more_passes() {
        let shape = WeightShape {
            label: "w".to_string(),
            n: 4,
            k: 4,
        };
        let plan = Plan {
            kernels: vec![Kernel::Read, Kernel::Gemm],
            shapes: vec![shape],
            gemv_shapes: Vec::new(),
            rows: vec![1, 8],
            stream_bytes: vec![1 << 20],
            dispatch_chains: Vec::new(),
            quick: true,
            passes: 5,
        };
        let rows = run(&mut Disturbed { slow_calls_left: 3 }, &plan).unwrap();
        let row = |kernel: Kernel, m: u64| {
            rows.iter()
                .find(|r| r.kernel == kernel && (kernel != Kernel::Gemm || r.m == m))
                .unwrap()
        };
        // Five passes: the m = 8 GEMM has 3 s, 3 s, 3 s, 1 s, 1 s (median 3 s, 3 x its
        // fastest), so it gets five more passes, all 1 s: median of ten is 1 s.
        let disturbed = row(Kernel::Gemm, 8);
        assert_eq!(disturbed.repetitions, 10);
        assert_eq!((disturbed.median_s, disturbed.min_s), (1.0, 1.0));
        // The settled rows keep their five samples.
        assert_eq!(row(Kernel::Gemm, 1).repetitions, 5);
        assert_eq!(row(Kernel::Read, 0).repetitions, 5);
    }

    #[test]
    fn llama_3_2_3b_weight_shapes() {
        // hidden 3072, 24 heads, 8 KV heads of 128, ffn 8192:
        // qkv n = (24 + 16) x 128 = 5120; o 3072 x 3072; gate_up 16384 x 3072;
        // down 3072 x 8192.
        let root = catalog_root(None);
        let model = load_model(&root, "llama-3.2-3b").unwrap();
        let shapes: Vec<(u64, u64)> = weight_shapes(&model).iter().map(|s| (s.n, s.k)).collect();
        assert_eq!(
            shapes,
            vec![(5120, 3072), (3072, 3072), (16384, 3072), (3072, 8192)]
        );
    }

    #[test]
    fn lm_heads_are_gemv_shapes_only() {
        // llama-3.2-3b: vocabulary 128256 x hidden 3072.
        let root = catalog_root(None);
        let model = load_model(&root, "llama-3.2-3b").unwrap();
        let plan = Plan::new(std::slice::from_ref(&model), true, 1 << 20);
        assert_eq!(plan.shapes.len(), 4);
        assert_eq!(plan.gemv_shapes.len(), 5);
        let head = plan.gemv_shapes.last().unwrap();
        assert_eq!((head.n, head.k), (128256, 3072));
    }

    #[test]
    fn plan_sizes_double_from_one_mib() {
        // 1 MiB .. 1 GiB doubling: 2^20 .. 2^30 is 11 sizes.
        let plan = Plan::new(&[], true, 1 << 30);
        assert_eq!(plan.stream_bytes.len(), 11);
        assert_eq!(plan.stream_bytes[10], 1 << 30);
    }
}
