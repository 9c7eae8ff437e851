//! Memory-management ("wiring") overhead on Apple Silicon.
//!
//! **What happens.** A Metal GPU reads only *wired* (resident, non-pageable) memory.
//! Unless the runtime keeps its buffers wired (a residency set under a wired-memory
//! limit large enough to hold them), the driver wires the buffers each command buffer
//! uses when it is submitted and may unwire them afterwards. The expert-parallelism
//! study (arXiv 2506.23635) saw this as "driver processing" time that slowed expert
//! compute, worst on 2 nodes, and removed it by keeping all expert weights resident
//! and raising the wired-memory limit.
//!
//! **Its size.** A co-author's micro-benchmark ran the same matmul over 7.93 GB of
//! weights in 93.8 ms from one buffer (kept wired) and in 284.2 ms from 30 separate
//! buffers (wired again on every run). We read the difference as the driver's cost of
//! wiring memory:
//!
//! `(284.2 - 93.8) ms / 7.93 GB = 190.4 / 7.93 = 24.01 ms per GB` ([`WIRING_S_PER_GB`]),
//!
//! about 41.6 GB/s, and charge it for every byte of weights a node touches in a step
//! that is not wired. It is charged on the critical path, not overlapped with compute:
//! the driver does it when the command buffer is submitted, before its kernels run.
//!
//! **How much is not wired.**
//! - `wired_memory = "driver"` (Metal's default, the study's baseline): the runtime
//!   keeps nothing wired, so every weight byte touched in a step pays, as the 30-buffer
//!   run did on every repetition. A node that touches more weights per step pays more:
//!   on 2 nodes each runs the most experts per layer, hence the study's "worst on 2
//!   nodes".
//! - `wired_memory = "resident"` (the optimisation, and the default here because
//!   today's mlx-lm wires the model in a residency set): the runtime keeps up to the
//!   wired limit `L` of the node's `W` GB of weights wired; with accesses spread over
//!   all the weights, a fraction `max(0, W - L) / W` of the touched bytes still pays.
//!   `L` defaults to the node's memory less the OS reserve (the study raised the
//!   limit); `[runtime] wired_limit_gb` sets it.
//!
//! **Limits of the model.** One micro-benchmark on one machine gives the cost; it is
//! taken as linear in bytes (the 30-buffer run cannot separate a per-buffer from a
//! per-byte cost). The driver is assumed not to keep any unwired buffer resident from
//! one step to the next, which is the worst case; a driver that kept some would pay
//! less. KV-cache and activation buffers are not charged. Only Apple devices (family
//! `apple`) pay; CUDA pins memory at allocation.

use crate::hardware::Device;
use crate::scenario::WiredMemory;

/// Driver wiring cost: (284.2 ms - 93.8 ms) / 7.93 GB.
pub const WIRING_S_PER_GB: f64 = (284.2e-3 - 93.8e-3) / 7.93;

/// The wiring cost a node pays per byte of weights it touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wiring {
    /// Seconds per touched weight byte that is not wired.
    pub s_per_byte: f64,
    /// Fraction of the touched weight bytes that are not wired.
    pub unwired_fraction: f64,
}

impl Wiring {
    pub const NONE: Wiring = Wiring {
        s_per_byte: 0.0,
        unwired_fraction: 0.0,
    };

    /// The wiring cost of a node of `device` with `capacity_gb` of memory holding
    /// `weights_gb` of weights, under `mode` and an optional wired limit.
    pub fn new(
        device: &Device,
        capacity_gb: f64,
        weights_gb: f64,
        mode: WiredMemory,
        limit_gb: Option<f64>,
    ) -> Wiring {
        if device.family != "apple" || weights_gb <= 0.0 {
            return Wiring::NONE;
        }
        let unwired_fraction = match mode {
            WiredMemory::Driver => 1.0,
            WiredMemory::Resident => {
                let limit = limit_gb.unwrap_or(capacity_gb - device.reserved_gb);
                ((weights_gb - limit) / weights_gb).clamp(0.0, 1.0)
            }
        };
        Wiring {
            s_per_byte: WIRING_S_PER_GB / 1e9,
            unwired_fraction,
        }
    }

    /// Overhead of touching `weight_bytes` of weights once.
    pub fn overhead_s(&self, weight_bytes: f64) -> f64 {
        weight_bytes * self.unwired_fraction * self.s_per_byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apple() -> Device {
        let text = r#"
name = "test mac"
family = "apple"
[peak_tflops]
fp16 = { value = 27.2, source = "t" }
[memory]
bandwidth_gb_s = { value = 800.0, source = "t" }
reserved_gb = { value = 8.0, source = "t" }
variants = [{ capacity_gb = 192, price_usd = 6599, source = "t" }]
[power]
idle_w = { value = 10.0, source = "t" }
load_w = { value = 295.0, source = "t" }
[efficiency]
compute_fraction = { value = 0.8, source = "t" }
compute_half_rows = { value = 8.0, source = "t" }
bandwidth_fraction = { value = 0.85, source = "t" }
bandwidth_half_mb = { value = 1.0, source = "t" }
dispatch_overhead_us = { value = 8.0, source = "t" }
"#;
        Device::from_toml("mac", "mac.toml", text).unwrap()
    }

    #[test]
    fn the_micro_benchmark_is_reproduced() {
        // 7.93 GB touched from unwired buffers: 7.93 x 24.01 ms = 190.4 ms extra, on top
        // of the one-buffer 93.8 ms: 284.2 ms.
        let w = Wiring::new(&apple(), 192.0, 100.0, WiredMemory::Driver, None);
        assert!((93.8e-3 + w.overhead_s(7.93e9) - 284.2e-3).abs() < 1e-12);
    }

    #[test]
    fn resident_weights_pay_only_beyond_the_wired_limit() {
        // 136 GB of weights under the default limit 192 - 8 = 184 GB: nothing pays.
        let w = Wiring::new(&apple(), 192.0, 136.0, WiredMemory::Resident, None);
        assert_eq!(w.overhead_s(1e9), 0.0);
        // A 120 GB limit leaves (136 - 120) / 136 = 11.76% unwired: touching 1 GB
        // costs 0.1176 x 24.01 ms = 2.824 ms.
        let w = Wiring::new(&apple(), 192.0, 136.0, WiredMemory::Resident, Some(120.0));
        let expected = 16.0 / 136.0 * (190.4e-3 / 7.93);
        assert!((w.overhead_s(1e9) - expected).abs() < 1e-15);
    }
}
