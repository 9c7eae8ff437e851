//! `planner calibrate`: fits device (and link) profiles to `planner-harness` CSVs.
//!
//! ```text
//! planner calibrate FILE.csv... [--name NAME] [--base DEVICE] [--out FILE.toml]
//!                   [--link-out FILE.toml] [--format table|json]
//! ```
//!
//! The device profile is a hardware file: write it as `hardware/<id>.toml` of the
//! catalog in use and a scenario names it `device = "<id>"`. `--runtime ID --from
//! FILE` is reserved for fitting runtime profiles to end-to-end measurements.

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use planner::calibrate::profile::{device_file, device_toml, link_file, link_toml, ProfileOptions};
use planner::calibrate::{
    device_fit_list, fit_device, fit_link, held_out_errors, link_fit_list, prediction_errors,
    rough_fit_notes, Fit, HeldOut, Statistic, LOOPBACK_NOTE,
};
use planner::catalog::CatalogKind;
use planner::hardware::{ComputeDtype, Device, Link};
use planner::microbench::{read_csv, unsettled, MicrobenchRow, UNSETTLED_SPREAD};
use planner::{Catalog, InputError};

#[derive(Clone, Copy, ValueEnum)]
pub enum CalibrateFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct CalibrateArgs {
    /// CSV files written by `planner-harness run` or `planner-harness net probe`.
    pub files: Vec<PathBuf>,
    /// Display name of the profile (default: the device name in the CSV).
    #[arg(long)]
    pub name: Option<String>,
    /// Catalog device whose published specs the profile keeps; the fits then set its
    /// efficiency fractions.
    #[arg(long)]
    pub base: Option<String>,
    /// Where to write the device profile (e.g. hardware/NAME.toml); with `--runtime`,
    /// the fitted runtime profile (e.g. runtimes/NAME.toml, one runtime).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to write the link profile from network rows (e.g. hardware/links/NAME.toml).
    #[arg(long)]
    pub link_out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: CalibrateFormat,
    /// Which time of each row the fits use.
    #[arg(long, value_enum, default_value = "median")]
    pub statistic: Statistic,
    /// Device family for runtime profiles (default: cpu, nvidia or apple by backend).
    #[arg(long)]
    pub family: Option<String>,
    /// Data type whose GEMM fit sets compute_fraction and compute_half_rows (default:
    /// fp32 on CPUs, fp16 on GPUs).
    #[arg(long, value_parser = parse_dtype)]
    pub primary_dtype: Option<ComputeDtype>,
    /// Memory capacity in GB when the CSV has no memory_capacity row (no --base).
    #[arg(long)]
    pub memory_gb: Option<f64>,
    /// Memory kept by the operating system, GB (no --base; default 2, a placeholder).
    #[arg(long)]
    pub reserved_gb: Option<f64>,
    /// Idle power, W (no --base; not measured by the harness).
    #[arg(long)]
    pub idle_w: Option<f64>,
    /// Power under load, W (no --base; not measured by the harness).
    #[arg(long)]
    pub load_w: Option<f64>,
    /// Runtime profile to fit from end-to-end measurements (`--from`); `all` for every
    /// runtime the validation suite has a fit spec for.
    #[arg(long, requires = "from")]
    pub runtime: Option<String>,
    /// End-to-end measurements for `--runtime`: validation/measurements.csv rows, or
    /// llama-bench output (`-o csv`, `-o json` or `-o jsonl`; then give --device and
    /// --model).
    #[arg(long, requires = "runtime")]
    pub from: Option<PathBuf>,
    /// llama-bench input: the catalog device the records ran on.
    #[arg(long, requires = "from")]
    pub device: Option<String>,
    /// llama-bench input: the catalog model the records ran (checked against their
    /// parameter count).
    #[arg(long, requires = "from")]
    pub model: Option<String>,
    /// llama-bench input: the weight format id, where the record's quantisation label
    /// has no catalog format.
    #[arg(long, requires = "from")]
    pub weights: Option<String>,
    /// With `--runtime`: the parameters to fit for the input's device families,
    /// comma-separated (default: the suite's list for the runtime).
    #[arg(long, requires = "from", value_delimiter = ',')]
    pub params: Option<Vec<String>>,
    /// The suite mapping measurements to scenarios, for `--runtime`.
    #[arg(long, default_value = crate::cli::validate::DEFAULT_SUITE)]
    pub suite: PathBuf,
    /// With `--runtime`: rewrite runtimes/ID.toml with the fitted values (with
    /// `--out`, write the profile there instead).
    #[arg(long)]
    pub write: bool,
    /// With `--runtime`: show the fit's progress even when stderr is not a terminal
    /// (plain lines, for logs; a terminal shows a spinner regardless).
    #[arg(long, requires = "runtime")]
    pub progress: bool,
}

