//! Calibration: fitting a device's achievable limits, and a link's latency and
//! bandwidth, to the microbenchmark rows `planner-harness` writes
//! ([`crate::microbench`]).
//!
//! Each model is the one the analytical model ([`crate::analytical::timing`]) uses,
//! written as a time so that it is linear in its coefficients ([`lsq`]):
//!
//! - **memory** (`read` rows): `t = a + (bytes / B) (1 - d log2(S / bytes))`, where
//!   `S` is the largest read fitted. `B` is the achievable bandwidth of a transfer of
//!   `S` bytes, `a B` the transfer size at which a read reaches half of it
//!   (`bandwidth_half_mb`: the device file's curve `B bytes / (bytes + half)` is the
//!   same law), and `d` how much of the time per byte each halving of the size saves
//!   (`[efficiency.bandwidth_by_size]`, over the sizes fitted). Linear in `a`, `1/B`
//!   and `d/B`. Why the third term: on the development VM the read rate rises to 42
//!   GB/s by 2.5 MB and then falls slowly with the buffer's size (37 GB/s at 67-160 MB,
//!   35 at 1 GB), which the two-term law cannot follow: it missed the held-out 8.4 MB
//!   read by +3 to +15% in four runs on a quiet host, and the third term put both
//!   held-out reads within 7% in each (README, calibration). With fewer than six
//!   reads, or where the fitted `d` would make the time per byte non-positive at the
//!   smallest size, the two-term law `t = a + bytes / B` is fitted instead.
//! - **compute** (`gemm` rows with two or more rows `m`, per data type): the
//!   planner's roofline `max(flops (m + h) / (P m), memory time)` with the memory
//!   side from the fit above; `P` and `h` by non-linear least squares ([`roofline`]).
//!   The primary data type's `h` (fp32 on a CPU, fp16 on a GPU) is the profile's
//!   `compute_half_rows`, the others' go to `compute_half_rows_by_dtype` (the `gemm`
//!   crate widens fp16 to fp32 while packing, so its per-weight cost, the `h` term,
//!   differs). With `--base`, the base's spec peaks stay and each type's `P` becomes
//!   a fraction of its own peak: the primary's `compute_fraction`, the others'
//!   `compute_fraction_by_dtype`. Every row counts, memory-bound ones included, so
//!   the fitted curve is the one that best predicts the measured times through the
//!   planner's own formula.
//! - **matrix-vector** (`gemv` rows): a one-token product is not a GEMM. Engines run
//!   it as a matrix-vector kernel (the planner's `matvec_max_rows` regime), which
//!   streams the weights at its own rate: `t = read(bytes) / f + n c` with the read
//!   law above, `n` the output elements (rows of the weight matrix), and `f`
//!   (`matvec_bandwidth_fraction`) and `c` (`matvec_output_ns`) by least squares.
//!   The `n c` term: a dot-product kernel streams long rows faster than short ones
//!   (on the development VM, `k` = 8192 and 14336 at 31-33 GB/s, `k` = 3072 and 4096
//!   at 28.5-30.5), so each output row costs something beyond its bytes (its
//!   horizontal sum and store). Without it the `4096 x 14336` product was predicted
//!   8-13% slow in four runs. Where `c` fits at or below zero it is dropped (`f`
//!   alone).
//!   Why not one law for both: on the development machine (2-vCPU EPYC) a GEMM's
//!   time is `flops / P + 2 n k h / P` with `h` about 45 rows (the `gemm` crate packs
//!   the whole weight matrix on every call, a cost per weight, which is exactly what
//!   the `h` term is), so a GEMM at `m = 8` runs at 3% of `P`, while the gemv kernel
//!   streams the same weights at 80% of the read bandwidth. A single `P, h` through
//!   both kinds of rows (what this module did first) fitted neither: `h` 12, one-row
//!   products predicted 22-37% slow and 8-row GEMMs 50% fast. The `gemm` rows at
//!   `m = 1` are the GEMM library's own one-row path, a third kernel (its rate falls
//!   from 30 to 18 GB/s as `k` grows past 4096); they are fitted by neither law and
//!   reported beside the held-out rows, predicted as matrix-vector products.
//! - **dispatch** (`dispatch` rows): `t = a + launches x d`; `d` is the per-kernel cost.
//! - **link** (`tcp_pingpong` rows): one-way time `rtt / 2 = latency + bytes /
//!   bandwidth` (alpha-beta); `tcp_stream` rows give the streaming bandwidth the same
//!   way.
//!
//! Held-out shapes: the `read` rows, and the `gemm` + `gemv` rows of each data type,
//! are sorted by shape and every fourth (the 4th, 8th, ...) is kept out of the fits;
//! they are then predicted with the fitted profile through the planner's own timing
//! code, so the reported errors are the planner's.

pub mod lsq;
pub mod profile;
pub mod roofline;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analytical::ops::{Op, OpKind};
use crate::analytical::timing::Executor;
use crate::formats::WeightFormat;
use crate::hardware::{BandwidthBySize, ComputeDtype, Device};
use crate::microbench::{Kernel, MicrobenchRow};
use crate::runtime::{MlaPrefill, RuntimeEfficiency};

use self::lsq::{affine_relative, LinearFit};
use self::roofline::{fit_roofline, GemmPoint};

