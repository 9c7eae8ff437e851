//! Devices and links: the hardware catalog (`hardware/*.toml`, `hardware/links/*.toml`).
//!
//! A device file holds published specifications (peak dense compute per data type,
//! memory capacity variants and their prices, memory bandwidth, power) and the
//! achievable fractions of those peaks on the bare hardware (`[efficiency]`), each
//! with its source. Software losses live in runtime profiles (`runtimes/`), not here.
//!
//! Achievable compute depends on the size of a matrix multiplication: a GEMM with few
//! rows (tokens) cannot fill the machine. We model it as a saturating curve,
//! `fraction(m) = compute_fraction * m / (m + compute_half_rows)`, where `m` is the
//! number of token rows. Achievable bandwidth likewise saturates with transfer size:
//! `fraction(bytes) = bandwidth_fraction * bytes / (bytes + bandwidth_half_bytes)`.
//! Optional refinements come from calibration: `compute_half_rows_by_dtype` (the
//! half point per arithmetic type), `matvec_bandwidth_fraction` (the share of that
//! bandwidth a matrix-vector kernel streams weights at), `matvec_output_ns` (a
//! matrix-vector kernel's cost per output element, on top of streaming its weights)
//! and `[efficiency.bandwidth_by_size]` (a read rate that falls slowly with the
//! transfer's size, see [`BandwidthBySize`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::sourced::Sourced;

/// Arithmetic types a device may have dense matrix throughput for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeDtype {
    Fp32,
    Fp16,
    Bf16,
    Fp8,
    Int8,
    Fp4,
}

impl ComputeDtype {
    pub const ALL: [ComputeDtype; 6] = [
        ComputeDtype::Fp32,
        ComputeDtype::Fp16,
        ComputeDtype::Bf16,
        ComputeDtype::Fp8,
        ComputeDtype::Int8,
        ComputeDtype::Fp4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ComputeDtype::Fp32 => "fp32",
            ComputeDtype::Fp16 => "fp16",
            ComputeDtype::Bf16 => "bf16",
            ComputeDtype::Fp8 => "fp8",
            ComputeDtype::Int8 => "int8",
            ComputeDtype::Fp4 => "fp4",
        }
    }
}

impl fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------
// Raw file layout (what serde reads), then the validated domain types.

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFile {
    pub name: String,
    /// Family used to pick a runtime's efficiency parameters ("apple", "nvidia").
    pub family: String,
    #[serde(default)]
    pub notes: Option<String>,
    /// Dense (non-sparse) peak TFLOPS by data type.
    pub peak_tflops: BTreeMap<ComputeDtype, Sourced<f64>>,
    pub memory: MemoryFile,
    pub power: PowerFile,
    pub efficiency: EfficiencyFile,
    #[serde(default)]
    pub rental_usd_per_hour: Option<Sourced<f64>>,
    /// Interconnects the node has ports for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<ConnectivityFile>,
    /// Spread of the fits behind a calibrated profile (`planner calibrate` writes it);
    /// absent for catalog devices whose figures are published specs and priors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<UncertaintyFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectivityFile {
    /// Link ids (`hardware/links/`).
    pub links: Vec<String>,
    pub source: String,
}

