//! Output files are written completely or not at all: each is written under a
//! temporary name beside its destination and renamed into place once whole
//! (`planner`'s report files, `planner-harness`'s CSVs).

use std::path::{Path, PathBuf};

/// The temporary name `path` is written under: `.partial-PID-NAME` in the same
/// directory, so that the rename stays on one file system. The extension stays last:
/// image encoders choose the format by it.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".partial-{}-{name}", std::process::id()))
}