/// Why a calibration cannot be made from the rows given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    #[error("no {0} rows in the input")]
    NoRows(&'static str),
    #[error("rows from more than one device: {0}; calibrate one device at a time")]
    MixedDevices(String),
    #[error("too few points to fit {what}: {have} usable, need at least {need}")]
    TooFewPoints {
        what: String,
        have: usize,
        need: usize,
    },
    #[error("the fit of {0} is degenerate (a singular design or a non-positive rate)")]
    Degenerate(String),
    #[error("{0}")]
    Profile(String),
}

/// One fitted parameter, as `planner calibrate --format json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub parameter: String,
    pub value: f64,
    pub std_error: f64,
    pub r_squared: f64,
    pub n_points: usize,
}

/// `t = fixed_s + x / rate`: a fixed cost and a rate (bytes/s, or launches/s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AffineFit {
    pub fixed_s: f64,
    pub fixed_s_std_error: f64,
    /// Units of `x` per second.
    pub rate: f64,
    pub rate_std_error: f64,
    /// `fixed_s x rate`: the `x` at which half the rate is reached.
    pub half_x: f64,
    pub half_x_std_error: f64,
    pub r_squared: f64,
    pub n_points: usize,
    pub relative_sd: f64,
}

impl AffineFit {
    fn from_linear(fit: &LinearFit, what: &str) -> Result<AffineFit, CalibrateError> {
        let (a, b) = (fit.coefficients[0], fit.coefficients[1]);
        if b.is_nan() || b <= 0.0 {
            return Err(CalibrateError::Degenerate(what.to_string()));
        }
        // rate = 1/b: d/db = -1/b^2. half = a/b: d/da = 1/b, d/db = -a/b^2.
        Ok(AffineFit {
            fixed_s: a,
            fixed_s_std_error: fit.std_error(0),
            rate: 1.0 / b,
            rate_std_error: fit.std_error_of(&[0.0, -1.0 / (b * b)]),
            half_x: a / b,
            half_x_std_error: fit.std_error_of(&[1.0 / b, -a / (b * b)]),
            r_squared: fit.r_squared,
            n_points: fit.n_points,
            relative_sd: fit.relative_residual_sd,
        })
    }

    /// The time the fit predicts for `x`.
    pub fn time(&self, x: f64) -> f64 {
        self.fixed_s + x / self.rate
    }
}

/// The read law: `t = a + (bytes / B) x factor(bytes)`, the factor from the size term
/// where one was fitted (else 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReadFit {
    /// `a` (`fixed_s`), `B` (`rate`, at the largest size fitted when there is a size
    /// term), `a B` (`half_x`) and the fit's statistics.
    pub law: AffineFit,
    pub by_size: Option<SizeTerm>,
}

/// The fitted size term of the read law.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SizeTerm {
    pub law: BandwidthBySize,
    pub decline_std_error: f64,
}

impl ReadFit {
    /// The time the read law predicts for `bytes`.
    pub fn time(&self, bytes: f64) -> f64 {
        let factor = self
            .by_size
            .map_or(1.0, |t| t.law.time_per_byte_factor(bytes));
        self.law.time(bytes * factor)
    }
}

/// Achievable compute of one data type: `P m / (m + h)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ComputeFit {
    pub dtype: ComputeDtype,
    pub tflops: f64,
    pub tflops_std_error: f64,
    pub half_rows: f64,
    pub half_rows_std_error: f64,
    pub r_squared: f64,
    pub n_points: usize,
    pub relative_sd: f64,
}

/// Matrix-vector weight streaming: `t = read(bytes) / fraction + outputs x output_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MatvecFit {
    /// Fraction of the read bandwidth, as fitted (may exceed 1; the profile clamps).
    pub fraction: f64,
    pub fraction_std_error: f64,
    /// Seconds per output element (0 when it fitted at or below zero and was dropped).
    pub output_s: f64,
    pub output_s_std_error: f64,
    pub r_squared: f64,
    pub n_points: usize,
    pub relative_sd: f64,
}

/// Everything fitted for one device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceFits {
    pub backend: String,
    pub device: String,
    /// The data type whose fit sets `compute_half_rows` (and, with a base device,
    /// `compute_fraction`).
    pub primary_dtype: ComputeDtype,
    /// The time of each row fitted, and measured for the held-out rows.
    pub statistic: Statistic,
    /// From `read` rows: the bandwidth the device profile uses.
    pub bandwidth: ReadFit,
    /// `copy` and `triad`, reported for comparison (writes cost more than reads).
    pub other_bandwidth: Vec<(Kernel, AffineFit)>,
    pub compute: Vec<ComputeFit>,
    /// From `gemv` rows, when there are enough.
    pub matvec: Option<MatvecFit>,
    pub dispatch: Option<AffineFit>,
    pub memory_capacity_bytes: Option<f64>,
    /// Rows kept out of the fits, predicted afterwards.
    pub held_out: Vec<MicrobenchRow>,
    /// `gemm` rows with one row (the GEMM library's one-row path): in no fit,
    /// predicted as matrix-vector products for comparison.
    pub one_row_gemm: Vec<MicrobenchRow>,
    /// Things the user should know (a data type skipped, a value clamped).
    pub notes: Vec<String>,
}

/// A link's alpha-beta fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkFits {
    pub device: String,
    /// One-way time of a ping-pong message: `fixed_s` is the latency.
    pub pingpong: AffineFit,
    pub stream: Option<AffineFit>,
}

impl LinkFits {
    /// Bandwidth the link profile uses: the streaming fit when there is one.
    pub fn bandwidth(&self) -> &AffineFit {
        self.stream.as_ref().unwrap_or(&self.pingpong)
    }

