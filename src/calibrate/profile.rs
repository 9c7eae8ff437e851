//! Writing fits as catalog files: a device profile (`hardware/<id>.toml`) and a link
//! profile (`hardware/links/<id>.toml`), in the catalog's own schema so a scenario can
//! name them like any other device or link.
//!
//! With a base device (`--base`), its published specifications (peaks, memory,
//! power, prices), its notes and its interconnects (`[connectivity]`) are copied and
//! the `[efficiency]` fractions are the fitted achievable rates divided by those
//! specs. Without one (a CPU has no catalog entry), the peaks *are* the fitted
//! achievable rates and the fractions are 1 by definition; every source says which.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{CalibrateError, DeviceFits, LinkFits};
use crate::hardware::{
    BandwidthBySizeFile, ComputeDtype, Device, DeviceFile, EfficiencyFile, LinkFile, MemoryFile,
    MemoryVariantFile, PowerFile, Transport, UncertaintyFile,
};
use crate::sourced::Sourced;

/// Where a calibrated profile's own notes begin (after the base device's notes).
const CALIBRATED_ON: &str = "Calibrated on ";

/// What the caller knows beyond the rows.
#[derive(Debug, Clone)]
pub struct ProfileOptions<'a> {
    /// Display name; default: the device name the backend reported.
    pub name: Option<String>,
    pub base: Option<&'a Device>,
    /// "fitted from a.csv by `planner calibrate a.csv --name x ...`".
    pub provenance: String,
    /// Device family for runtime profiles; default from the backend (cpu, nvidia, apple).
    pub family: Option<String>,
    pub memory_gb: Option<f64>,
    pub reserved_gb: Option<f64>,
    pub idle_w: Option<f64>,
    pub load_w: Option<f64>,
}

/// Rounds to `digits` significant digits, for files people read.
pub fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

fn sourced(value: f64, source: String) -> Sourced<f64> {
    Sourced {
        value: round_sig(value, 4),
        source,
    }
}

fn default_family(backend: &str) -> &'static str {
    match backend {
        "cuda" => "nvidia",
        "metal" => "apple",
        _ => "cpu",
    }
}