/// One standard deviation of the relative residuals of each fit, e.g. 0.03 when the
/// fitted curve misses the measured times by 3% (root mean square).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UncertaintyFile {
    pub compute_relative_sd: Sourced<f64>,
    pub bandwidth_relative_sd: Sourced<f64>,
    pub dispatch_relative_sd: Sourced<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryFile {
    pub bandwidth_gb_s: Sourced<f64>,
    /// Memory kept by the operating system and driver, unavailable to the model.
    pub reserved_gb: Sourced<f64>,
    pub variants: Vec<MemoryVariantFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryVariantFile {
    pub capacity_gb: f64,
    /// Price of one node (a whole machine, or one GPU for data-centre parts).
    #[serde(default)]
    pub price_usd: Option<f64>,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PowerFile {
    pub idle_w: Sourced<f64>,
    pub load_w: Sourced<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EfficiencyFile {
    /// Achievable fraction of dense peak for a large GEMM.
    pub compute_fraction: Sourced<f64>,
    /// Token rows at which a GEMM reaches half of `compute_fraction`.
    pub compute_half_rows: Sourced<f64>,
    /// Per data type where it differs (a calibrated profile: each type's GEMMs fit
    /// their own); types not listed use `compute_half_rows`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compute_half_rows_by_dtype: BTreeMap<ComputeDtype, Sourced<f64>>,
    /// Achievable fraction of the type's peak where it differs (a profile calibrated
    /// against a base device's spec peaks: each type's GEMMs fit their own rate);
    /// types not listed use `compute_fraction`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compute_fraction_by_dtype: BTreeMap<ComputeDtype, Sourced<f64>>,
    /// Achievable fraction of spec memory bandwidth for a large streaming read.
    pub bandwidth_fraction: Sourced<f64>,
    /// Transfer size (MB) at which a read reaches half of `bandwidth_fraction`.
    pub bandwidth_half_mb: Sourced<f64>,
    /// Fixed cost of launching or dispatching one kernel.
    pub dispatch_overhead_us: Sourced<f64>,
    /// Fraction of the achievable bandwidth a matrix-vector kernel's stream reaches
    /// (1 where not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matvec_bandwidth_fraction: Option<Sourced<f64>>,
    /// Time per output element of a matrix-vector kernel (its reduction and store), on
    /// top of streaming the weights (0 where not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matvec_output_ns: Option<Sourced<f64>>,
    /// A read rate that depends on the transfer's size (absent: one rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_by_size: Option<BandwidthBySizeFile>,
}

/// `[efficiency.bandwidth_by_size]`: see [`BandwidthBySize`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthBySizeFile {
    /// Growth of the time per byte per doubling of the transfer size, as a fraction
    /// of the time per byte at `to_mb` (negative: the rate rises with size).
    pub decline_per_doubling: Sourced<f64>,
    /// Smallest transfer the law spans (smaller ones take its rate at `from_mb`).
    pub from_mb: Sourced<f64>,
    /// Largest transfer the law spans, where the rate is `memory.bandwidth_gb_s`
    /// (larger ones take that rate: the law is not extrapolated).
    pub to_mb: Sourced<f64>,
}

/// A validated device.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub family: String,
    pub peak_tflops: BTreeMap<ComputeDtype, f64>,
    pub memory_bandwidth_gb_s: f64,
    pub reserved_gb: f64,
    pub variants: Vec<MemoryVariant>,
    pub idle_w: f64,
    pub load_w: f64,
    pub efficiency: HardwareEfficiency,
    pub rental_usd_per_hour: Option<f64>,
    /// Link ids the node has ports for (empty: not stated).
    pub links: Vec<String>,
    /// Relative spread of the calibration fits, when the profile was fitted.
    pub uncertainty: Option<Uncertainty>,
    /// The file as written, with every source, for `planner hardware show`.
    pub file: DeviceFile,
}

/// Relative standard deviations of a calibrated device's fits (each in [0, 1)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Uncertainty {
    pub compute: f64,
    pub bandwidth: f64,
    pub dispatch: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryVariant {
    pub capacity_gb: f64,
    pub price_usd: Option<f64>,
}

impl MemoryVariant {
    /// Whether this is the variant a scenario's `memory_gb = gb` names (to 0.5 GB).
    pub fn has_capacity(&self, gb: f64) -> bool {
        (self.capacity_gb - gb).abs() < 0.5
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HardwareEfficiency {
    pub compute_fraction: f64,
    pub compute_half_rows: f64,
    pub compute_half_rows_by_dtype: BTreeMap<ComputeDtype, f64>,
    pub compute_fraction_by_dtype: BTreeMap<ComputeDtype, f64>,
    pub bandwidth_fraction: f64,
    pub bandwidth_half_bytes: f64,
    pub dispatch_overhead_s: f64,
    /// Multiplies the achievable bandwidth for matrix-vector products (the
    /// runtime's `matvec_max_rows` regime); 1 where the file does not say.
    pub matvec_bandwidth_fraction: f64,
    /// Seconds per output element of a matrix-vector product; 0 where not measured.
    pub matvec_output_s: f64,
    pub bandwidth_by_size: Option<BandwidthBySize>,
}

/// A read rate that falls slowly with the transfer's size, as a CPU's does when its
/// buffers outgrow the caches and the TLB (measured on the development VM: 42 GB/s
/// at 10-34 MB, 37 at 67-160 MB, 35 at 1 GB). The time per byte at a transfer of `s`
/// bytes is the time per byte at `to_bytes` times
/// `1 - decline_per_doubling x log2(to_bytes / s)`, with `s` held within
/// `[from_bytes, to_bytes]`: each halving below `to_bytes` saves `decline_per_doubling`
/// of it. Above `to_bytes` (the largest transfer measured) the rate stays at
/// `memory.bandwidth_gb_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BandwidthBySize {
    pub decline_per_doubling: f64,
    pub from_bytes: f64,
    pub to_bytes: f64,
}

impl BandwidthBySize {
    /// Time per byte of an `s`-byte transfer relative to one of `to_bytes`.
    pub fn time_per_byte_factor(&self, s: f64) -> f64 {
        let s = s.clamp(self.from_bytes, self.to_bytes);
        1.0 - self.decline_per_doubling * (self.to_bytes / s).log2()
    }

    /// Whether every size keeps a positive time per byte: the factor is smallest at
    /// `from_bytes` for a positive decline.
    pub fn time_stays_positive(&self) -> bool {
        self.decline_per_doubling.is_finite() && self.time_per_byte_factor(self.from_bytes) > 0.0
    }
}

impl HardwareEfficiency {
    /// Achievable fraction of the peak for a large GEMM in `dtype`.
    pub fn fraction_for(&self, dtype: ComputeDtype) -> f64 {
        self.compute_fraction_by_dtype
            .get(&dtype)
            .copied()
            .unwrap_or(self.compute_fraction)
    }

    /// Token rows at which a GEMM in `dtype` reaches half its achievable rate.
    pub fn half_rows_for(&self, dtype: ComputeDtype) -> f64 {
        self.compute_half_rows_by_dtype
            .get(&dtype)
            .copied()
            .unwrap_or(self.compute_half_rows)
    }
}

/// Checks `value` is finite and > 0 (or >= 0 when `allow_zero`).
pub(crate) fn check_positive(
    file: &str,
    key: &str,
    value: f64,
    allow_zero: bool,
) -> Result<f64, InputError> {
    let ok = value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0));
    if ok {
        Ok(value)
    } else if allow_zero {
        Err(InputError::invalid(
            file,
            key,
            value,
            "expected a number >= 0",
        ))
    } else {
        Err(InputError::invalid(
            file,
            key,
            value,
            "expected a number > 0",
        ))
    }
}