    /// Whether both ends of the probe (`LOCAL -> PEER`, as the probe names its rows)
    /// were loopback addresses: then the "link" is a copy between two processes.
    pub fn is_loopback(&self) -> bool {
        crate::microbench::link_ends(&self.device)
            .is_some_and(|(local, peer)| local.ip().is_loopback() && peer.ip().is_loopback())
    }
}

/// R squared below which `planner calibrate` says that a fit follows its points only
/// roughly (the harness's acceptance threshold for its bandwidth and alpha-beta fits).
pub const ROUGH_FIT_R_SQUARED: f64 = 0.95;

/// A note for each fit whose R squared is below [`ROUGH_FIT_R_SQUARED`]; parameters
/// of one regression (listed next to each other, with the same R squared and point
/// count) share one note.
pub fn rough_fit_notes(fits: &[Fit]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut start = 0;
    while start < fits.len() {
        let first = &fits[start];
        let end = start
            + fits[start..]
                .iter()
                .take_while(|f| f.r_squared == first.r_squared && f.n_points == first.n_points)
                .count();
        if first.r_squared < ROUGH_FIT_R_SQUARED {
            let names: Vec<&str> = fits[start..end]
                .iter()
                .map(|f| f.parameter.as_str())
                .collect();
            notes.push(format!(
                "{}: R squared {:.3} over {} points, below {ROUGH_FIT_R_SQUARED}: the model's \
                 curve does not follow these measurements closely, so the fitted value \
                 describes them only roughly",
                names.join(", "),
                first.r_squared,
                first.n_points
            ));
        }
        start = end;
    }
    notes
}

/// What a loopback probe measures, for the notes.
pub const LOOPBACK_NOTE: &str = "both ends of the probe are loopback addresses: the \
     \"link\" is a memory copy between two processes on one machine, which does not follow \
     latency + bytes / bandwidth (README, Network probe); probe between two machines for a \
     link profile";

/// Which of a row's two times the fits use (`planner calibrate --statistic`; the
/// variants' comments are that option's help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The median repetition: typical time, including interference.
    Median,
    /// The fastest repetition: the machine undisturbed (for shared machines).
    Min,
}

impl Statistic {
    /// The row's time under this statistic.
    pub fn time_s(self, row: &MicrobenchRow) -> f64 {
        match self {
            Statistic::Median => row.median_s,
            Statistic::Min => row.min_s,
        }
    }

    /// Whether the row has a positive time under this statistic, which every fit needs.
    pub fn timed(self, row: &MicrobenchRow) -> bool {
        self.time_s(row) > 0.0
    }

    /// The CSV column of that time.
    pub fn column(self) -> &'static str {
        match self {
            Statistic::Median => "median_s",
            Statistic::Min => "min_s",
        }
    }
}

/// A held-out row and the planner's prediction for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOut {
    pub kernel: Kernel,
    pub dtype: Option<ComputeDtype>,
    pub m: u64,
    pub n: u64,
    pub k: u64,
    pub bytes: f64,
    pub measured_s: f64,
    pub predicted_s: f64,
    /// `(predicted - measured) / measured`.
    pub relative_error: f64,
    /// The row's median over its fastest sample: above
    /// [`crate::microbench::UNSETTLED_SPREAD`] the host disturbed the measurement.
    pub spread: f64,
}

/// Splits rows sorted by shape into (fit, held out): every fourth is held out.
pub fn split_held_out(rows: &[&MicrobenchRow]) -> (Vec<MicrobenchRow>, Vec<MicrobenchRow>) {
    let mut sorted: Vec<MicrobenchRow> = rows.iter().map(|r| (*r).clone()).collect();
    sorted.sort_by(|a, b| {
        (a.m, a.n, a.k)
            .cmp(&(b.m, b.n, b.k))
            .then(a.bytes.total_cmp(&b.bytes))
    });
    let mut fit = Vec::new();
    let mut held = Vec::new();
    for (i, row) in sorted.into_iter().enumerate() {
        if i % 4 == 3 {
            held.push(row);
        } else {
            fit.push(row);
        }
    }
    (fit, held)
}

fn affine_of(
    rows: &[MicrobenchRow],
    x: impl Fn(&MicrobenchRow) -> f64,
    y: impl Fn(&MicrobenchRow) -> f64,
    what: &str,
) -> Result<AffineFit, CalibrateError> {
    let usable: Vec<&MicrobenchRow> = rows.iter().filter(|r| y(r) > 0.0).collect();
    if usable.len() < 3 {
        return Err(CalibrateError::TooFewPoints {
            what: what.to_string(),
            have: usable.len(),
            need: 3,
        });
    }
    let xs: Vec<f64> = usable.iter().map(|r| x(r)).collect();
    let ys: Vec<f64> = usable.iter().map(|r| y(r)).collect();
    let fit =
        affine_relative(&xs, &ys).ok_or_else(|| CalibrateError::Degenerate(what.to_string()))?;
    AffineFit::from_linear(&fit, what)
}

/// The primary data type when the caller names none: fp32 on a CPU (its GEMMs and
/// decode engine are fp32), fp16 on a GPU.
pub fn default_primary_dtype(backend: &str) -> ComputeDtype {
    match backend {
        "cpu" => ComputeDtype::Fp32,
        _ => ComputeDtype::Fp16,
    }
}

