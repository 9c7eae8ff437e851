//! Shared helpers: the catalog, scenario files in a temporary directory, and running
//! the `planner` binary.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use planner::{Catalog, CatalogSources};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn catalog() -> Catalog {
    Catalog::from_sources(&CatalogSources::read_dir(&repo()).expect("catalog directories"))
        .expect("the shipped catalog parses")
}

/// A fresh directory under the system's temporary directory, removed (with what the
/// test wrote there) when the value is dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("planner-tests-")
        .tempdir()
        .expect("a temporary directory")
}

/// A path named `name` in a directory of its own; the directory, with whatever was
/// written there, is removed when the value is dropped, so keep it alive while the
/// path is in use.
pub struct TempPath {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Deref for TempPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

/// `name` in a fresh directory, not created (for a command that writes it).
pub fn temp_path(name: &str) -> TempPath {
    let dir = temp_dir();
    let path = dir.path().join(name);
    TempPath { _dir: dir, path }
}

/// Writes `text` to `scenario.toml` in a fresh directory.
pub fn scenario_file(text: &str) -> TempPath {
    let file = temp_path("scenario.toml");
    std::fs::write(&*file, text).unwrap();
    file
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