fn check_fraction(file: &str, key: &str, value: f64) -> Result<f64, InputError> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(InputError::invalid(
            file,
            key,
            value,
            "expected a fraction in (0, 1]",
        ))
    }
}

fn check_spread(file: &str, key: &str, value: f64) -> Result<f64, InputError> {
    if value.is_finite() && (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(InputError::invalid(
            file,
            key,
            value,
            "expected a relative spread in [0, 1)",
        ))
    }
}

/// Validates `[efficiency.bandwidth_by_size]`: a range `0 < from < to`, and a time per
/// byte that stays positive over it.
fn bandwidth_by_size(file: &str, b: &BandwidthBySizeFile) -> Result<BandwidthBySize, InputError> {
    let from_mb = check_positive(
        file,
        "efficiency.bandwidth_by_size.from_mb",
        b.from_mb.value,
        false,
    )?;
    let to_mb = check_positive(
        file,
        "efficiency.bandwidth_by_size.to_mb",
        b.to_mb.value,
        false,
    )?;
    if to_mb <= from_mb {
        return Err(InputError::invalid(
            file,
            "efficiency.bandwidth_by_size.to_mb",
            to_mb,
            format!("expected a size above from_mb ({from_mb})"),
        ));
    }
    let law = BandwidthBySize {
        decline_per_doubling: b.decline_per_doubling.value,
        from_bytes: from_mb * 1e6,
        to_bytes: to_mb * 1e6,
    };
    if !law.time_stays_positive() {
        return Err(InputError::invalid(
            file,
            "efficiency.bandwidth_by_size.decline_per_doubling",
            law.decline_per_doubling,
            format!(
                "expected a decline below 1 / log2(to_mb / from_mb) = {:.4}, so that the time \
                 per byte stays positive",
                1.0 / (to_mb / from_mb).log2()
            ),
        ));
    }
    Ok(law)
}

impl Device {
    /// Parses and validates a device file; `id` is the file stem and `file` its
    /// display name for messages.
    pub fn from_toml(id: &str, file: &str, text: &str) -> Result<Device, InputError> {
        let raw: DeviceFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
        Device::try_from_file(id, file, raw)
    }

