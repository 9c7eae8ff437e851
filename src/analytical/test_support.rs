//! Test helpers: the shipped catalog and scenarios built from text.

use std::path::PathBuf;

use crate::{Catalog, CatalogSources, Scenario, SourceText};

fn texts(sub: &str) -> Vec<SourceText> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(sub);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
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
    .unwrap()
}

pub fn scenario(text: &str) -> Scenario {
    Scenario::from_toml("test.toml", text, &catalog()).unwrap()
}

/// DBRX bf16 on `nodes` M2 Ultras over 10 GbE, expert parallel, batch 1.
pub fn dbrx(nodes: u32, extra: &str) -> Scenario {
    scenario(&format!(
        r#"
[model]
preset = "dbrx"
weights = "bf16"
[runtime]
preset = "mlx"
[[cluster.groups]]
device = "m2-ultra-76c"
memory_gb = 192
count = {nodes}
[cluster.network]
link = "ethernet-10g"
[parallelism]
expert = {nodes}
{extra}
[workload]
prompt_tokens = 64
output_tokens = 4
"#
    ))
}