fn parse_dtype(s: &str) -> Result<ComputeDtype, String> {
    ComputeDtype::ALL
        .into_iter()
        .find(|d| d.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = ComputeDtype::ALL.iter().map(|d| d.name()).collect();
            format!("expected one of {}", names.join(", "))
        })
}

/// What `planner calibrate` prints: the JSON object, or the table made from it.
#[derive(Serialize)]
struct Report {
    #[serde(skip)]
    title: String,
    #[serde(skip)]
    files: String,
    fits: Vec<Fit>,
    held_out: Vec<HeldOut>,
    /// `gemm` rows with one row: in no fit, predicted as matrix-vector products.
    one_row_gemm: Vec<HeldOut>,
    notes: Vec<String>,
    device_profile: Option<String>,
    link_profile: Option<String>,
}

fn input_error(file: &str, message: impl ToString) -> anyhow::Error {
    anyhow::Error::new(InputError::Parse {
        file: file.to_string(),
        message: message.to_string(),
    })
}

fn unknown_device(catalog: &Catalog, id: &str) -> anyhow::Error {
    let suggestions = catalog.suggestions(CatalogKind::Device, id);
    anyhow::Error::new(InputError::unknown_id(
        "command line",
        "--base",
        CatalogKind::Device.noun(),
        id,
        suggestions,
    ))
}

/// The command as typed, for the profile's sources.
/// An argument as a POSIX shell would need it to come back unchanged.
fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// This command line, shell-quoted, for the sources of what it writes.
pub fn invocation() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| shell_quote(&a)).collect();
    format!("planner {}", args.join(" "))
}

fn provenance(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    format!("fitted from {} by `{}`", names.join(", "), invocation())
}