/// Fits a device from its rows (network rows are ignored here). `primary`: the data
/// type whose GEMMs fit `compute_half_rows` (default [`default_primary_dtype`]; the
/// first fitted type when the rows have none of it).
pub fn fit_device(
    rows: &[MicrobenchRow],
    primary: Option<ComputeDtype>,
    statistic: Statistic,
) -> Result<DeviceFits, CalibrateError> {
    let time = |r: &MicrobenchRow| statistic.time_s(r);
    let timed = |r: &MicrobenchRow| statistic.timed(r);
    let device_rows: Vec<&MicrobenchRow> = rows.iter().filter(|r| !r.kernel.is_network()).collect();
    let first = device_rows
        .first()
        .ok_or(CalibrateError::NoRows("device"))?;
    let mut devices: Vec<String> = device_rows
        .iter()
        .map(|r| format!("{} `{}`", r.backend, r.device))
        .collect();
    devices.sort();
    devices.dedup();
    if devices.len() > 1 {
        return Err(CalibrateError::MixedDevices(devices.join(", ")));
    }
    let of = |kernel: Kernel| -> Vec<&MicrobenchRow> {
        device_rows
            .iter()
            .copied()
            .filter(|r| r.kernel == kernel && timed(r))
            .collect()
    };
    let mut notes = Vec::new();
    // Say how many rows were left out for want of a positive time.
    let untimed = device_rows
        .iter()
        .filter(|r| r.kernel != Kernel::MemoryCapacity && !timed(r))
        .count();
    if untimed > 0 {
        notes.push(format!(
            "{untimed} row(s) without a positive {} left out of every fit",
            statistic.column()
        ));
    }
    let mut held_out = Vec::new();

    let reads = of(Kernel::Read);
    if reads.is_empty() {
        return Err(CalibrateError::NoRows("`read` (memory bandwidth)"));
    }
    let (read_fit_rows, read_held) = split_held_out(&reads);
    held_out.extend(read_held);
    let bandwidth = fit_read(&read_fit_rows, statistic, &mut notes)?;

    let mut other_bandwidth = Vec::new();
    for kernel in [Kernel::Copy, Kernel::Triad] {
        let rows: Vec<MicrobenchRow> = of(kernel).into_iter().cloned().collect();
        if rows.is_empty() {
            continue;
        }
        match affine_of(&rows, |r| r.bytes, time, kernel.name()) {
            Ok(fit) => other_bandwidth.push((kernel, fit)),
            Err(e) => notes.push(format!("{} bandwidth not fitted: {e}", kernel.name())),
        }
    }

    // GEMM rows of two or more rows, per data type; one-row GEMMs aside.
    let mut by_dtype: BTreeMap<ComputeDtype, Vec<&MicrobenchRow>> = BTreeMap::new();
    let mut one_row_gemm = Vec::new();
    for row in of(Kernel::Gemm) {
        match row.dtype {
            Some(_) if row.m <= 1 => one_row_gemm.push(row.clone()),
            Some(dtype) => by_dtype.entry(dtype).or_default().push(row),
            None => notes.push("a gemm row without a dtype was ignored".to_string()),
        }
    }
    let memory_time = |bytes: f64| bandwidth.time(bytes);
    let points_of = |rows: &[MicrobenchRow]| -> Vec<GemmPoint> {
        rows.iter()
            .map(|r| GemmPoint {
                flops: r.flops,
                rows: r.m.max(1) as f64,
                bytes: r.bytes,
                time_s: time(r),
            })
            .collect()
    };
    let mut split: BTreeMap<ComputeDtype, Vec<GemmPoint>> = BTreeMap::new();
    for (dtype, rows) in &by_dtype {
        let (fit_rows, held) = split_held_out(rows);
        held_out.extend(held);
        split.insert(*dtype, points_of(&fit_rows));
    }
    let primary_dtype = primary.unwrap_or_else(|| default_primary_dtype(&first.backend));
    let primary_dtype = if split.contains_key(&primary_dtype) {
        primary_dtype
    } else {
        split.keys().next().copied().unwrap_or(primary_dtype)
    };
    let mut compute = Vec::new();
    for (dtype, points) in &split {
        let Some(fit) = fit_roofline(points, &memory_time) else {
            notes.push(format!(
                "{dtype}: too few GEMM rows ({}) for a compute fit",
                points.len()
            ));
            continue;
        };
        if fit.compute_bound_points < 2 {
            notes.push(format!(
                "{dtype}: only {} of {} GEMM rows are compute-bound under the fit; the peak \
                 is poorly determined",
                fit.compute_bound_points, fit.n_points
            ));
        }
        compute.push(ComputeFit {
            dtype: *dtype,
            tflops: fit.peak / 1e12,
            tflops_std_error: fit.peak_std_error / 1e12,
            half_rows: fit.half_rows,
            half_rows_std_error: fit.half_rows_std_error,
            r_squared: fit.r_squared,
            n_points: fit.n_points,
            relative_sd: fit.relative_sd,
        });
    }

    let gemvs = of(Kernel::Gemv);
    let (gemv_fit_rows, gemv_held) = split_held_out(&gemvs);
    held_out.extend(gemv_held);
    let matvec = if gemvs.is_empty() {
        None
    } else {
        match fit_matvec(&gemv_fit_rows, &bandwidth, statistic) {
            Ok(fit) => Some(fit),
            Err(e) => {
                notes.push(format!("matrix-vector bandwidth not fitted: {e}"));
                None
            }
        }
    };

    let dispatch_rows: Vec<MicrobenchRow> = of(Kernel::Dispatch).into_iter().cloned().collect();
    let dispatch = if dispatch_rows.is_empty() {
        None
    } else {
        Some(affine_of(
            &dispatch_rows,
            |r| r.m as f64,
            time,
            "dispatch overhead",
        )?)
    };
    let memory_capacity_bytes = device_rows
        .iter()
        .find(|r| r.kernel == Kernel::MemoryCapacity && r.bytes > 0.0)
        .map(|r| r.bytes);

    Ok(DeviceFits {
        backend: first.backend.clone(),
        device: first.device.clone(),
        primary_dtype,
        statistic,
        bandwidth,
        other_bandwidth,
        compute,
        matvec,
        dispatch,
        memory_capacity_bytes,
        held_out,
        one_row_gemm,
        notes,
    })
}

