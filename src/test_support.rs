//! Unit-test helpers: the shipped catalog, read from the checkout (tests only; the
//! library itself reads no files).

use std::path::PathBuf;

use crate::{Catalog, CatalogSources, Scenario};

pub fn catalog() -> Catalog {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Catalog::from_sources(&CatalogSources::read_dir(&root).expect("catalog directories"))
        .expect("the shipped catalog parses")
}

/// A scenario from TOML text, validated against the shipped catalog.
pub fn scenario(text: &str) -> Scenario {
    Scenario::from_toml("test.toml", text, &catalog()).expect("valid test scenario")
}
