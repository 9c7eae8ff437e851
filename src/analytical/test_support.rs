//! Test helpers: the shipped catalog and scenarios built from text.

use crate::Scenario;

pub use crate::test_support::{catalog, scenario};

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