/// Fewest reads for the three-term law: three coefficients and at least three degrees
/// of freedom left for their errors.
const MIN_READS_FOR_SIZE_TERM: usize = 6;

/// Fits the read law (module docs): three terms where there are enough reads and the
/// size term keeps the time per byte positive, else `t = a + bytes / B`.
fn fit_read(
    rows: &[MicrobenchRow],
    statistic: Statistic,
    notes: &mut Vec<String>,
) -> Result<ReadFit, CalibrateError> {
    let what = "memory bandwidth (read)";
    let time = |r: &MicrobenchRow| statistic.time_s(r);
    let two_term =
        || affine_of(rows, |r| r.bytes, time, what).map(|law| ReadFit { law, by_size: None });
    let usable: Vec<&MicrobenchRow> = rows
        .iter()
        .filter(|r| statistic.timed(r) && r.bytes > 0.0)
        .collect();
    let from = usable.iter().map(|r| r.bytes).fold(f64::INFINITY, f64::min);
    let to = usable.iter().map(|r| r.bytes).fold(0.0, f64::max);
    if usable.len() < MIN_READS_FOR_SIZE_TERM || to <= from {
        return two_term();
    }
    let x: Vec<Vec<f64>> = usable
        .iter()
        .map(|r| vec![1.0, r.bytes, r.bytes * (to / r.bytes).log2()])
        .collect();
    let y: Vec<f64> = usable.iter().map(|r| time(r)).collect();
    let fit = lsq::relative_least_squares(&x, &y)
        .ok_or_else(|| CalibrateError::Degenerate(what.to_string()))?;
    let law = AffineFit::from_linear(&fit, what)?;
    // t = a + b bytes + c bytes log2(S / bytes) = a + (bytes / B)(1 - d log2(S / bytes))
    // with B = 1/b and d = -c/b: d/db = c/b^2, d/dc = -1/b.
    let (b, c) = (fit.coefficients[1], fit.coefficients[2]);
    let by_size = BandwidthBySize {
        decline_per_doubling: -c / b,
        from_bytes: from,
        to_bytes: to,
    };
    if !by_size.time_stays_positive() {
        notes.push(format!(
            "the read law's size term ({:.3} per doubling) would make reads of {:.2} MB take \
             no time per byte: fitted without it",
            by_size.decline_per_doubling,
            from / 1e6
        ));
        return two_term();
    }
    Ok(ReadFit {
        law,
        by_size: Some(SizeTerm {
            law: by_size,
            decline_std_error: fit.std_error_of(&[0.0, c / (b * b), -1.0 / b]),
        }),
    })
}

/// Fits `f` and `c` in `t = read(bytes) / f + outputs x c` to matrix-vector rows:
/// linear through the origin in `read(bytes)` and `outputs` (`n` of the row), with
/// coefficients `1 / f` and `c`. Where `c` comes out at or below zero, `f` alone.
fn fit_matvec(
    rows: &[MicrobenchRow],
    read: &ReadFit,
    statistic: Statistic,
) -> Result<MatvecFit, CalibrateError> {
    let what = "matrix-vector bandwidth (gemv)";
    if rows.len() < 2 {
        return Err(CalibrateError::TooFewPoints {
            what: what.to_string(),
            have: rows.len(),
            need: 2,
        });
    }
    let y: Vec<f64> = rows.iter().map(|r| statistic.time_s(r)).collect();
    let fit_with = |outputs: bool| {
        let x: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| {
                let mut x = vec![read.time(r.bytes)];
                if outputs {
                    x.push(output_elements(r));
                }
                x
            })
            .collect();
        lsq::relative_least_squares(&x, &y)
    };
    // With two rows the two-coefficient fit has no degrees of freedom: `None`.
    let fit = match fit_with(true) {
        Some(fit) if fit.coefficients[1] > 0.0 => fit,
        _ => fit_with(false).ok_or_else(|| CalibrateError::Degenerate(what.to_string()))?,
    };
    let inverse = fit.coefficients[0];
    if inverse.is_nan() || inverse <= 0.0 {
        return Err(CalibrateError::Degenerate(what.to_string()));
    }
    let (output_s, output_s_std_error) = match fit.coefficients.get(1) {
        Some(c) => (*c, fit.std_error(1)),
        None => (0.0, 0.0),
    };
    Ok(MatvecFit {
        fraction: 1.0 / inverse,
        // d(1/x)/dx = -1/x^2.
        fraction_std_error: fit.std_error(0) / (inverse * inverse),
        output_s,
        output_s_std_error,
        r_squared: fit.r_squared,
        n_points: fit.n_points,
        relative_sd: fit.relative_residual_sd,
    })
}

