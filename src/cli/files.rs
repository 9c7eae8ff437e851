//! Output files are written completely or not at all: each goes to a temporary name in
//! the same directory and is renamed into place once whole.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Keep the extension last: image encoders choose the format by it.
    path.with_file_name(format!(".partial-{}-{name}", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_name(path);
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
    let temps: Vec<PathBuf> = paths.iter().map(|p| temp_name(p)).collect();
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