/// The device file for `fits`.
pub fn device_file(
    fits: &DeviceFits,
    options: &ProfileOptions,
) -> Result<DeviceFile, CalibrateError> {
    let prov = &options.provenance;
    let stats = |se: f64, unit: &str, r2: f64, n: usize| {
        format!(
            "std error {} {unit}, R^2 {r2:.4}, n = {n}",
            round_sig(se, 2)
        )
    };
    let bw = &fits.bandwidth.law;
    let bw_gb_s = bw.rate / 1e9;
    let bw_stats = stats(bw.rate_std_error / 1e9, "GB/s", bw.r_squared, bw.n_points);
    let primary = fits
        .compute
        .iter()
        .find(|c| c.dtype == fits.primary_dtype)
        .or_else(|| fits.compute.first())
        .ok_or_else(|| {
            CalibrateError::Profile(
                "no data type has a compute fit (too few compute-bound GEMM rows)".to_string(),
            )
        })?;
    let primary_stats = |se: f64, unit: &str| stats(se, unit, primary.r_squared, primary.n_points);
    let half_rows = sourced(
        primary.half_rows,
        format!(
            "{prov}: {} GEMM rows (m >= 2) through the planner's roofline \
             max(flops (m + h) / (P m), memory time), {}",
            primary.dtype,
            primary_stats(primary.half_rows_std_error, "rows")
        ),
    );
    let half_rows_by_dtype: BTreeMap<ComputeDtype, Sourced<f64>> = fits
        .compute
        .iter()
        .filter(|c| c.dtype != primary.dtype)
        .map(|c| {
            (
                c.dtype,
                sourced(
                    c.half_rows,
                    format!(
                        "{prov}: {} GEMM rows (m >= 2) through the planner's roofline, {}",
                        c.dtype,
                        stats(c.half_rows_std_error, "rows", c.r_squared, c.n_points)
                    ),
                ),
            )
        })
        .collect();
    let read_law = match fits.bandwidth.by_size {
        Some(_) => "t = a + (bytes/B)(1 - d log2(S/bytes)), S the largest read fitted",
        None => "t = a + bytes/B",
    };
    let half_mb = sourced(
        bw.half_x / 1e6,
        format!(
            "{prov}: read sweep, {read_law}, half = aB, {}",
            stats(bw.half_x_std_error / 1e6, "MB", bw.r_squared, bw.n_points)
        ),
    );
    let bandwidth_by_size = fits.bandwidth.by_size.map(|term| {
        let range = |bytes: f64, end: &str| Sourced {
            value: bytes / 1e6,
            source: format!("{prov}: the {end} read fitted"),
        };
        BandwidthBySizeFile {
            decline_per_doubling: sourced(
                term.law.decline_per_doubling,
                format!(
                    "{prov}: read sweep, {read_law}, d per halving below S, {}",
                    stats(term.decline_std_error, "", bw.r_squared, bw.n_points)
                ),
            ),
            from_mb: range(term.law.from_bytes, "smallest"),
            to_mb: range(term.law.to_bytes, "largest"),
        }
    });
    let mut matvec_note = None;
    let matvec = fits.matvec.map(|mv| {
        if mv.fraction > 1.0 {
            matvec_note = Some(format!(
                "the gemv rows stream at {:.3} x the read bandwidth: matvec_bandwidth_fraction \
                 clamped to 1",
                mv.fraction
            ));
        }
        sourced(
            mv.fraction.min(1.0),
            format!(
                "{prov}: gemv rows, t = read(bytes) / f + n c with the read law, {}",
                stats(mv.fraction_std_error, "", mv.r_squared, mv.n_points)
            ),
        )
    });
    let matvec_output = fits.matvec.and_then(|mv| {
        (mv.output_s > 0.0).then(|| {
            sourced(
                mv.output_s * 1e9,
                format!(
                    "{prov}: gemv rows, t = read(bytes) / f + n c, c per output row, {}",
                    stats(mv.output_s_std_error * 1e9, "ns", mv.r_squared, mv.n_points)
                ),
            )
        })
    });
    let dispatch = match &fits.dispatch {
        Some(d) => sourced(
            1e6 / d.rate,
            format!(
                "{prov}: slope of back-to-back dispatches, {}",
                stats(
                    1e6 * d.rate_std_error / (d.rate * d.rate),
                    "us",
                    d.r_squared,
                    d.n_points
                )
            ),
        ),
        None => match options.base {
            Some(base) => base.file.efficiency.dispatch_overhead_us.clone(),
            None => {
                return Err(CalibrateError::Profile(
                    "no `dispatch` rows and no --base to take the dispatch overhead from"
                        .to_string(),
                ))
            }
        },
    };
    let uncertainty = UncertaintyFile {
        compute_relative_sd: sourced(
            primary.relative_sd,
            format!(
                "{prov}: relative residual sd of the {} compute fit",
                primary.dtype
            ),
        ),
        bandwidth_relative_sd: match fits.matvec {
            Some(mv) => sourced(
                bw.relative_sd.max(mv.relative_sd),
                format!(
                    "{prov}: the larger relative residual sd of the read-bandwidth and \
                     matrix-vector fits"
                ),
            ),
            None => sourced(
                bw.relative_sd,
                format!("{prov}: relative residual sd of the read-bandwidth fit"),
            ),
        },
        dispatch_relative_sd: sourced(
            fits.dispatch.map_or(0.0, |d| d.relative_sd),
            match fits.dispatch {
                Some(_) => format!("{prov}: relative residual sd of the dispatch fit"),
                None => {
                    "no dispatch fit: taken from the base device, spread unknown (0)".to_string()
                }
            },
        ),
    };

    if let Some(base) = options.base {
        let base_file = &base.file;
        let (peak_dtype, peak) = base.peak_tflops_for(primary.dtype);
        // The base's own notes (what its specs mean) come first. Everything from
        // CALIBRATED_ON on is this function's, so calibrating on a profile that was
        // itself calibrated (`--base h100-sxm --out hardware/h100-sxm.toml`) replaces
        // the earlier calibration's notes instead of piling them up.
        let mut notes: Vec<String> = base_file
            .notes
            .as_deref()
            .and_then(|n| n.split(CALIBRATED_ON).next())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect();
        notes.push(format!(
            "{CALIBRATED_ON}`{}` ({} backend); published specs copied from `{}`.",
            fits.device, fits.backend, base.id
        ));
        notes.extend(matvec_note.clone());
        let mut fraction = |what: &str, fitted: f64, spec: f64| -> f64 {
            let f = fitted / spec;
            if f > 1.0 {
                notes.push(format!(
                    "fitted {what} {fitted:.4} exceeds the base's spec {spec}: fraction clamped to 1"
                ));
                1.0
            } else {
                f
            }
        };
        let compute_fraction = fraction("compute (TFLOPS)", primary.tflops, peak);
        // Every other type fitted keeps its own rate against its own peak (a single
        // fraction carried the primary's to them: fp16 on the CPU at the fp32 rate,
        // 25% above its fit).
        let mut fraction_by_dtype = BTreeMap::new();
        for c in fits.compute.iter().filter(|c| c.dtype != primary.dtype) {
            let (dtype_used, dtype_peak) = base.peak_tflops_for(c.dtype);
            let f = fraction(
                &format!("{} compute (TFLOPS)", c.dtype),
                c.tflops,
                dtype_peak,
            );
            fraction_by_dtype.insert(
                c.dtype,
                sourced(
                    f,
                    format!(
                        "{prov}: fitted {} {:.4} TFLOPS / {dtype_used} peak {dtype_peak} ({})",
                        c.dtype,
                        c.tflops,
                        stats(c.tflops_std_error, "TFLOPS", c.r_squared, c.n_points)
                    ),
                ),
            );
        }
        let bandwidth_fraction = fraction("bandwidth (GB/s)", bw_gb_s, base.memory_bandwidth_gb_s);
        return Ok(DeviceFile {
            name: options
                .name
                .clone()
                .unwrap_or_else(|| format!("{} (calibrated)", base.name)),
            family: options.family.clone().unwrap_or_else(|| base.family.clone()),
            notes: Some(notes.join(" ")),
            peak_tflops: base_file.peak_tflops.clone(),
            memory: base_file.memory.clone(),
            power: base_file.power.clone(),
            efficiency: EfficiencyFile {
                compute_fraction: sourced(
                    compute_fraction,
                    format!(
                        "{prov}: fitted {} {:.4} TFLOPS / {peak_dtype} peak {peak} ({})",
                        primary.dtype,
                        primary.tflops,
                        primary_stats(primary.tflops_std_error, "TFLOPS")
                    ),
                ),
                compute_half_rows: half_rows,
                compute_half_rows_by_dtype: half_rows_by_dtype,
                compute_fraction_by_dtype: fraction_by_dtype,
                bandwidth_fraction: sourced(
                    bandwidth_fraction,
                    format!(
                        "{prov}: fitted read bandwidth {bw_gb_s:.2} GB/s / spec {} GB/s ({bw_stats})",
                        base.memory_bandwidth_gb_s
                    ),
                ),
                bandwidth_half_mb: half_mb,
                dispatch_overhead_us: dispatch,
                matvec_bandwidth_fraction: matvec,
                matvec_output_ns: matvec_output,
                bandwidth_by_size,
            },
            rental_usd_per_hour: base_file.rental_usd_per_hour.clone(),
            uncertainty: Some(uncertainty),
            connectivity: base_file.connectivity.clone(),
        });
    }

    // No base: the achievable rates stand in for the peaks.
    let mut peak_tflops = BTreeMap::new();
    for c in &fits.compute {
        peak_tflops.insert(
            c.dtype,
            sourced(
                c.tflops,
                format!(
                    "{prov}: fitted achievable {} GEMM rate, not a vendor peak ({})",
                    c.dtype,
                    stats(c.tflops_std_error, "TFLOPS", c.r_squared, c.n_points)
                ),
            ),
        );
    }
    if !peak_tflops.contains_key(&ComputeDtype::Fp16)
        && !peak_tflops.contains_key(&ComputeDtype::Bf16)
    {
        return Err(CalibrateError::Profile(
            "device files need an fp16 or bf16 rate: the input has no fitted fp16/bf16 GEMMs \
             (run the harness suite, which measures them, or give --base)"
                .to_string(),
        ));
    }
    let capacity_gb = match (options.memory_gb, fits.memory_capacity_bytes) {
        (Some(gb), _) => (gb, "given with --memory-gb".to_string()),
        (None, Some(bytes)) => (
            round_sig(bytes / 1e9, 4),
            format!(
                "{prov}: memory_capacity row reported by the {} backend",
                fits.backend
            ),
        ),
        (None, None) => {
            return Err(CalibrateError::Profile(
                "no memory_capacity row and no --memory-gb: the device's memory is unknown"
                    .to_string(),
            ))
        }
    };
    let given_or = |v: Option<f64>, flag: &str, default: f64, why: &str| match v {
        Some(v) => Sourced {
            value: v,
            source: format!("given with {flag}"),
        },
        None => Sourced {
            value: default,
            source: format!("placeholder, not measured: {why}; pass {flag} to planner calibrate"),
        },
    };
    Ok(DeviceFile {
        name: options.name.clone().unwrap_or_else(|| fits.device.clone()),
        family: options
            .family
            .clone()
            .unwrap_or_else(|| default_family(&fits.backend).to_string()),
        notes: Some(
            std::iter::once(format!(
                "Calibrated on `{}` ({} backend) with no catalog base: the peaks and the \
                 memory bandwidth are the fitted achievable rates, so compute_fraction and \
                 bandwidth_fraction are 1 by definition.",
                fits.device, fits.backend
            ))
            .chain(matvec_note)
            .collect::<Vec<_>>()
            .join(" "),
        ),
        peak_tflops,
        memory: MemoryFile {
            bandwidth_gb_s: sourced(
                bw_gb_s,
                format!(
                    "{prov}: fitted achievable read bandwidth, not a vendor figure ({bw_stats})"
                ),
            ),
            reserved_gb: given_or(
                options.reserved_gb,
                "--reserved-gb",
                2.0,
                "an allowance for the operating system",
            ),
            variants: vec![MemoryVariantFile {
                capacity_gb: capacity_gb.0,
                price_usd: None,
                source: capacity_gb.1,
            }],
        },
        power: PowerFile {
            idle_w: given_or(options.idle_w, "--idle-w", 0.0, "power was not measured"),
            load_w: given_or(options.load_w, "--load-w", 100.0, "power was not measured"),
        },
        efficiency: EfficiencyFile {
            compute_fraction: Sourced {
                value: 1.0,
                source: "definition: peak_tflops holds the fitted achievable rate".to_string(),
            },
            compute_half_rows: half_rows,
            compute_half_rows_by_dtype: half_rows_by_dtype,
            // Each type's fitted rate is its peak here.
            compute_fraction_by_dtype: BTreeMap::new(),
            bandwidth_fraction: Sourced {
                value: 1.0,
                source: "definition: memory.bandwidth_gb_s holds the fitted achievable rate"
                    .to_string(),
            },
            bandwidth_half_mb: half_mb,
            dispatch_overhead_us: dispatch,
            matvec_bandwidth_fraction: matvec,
            matvec_output_ns: matvec_output,
            bandwidth_by_size,
        },
        rental_usd_per_hour: None,
        uncertainty: Some(uncertainty),
        connectivity: None,
    })
}

