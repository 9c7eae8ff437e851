//! Shared helpers: the catalog, scenario files in a temporary directory, and running
//! the `planner` binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use planner::{Catalog, CatalogSources};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn catalog() -> Catalog {
    Catalog::from_sources(&CatalogSources::read_dir(&repo()).expect("catalog directories"))
        .expect("the shipped catalog parses")
}

/// Writes `text` to a fresh file and returns its path.
pub fn scenario_file(text: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("planner-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("s{}.toml", COUNTER.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn planner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_planner"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("planner runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A valid single-device scenario to mutate in tests.
pub const BASE: &str = r#"
[model]
preset = "llama-3.1-8b"
weights = "f16"

[runtime]
preset = "mlx"

[[cluster.groups]]
device = "m3-ultra-80c"
memory_gb = 256

[workload]
prompt_tokens = 1024
output_tokens = 16
"#;
