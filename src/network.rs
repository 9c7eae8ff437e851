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

// ---------------------------------------------------------------------------------
// Streams of messages: the KV cache sent layer by layer (or in one piece) while the
// sender keeps computing. Messages leave in order, one at a time at the link's
// bandwidth; each arrives one latency after its last byte leaves. A message that is
// ready while the link is still sending an earlier one waits: then the link, not the
// sender's compute, sets the pace.

/// A message that can leave at `ready_s` (seconds from any common origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Message {
    pub ready_s: f64,
    pub bytes: f64,
}

/// When a stream of messages is through.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StreamTiming {
    /// Time the link spends sending (bytes / bandwidth, summed).
    pub busy_s: f64,
    /// Arrival of the last message.
    pub last_arrival_s: f64,
    /// Whether any message waited for the link (the link could not keep up).
    pub link_bound: bool,
}

impl LinkModel {
    /// Time the link is busy with `bytes`, without the latency.
    pub fn serialization_time(&self, bytes: f64) -> f64 {
        bytes / self.bandwidth_bytes_s
    }

    /// Sends `messages` in order (first in, first out).
    pub fn stream(&self, messages: &[Message]) -> StreamTiming {
        let mut link_free = f64::NEG_INFINITY;
        let mut busy_s = 0.0;
        let mut last_arrival_s = 0.0;
        let mut link_bound = false;
        for m in messages {
            // A message waits when the link is still busy; a tolerance of a
            // nanosecond keeps rounding from counting as waiting.
            if link_free > m.ready_s + 1e-9 {
                link_bound = true;
            }
            let start = link_free.max(m.ready_s);
            let sending = self.serialization_time(m.bytes);
            link_free = start + sending;
            busy_s += sending;
            last_arrival_s = f64::max(last_arrival_s, link_free + self.latency_s);
        }
        StreamTiming {
            busy_s,
            last_arrival_s,
            link_bound,
        }
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

    #[test]
    fn stream_by_hand() {
        // 1 GB/s, 1 ms latency. Messages of 10 MB (10 ms on the wire) ready at 0, 20
        // and 25 ms: the first leaves 0-10 ms, the second 20-30, the third waits for
        // the link and leaves 30-40; it arrives at 41 ms. Busy 30 ms.
        let link = LinkModel {
            latency_s: 1e-3,
            bandwidth_bytes_s: 1e9,
            transport: Transport::Tcp,
        };
        let m = |ready_s| Message {
            ready_s,
            bytes: 1e7,
        };
        let t = link.stream(&[m(0.0), m(0.020), m(0.025)]);
        assert!((t.last_arrival_s - 0.041).abs() < 1e-12);
        assert!((t.busy_s - 0.030).abs() < 1e-12);
        assert!(t.link_bound);
        // Ready at 0 and 20 ms only: the link keeps up.
        assert!(!link.stream(&[m(0.0), m(0.020)]).link_bound);
    }
}
