//! The network model: a message of `b` bytes over a link costs `latency + b /
//! bandwidth` (the alpha-beta model). Latency is one-way and includes the software
//! stack (TCP's kernel path, or RDMA's much shorter one), as the link catalog records.

use serde::Serialize;

use crate::hardware::Transport;
use crate::scenario::Network;

/// A point-to-point link as the model uses it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkModel {
    pub latency_s: f64,
    /// Bytes per second, each way.
    pub bandwidth_bytes_s: f64,
    pub transport: Transport,
}

impl LinkModel {
    pub fn from_network(network: &Network) -> LinkModel {
        LinkModel {
            latency_s: network.latency_us * 1e-6,
            bandwidth_bytes_s: network.bandwidth_gb_s * 1e9,
            transport: network.link.transport,
        }
    }

    /// Time for one message of `bytes` (alpha + bytes x beta).
    pub fn message_time(&self, bytes: f64) -> f64 {
        self.latency_s + bytes / self.bandwidth_bytes_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_beta_by_hand() {
        // 250 us + 1.07e9 B / 1.25e9 B/s = 0.00025 + 0.856 = 0.85625 s.
        let link = LinkModel {
            latency_s: 250e-6,
            bandwidth_bytes_s: 1.25e9,
            transport: Transport::Tcp,
        };
        assert!((link.message_time(1.07e9) - 0.85625).abs() < 1e-12);
        assert_eq!(link.message_time(0.0), 250e-6);
    }
}