    pub fn try_from_file(id: &str, file: &str, raw: DeviceFile) -> Result<Device, InputError> {
        let mut peak_tflops = BTreeMap::new();
        for (dtype, peak) in &raw.peak_tflops {
            let key = format!("peak_tflops.{dtype}");
            peak_tflops.insert(*dtype, check_positive(file, &key, peak.value, false)?);
        }
        if !peak_tflops.contains_key(&ComputeDtype::Fp16)
            && !peak_tflops.contains_key(&ComputeDtype::Bf16)
        {
            return Err(InputError::invalid(
                file,
                "peak_tflops",
                "(no fp16 or bf16)",
                "expected at least an fp16 or bf16 peak",
            ));
        }
        if raw.memory.variants.is_empty() {
            return Err(InputError::invalid(
                file,
                "memory.variants",
                "[]",
                "expected at least one memory variant",
            ));
        }
        let mut variants = Vec::new();
        for variant in &raw.memory.variants {
            check_positive(
                file,
                "memory.variants.capacity_gb",
                variant.capacity_gb,
                false,
            )?;
            if let Some(price) = variant.price_usd {
                check_positive(file, "memory.variants.price_usd", price, false)?;
            }
            // A scenario's `memory_gb` picks a variant by its capacity.
            if variants
                .iter()
                .any(|v: &MemoryVariant| v.has_capacity(variant.capacity_gb))
            {
                return Err(InputError::invalid(
                    file,
                    "memory.variants.capacity_gb",
                    variant.capacity_gb,
                    "expected each capacity once (a scenario's `memory_gb` picks a \
                     variant by it)",
                ));
            }
            variants.push(MemoryVariant {
                capacity_gb: variant.capacity_gb,
                price_usd: variant.price_usd,
            });
        }
        variants.sort_by(|a, b| a.capacity_gb.total_cmp(&b.capacity_gb));
        let e = &raw.efficiency;
        let efficiency = HardwareEfficiency {
            compute_fraction: check_fraction(
                file,
                "efficiency.compute_fraction",
                e.compute_fraction.value,
            )?,
            compute_half_rows: check_positive(
                file,
                "efficiency.compute_half_rows",
                e.compute_half_rows.value,
                true,
            )?,
            compute_half_rows_by_dtype: e
                .compute_half_rows_by_dtype
                .iter()
                .map(|(dtype, half)| {
                    check_positive(
                        file,
                        &format!("efficiency.compute_half_rows_by_dtype.{}", dtype.name()),
                        half.value,
                        true,
                    )
                    .map(|h| (*dtype, h))
                })
                .collect::<Result<_, _>>()?,
            compute_fraction_by_dtype: e
                .compute_fraction_by_dtype
                .iter()
                .map(|(dtype, f)| {
                    check_fraction(
                        file,
                        &format!("efficiency.compute_fraction_by_dtype.{}", dtype.name()),
                        f.value,
                    )
                    .map(|f| (*dtype, f))
                })
                .collect::<Result<_, _>>()?,
            bandwidth_fraction: check_fraction(
                file,
                "efficiency.bandwidth_fraction",
                e.bandwidth_fraction.value,
            )?,
            bandwidth_half_bytes: check_positive(
                file,
                "efficiency.bandwidth_half_mb",
                e.bandwidth_half_mb.value,
                true,
            )? * 1e6,
            dispatch_overhead_s: check_positive(
                file,
                "efficiency.dispatch_overhead_us",
                e.dispatch_overhead_us.value,
                true,
            )? * 1e-6,
            matvec_bandwidth_fraction: match &e.matvec_bandwidth_fraction {
                Some(f) => check_fraction(file, "efficiency.matvec_bandwidth_fraction", f.value)?,
                None => 1.0,
            },
            matvec_output_s: match &e.matvec_output_ns {
                Some(c) => {
                    check_positive(file, "efficiency.matvec_output_ns", c.value, true)? * 1e-9
                }
                None => 0.0,
            },
            bandwidth_by_size: e
                .bandwidth_by_size
                .as_ref()
                .map(|b| bandwidth_by_size(file, b))
                .transpose()?,
        };
        Ok(Device {
            id: id.to_string(),
            name: raw.name.clone(),
            family: raw.family.clone(),
            peak_tflops,
            memory_bandwidth_gb_s: check_positive(
                file,
                "memory.bandwidth_gb_s",
                raw.memory.bandwidth_gb_s.value,
                false,
            )?,
            reserved_gb: check_positive(
                file,
                "memory.reserved_gb",
                raw.memory.reserved_gb.value,
                true,
            )?,
            variants,
            idle_w: check_positive(file, "power.idle_w", raw.power.idle_w.value, true)?,
            load_w: check_positive(file, "power.load_w", raw.power.load_w.value, false)?,
            efficiency,
            rental_usd_per_hour: raw.rental_usd_per_hour.as_ref().map(|r| r.value),
            links: raw
                .connectivity
                .as_ref()
                .map_or_else(Vec::new, |c| c.links.clone()),
            uncertainty: match &raw.uncertainty {
                Some(u) => Some(Uncertainty {
                    compute: check_spread(
                        file,
                        "uncertainty.compute_relative_sd",
                        u.compute_relative_sd.value,
                    )?,
                    bandwidth: check_spread(
                        file,
                        "uncertainty.bandwidth_relative_sd",
                        u.bandwidth_relative_sd.value,
                    )?,
                    dispatch: check_spread(
                        file,
                        "uncertainty.dispatch_relative_sd",
                        u.dispatch_relative_sd.value,
                    )?,
                }),
                None => None,
            },
            file: raw,
        })
    }

