//! Output files are written completely or not at all: each goes to a temporary name in
//! the same directory ([`planner::files::partial_path`]) and is renamed into place
//! once whole.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use planner::files::partial_path;

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = partial_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// Runs `write` on temporary paths standing for `paths`, then renames them all into
/// place; on failure the temporary files are removed and nothing is replaced.
pub fn with_temp_paths(
    paths: &[&Path],
    write: impl FnOnce(&[PathBuf]) -> Result<()>,
) -> Result<()> {
    let temps: Vec<PathBuf> = paths.iter().map(|p| partial_path(p)).collect();
    let result = write(&temps);
    if result.is_err() {
        for t in &temps {
            let _ = std::fs::remove_file(t);
        }
        return result;
    }
    for (t, p) in temps.iter().zip(paths) {
        std::fs::rename(t, p).with_context(|| format!("cannot move {} into place", p.display()))?;
    }
    Ok(())
}
