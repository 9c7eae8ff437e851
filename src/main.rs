//! `planner`: command-line entry point. `main` only maps `run`'s result to an exit
//! code: 0 success, 2 invalid input, 3 a valid scenario that cannot run.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use cli::catalog_files::{catalog_root, load_catalog};
use planner::analytical::RunError;
use planner::{InputError, Scenario};

#[derive(Parser)]
#[command(
    name = "planner",
    version,
    about = "Performance model and capacity planner for LLM inference"
)]
struct Cli {
    /// Catalog root holding hardware/, models/, runtimes/ and formats/ (default: the
    /// current directory if it has them, else the checkout planner was built from).
    #[arg(long, global = true)]
    catalog: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand)]
enum Command {
    /// Predict time, memory and cost for a scenario file.
    Simulate {
        scenario: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Directory for result files: summary.json, report.md, report.html, CSV and
        /// charts; for serving runs also requests.csv, queue.csv, the timeline and
        /// latency CDFs.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also print the one-sigma prediction band of calibrated devices in the table
        /// (JSON always has `band`, null when no device in the scenario was calibrated).
        #[arg(long)]
        band: bool,
        /// KEY=VALUE: set a dotted scenario key before running it (e.g.
        /// cluster.groups.0.count=3, workload.prompt_tokens=8192; the keys sweep's
        /// --vary takes); repeat for several. The output's name lists them.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Shortest prompt from which layer-wise KV streaming hides behind the prefill
    /// (for a scenario with [disaggregation]).
    Overlap {
        scenario: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// KEY=VALUE: set a dotted scenario key (as sweep's --vary, one value); repeat
        /// for several.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Run a scenario over a grid of values of its keys, one row per point.
    Sweep {
        scenario: PathBuf,
        /// KEY=V1,V2,...: a dotted scenario key (e.g. cluster.network.latency_us) and
        /// its values; repeat for a grid.
        #[arg(long = "vary", required = true)]
        vary: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Directory for the report: report.md, report.html, sweep.csv and charts.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Simulate several scenarios and compare latency, throughput and cost; the
    /// first is the baseline of the cost-efficiency ratios.
    Compare {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Directory for the report: report.md, report.html, compare.csv,
        /// compare.json and charts.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Title of the comparison.
        #[arg(long)]
        title: Option<String>,
        /// A published value of the best scenario's tokens/s per $1,000 over the
        /// first's, to set beside the computed one.
        #[arg(long)]
        reference_ratio: Option<f64>,
        /// Where --reference-ratio comes from (quoted in the output).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Fit device and link profiles to planner-harness measurements, or a runtime
    /// profile to end-to-end measurements (`--runtime`: measurements.csv or llama-bench).
    Calibrate(Box<cli::calibrate::CalibrateArgs>),
    /// List devices and links, or show one with every source.
    Hardware {
        #[command(subcommand)]
        action: ListShow,
    },
    /// List models, or show one with derived parameter counts and per-token costs.
    Models {
        #[command(subcommand)]
        action: ListShow,
    },
    /// List runtime profiles, or show one with every fitted value and its source.
    Runtimes {
        #[command(subcommand)]
        action: ListShow,
    },
    /// Search cluster options for a plan: ranked table, Pareto frontier, rejections.
    Plan {
        plan: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Show progress even when stderr is not a terminal (plain lines, for logs).
        #[arg(long)]
        progress: bool,
        /// Directory for the report: report.md, report.html, CSV of the ranked,
        /// Pareto and verified options, and charts.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Predicted against published measurements, with the error of every case.
    Validate {
        /// The suite (mapping of measurements to scenarios).
        #[arg(long, default_value = cli::validate::DEFAULT_SUITE)]
        suite: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: ValidateFormat,
        /// Also write cases.csv, validation.json, accuracy.md and the parity chart here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the scenario the suite builds for case ID (e.g. V025), with its
        /// measurement and source as comments, instead of running the suite; pipe it to
        /// a file and `planner simulate` it to see the prediction's breakdown.
        #[arg(long, value_name = "ID")]
        show_case: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ValidateFormat {
    Table,
    Json,
    Markdown,
}

impl Command {
    /// The report directory the command was given with `--out`.
    fn out_dir(&self) -> Option<&Path> {
        match self {
            Command::Simulate { out, .. }
            | Command::Sweep { out, .. }
            | Command::Compare { out, .. }
            | Command::Plan { out, .. }
            | Command::Validate { out, .. } => out.as_deref(),
            _ => None,
        }
    }
}

#[derive(Subcommand)]
enum ListShow {
    /// One line per catalog entry.
    List,
    /// One entry in full.
    Show { id: String },
}

/// Errors that decide the exit code.
enum Failure {
    Input(anyhow::Error),
    CannotRun(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        if e.downcast_ref::<InputError>().is_some() {
            Failure::Input(e)
        } else {
            Failure::Other(e)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::CannotRun(reason)) => {
            eprintln!("cannot run: {reason}");
            ExitCode::from(3)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let root = catalog_root(cli.catalog.as_deref());
    let catalog = load_catalog(&root)?;
    // A report directory that cannot be made fails before the command's work (a plan
    // search, the validation suite), not after it; one made here is removed again if
    // the command fails before writing into it.
    let made = match cli.command.out_dir() {
        Some(dir) if !dir.is_dir() => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .map_err(Failure::Other)?;
            Some(dir.to_path_buf())
        }
        _ => None,
    };
    let result = run_command(cli.command, &root, &catalog);
    if let (Err(_), Some(dir)) = (&result, made) {
        let _ = std::fs::remove_dir(dir);
    }
    result
}

fn run_command(command: Command, root: &Path, catalog: &planner::Catalog) -> Result<(), Failure> {
    match command {
        Command::Simulate {
            scenario,
            format,
            out,
            band,
            set,
        } => cli::serve::run(catalog, &scenario, &set, format, out.as_deref(), band),
        Command::Sweep {
            scenario,
            vary,
            format,
            out,
        } => {
            print!(
                "{}",
                cli::sweep::run(catalog, &scenario, &vary, format, out.as_deref())?
            );
            Ok(())
        }
        Command::Compare {
            scenarios,
            format,
            out,
            title,
            reference_ratio,
            reference,
        } => cli::compare::run(
            catalog,
            &scenarios,
            format,
            out.as_deref(),
            title,
            reference_ratio,
            reference,
        ),
        Command::Overlap {
            scenario,
            format,
            set,
        } => {
            let scenario = read_scenario(catalog, &scenario, &set)?;
            let report = planner::analytical::disaggregated::overlap(&scenario)
                .map_err(|RunError::Unsupported(reason)| Failure::CannotRun(reason))?;
            print!(
                "{}",
                cli::overlap::render(&report, format).map_err(Failure::Other)?
            );
            Ok(())
        }
        Command::Calibrate(args) => Ok(cli::calibrate::run(catalog, root, *args)?),
        Command::Hardware { action } => list_or_show(
            catalog,
            action,
            cli::show::hardware_list,
            cli::show::hardware_show,
        ),
        Command::Plan {
            plan: path,
            format,
            progress,
            out,
        } => {
            let plan = cli::plan::load(catalog, &path)?;
            let result = cli::plan::search(catalog, &plan, progress);
            if let Some(dir) = out {
                // How close the model came on the devices shown: the validation suite
                // of the catalog in use (a report without it says why).
                let validation =
                    cli::validate::run_suite(catalog, &root.join(cli::validate::DEFAULT_SUITE))
                        .map_err(|e| format!("{e:#}"));
                cli::report::plan::write(&dir, &path, catalog, &plan, &result, &validation)?;
            }
            let text = match format {
                Format::Json => {
                    serde_json::to_string_pretty(&result).map_err(anyhow::Error::from)? + "\n"
                }
                Format::Csv => String::from_utf8(cli::report::plan::ranked_csv(&result)?)
                    .map_err(anyhow::Error::from)?,
                Format::Table => cli::plan::table(&plan, &result),
            };
            print!("{text}");
            Ok(())
        }
        Command::Validate {
            suite,
            format,
            out,
            show_case,
        } => {
            let suite = cli::validate::resolve_suite(root, &suite);
            if let Some(id) = show_case {
                print!("{}", cli::validate::show_case(catalog, &suite, &id)?);
                return Ok(());
            }
            let result = cli::validate::run_suite(catalog, &suite)?;
            if let Some(dir) = out {
                cli::validate::write_outputs(&result, &dir)?;
            }
            let text = match format {
                ValidateFormat::Table => cli::validate::table(&result),
                ValidateFormat::Markdown => cli::validate::markdown(&result),
                ValidateFormat::Json => {
                    serde_json::to_string_pretty(&result).map_err(anyhow::Error::from)? + "\n"
                }
            };
            print!("{text}");
            Ok(())
        }
        Command::Models { action } => list_or_show(
            catalog,
            action,
            cli::show::models_list,
            cli::show::models_show,
        ),
        Command::Runtimes { action } => list_or_show(
            catalog,
            action,
            cli::show::runtimes_list,
            cli::show::runtimes_show,
        ),
    }
}

/// Prints a catalog listing (`list`) or one entry with its sources (`show ID`).
fn list_or_show(
    catalog: &planner::Catalog,
    action: ListShow,
    list: fn(&planner::Catalog) -> String,
    show: fn(&planner::Catalog, &str) -> anyhow::Result<String>,
) -> Result<(), Failure> {
    let text = match action {
        ListShow::List => list(catalog),
        ListShow::Show { id } => show(catalog, &id)?,
    };
    print!("{text}");
    Ok(())
}

/// The scenario file at `path`, with `simulate`'s and `overlap`'s `--set KEY=VALUE`
/// assignments applied.
fn read_scenario(
    catalog: &planner::Catalog,
    path: &Path,
    sets: &[String],
) -> Result<Scenario, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scenario {}", path.display()))
        .map_err(Failure::Input)?;
    let display = path.display().to_string();
    Ok(cli::edit::with_sets(catalog, &display, &text, sets)?)
}