/// Output elements of a `gemm` or `gemv` row: `m` token rows times `n` outputs.
fn output_elements(row: &MicrobenchRow) -> f64 {
    (row.m.max(1) * row.n) as f64
}

/// Fits a link from `tcp_pingpong` (and, when present, `tcp_stream`) rows.
pub fn fit_link(rows: &[MicrobenchRow], statistic: Statistic) -> Result<LinkFits, CalibrateError> {
    let time = |r: &MicrobenchRow| statistic.time_s(r);
    let of = |kernel: Kernel| -> Vec<MicrobenchRow> {
        rows.iter()
            .filter(|r| r.kernel == kernel && statistic.timed(r))
            .cloned()
            .collect()
    };
    let pings = of(Kernel::TcpPingpong);
    let first = pings
        .first()
        .ok_or(CalibrateError::NoRows("tcp_pingpong"))?;
    let pingpong = affine_of(
        &pings,
        |r| r.bytes,
        |r| time(r) / 2.0,
        "link latency (ping-pong)",
    )?;
    let streams = of(Kernel::TcpStream);
    let stream = if streams.is_empty() {
        None
    } else {
        Some(affine_of(
            &streams,
            |r| r.bytes,
            time,
            "link bandwidth (stream)",
        )?)
    };
    Ok(LinkFits {
        device: first.device.clone(),
        pingpong,
        stream,
    })
}

/// The fitted parameters as a flat list (the JSON `fits` array).
pub fn device_fit_list(fits: &DeviceFits) -> Vec<Fit> {
    let mut list = Vec::new();
    let bw = &fits.bandwidth.law;
    list.push(Fit {
        parameter: "memory.bandwidth_gb_s".to_string(),
        value: bw.rate / 1e9,
        std_error: bw.rate_std_error / 1e9,
        r_squared: bw.r_squared,
        n_points: bw.n_points,
    });
    list.push(Fit {
        parameter: "efficiency.bandwidth_half_mb".to_string(),
        value: bw.half_x / 1e6,
        std_error: bw.half_x_std_error / 1e6,
        r_squared: bw.r_squared,
        n_points: bw.n_points,
    });
    if let Some(term) = &fits.bandwidth.by_size {
        list.push(Fit {
            parameter: "efficiency.bandwidth_by_size.decline_per_doubling".to_string(),
            value: term.law.decline_per_doubling,
            std_error: term.decline_std_error,
            r_squared: bw.r_squared,
            n_points: bw.n_points,
        });
    }
    for (kernel, fit) in &fits.other_bandwidth {
        list.push(Fit {
            parameter: format!("memory.{}_bandwidth_gb_s", kernel.name()),
            value: fit.rate / 1e9,
            std_error: fit.rate_std_error / 1e9,
            r_squared: fit.r_squared,
            n_points: fit.n_points,
        });
    }
    for c in &fits.compute {
        list.push(Fit {
            parameter: format!("compute.{}.tflops", c.dtype),
            value: c.tflops,
            std_error: c.tflops_std_error,
            r_squared: c.r_squared,
            n_points: c.n_points,
        });
        list.push(Fit {
            parameter: format!("compute.{}.half_rows", c.dtype),
            value: c.half_rows,
            std_error: c.half_rows_std_error,
            r_squared: c.r_squared,
            n_points: c.n_points,
        });
    }
    if let Some(mv) = &fits.matvec {
        list.push(Fit {
            parameter: "efficiency.matvec_bandwidth_fraction".to_string(),
            value: mv.fraction,
            std_error: mv.fraction_std_error,
            r_squared: mv.r_squared,
            n_points: mv.n_points,
        });
        list.push(Fit {
            parameter: "efficiency.matvec_output_ns".to_string(),
            value: mv.output_s * 1e9,
            std_error: mv.output_s_std_error * 1e9,
            r_squared: mv.r_squared,
            n_points: mv.n_points,
        });
    }
    if let Some(d) = &fits.dispatch {
        // Per-launch cost is the slope 1/rate: se(1/rate) = se(rate)/rate^2.
        list.push(Fit {
            parameter: "efficiency.dispatch_overhead_us".to_string(),
            value: 1e6 / d.rate,
            std_error: 1e6 * d.rate_std_error / (d.rate * d.rate),
            r_squared: d.r_squared,
            n_points: d.n_points,
        });
    }
    list
}

/// The link's fitted parameters.
pub fn link_fit_list(fits: &LinkFits) -> Vec<Fit> {
    let p = &fits.pingpong;
    let mut list = vec![
        Fit {
            parameter: "link.latency_us".to_string(),
            value: p.fixed_s * 1e6,
            std_error: p.fixed_s_std_error * 1e6,
            r_squared: p.r_squared,
            n_points: p.n_points,
        },
        Fit {
            parameter: "link.pingpong_bandwidth_gb_s".to_string(),
            value: p.rate / 1e9,
            std_error: p.rate_std_error / 1e9,
            r_squared: p.r_squared,
            n_points: p.n_points,
        },
    ];
    if let Some(s) = &fits.stream {
        list.push(Fit {
            parameter: "link.bandwidth_gb_s".to_string(),
            value: s.rate / 1e9,
            std_error: s.rate_std_error / 1e9,
            r_squared: s.r_squared,
            n_points: s.n_points,
        });
    }
    list
}

