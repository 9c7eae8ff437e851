//! `planner-harness`: measures a device (and a network link) for `planner calibrate`,
//! and runs a real decode benchmark to check the chain measure -> calibrate -> predict.
//!
//! ```text
//! planner-harness run --backend cpu|cuda|metal [--quick] --out FILE.csv
//! planner-harness net serve [--bind 127.0.0.1:7878] [--max-connections N] [--timeout-s S]
//! planner-harness net probe --peer HOST:PORT [--quick] --out FILE.csv
//! planner-harness decode [--backend cpu|cuda] --model ID [--layers N] [--prompt P] [--tokens T] --out FILE.json
//! ```

mod backend;
mod decode;
mod kernels;
mod measure;
mod net;
mod out;
mod suite;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use out::OutFile;
use planner::microbench::{write_csv, Kernel, MicrobenchRow};

#[derive(Parser)]
#[command(
    name = "planner-harness",
    version,
    about = "Microbenchmarks, network probe and decode benchmark for planner calibrate"
)]
struct Cli {
    /// Catalog root with models/ (default: $PLANNER_CATALOG, the current directory, or
    /// the checkout this binary was built from).
    #[arg(long, global = true)]
    catalog: Option<PathBuf>,
    /// Worker threads (default: one per logical CPU).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the microbenchmark suite (GEMM, GEMV, bandwidth, dispatch) and write CSV.
    Run {
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Fewer shapes and sizes, shorter timing: minutes, not tens of minutes.
        #[arg(long)]
        quick: bool,
        /// Catalog models whose layer shapes the GEMMs use (comma-separated).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Only these kernels (comma-separated: gemm, gemv, read, copy, triad, dispatch).
        #[arg(long, value_delimiter = ',', value_parser = parse_kernel)]
        kernels: Option<Vec<Kernel>>,
        /// CPU: MiB written and read before every timed repetition to evict the caches
        /// (default: 8 x the last-level cache, at least 256).
        #[arg(long)]
        flush_mib: Option<usize>,
        #[arg(long)]
        out: PathBuf,
    },
    /// TCP latency and bandwidth between two planner-harness processes.
    Net {
        #[command(subcommand)]
        action: NetAction,
    },
    /// Run a transformer decoder with random weights of a catalog shape, on the CPU or
    /// (a build with `--features cuda`) an NVIDIA GPU.
    Decode {
        #[arg(long, default_value = "cpu")]
        backend: String,
        /// Catalog model id (a dense model).
        #[arg(long)]
        model: String,
        /// Run only the first N layers (default: all).
        #[arg(long)]
        layers: Option<u32>,
        /// Tokens put in the KV cache before timing.
        #[arg(long, default_value_t = 32)]
        prompt: usize,
        /// Decode steps timed.
        #[arg(long, default_value_t = 32)]
        tokens: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output file: .csv for one CSV row, anything else JSON.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum NetAction {
    /// Answer probes; binds 127.0.0.1 unless told otherwise.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7878")]
        bind: String,
        /// Stop after serving this many connections.
        #[arg(long, default_value_t = 16)]
        max_connections: usize,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
    /// Probe a server and write CSV rows (backend `net`).
    Probe {
        #[arg(long)]
        peer: String,
        #[arg(long)]
        quick: bool,
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_kernel(s: &str) -> Result<Kernel, String> {
    [
        Kernel::Gemm,
        Kernel::Gemv,
        Kernel::Read,
        Kernel::Copy,
        Kernel::Triad,
        Kernel::Dispatch,
    ]
    .into_iter()
    .find(|k| k.name() == s)
    .ok_or_else(|| {
        format!("unknown kernel `{s}`: expected gemm, gemv, read, copy, triad or dispatch")
    })
}

fn write_rows(out: OutFile, rows: &[MicrobenchRow]) -> Result<()> {
    let mut bytes = Vec::new();
    write_csv(&mut bytes, rows)?;
    let path = out.commit(&bytes)?;
    eprintln!("wrote {} rows to {}", rows.len(), path.display());
    Ok(())
}

/// Errors print as one line with their causes (`error: ... : ...`) and exit 1, without
/// the debug form and backtrace `fn main() -> Result` would show.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(n) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot size the thread pool")?;
    }
    let root = suite::catalog_root(cli.catalog.as_deref());
    match cli.command {
        Command::Run {
            backend,
            quick,
            models,
            kernels,
            flush_mib,
            out,
        } => {
            let start = Instant::now();
            let out = OutFile::reserve(&out)?;
            let mut backend = backend::open(&backend, cli.threads, flush_mib.map(|m| m << 20))?;
            let ids: Vec<String> = models.unwrap_or_else(|| {
                let list: &[&str] = if quick {
                    &suite::QUICK_MODELS
                } else {
                    &suite::FULL_MODELS
                };
                list.iter().map(|s| s.to_string()).collect()
            });
            let models = ids
                .iter()
                .map(|id| suite::load_model(&root, id))
                .collect::<Result<Vec<_>>>()?;
            let mut plan = suite::Plan::new(&models, quick, backend.max_stream_bytes(quick));
            plan.kernels = kernels.unwrap_or_default();
            let rows = suite::run(backend.as_mut(), &plan)?;
            write_rows(out, &rows)?;
            eprintln!("suite took {:.1} s", start.elapsed().as_secs_f64());
        }
        Command::Net { action } => match action {
            NetAction::Serve {
                bind,
                max_connections,
                timeout_s,
            } => {
                let listener = std::net::TcpListener::bind(&bind)
                    .with_context(|| format!("cannot bind {bind}"))?;
                eprintln!(
                    "net serve: listening on {} (at most {max_connections} connections, {timeout_s} s)",
                    listener.local_addr()?
                );
                net::serve(listener, max_connections, Duration::from_secs(timeout_s))?;
            }
            NetAction::Probe { peer, quick, out } => {
                let out = OutFile::reserve(&out)?;
                let rows = net::probe(peer.as_str(), &net::ProbePlan::new(quick))?;
                write_rows(out, &rows)?;
            }
        },
        Command::Decode {
            backend,
            model,
            layers,
            prompt,
            tokens,
            seed,
            out,
        } => {
            let model = suite::load_model(&root, &model)?;
            let out = out.as_deref().map(OutFile::reserve).transpose()?;
            let target = match backend.as_str() {
                "cpu" => decode::cpu_target(format!(
                    "{} ({} threads)",
                    backend::cpu::cpu_model(),
                    rayon::current_num_threads()
                )),
                #[cfg(feature = "cuda")]
                "cuda" => backend::cuda_decode::target(0)?,
                other => anyhow::bail!(
                    "the decode benchmark runs on the cpu backend{}, not `{other}`",
                    if cfg!(feature = "cuda") {
                        " and the cuda one"
                    } else {
                        " (and on cuda in a build with --features cuda)"
                    }
                ),
            };
            let layers = layers.unwrap_or(model.layers);
            let result = decode::run(&model, layers, prompt, tokens, seed, target)?;
            eprintln!(
                "decode {} ({} of {} layers, f32): {:.3} tokens/s over {} tokens after {} in cache \
                 (layers {:.1} ms + head {:.1} ms per step; full depth {:.3} tokens/s)",
                result.model,
                result.layers_run,
                result.model_layers,
                result.tokens_per_s,
                result.tokens,
                result.prompt_tokens,
                result.layers_s_per_step * 1e3,
                result.head_s_per_step * 1e3,
                result.full_depth_tokens_per_s
            );
            let csv = out
                .as_ref()
                .is_some_and(|o| o.path().extension().is_some_and(|e| e == "csv"));
            let text = if csv {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.serialize(&result)?;
                String::from_utf8(w.into_inner()?)?
            } else {
                serde_json::to_string_pretty(&result)? + "\n"
            };
            match out {
                Some(out) => {
                    out.commit(text.as_bytes())?;
                }
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}
