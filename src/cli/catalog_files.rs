//! Finding and reading the catalog directories (`hardware/`, `hardware/links/`,
//! `models/`, `runtimes/`, `formats/`).
//!
//! The root is, in order: `--catalog DIR`, `$PLANNER_CATALOG`, the current directory
//! when it holds `hardware/` and `models/`, and the source checkout the binary was
//! built from.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use planner::{Catalog, CatalogSources, SourceText};

pub fn catalog_root(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("PLANNER_CATALOG") {
        return PathBuf::from(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        if cwd.join("hardware").is_dir() && cwd.join("models").is_dir() {
            return cwd;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.toml` file directly in `dir`, sorted by name, as (stem, display, text).
fn read_dir_tomls(root: &Path, sub: &str) -> Result<Vec<SourceText>> {
    let dir = root.join(sub);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .with_context(|| format!("cannot read catalog directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let id = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(SourceText {
                id,
                file: format!(
                    "{sub}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                text,
            })
        })
        .collect()
}

pub fn load_catalog(root: &Path) -> Result<Catalog> {
    let sources = CatalogSources {
        devices: read_dir_tomls(root, "hardware")?,
        links: read_dir_tomls(root, "hardware/links")?,
        models: read_dir_tomls(root, "models")?,
        runtimes: read_dir_tomls(root, "runtimes")?,
        formats: read_dir_tomls(root, "formats")?,
    };
    Ok(Catalog::from_sources(&sources)?)
}
