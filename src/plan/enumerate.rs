//! The options a plan searches.
//!
//! A colocated option is one device type and memory variant, a node count, a link
//! (for more than one node) the device has ports for and whose fabric spans that many
//! nodes, tensor x pipeline x expert degrees whose product divides the node count
//! (the remaining factor runs as independent replicas behind a router), a weight
//! format both the model's plan and the runtime allow, and a runtime with a profile
//! for the device's family. A disaggregated option puts prefill on one device type
//! and decode on another (1, 2, 4 or 8 single-node instances each), linked by a link
//! both have ports for. Degrees the model cannot take (a tensor degree that does not
//! divide the heads) are screened out as invalid layouts by the scenario contract.

use serde::Serialize;

use super::file::Plan;
use crate::catalog::Catalog;
use crate::hardware::Device;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Colocated {
    pub device: String,
    pub memory_gb: f64,
    pub nodes: u32,
    pub link: Option<String>,
    pub tensor: u32,
    pub pipeline: u32,
    pub expert: u32,
    pub runtime: String,
}

impl Colocated {
    pub fn replicas(&self) -> u32 {
        self.nodes / (self.tensor * self.pipeline * self.expert)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disaggregated {
    pub prefill_device: String,
    pub prefill_nodes: u32,
    pub prefill_runtime: String,
    pub decode_device: String,
    pub decode_nodes: u32,
    pub decode_runtime: String,
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    Colocated(Colocated),
    Disaggregated(Disaggregated),
}

/// One kind of node an option runs: its device, runtime, and memory variant where the
/// option names one (a disaggregated option takes each device's largest).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeKind<'a> {
    pub device: &'a str,
    pub runtime: &'a str,
    pub memory_gb: Option<f64>,
}

impl Layout {
    /// The kinds of node the layout runs: one colocated, prefill then decode when
    /// disaggregated.
    pub fn node_kinds(&self) -> Vec<NodeKind<'_>> {
        match self {
            Layout::Colocated(c) => vec![NodeKind {
                device: &c.device,
                runtime: &c.runtime,
                memory_gb: Some(c.memory_gb),
            }],
            Layout::Disaggregated(d) => vec![
                NodeKind {
                    device: &d.prefill_device,
                    runtime: &d.prefill_runtime,
                    memory_gb: None,
                },
                NodeKind {
                    device: &d.decode_device,
                    runtime: &d.decode_runtime,
                    memory_gb: None,
                },
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanOption {
    pub weights: String,
    pub layout: Layout,
}

impl PlanOption {
    /// A total order for reproducible output.
    pub fn key(&self) -> String {
        match &self.layout {
            Layout::Colocated(c) => format!(
                "c {} {:06.0} {:03} {} {} {} {} {} {}",
                c.device,
                c.memory_gb,
                c.nodes,
                c.link.as_deref().unwrap_or("-"),
                c.tensor,
                c.pipeline,
                c.expert,
                c.runtime,
                self.weights
            ),
            Layout::Disaggregated(d) => format!(
                "d {} {:03} {} {:03} {} {} {} {}",
                d.prefill_device,
                d.prefill_nodes,
                d.decode_device,
                d.decode_nodes,
                d.link,
                d.prefill_runtime,
                d.decode_runtime,
                self.weights
            ),
        }
    }

    /// One line for tables.
    pub fn describe(&self) -> String {
        match &self.layout {
            Layout::Colocated(c) => {
                let mut s = format!("{} x {} ({:.0} GB)", c.nodes, c.device, c.memory_gb);
                if let Some(l) = &c.link {
                    s += &format!(" over {l}");
                }
                let mut degrees = Vec::new();
                if c.tensor > 1 {
                    degrees.push(format!("TP{}", c.tensor));
                }
                if c.pipeline > 1 {
                    degrees.push(format!("PP{}", c.pipeline));
                }
                if c.expert > 1 {
                    degrees.push(format!("EP{}", c.expert));
                }
                if c.replicas() > 1 {
                    degrees.push(format!("{} replicas", c.replicas()));
                }
                if !degrees.is_empty() {
                    s += &format!(", {}", degrees.join(" "));
                }
                s + &format!(", {} {}", c.runtime, self.weights)
            }
            Layout::Disaggregated(d) => format!(
                "prefill {} x {} ({}) + decode {} x {} ({}) over {}, {}",
                d.prefill_nodes,
                d.prefill_device,
                d.prefill_runtime,
                d.decode_nodes,
                d.decode_device,
                d.decode_runtime,
                d.link,
                self.weights
            ),
        }
    }

    /// The scenario for this option: with `Some(b)`, a static batch of `b` sequences;
    /// with `None`, no batch (for a request workload the caller adds).
    pub fn scenario_text(&self, plan: &Plan, batch: Option<u64>) -> String {
        let mut t = format!(
            "name = \"{}\"\n\n[model]\npreset = \"{}\"\nweights = \"{}\"\nkv_cache = \"{}\"\n",
            self.describe().replace('"', "'"),
            plan.model,
            self.weights,
            plan.kv_cache
        );
        match &self.layout {
            Layout::Colocated(c) => {
                t += &format!("\n[runtime]\npreset = \"{}\"\n", c.runtime);
                t += &format!(
                    "\n[[cluster.groups]]\nname = \"nodes\"\ndevice = \"{}\"\ncount = {}\nmemory_gb = {}\n",
                    c.device, c.nodes, c.memory_gb
                );
                if let Some(l) = &c.link {
                    t += &format!("\n[cluster.network]\nlink = \"{l}\"\n");
                }
                t += &format!(
                    "\n[parallelism]\ntensor = {}\npipeline = {}\nexpert = {}\n",
                    c.tensor, c.pipeline, c.expert
                );
            }
            Layout::Disaggregated(d) => {
                t += &format!("\n[runtime]\npreset = \"{}\"\n", d.decode_runtime);
                t += &format!(
                    "\n[[cluster.groups]]\nname = \"prefill\"\ndevice = \"{}\"\ncount = {}\nruntime = \"{}\"\n",
                    d.prefill_device, d.prefill_nodes, d.prefill_runtime
                );
                t += &format!(
                    "\n[[cluster.groups]]\nname = \"decode\"\ndevice = \"{}\"\ncount = {}\nruntime = \"{}\"\n",
                    d.decode_device, d.decode_nodes, d.decode_runtime
                );
                t += &format!(
                    "\n[cluster.network]\nlink = \"{}\"\n\n[disaggregation]\nprefill = \"prefill\"\ndecode = \"decode\"\nkv_transfer = \"layerwise\"\n",
                    d.link
                );
            }
        }
        t += &format!(
            "\n[workload]\nprompt_tokens = {}\noutput_tokens = {}\n",
            plan.prompt_tokens, plan.output_tokens
        );
        if let Some(batch) = batch {
            t += &format!("batch = {batch}\n");
        }
        t += &format!(
            "\n[cost]\namortization_years = {}\nelectricity_usd_per_kwh = {}\nutilization = {}\n",
            plan.cost.amortization_years, plan.cost.electricity_usd_per_kwh, plan.cost.utilization
        );
        t
    }
}

/// (tensor, pipeline, expert) with a product dividing `nodes`.
fn degree_splits(nodes: u32, moe: bool) -> Vec<(u32, u32, u32)> {
    let mut out = Vec::new();
    for tensor in 1..=nodes {
        for pipeline in 1..=nodes / tensor {
            let experts: Vec<u32> = if moe {
                (1..=nodes / (tensor * pipeline)).collect()
            } else {
                vec![1]
            };
            for expert in experts {
                if nodes.is_multiple_of(tensor * pipeline * expert) {
                    out.push((tensor, pipeline, expert));
                }
            }
        }
    }
    out
}

/// Runtimes of the plan that have a profile for `device`'s family and run `weights`
/// on it ([`crate::runtime::Runtime::runs`]).
fn runtimes_for<'a>(
    plan: &'a Plan,
    catalog: &Catalog,
    device: &Device,
    weights: &str,
) -> Vec<&'a String> {
    let Some(format) = catalog.formats.get(weights) else {
        return Vec::new();
    };
    plan.runtimes
        .iter()
        .filter(|r| {
            catalog.runtimes.get(*r).is_some_and(|rt| {
                rt.for_family(&device.family).is_some() && rt.runs(format, device).is_ok()
            })
        })
        .collect()
}

fn link_allowed(plan: &Plan, link: &str) -> bool {
    plan.links
        .as_ref()
        .is_none_or(|l| l.iter().any(|x| x == link))
}

pub fn enumerate(plan: &Plan, catalog: &Catalog) -> Vec<PlanOption> {
    let Some(model) = catalog.models.get(&plan.model) else {
        return Vec::new();
    };
    let moe = model.moe.is_some();
    let mut options = Vec::new();
    for device_id in &plan.devices {
        let Some(device) = catalog.devices.get(device_id) else {
            continue;
        };
        for weights in &plan.weights {
            for runtime in runtimes_for(plan, catalog, device, weights) {
                for variant in &device.variants {
                    for nodes in 1..=plan.max_nodes {
                        let links: Vec<Option<String>> = if nodes == 1 {
                            vec![None]
                        } else {
                            device
                                .links
                                .iter()
                                .filter(|l| link_allowed(plan, l))
                                .filter(|l| {
                                    catalog.links.get(*l).is_some_and(|link| {
                                        link.max_nodes.is_none_or(|m| nodes <= m)
                                    })
                                })
                                .map(|l| Some(l.clone()))
                                .collect()
                        };
                        for (i, link) in links.iter().enumerate() {
                            for (tensor, pipeline, expert) in degree_splits(nodes, moe) {
                                // Independent replicas exchange nothing: one option,
                                // without a link, stands for all of them.
                                let alone = tensor * pipeline * expert == 1;
                                if alone && i > 0 {
                                    continue;
                                }
                                let link = if alone { None } else { link.clone() };
                                options.push(PlanOption {
                                    weights: weights.clone(),
                                    layout: Layout::Colocated(Colocated {
                                        device: device_id.clone(),
                                        memory_gb: variant.capacity_gb,
                                        nodes,
                                        link,
                                        tensor,
                                        pipeline,
                                        expert,
                                        runtime: runtime.clone(),
                                    }),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    if plan.disaggregation {
        let counts: Vec<u32> = [1, 2, 4, 8]
            .into_iter()
            .filter(|c| *c < plan.max_nodes)
            .collect();
        for prefill_id in &plan.devices {
            for decode_id in &plan.devices {
                if prefill_id == decode_id {
                    continue;
                }
                let (Some(p), Some(d)) = (
                    catalog.devices.get(prefill_id),
                    catalog.devices.get(decode_id),
                ) else {
                    continue;
                };
                let shared_links: Vec<&String> = p
                    .links
                    .iter()
                    .filter(|l| d.links.contains(l) && link_allowed(plan, l))
                    .filter(|l| {
                        catalog
                            .links
                            .get(*l)
                            .is_some_and(|link| link.max_nodes.is_none())
                    })
                    .collect();
                for weights in &plan.weights {
                    let (Some(pr), Some(dr)) = (
                        runtimes_for(plan, catalog, p, weights).first().cloned(),
                        runtimes_for(plan, catalog, d, weights).first().cloned(),
                    ) else {
                        continue;
                    };
                    for link in &shared_links {
                        for &a in &counts {
                            for &b in &counts {
                                if a + b > plan.max_nodes {
                                    continue;
                                }
                                options.push(PlanOption {
                                    weights: weights.clone(),
                                    layout: Layout::Disaggregated(Disaggregated {
                                        prefill_device: prefill_id.clone(),
                                        prefill_nodes: a,
                                        prefill_runtime: pr.clone(),
                                        decode_device: decode_id.clone(),
                                        decode_nodes: b,
                                        decode_runtime: dr.clone(),
                                        link: (*link).clone(),
                                    }),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degree_splits_of_four_nodes() {
        // Dense: (t, p) with t p | 4: (1,1) (1,2) (1,4) (2,1) (2,2) (4,1) = 6.
        assert_eq!(degree_splits(4, false).len(), 6);
        // MoE adds expert degrees: every (t, p, e) with t p e | 4: 1 + 3 + 3 + 3 = ...
        // t p e in {1,2,4}, product in {1,2,4}: products 1 (1 way), 2 (3 ways), 4 (6 ways) = 10.
        assert_eq!(degree_splits(4, true).len(), 10);
        assert!(degree_splits(3, false).contains(&(1, 1, 1)));
    }
}