fn write_file(path: &PathBuf, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn stem(path: &std::path::Path) -> String {
    path.file_stem().map_or_else(
        || "calibrated".to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

pub fn run(catalog: &Catalog, root: &std::path::Path, args: CalibrateArgs) -> Result<()> {
    if let (Some(runtime), Some(from)) = (&args.runtime, &args.from) {
        let suite = crate::cli::validate::resolve_suite(root, &args.suite);
        let import = match (&args.device, &args.model) {
            (Some(device), Some(model)) => Some(planner::validate::llama_bench::Import {
                device: device.clone(),
                model: model.clone(),
                weights: args.weights.clone(),
            }),
            _ => None,
        };
        let request = crate::cli::calibrate_runtime::Request {
            runtime,
            from,
            suite_path: &suite,
            import,
            params: args.params.clone(),
            out: args.out.as_deref(),
            progress: args.progress,
        };
        let c = crate::cli::calibrate_runtime::calibrate(catalog, root, &request)?;
        if args.write || args.out.is_some() {
            crate::cli::calibrate_runtime::write(&c)?;
        }
        let text = match args.format {
            CalibrateFormat::Json => crate::cli::calibrate_runtime::json(&c)?,
            _ => crate::cli::calibrate_runtime::table(&c),
        };
        print!("{text}");
        return Ok(());
    }
    if args.files.is_empty() {
        return Err(input_error(
            "command line",
            "no input: give one or more CSV files written by planner-harness",
        ));
    }
    let mut rows: Vec<MicrobenchRow> = Vec::new();
    for path in &args.files {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {display}"))
            .map_err(|e| input_error(&display, format!("{e:#}")))?;
        let file_rows = read_csv(&text).map_err(|e| input_error(&display, e))?;
        if file_rows.is_empty() {
            return Err(input_error(
                &display,
                "no measurement rows: expected the CSV that `planner-harness run` or \
                 `planner-harness net probe` writes (header and at least one row)",
            ));
        }
        rows.extend(file_rows);
    }
    let statistic = args.statistic;
    let files_display = args
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let base = match &args.base {
        Some(id) => Some(
            catalog
                .devices
                .get(id)
                .ok_or_else(|| unknown_device(catalog, id))?,
        ),
        None => None,
    };
    let provenance = provenance(&args.files);
    let has_device_rows = rows.iter().any(|r| !r.kernel.is_network());
    let has_link_rows = rows.iter().any(|r| r.kernel.is_network());

    let mut fits: Vec<Fit> = Vec::new();
    let mut held: Vec<HeldOut> = Vec::new();
    let mut one_row_gemm: Vec<HeldOut> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut device_profile = None;
    let mut link_profile = None;
    let mut title = Vec::new();

    if has_device_rows {
        let device_fits = fit_device(&rows, args.primary_dtype, statistic)
            .map_err(|e| input_error(&files_display, e))?;
        title.push(format!(
            "device `{}` ({} backend)",
            device_fits.device, device_fits.backend
        ));
        fits.extend(device_fit_list(&device_fits));
        notes.extend(device_fits.notes.iter().cloned());
        let options = ProfileOptions {
            name: args.name.clone(),
            base,
            provenance: provenance.clone(),
            family: args.family.clone(),
            memory_gb: args.memory_gb,
            reserved_gb: args.reserved_gb,
            idle_w: args.idle_w,
            load_w: args.load_w,
        };
        let file =
            device_file(&device_fits, &options).map_err(|e| input_error(&files_display, e))?;
        let id = args
            .out
            .as_deref()
            .map_or_else(|| "calibrated".to_string(), stem);
        let header = format!(
            "Device profile written by `planner calibrate`; {provenance}.\n\
             A scenario names it by this file's stem: device = \"{id}\"."
        );
        let text = device_toml(&file, &header);
        // The profile must read back as a catalog device.
        let device = Device::from_toml(&id, &id, &text)
            .context("the calibrated profile does not validate as a device file")?;
        held = held_out_errors(&device_fits, &device);
        one_row_gemm = prediction_errors(&device_fits.one_row_gemm, &device, statistic);
        if let Some(out) = &args.out {
            write_file(out, &text)?;
            device_profile = Some(out.display().to_string());
        }
    }
    if has_link_rows {
        let link_fits = fit_link(&rows, statistic).map_err(|e| input_error(&files_display, e))?;
        title.push(format!("link `{}`", link_fits.device));
        fits.extend(link_fit_list(&link_fits));
        if link_fits.is_loopback() {
            notes.push(LOOPBACK_NOTE.to_string());
        }
        let id = args
            .link_out
            .as_deref()
            .map_or_else(|| "calibrated".to_string(), stem);
        let name = args
            .name
            .clone()
            .unwrap_or_else(|| format!("TCP, {}", link_fits.device));
        let file = link_file(&link_fits, &name, &provenance);
        let text = link_toml(
            &file,
            &format!(
                "Link profile written by `planner calibrate`; {provenance}.\n\
                 A scenario names it by this file's stem: [cluster.network] link = \"{id}\"."
            ),
        );
        Link::from_toml(&id, &id, &text)
            .context("the calibrated profile does not validate as a link file")?;
        if let Some(out) = &args.link_out {
            write_file(out, &text)?;
            link_profile = Some(out.display().to_string());
        }
    } else if args.link_out.is_some() {
        notes.push("--link-out given but the input has no network rows".to_string());
    }
    if !has_device_rows && args.out.is_some() {
        notes.push("--out given but the input has only network rows".to_string());
    }
    notes.extend(rough_fit_notes(&fits));

    let report = Report {
        title: title.join(" and "),
        files: files_display,
        fits,
        held_out: held,
        one_row_gemm,
        notes,
        device_profile,
        link_profile,
    };
    match args.format {
        CalibrateFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        CalibrateFormat::Table => print!("{}", table(&report)),
    }
    Ok(())
}

/// One row per prediction, then the largest and median absolute error.
fn prediction_rows(s: &mut String, heading: &str, rows: &[HeldOut]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{heading}");
    let _ = writeln!(
        s,
        "  {:<7}{:<6}{:>7}{:>7}{:>7}{:>12}{:>13}{:>13}{:>9}{:>8}",
        "kernel", "dtype", "m", "n", "k", "MB", "measured", "predicted", "error", "spread"
    );
    for h in rows {
        let _ = writeln!(
            s,
            "  {:<7}{:<6}{:>7}{:>7}{:>7}{:>12.2}{:>13}{:>13}{:>8.1}%{:>7.2}{}",
            h.kernel.name(),
            h.dtype.map_or("-", |d| d.name()),
            h.m,
            h.n,
            h.k,
            h.bytes / 1e6,
            crate::cli::output::seconds(h.measured_s),
            crate::cli::output::seconds(h.predicted_s),
            h.relative_error * 100.0,
            h.spread,
            if unsettled(h.spread) { " *" } else { "" }
        );
    }
    let mut errors: Vec<f64> = rows.iter().map(|h| h.relative_error.abs()).collect();
    errors.sort_by(f64::total_cmp);
    let _ = writeln!(
        s,
        "  max |error| {:.1}%, median {:.1}% over {} shapes",
        errors.last().copied().unwrap_or(0.0) * 100.0,
        planner::stats::median(&errors).unwrap_or(0.0) * 100.0,
        errors.len()
    );
    let marked = rows.iter().filter(|h| unsettled(h.spread)).count();
    if marked > 0 {
        let _ = writeln!(
            s,
            "  * {marked} of these rows have a median over {UNSETTLED_SPREAD} x their fastest \
             sample (spread): the host slowed them in some passes, so their error says as \
             much about the host as about the fit; run the suite again on a quiet machine"
        );
    }
}

fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Calibration of {} from {}\n", r.title, r.files);
    // As wide as the longest name (efficiency.bandwidth_by_size.decline_per_doubling
    // ran into its value).
    let w =
        crate::cli::output::text_width("parameter", r.fits.iter().map(|f| f.parameter.as_str()));
    let _ = writeln!(
        s,
        "  {:<w$}{:>14}{:>14}{:>10}{:>6}",
        "parameter", "value", "std error", "R^2", "n"
    );
    for f in &r.fits {
        let _ = writeln!(
            s,
            "  {:<w$}{:>14.6}{:>14.6}{:>10.4}{:>6}",
            f.parameter, f.value, f.std_error, f.r_squared, f.n_points
        );
    }
    prediction_rows(
        &mut s,
        "Held-out shapes, predicted with the fitted profile (planner's timing)",
        &r.held_out,
    );
    prediction_rows(
        &mut s,
        "One-row GEMMs (the GEMM library's own one-row path; in no fit), predicted as \
         matrix-vector products",
        &r.one_row_gemm,
    );
    if !r.notes.is_empty() {
        let _ = writeln!(s, "\nNotes");
        for n in &r.notes {
            let _ = writeln!(s, "  - {n}");
        }
    }
    if let Some(p) = &r.device_profile {
        let _ = writeln!(
            s,
            "\nWrote device profile {p}: in a catalog's hardware/ folder a scenario names it \
             `device = \"{}\"`.",
            stem(std::path::Path::new(p))
        );
    }
    if let Some(p) = &r.link_profile {
        let _ = writeln!(
            s,
            "Wrote link profile {p}: in a catalog's hardware/links/ folder a scenario names it \
             `link = \"{}\"`.",
            stem(std::path::Path::new(p))
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{prediction_rows, shell_quote, HeldOut};
    use planner::microbench::Kernel;

    #[test]
    fn rows_the_host_disturbed_are_marked() {
        let row = |spread: f64| HeldOut {
            kernel: Kernel::Read,
            dtype: None,
            m: 1,
            n: 0,
            k: 0,
            bytes: 1e6,
            measured_s: 1e-3,
            predicted_s: 1.1e-3,
            relative_error: 0.1,
            spread,
        };
        let mut s = String::new();
        // 1.15 is the threshold itself: not marked; 1.2 is over it.
        prediction_rows(&mut s, "h", &[row(1.0), row(1.15), row(1.2)]);
        let lines: Vec<&str> = s.lines().collect();
        assert!(!lines[3].ends_with('*') && !lines[4].ends_with('*'), "{s}");
        assert!(lines[5].ends_with("1.20 *"), "{s}");
        assert!(s.contains("* 1 of these rows"), "{s}");
        let mut quiet = String::new();
        prediction_rows(&mut quiet, "h", &[row(1.0)]);
        assert!(!quiet.contains('*'), "{quiet}");
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--out"), "--out");
        assert_eq!(shell_quote("a b"), "'a b'");
        // A quote inside: close, escaped quote, reopen.
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