/// The link file for `fits`.
pub fn link_file(fits: &LinkFits, name: &str, provenance: &str) -> LinkFile {
    let p = &fits.pingpong;
    let bw = fits.bandwidth();
    let how = if fits.stream.is_some() {
        "streaming test, t = a + bytes/B"
    } else {
        "ping-pong slope (no streaming rows)"
    };
    let bw_source = format!(
        "{provenance}: {how}, std error {} GB/s, R^2 {:.4}, n = {}",
        round_sig(bw.rate_std_error / 1e9, 2),
        bw.r_squared,
        bw.n_points
    );
    LinkFile {
        max_nodes: None,
        name: name.to_string(),
        transport: Transport::Tcp,
        spec_bandwidth_gb_s: sourced(
            bw.rate / 1e9,
            format!("no specification known: the fitted achievable rate ({bw_source})"),
        ),
        bandwidth_gb_s: sourced(bw.rate / 1e9, bw_source),
        latency_us: sourced(
            p.fixed_s * 1e6,
            format!(
                "{provenance}: ping-pong, one way = rtt/2 = latency + bytes/B, std error {} us, \
                 R^2 {:.4}, n = {}",
                round_sig(p.fixed_s_std_error * 1e6, 2),
                p.r_squared,
                p.n_points
            ),
        ),
        price_usd_per_node: None,
        notes: Some(format!(
            "Measured between planner-harness processes: {}.",
            fits.device
        )),
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn number(v: f64) -> String {
    // `{:?}` keeps a decimal point or an exponent, as TOML floats need.
    format!("{v:?}")
}

fn sourced_line(out: &mut String, key: &str, s: &Sourced<f64>) {
    let _ = writeln!(
        out,
        "{key} = {{ value = {}, source = {} }}",
        number(s.value),
        quote(&s.source)
    );
}

/// The device file as TOML in the catalog's layout (inline `{ value, source }`).
pub fn device_toml(file: &DeviceFile, header: &str) -> String {
    let mut s = String::new();
    for line in header.lines() {
        let _ = writeln!(s, "# {line}");
    }
    let _ = writeln!(s, "name = {}", quote(&file.name));
    let _ = writeln!(s, "family = {}", quote(&file.family));
    if let Some(notes) = &file.notes {
        let _ = writeln!(s, "notes = {}", quote(notes));
    }
    if let Some(r) = &file.rental_usd_per_hour {
        sourced_line(&mut s, "rental_usd_per_hour", r);
    }
    let _ = writeln!(s, "\n[peak_tflops]");
    for (dtype, peak) in &file.peak_tflops {
        sourced_line(&mut s, dtype.name(), peak);
    }
    let _ = writeln!(s, "\n[memory]");
    sourced_line(&mut s, "bandwidth_gb_s", &file.memory.bandwidth_gb_s);
    sourced_line(&mut s, "reserved_gb", &file.memory.reserved_gb);
    let _ = writeln!(s, "variants = [");
    for v in &file.memory.variants {
        let price = v
            .price_usd
            .map_or_else(String::new, |p| format!(", price_usd = {}", number(p)));
        let _ = writeln!(
            s,
            "  {{ capacity_gb = {}{price}, source = {} }},",
            number(v.capacity_gb),
            quote(&v.source)
        );
    }
    let _ = writeln!(s, "]");
    let _ = writeln!(s, "\n[power]");
    sourced_line(&mut s, "idle_w", &file.power.idle_w);
    sourced_line(&mut s, "load_w", &file.power.load_w);
    let e = &file.efficiency;
    let _ = writeln!(s, "\n[efficiency]");
    sourced_line(&mut s, "compute_fraction", &e.compute_fraction);
    sourced_line(&mut s, "compute_half_rows", &e.compute_half_rows);
    sourced_line(&mut s, "bandwidth_fraction", &e.bandwidth_fraction);
    sourced_line(&mut s, "bandwidth_half_mb", &e.bandwidth_half_mb);
    sourced_line(&mut s, "dispatch_overhead_us", &e.dispatch_overhead_us);
    if let Some(f) = &e.matvec_bandwidth_fraction {
        sourced_line(&mut s, "matvec_bandwidth_fraction", f);
    }
    if let Some(c) = &e.matvec_output_ns {
        sourced_line(&mut s, "matvec_output_ns", c);
    }
    if !e.compute_half_rows_by_dtype.is_empty() {
        let _ = writeln!(s, "\n[efficiency.compute_half_rows_by_dtype]");
        for (dtype, half) in &e.compute_half_rows_by_dtype {
            sourced_line(&mut s, dtype.name(), half);
        }
    }
    if !e.compute_fraction_by_dtype.is_empty() {
        let _ = writeln!(s, "\n[efficiency.compute_fraction_by_dtype]");
        for (dtype, f) in &e.compute_fraction_by_dtype {
            sourced_line(&mut s, dtype.name(), f);
        }
    }
    if let Some(b) = &e.bandwidth_by_size {
        let _ = writeln!(s, "\n[efficiency.bandwidth_by_size]");
        sourced_line(&mut s, "decline_per_doubling", &b.decline_per_doubling);
        sourced_line(&mut s, "from_mb", &b.from_mb);
        sourced_line(&mut s, "to_mb", &b.to_mb);
    }
    if let Some(u) = &file.uncertainty {
        let _ = writeln!(s, "\n[uncertainty]");
        sourced_line(&mut s, "compute_relative_sd", &u.compute_relative_sd);
        sourced_line(&mut s, "bandwidth_relative_sd", &u.bandwidth_relative_sd);
        sourced_line(&mut s, "dispatch_relative_sd", &u.dispatch_relative_sd);
    }
    if let Some(c) = &file.connectivity {
        let _ = writeln!(s, "\n[connectivity]");
        let links: Vec<String> = c.links.iter().map(|l| quote(l)).collect();
        let _ = writeln!(s, "links = [{}]", links.join(", "));
        let _ = writeln!(s, "source = {}", quote(&c.source));
    }
    s
}

/// The link file as TOML in the catalog's layout.
pub fn link_toml(file: &LinkFile, header: &str) -> String {
    let mut s = String::new();
    for line in header.lines() {
        let _ = writeln!(s, "# {line}");
    }
    let _ = writeln!(s, "name = {}", quote(&file.name));
    let _ = writeln!(
        s,
        "transport = {}",
        quote(&format!("{:?}", file.transport).to_lowercase())
    );
    sourced_line(&mut s, "spec_bandwidth_gb_s", &file.spec_bandwidth_gb_s);
    sourced_line(&mut s, "bandwidth_gb_s", &file.bandwidth_gb_s);
    sourced_line(&mut s, "latency_us", &file.latency_us);
    if let Some(notes) = &file.notes {
        let _ = writeln!(s, "notes = {}", quote(notes));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibrate::{fit_device, Statistic};
    use crate::hardware::Link;
    use crate::microbench::{Kernel, MicrobenchRow};

    fn rows() -> Vec<MicrobenchRow> {
        // Reads: 10 us + bytes / 20 GB/s. GEMMs in fp32 and fp16: 200 and 100 GFLOP/s
        // at full size, half at 8 rows. Dispatch 3 us each.
        let mut rows = vec![MicrobenchRow::memory_capacity("cpu", "t", 32e9)];
        for e in 20..=30 {
            let b = 2f64.powi(e);
            rows.push(MicrobenchRow::timed(
                "cpu",
                "t",
                Kernel::Read,
                Some(ComputeDtype::Fp32),
                [0, 0, 0],
                b,
                0.0,
                &[10e-6 + b / 20e9],
            ));
        }
        for (dtype, rate) in [(ComputeDtype::Fp32, 200e9), (ComputeDtype::Fp16, 100e9)] {
            for m in [128u64, 256, 512, 1024, 2048, 4096] {
                let (n, k) = (4096u64, 4096u64);
                let flops = 2.0 * (m * n * k) as f64;
                let t = flops / (rate * m as f64 / (m as f64 + 8.0));
                rows.push(MicrobenchRow::timed(
                    "cpu",
                    "t",
                    Kernel::Gemm,
                    Some(dtype),
                    [m, n, k],
                    4.0 * (m * k + k * n + m * n) as f64,
                    flops,
                    &[t],
                ));
            }
        }
        for l in [1u64, 8, 64, 512] {
            rows.push(MicrobenchRow::timed(
                "cpu",
                "t",
                Kernel::Dispatch,
                None,
                [l, 0, 0],
                0.0,
                0.0,
                &[1e-6 + l as f64 * 3e-6],
            ));
        }
        rows
    }

    fn options(base: Option<&Device>) -> ProfileOptions<'_> {
        ProfileOptions {
            name: None,
            base,
            provenance: "fitted from t.csv by `planner calibrate t.csv --name t`".to_string(),
            family: None,
            memory_gb: None,
            reserved_gb: None,
            idle_w: None,
            load_w: None,
        }
    }

    #[test]
    fn cpu_profile_without_base_is_a_valid_device_file() {
        let fits = fit_device(&rows(), None, Statistic::Median).unwrap();
        let file = device_file(&fits, &options(None)).unwrap();
        let text = device_toml(&file, "test header");
        let device = Device::from_toml("t", "t.toml", &text).unwrap();
        // Peaks are the fitted rates: 0.2 and 0.1 TFLOPS; bandwidth 20 GB/s.
        assert!((device.peak_tflops[&ComputeDtype::Fp32] - 0.2).abs() < 1e-9);
        assert!((device.peak_tflops[&ComputeDtype::Fp16] - 0.1).abs() < 1e-9);
        assert!((device.memory_bandwidth_gb_s - 20.0).abs() < 1e-9);
        // Half bytes = 10 us x 20 GB/s = 200 kB = 0.2 MB; dispatch 3 us.
        assert!((device.efficiency.bandwidth_half_bytes - 0.2e6).abs() < 1.0);
        assert!((device.efficiency.dispatch_overhead_s - 3e-6).abs() < 1e-12);
        assert!((device.efficiency.compute_half_rows - 8.0).abs() < 1e-6);
        assert_eq!(device.family, "cpu");
        assert_eq!(device.variants[0].capacity_gb, 32.0);
        assert!(text.contains("fitted from t.csv"), "{text}");
        assert!(device.uncertainty.is_some());
    }

    #[test]
    fn base_device_keeps_specs_and_gets_fractions() {
        let base_text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/hardware/m3-ultra-80c.toml"
        ))
        .unwrap();
        let base = Device::from_toml("m3-ultra-80c", "m3.toml", &base_text).unwrap();
        let opts = options(Some(&base));
        let fits = fit_device(&rows(), Some(ComputeDtype::Fp16), Statistic::Median).unwrap();
        let file = device_file(&fits, &opts).unwrap();
        let device = Device::from_toml("x", "x.toml", &device_toml(&file, "")).unwrap();
        // fp16: 0.1 TFLOPS fitted / 28.6 peak = 0.0034965; 20 GB/s / 819 = 0.02442.
        assert!((device.efficiency.compute_fraction - 0.1 / 28.6).abs() < 1e-6);
        assert!((device.efficiency.bandwidth_fraction - 20.0 / 819.0).abs() < 1e-5);
        assert_eq!(device.peak_tflops, base.peak_tflops);
        assert_eq!(device.family, "apple");
        // The base's notes come first, then the calibration's; calibrating on the
        // result again keeps one copy of each.
        let notes = file.notes.clone().unwrap();
        assert!(
            notes.starts_with(base.file.notes.as_deref().unwrap()),
            "{notes}"
        );
        assert_eq!(notes.matches(CALIBRATED_ON).count(), 1, "{notes}");
        let again_base =
            Device::from_toml("m3-ultra-80c", "m3.toml", &device_toml(&file, "")).unwrap();
        let again = device_file(&fits, &options(Some(&again_base))).unwrap();
        assert_eq!(again.notes, file.notes);
        // The base's ports come along, so scenarios can still wire the device.
        assert_eq!(
            device.links,
            ["thunderbolt-5", "thunderbolt-5-rdma", "ethernet-10g"]
        );
    }

    #[test]
    fn link_profile_parses_as_a_link() {
        let rows: Vec<MicrobenchRow> = [8.0, 4096.0, 1048576.0, 67108864.0]
            .iter()
            .map(|b| {
                MicrobenchRow::timed(
                    "net",
                    "a -> b",
                    Kernel::TcpPingpong,
                    None,
                    [0, 0, 0],
                    *b,
                    0.0,
                    &[2.0 * (30e-6 + b / 2e9)],
                )
            })
            .collect();
        let fits = crate::calibrate::fit_link(&rows, Statistic::Median).unwrap();
        let text = link_toml(&link_file(&fits, "lo", "fitted"), "h");
        let link = Link::from_toml("lo", "lo.toml", &text).unwrap();
        // 30 us one way; 2 GB/s from the ping-pong slope.
        assert!((link.latency_us - 30.0).abs() < 1e-6);
        assert!((link.bandwidth_gb_s - 2.0).abs() < 1e-6);
    }

    #[test]
    fn rounding_keeps_significant_digits() {
        // 0.000123456 to 4 digits: 0.0001235; 98765 to 2 digits: 99000.
        assert_eq!(round_sig(0.000123456, 4), 0.0001235);
        assert_eq!(round_sig(98765.0, 2), 99000.0);
    }
}
