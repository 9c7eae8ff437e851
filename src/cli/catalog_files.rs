//! Finding and reading the catalog directories (`hardware/`, `hardware/links/`,
//! `models/`, `runtimes/`, `formats/`): [`planner::catalog_root`] and
//! [`CatalogSources::read_dir`], with this checkout as the last resort.

use std::path::{Path, PathBuf};

use anyhow::Result;
use planner::{Catalog, CatalogSources};

pub fn catalog_root(flag: Option<&Path>) -> PathBuf {
    planner::catalog_root(flag, Path::new(env!("CARGO_MANIFEST_DIR")))
}

pub fn load_catalog(root: &Path) -> Result<Catalog> {
    Ok(Catalog::from_sources(&CatalogSources::read_dir(root)?)?)
}
