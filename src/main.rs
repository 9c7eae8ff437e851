//! `planner`: command-line entry point. `main` only maps `run`'s result to an exit
//! code: 0 success, 2 invalid input, 3 a valid scenario that cannot run.

mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use cli::catalog_files::{catalog_root, load_catalog};
use cli::output;
use planner::analytical::band::band;
use planner::analytical::{simulate, RunError};
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
        /// Also print the one-sigma prediction band of calibrated devices in the table
        /// (JSON always has `band`, null when no device in the scenario was calibrated).
        #[arg(long)]
        band: bool,
    },
    /// Fit device and link profiles to planner-harness measurements.
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
    match cli.command {
        Command::Simulate {
            scenario,
            format,
            band,
        } => simulate_command(&catalog, &scenario, format, band),
        Command::Calibrate(args) => Ok(cli::calibrate::run(&catalog, *args)?),
        Command::Hardware { action } => {
            let text = match action {
                ListShow::List => cli::show::hardware_list(&catalog),
                ListShow::Show { id } => cli::show::hardware_show(&catalog, &id)?,
            };
            print!("{text}");
            Ok(())
        }
        Command::Models { action } => {
            let text = match action {
                ListShow::List => cli::show::models_list(&catalog),
                ListShow::Show { id } => cli::show::models_show(&catalog, &id)?,
            };
            print!("{text}");
            Ok(())
        }
    }
}

/// Reads and validates a scenario file.
fn read_scenario(catalog: &planner::Catalog, path: &Path) -> Result<Scenario, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scenario {}", path.display()))
        .map_err(Failure::Input)?;
    let display = path.display().to_string();
    Scenario::from_toml(&display, &text, catalog).map_err(|e| Failure::Input(e.into()))
}

fn simulate_command(
    catalog: &planner::Catalog,
    path: &Path,
    format: Format,
    show_band: bool,
) -> Result<(), Failure> {
    let scenario = read_scenario(catalog, path)?;
    let report =
        simulate(&scenario).map_err(|RunError::Unsupported(reason)| Failure::CannotRun(reason))?;
    let band = if report.memory.fits {
        band(&scenario).map_err(|RunError::Unsupported(reason)| Failure::CannotRun(reason))?
    } else {
        None
    };
    print!(
        "{}",
        output::render_with_band(&report, band.as_ref(), show_band, format)
            .map_err(Failure::Other)?
    );
    if !report.memory.fits {
        return Err(Failure::CannotRun(
            report
                .reason
                .clone()
                .unwrap_or_else(|| "does not fit".to_string()),
        ));
    }
    Ok(())
}