/// The runtime of the bare hardware: no software loss, no overheads.
const IDEAL: RuntimeEfficiency = RuntimeEfficiency {
    compute_fraction: 1.0,
    bandwidth_fraction: 1.0,
    attention_fraction: 1.0,
    dispatch_scale: 0.0,
    per_step_overhead_s: 0.0,
    reserve_gb: 0.0,
    quantized_compute_dtype: None,
    gemm_half_rows: None,
    matvec_max_rows: None,
    matvec_rows_per_pass: None,
    gemm_tile_rows: None,
    attention_heads_per_tile: None,
    attention_half_rows: None,
    overlap_fraction: 1.0,
    memory_utilization: 1.0,
    mla_prefill: MlaPrefill::Expanded,
};

/// A 4-byte weight format computed in `dtype`: a microbenchmark row's bytes as weights
/// of it, so that one operation moves exactly the row's bytes. Only the timing reads it.
pub(crate) fn row_format(dtype: ComputeDtype) -> WeightFormat {
    WeightFormat {
        id: "row".to_string(),
        name: "row".to_string(),
        bits_per_weight: 32.0,
        compute_dtype: dtype,
        dequant_ops_per_weight: 0.0,
        kv_cache: true,
    }
}

/// The bare hardware (no software loss, no overheads) running one-row products as
/// matrix-vector kernels, as the planner-harness runtime's `matvec_max_rows = 1` has
/// them, with weights and KV cache in `format`.
pub(crate) fn row_executor<'a>(device: &'a Device, format: &'a WeightFormat) -> Executor<'a> {
    Executor {
        device,
        runtime: RuntimeEfficiency {
            matvec_max_rows: Some(1.0),
            ..IDEAL
        },
        weights: format,
        kv_cache: format,
    }
}

/// The planner's time for a microbenchmark row on `device` ([`row_executor`]):
/// `max(compute, memory)` for GEMM and GEMV, the memory time for reads; `None` for
/// other kernels.
pub fn predict_row(device: &Device, row: &MicrobenchRow) -> Option<f64> {
    // The row as one operation of the planner, computed in the row's data type.
    let format = row_format(row.dtype.unwrap_or(ComputeDtype::Fp32));
    let exec = row_executor(device, &format);
    match row.kernel {
        Kernel::Gemm | Kernel::Gemv => {
            let op = Op {
                kind: OpKind::Ffn,
                flops: row.flops,
                weight_params: row.bytes / 4.0,
                dequant_params: 0.0,
                kv_elements: 0.0,
                activation_bytes: 0.0,
                rows: row.m.max(1) as f64,
                heads_per_kv: 1.0,
                kernels: 1.0,
                dot_products: output_elements(row),
                ffn_elements: 0.0,
            };
            Some(exec.time(&op).time_s)
        }
        Kernel::Read => Some(exec.memory_time(row.bytes)),
        _ => None,
    }
}

/// Predicts every held-out row with the calibrated device.
pub fn held_out_errors(fits: &DeviceFits, device: &Device) -> Vec<HeldOut> {
    prediction_errors(&fits.held_out, device, fits.statistic)
}

