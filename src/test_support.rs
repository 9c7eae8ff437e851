//! Unit-test helpers: the shipped catalog, read from the checkout (tests only; the
//! library itself reads no files).

use std::path::PathBuf;

use crate::{Catalog, CatalogSources, Scenario, SourceText};

fn texts(sub: &str) -> Vec<SourceText> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(sub);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("catalog directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| SourceText {
            id: p.file_stem().unwrap().to_string_lossy().into_owned(),
            file: p.display().to_string(),
            text: std::fs::read_to_string(&p).unwrap(),
        })
        .collect()
}

pub fn catalog() -> Catalog {
    Catalog::from_sources(&CatalogSources {
        devices: texts("hardware"),
        links: texts("hardware/links"),
        models: texts("models"),
        runtimes: texts("runtimes"),
        formats: texts("formats"),
    })
    .expect("the shipped catalog parses")
}

/// A scenario from TOML text, validated against the shipped catalog.
pub fn scenario(text: &str) -> Scenario {
    Scenario::from_toml("test.toml", text, &catalog()).expect("valid test scenario")
}