    /// Peak dense TFLOPS for `dtype`, falling back to the 16-bit rate when the device
    /// has no native support (weights are then dequantised to 16 bits first).
    pub fn peak_tflops_for(&self, dtype: ComputeDtype) -> (ComputeDtype, f64) {
        let chain: &[ComputeDtype] = match dtype {
            ComputeDtype::Fp4 => &[ComputeDtype::Fp4, ComputeDtype::Fp8, ComputeDtype::Fp16],
            ComputeDtype::Fp8 => &[ComputeDtype::Fp8, ComputeDtype::Fp16],
            ComputeDtype::Int8 => &[ComputeDtype::Int8, ComputeDtype::Fp16],
            ComputeDtype::Bf16 => &[ComputeDtype::Bf16, ComputeDtype::Fp16],
            ComputeDtype::Fp16 => &[ComputeDtype::Fp16, ComputeDtype::Bf16],
            ComputeDtype::Fp32 => &[ComputeDtype::Fp32, ComputeDtype::Fp16],
        };
        for candidate in chain {
            if let Some(peak) = self.peak_tflops.get(candidate) {
                return (*candidate, *peak);
            }
        }
        // Validation guarantees fp16 or bf16 exists.
        let (dtype, peak) = self
            .peak_tflops
            .iter()
            .find(|(d, _)| matches!(d, ComputeDtype::Fp16 | ComputeDtype::Bf16))
            .map(|(d, p)| (*d, *p))
            .unwrap_or((ComputeDtype::Fp16, 1.0));
        (dtype, peak)
    }

    /// The memory variant for `memory_gb` (exact match), or the largest when `None`.
    pub fn variant(&self, memory_gb: Option<f64>) -> Option<MemoryVariant> {
        match memory_gb {
            None => self.variants.last().copied(),
            Some(gb) => self.variants.iter().find(|v| v.has_capacity(gb)).copied(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Links.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Kernel TCP/IP stack: per-message software overhead in the latency.
    Tcp,
    /// RDMA (RoCE, InfiniBand, Thunderbolt RDMA): the NIC moves data without the kernel.
    Rdma,
    /// A GPU fabric or bus (NVLink, PCIe): load/store or copy engines.
    Fabric,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFile {
    pub name: String,
    pub transport: Transport,
    /// Signalling rate each way, from the specification.
    pub spec_bandwidth_gb_s: Sourced<f64>,
    /// What the model uses: achievable bandwidth each way.
    pub bandwidth_gb_s: Sourced<f64>,
    /// What the model uses: one-way latency of a small message, software included.
    pub latency_us: Sourced<f64>,
    #[serde(default)]
    pub price_usd_per_node: Option<Sourced<f64>>,
    /// Most nodes one such fabric joins (an NVLink board, a PCIe server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<Sourced<u32>>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub id: String,
    pub name: String,
    pub transport: Transport,
    pub spec_bandwidth_gb_s: f64,
    pub bandwidth_gb_s: f64,
    pub latency_us: f64,
    pub price_usd_per_node: f64,
    pub max_nodes: Option<u32>,
    pub file: LinkFile,
}

impl Link {
    pub fn from_toml(id: &str, file: &str, text: &str) -> Result<Link, InputError> {
        let raw: LinkFile = toml::from_str(text).map_err(|e| InputError::parse(file, e))?;
        Ok(Link {
            id: id.to_string(),
            name: raw.name.clone(),
            transport: raw.transport,
            spec_bandwidth_gb_s: check_positive(
                file,
                "spec_bandwidth_gb_s",
                raw.spec_bandwidth_gb_s.value,
                false,
            )?,
            bandwidth_gb_s: check_positive(
                file,
                "bandwidth_gb_s",
                raw.bandwidth_gb_s.value,
                false,
            )?,
            latency_us: check_positive(file, "latency_us", raw.latency_us.value, true)?,
            price_usd_per_node: match &raw.price_usd_per_node {
                Some(p) => check_positive(file, "price_usd_per_node", p.value, true)?,
                None => 0.0,
            },
            max_nodes: raw.max_nodes.as_ref().map(|m| m.value),
            file: raw,
        })
    }
}