/// The planner's prediction for each row, with its error against the row's time
/// under `statistic`.
pub fn prediction_errors(
    rows: &[MicrobenchRow],
    device: &Device,
    statistic: Statistic,
) -> Vec<HeldOut> {
    rows.iter()
        .filter_map(|row| {
            let predicted_s = predict_row(device, row)?;
            let measured_s = statistic.time_s(row);
            Some(HeldOut {
                kernel: row.kernel,
                dtype: row.dtype,
                m: row.m,
                n: row.n,
                k: row.k,
                bytes: row.bytes,
                measured_s,
                predicted_s,
                relative_error: (predicted_s - measured_s) / measured_s,
                spread: crate::microbench::spread(row.median_s, row.min_s),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        kernel: Kernel,
        dtype: Option<ComputeDtype>,
        shape: [u64; 3],
        bytes: f64,
        flops: f64,
        t: f64,
    ) -> MicrobenchRow {
        MicrobenchRow::timed("cpu", "test", kernel, dtype, shape, bytes, flops, &[t])
    }

    /// Synthetic device: reads take 20 us + bytes / 10 GB/s; fp32 GEMMs run at
    /// 100 GFLOP/s x m / (m + 4); a dispatch costs 5 us after a 1 us start.
    fn synthetic() -> Vec<MicrobenchRow> {
        let mut rows = Vec::new();
        for e in 20..=32 {
            let bytes = 2f64.powi(e);
            rows.push(row(
                Kernel::Read,
                Some(ComputeDtype::Fp32),
                [bytes as u64 / 4, 1, 0],
                bytes,
                0.0,
                20e-6 + bytes / 10e9,
            ));
        }
        for m in [1u64, 4, 16, 64, 256, 1024, 4096] {
            for (n, k) in [(4096u64, 4096u64), (14336, 4096), (4096, 14336)] {
                let flops = 2.0 * (m * n * k) as f64;
                let bytes = 4.0 * (m * k + k * n + m * n) as f64;
                let compute = flops / (100e9 * m as f64 / (m as f64 + 4.0));
                let memory = 20e-6 + bytes / 10e9;
                rows.push(row(
                    Kernel::Gemm,
                    Some(ComputeDtype::Fp32),
                    [m, n, k],
                    bytes,
                    flops,
                    compute.max(memory),
                ));
            }
        }
        for launches in [1u64, 4, 16, 64, 256] {
            rows.push(row(
                Kernel::Dispatch,
                None,
                [launches, 0, 0],
                0.0,
                0.0,
                1e-6 + launches as f64 * 5e-6,
            ));
        }
        rows
    }

    #[test]
    fn synthetic_device_parameters_are_recovered() {
        let fits = fit_device(&synthetic(), None, Statistic::Median).unwrap();
        // Bandwidth 10 GB/s; half = 20 us x 10 GB/s = 200 kB.
        let read = &fits.bandwidth;
        assert!((read.law.rate - 10e9).abs() < 1e-3 * 10e9);
        assert!((read.law.half_x - 200e3).abs() < 1e-3 * 200e3);
        assert!(read.law.r_squared > 0.999_999);
        // One rate at every size: the size term comes out at zero.
        let term = read.by_size.expect("13 reads fit the three-term law");
        assert!(term.law.decline_per_doubling.abs() < 1e-6, "{term:?}");
        // Compute 100 GFLOP/s = 0.1 TFLOPS, half rows 4 (m = 1 and 4 are memory-bound:
        // e.g. m = 1 on 4096 x 4096 moves 67 MB, 6.7 ms, while its 33.6 MFLOP take
        // 1.7 ms at 100 x 1/5 GFLOP/s).
        let c = &fits.compute[0];
        assert!((c.tflops - 0.1).abs() < 1e-5, "{c:?}");
        assert!((c.half_rows - 4.0).abs() < 1e-2, "{c:?}");
        // Dispatch: slope 5 us per launch.
        let d = fits.dispatch.unwrap();
        assert!((1.0 / d.rate - 5e-6).abs() < 1e-12);
    }

    #[test]
    fn every_fourth_sorted_row_is_held_out() {
        // 13 read sizes (2^20 .. 2^32): held out are indices 3, 7, 11 = 2^23, 2^27, 2^31.
        let rows = synthetic();
        let reads: Vec<&MicrobenchRow> = rows.iter().filter(|r| r.kernel == Kernel::Read).collect();
        let (fit, held) = split_held_out(&reads);
        assert_eq!(fit.len(), 10);
        let held_bytes: Vec<f64> = held.iter().map(|r| r.bytes).collect();
        assert_eq!(
            held_bytes,
            vec![2f64.powi(23), 2f64.powi(27), 2f64.powi(31)]
        );
    }

    /// Ping-pong rows of `sizes` bytes, each taking `round_trip(bytes)` seconds.
    fn pingpong_rows(sizes: &[f64], round_trip: impl Fn(f64) -> f64) -> Vec<MicrobenchRow> {
        sizes
            .iter()
            .map(|&b| row(Kernel::TcpPingpong, None, [0, 0, 0], b, 0.0, round_trip(b)))
            .collect()
    }

    #[test]
    fn alpha_beta_link_from_round_trips() {
        // One way: 50 us + bytes / 1.25 GB/s, so the round trip is twice that.
        let rows = pingpong_rows(&[8.0, 512.0, 32768.0, 2097152.0, 67108864.0], |b| {
            2.0 * (50e-6 + b / 1.25e9)
        });
        let link = fit_link(&rows, Statistic::Median).unwrap();
        assert!((link.pingpong.fixed_s - 50e-6).abs() < 1e-12);
        assert!((link.pingpong.rate - 1.25e9).abs() < 1.0);
        let list = link_fit_list(&link);
        assert_eq!(list[0].parameter, "link.latency_us");
        assert!((list[0].value - 50.0).abs() < 1e-6);
    }

    #[test]
    fn a_probe_between_loopback_addresses_is_loopback() {
        let rows = pingpong_rows(&[8.0, 4096.0, 1048576.0], |b| 1e-4 + b / 1e9);
        let fitted = fit_link(&rows, Statistic::Median).unwrap();
        let link = |device: &str| LinkFits {
            device: device.to_string(),
            ..fitted.clone()
        };
        assert!(link("127.0.0.1:55260 -> 127.0.0.1:7879").is_loopback());
        assert!(link("[::1]:40000 -> [::1]:7878").is_loopback());
        assert!(!link("10.0.0.2:51000 -> 10.0.0.1:7878").is_loopback());
        assert!(!link("127.0.0.1:51000 -> 10.0.0.1:7878").is_loopback());
        assert!(!link("not an address").is_loopback());
    }

    #[test]
    fn fits_below_the_threshold_get_one_note_per_regression() {
        let fit = |parameter: &str, r_squared: f64, n_points: usize| Fit {
            parameter: parameter.to_string(),
            value: 1.0,
            std_error: 0.1,
            r_squared,
            n_points,
        };
        // Latency and ping-pong bandwidth come from one regression (same R squared and
        // n): one note naming both; the stream fit (0.99) and a 0.95 exactly get none.
        let fits = [
            fit("link.latency_us", 0.88, 24),
            fit("link.pingpong_bandwidth_gb_s", 0.88, 24),
            fit("link.bandwidth_gb_s", 0.99, 5),
            fit("memory.copy_bandwidth_gb_s", 0.95, 9),
        ];
        let notes = rough_fit_notes(&fits);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with(
            "link.latency_us, link.pingpong_bandwidth_gb_s: R squared 0.880 over 24 points"
        ));
    }

    #[test]
    fn two_devices_in_one_input_are_refused() {
        let mut rows = synthetic();
        rows[0].device = "other".to_string();
        assert!(matches!(
            fit_device(&rows, None, Statistic::Median),
            Err(CalibrateError::MixedDevices(_))
        ));
    }
}
