//! The network model.
//!
//! **One message** of `b` bytes over a link costs `latency + b / bandwidth` (the
//! alpha-beta model, Hockney 1994). Latency is one-way and includes the software stack
//! (TCP's kernel path, or RDMA's much shorter one), as the link catalog records.
//!
//! **Software overhead per message (TCP versus RDMA).** In the LogP view (Culler et
//! al., 1993) a one-way latency is `o_send + wire + o_receive`, and the `o` terms are
//! processor time: a node that sends or receives several messages at once pays them
//! one after another. The link catalog says the kernel TCP/IP path, not the wire,
//! dominates a TCP link's latency: over the same Thunderbolt 5 cable, TCP is 290 us
//! one way and RDMA 50 us (application level) or 4.64 us (raw verbs), so at least
//! (290 - 50) / 290 = 83% of the TCP latency is host software. We take the wire as
//! negligible and split the rest evenly between the two ends:
//! `o = latency / 2` per message on TCP. RDMA and GPU fabrics hand the transfer to
//! the NIC or copy engine (posting a work request is well under the 4.64 us verbs
//! latency), so `o = 0` there.
//!
//! **Per-node serialisation.** When every node sends and receives several messages at
//! once ([`LinkModel::exchange_time`]), the exchange takes the latency of the longest
//! path, plus the busiest node's serial software overhead beyond its first send and
//! first receive (those two are inside the latency), plus the busiest link's bytes
//! over the bandwidth. Summing the three worst cases is a slight upper bound on the
//! critical path; it is exact when one node is the worst on all three counts, as in
//! the symmetric exchanges the cluster model produces.
//!
//! **Topology.**
//! - `switch`: each node has one port into a switch; all its outgoing bytes share its
//!   port's bandwidth, and so do its incoming bytes; every pair is one hop.
//! - `direct`: a cable per pair of nodes (a Thunderbolt mesh: a Mac Studio has six
//!   ports); bytes to different peers travel on different cables; one hop.
//! - `ring`: each node is cabled to its two neighbours; a message to a node `h` hops
//!   away is forwarded by `h - 1` hosts (each paying a receive and a send of software
//!   overhead) and costs `h` latencies; bytes load every cable on the way.
//!
//! **All-reduce** of `S` bytes over `p` nodes ([`LinkModel::all_reduce_time`]), as MPI
//! and NCCL choose by size (Thakur, Rabenseifner and Gropp, 2005):
//! - ring (reduce-scatter then all-gather): `2 (p - 1)` steps of `S / p` bytes:
//!   `2 (p - 1) (alpha + S / (p B))`: bandwidth-optimal, for large messages;
//! - tree (recursive doubling): `ceil(log2 p)` steps of the whole `S`:
//!   `ceil(log2 p) (alpha + S / B)`: latency-optimal among step-by-step algorithms,
//!   for small messages. It pairs nodes `2^j` apart, so it needs a switch or a full
//!   mesh, not a ring;
//! - one-shot: every node sends its whole buffer to every other node at once and
//!   adds up what it receives (TensorRT-LLM's `ONESHOT` strategy for small messages).
//!   It is one exchange ([`LinkModel::exchange_time`]) of `p (p - 1)` messages of `S`
//!   bytes: on a full mesh over RDMA, `alpha + S / B` whatever `p`; over TCP each node
//!   pays the software overhead of `p - 1` sends and receives; through a switch its
//!   port carries `(p - 1) S`.
//!
//! In each ring or tree step a node sends one message and receives one, so no extra
//! software overhead is paid beyond the latency.

use serde::Serialize;

use crate::hardware::Transport;
use crate::scenario::Network;

/// How the nodes are cabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    Switch,
    Direct,
    Ring,
}

impl Topology {
    pub fn name(self) -> &'static str {
        match self {
            Topology::Switch => "switch",
            Topology::Direct => "direct",
            Topology::Ring => "ring",
        }
    }

    /// Links a message from `from` to `to` crosses among `nodes` nodes.
    pub fn hops(self, nodes: usize, from: usize, to: usize) -> usize {
        match self {
            Topology::Switch | Topology::Direct => usize::from(from != to),
            Topology::Ring => {
                let forward = (to + nodes - from) % nodes;
                forward.min(nodes - forward)
            }
        }
    }
}

/// A point-to-point link as the model uses it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkModel {
    pub latency_s: f64,
    /// Bytes per second, each way.
    pub bandwidth_bytes_s: f64,
    pub transport: Transport,
}

/// One message of an exchange between the nodes of a group (indices `0..nodes`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Message {
    pub from: usize,
    pub to: usize,
    pub bytes: f64,
}

/// Which all-reduce algorithm was cheaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllReduceAlgorithm {
    Ring,
    Tree,
    OneShot,
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

    /// Host software time per message at one end: half the latency on TCP, none on
    /// RDMA or a fabric (see the module docs).
    pub fn per_message_overhead_s(&self) -> f64 {
        match self.transport {
            Transport::Tcp => self.latency_s / 2.0,
            Transport::Rdma | Transport::Fabric => 0.0,
        }
    }

    /// Time from the moment every node starts sending until every message has arrived
    /// and been received, for `messages` among `nodes` nodes cabled as `topology`.
    pub fn exchange_time(&self, topology: Topology, nodes: usize, messages: &[Message]) -> f64 {
        if messages.is_empty() || nodes < 2 {
            return 0.0;
        }
        let mut sends = vec![0.0_f64; nodes];
        let mut receives = vec![0.0_f64; nodes];
        let mut forwards = vec![0.0_f64; nodes];
        let mut max_hops = 0usize;
        // Bytes per directed cable: (from, to) pairs for direct and ring, or a node's
        // port (out and in) for the switch.
        let mut cable = vec![0.0_f64; nodes * nodes];
        let mut port_out = vec![0.0_f64; nodes];
        let mut port_in = vec![0.0_f64; nodes];
        for m in messages {
            sends[m.from] += 1.0;
            receives[m.to] += 1.0;
            let hops = topology.hops(nodes, m.from, m.to);
            max_hops = max_hops.max(hops);
            match topology {
                Topology::Switch => {
                    port_out[m.from] += m.bytes;
                    port_in[m.to] += m.bytes;
                }
                Topology::Direct => cable[m.from * nodes + m.to] += m.bytes,
                Topology::Ring => {
                    // Walk the shorter way round, loading each cable and charging each
                    // host in between a receive and a send.
                    let forward = (m.to + nodes - m.from) % nodes;
                    let step = if forward <= nodes - forward {
                        1
                    } else {
                        nodes - 1
                    };
                    let mut at = m.from;
                    for hop in 0..hops {
                        let next = (at + step) % nodes;
                        cable[at * nodes + next] += m.bytes;
                        if hop > 0 {
                            forwards[at] += 1.0;
                        }
                        at = next;
                    }
                }
            }
        }
        let o = self.per_message_overhead_s();
        let overhead = (0..nodes)
            .map(|i| {
                o * ((sends[i] - 1.0).max(0.0) + (receives[i] - 1.0).max(0.0) + 2.0 * forwards[i])
            })
            .fold(0.0, f64::max);
        let busiest_bytes = match topology {
            Topology::Switch => port_out
                .iter()
                .chain(port_in.iter())
                .copied()
                .fold(0.0, f64::max),
            Topology::Direct | Topology::Ring => cable.iter().copied().fold(0.0, f64::max),
        };
        max_hops as f64 * self.latency_s + overhead + busiest_bytes / self.bandwidth_bytes_s
    }

    /// Ring all-reduce of `bytes` over `nodes`: `2 (p - 1) (alpha + S / (p B))`.
    pub fn ring_all_reduce_time(&self, nodes: usize, bytes: f64) -> f64 {
        if nodes < 2 {
            return 0.0;
        }
        let p = nodes as f64;
        2.0 * (p - 1.0) * (self.latency_s + bytes / (p * self.bandwidth_bytes_s))
    }

    /// Recursive-doubling all-reduce of `bytes` over `nodes`:
    /// `ceil(log2 p) (alpha + S / B)`.
    pub fn tree_all_reduce_time(&self, nodes: usize, bytes: f64) -> f64 {
        if nodes < 2 {
            return 0.0;
        }
        let steps = (nodes as f64).log2().ceil();
        steps * (self.latency_s + bytes / self.bandwidth_bytes_s)
    }

    /// One-shot all-reduce: one exchange of every node's whole buffer to every other.
    pub fn one_shot_all_reduce_time(&self, topology: Topology, nodes: usize, bytes: f64) -> f64 {
        let messages: Vec<Message> = (0..nodes)
            .flat_map(|from| {
                (0..nodes)
                    .filter(move |&to| to != from)
                    .map(move |to| Message { from, to, bytes })
            })
            .collect();
        self.exchange_time(topology, nodes, &messages)
    }

    /// The cheapest all-reduce for `bytes` over `nodes` on `topology` (a ring topology
    /// cannot run the tree).
    pub fn all_reduce_time(
        &self,
        topology: Topology,
        nodes: usize,
        bytes: f64,
    ) -> (f64, AllReduceAlgorithm) {
        let mut best = (
            self.ring_all_reduce_time(nodes, bytes),
            AllReduceAlgorithm::Ring,
        );
        let mut consider = |t: f64, algo| {
            if t < best.0 {
                best = (t, algo);
            }
        };
        if topology != Topology::Ring {
            consider(
                self.tree_all_reduce_time(nodes, bytes),
                AllReduceAlgorithm::Tree,
            );
        }
        consider(
            self.one_shot_all_reduce_time(topology, nodes, bytes),
            AllReduceAlgorithm::OneShot,
        );
        best
    }
}

// ---------------------------------------------------------------------------------
// Streams of messages: the KV cache sent layer by layer (or in one piece) while the
// sender keeps computing. Messages leave in order, one at a time at the link's
// bandwidth; each arrives one latency after its last byte leaves. A message that is
// ready while the link is still sending an earlier one waits: then the link, not the
// sender's compute, sets the pace.

/// A message of a stream that can leave at `ready_s` (seconds from any common origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamMessage {
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
    /// Time at least one message is in flight (on the wire or in its latency): the
    /// union of each message's sending and latency.
    pub in_flight_s: f64,
    /// Whether any message waited for the link (the link could not keep up).
    pub link_bound: bool,
}

impl LinkModel {
    /// Time the link is busy with `bytes`, without the latency.
    pub fn serialization_time(&self, bytes: f64) -> f64 {
        bytes / self.bandwidth_bytes_s
    }

    /// Sends `messages` in order (first in, first out).
    pub fn stream(&self, messages: &[StreamMessage]) -> StreamTiming {
        let mut link_free = f64::NEG_INFINITY;
        let mut busy_s = 0.0;
        let mut last_arrival_s = 0.0;
        let mut link_bound = false;
        let (mut in_flight_s, mut covered_until) = (0.0, f64::NEG_INFINITY);
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
            let arrival = link_free + self.latency_s;
            // Messages leave in order, so their intervals start in order.
            in_flight_s += (arrival - start.max(covered_until)).max(0.0);
            covered_until = covered_until.max(arrival);
            last_arrival_s = f64::max(last_arrival_s, arrival);
        }
        StreamTiming {
            busy_s,
            last_arrival_s,
            in_flight_s,
            link_bound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(latency_us: f64, gb_s: f64, transport: Transport) -> LinkModel {
        LinkModel {
            latency_s: latency_us * 1e-6,
            bandwidth_bytes_s: gb_s * 1e9,
            transport,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
    }

    #[test]
    fn alpha_beta_by_hand() {
        // 250 us + 1.07e9 B / 1.25e9 B/s = 0.00025 + 0.856 = 0.85625 s.
        let link = link(250.0, 1.25, Transport::Tcp);
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
        let m = |ready_s| StreamMessage {
            ready_s,
            bytes: 1e7,
        };
        let t = link.stream(&[m(0.0), m(0.020), m(0.025)]);
        assert!((t.last_arrival_s - 0.041).abs() < 1e-12);
        assert!((t.busy_s - 0.030).abs() < 1e-12);
        assert!(t.link_bound);
        // In flight 0-11 ms, then 20-31 and 30-41 overlapping into 20-41: 32 ms.
        assert!((t.in_flight_s - 0.032).abs() < 1e-12, "{}", t.in_flight_s);
        // Ready at 0 and 20 ms only: the link keeps up; in flight 0-11 and 20-31.
        let two = link.stream(&[m(0.0), m(0.020)]);
        assert!(!two.link_bound);
        assert!((two.in_flight_s - 0.022).abs() < 1e-12);
    }

    #[test]
    fn one_expert_output_over_10_gbe_is_latency_bound() {
        // 250 us + 12,288 B / 1.18e9 B/s = 250 + 10.41 us = 260.41 us: the latency is
        // 96% of it.
        let link = link(250.0, 1.18, Transport::Tcp);
        assert!(close(
            link.message_time(12_288.0),
            250e-6 + 12_288.0 / 1.18e9
        ));
        assert!(close(link.message_time(12_288.0), 260.413_559_322e-6));
    }

    #[test]
    fn tcp_pays_half_the_latency_per_extra_message_and_rdma_nothing() {
        assert!(close(
            link(250.0, 1.18, Transport::Tcp).per_message_overhead_s(),
            125e-6
        ));
        assert_eq!(
            link(50.0, 9.375, Transport::Rdma).per_message_overhead_s(),
            0.0
        );
    }

    #[test]
    fn ring_and_tree_all_reduce_by_hand() {
        let l = link(50.0, 10.0, Transport::Rdma);
        // Ring, p = 4, S = 1 MB: 2 x 3 x (50 us + 1e6 / (4 x 1e10) s)
        //   = 6 x (50 + 25) us = 450 us.
        assert!(close(l.ring_all_reduce_time(4, 1e6), 450e-6));
        // Tree, p = 4: log2 4 = 2 steps x (50 us + 1e6 / 1e10 s = 100 us) = 300 us.
        assert!(close(l.tree_all_reduce_time(4, 1e6), 300e-6));
        // A 8,192-byte activation: ring 6 x (50 + 0.2048) = 301.2288 us,
        // tree 2 x (50 + 0.8192) = 101.6384 us; one-shot through a switch (RDMA, no
        // software overhead): 50 + a port's 3 x 8192 B / 1e10 B/s = 52.4576 us.
        let (t, algo) = l.all_reduce_time(Topology::Switch, 4, 8192.0);
        assert!(close(t, 52.4576e-6));
        assert_eq!(algo, AllReduceAlgorithm::OneShot);
        // On a full mesh each pair has its cable: 50 + 0.8192 = 50.8192 us.
        assert!(close(
            l.one_shot_all_reduce_time(Topology::Direct, 4, 8192.0),
            50.8192e-6
        ));
        // Over TCP (o = 25 us) one-shot pays 2 extra sends and 2 extra receives per
        // node: 52.4576 + 4 x 25 = 152.4576 us, worse than the tree's 101.6384 us.
        let tcp = link(50.0, 10.0, Transport::Tcp);
        let (t, algo) = tcp.all_reduce_time(Topology::Switch, 4, 8192.0);
        assert!(close(
            tcp.one_shot_all_reduce_time(Topology::Switch, 4, 8192.0),
            152.4576e-6
        ));
        assert!(close(t, 101.6384e-6));
        assert_eq!(algo, AllReduceAlgorithm::Tree);
        // A 1 GB buffer: ring 6 x (50 us + 25 ms) = 150.3 ms, tree 2 x (50 us + 100 ms)
        // = 200.1 ms, one-shot 50 us + 300 ms: the ring wins for large ones.
        let (t, algo) = l.all_reduce_time(Topology::Switch, 4, 1e9);
        assert!(close(t, 6.0 * (50e-6 + 0.025)));
        assert_eq!(algo, AllReduceAlgorithm::Ring);
        // A ring topology cannot pair nodes two apart: no tree. One-shot there sends
        // 0 -> 2 over two hops (2 x 50 us) plus the busiest cable's bytes. Two-hop
        // messages (j -> j + 2, four of them) take the forward way on a tie, so each
        // forward cable carries its direct message and two two-hop ones:
        // 3 x 8192 / 1e10 = 2.4576 us, so 102.4576 us, against the ring's 301.2288 us.
        let (t, algo) = l.all_reduce_time(Topology::Ring, 4, 8192.0);
        assert_eq!(algo, AllReduceAlgorithm::OneShot);
        assert!(close(t, 102.4576e-6));
        // p = 3: tree needs ceil(log2 3) = 2 steps.
        assert!(close(l.tree_all_reduce_time(3, 0.0), 100e-6));
        assert_eq!(l.ring_all_reduce_time(1, 1e6), 0.0);
    }

    #[test]
    fn send_to_all_on_a_switch_serialises_the_software_overhead() {
        // 4 nodes, each sends one 12,288-byte message to each of the 3 others: every
        // node sends 3 and receives 3. Over TCP (o = 125 us):
        //   latency 250 us + o x ((3 - 1) + (3 - 1)) = 500 us
        //   + a port's 3 x 12,288 B / 1.18e9 B/s = 31.24 us  -> 781.24 us.
        let l = link(250.0, 1.18, Transport::Tcp);
        let mut messages = Vec::new();
        for from in 0..4 {
            for to in 0..4 {
                if from != to {
                    messages.push(Message {
                        from,
                        to,
                        bytes: 12_288.0,
                    });
                }
            }
        }
        let expected = 250e-6 + 4.0 * 125e-6 + 3.0 * 12_288.0 / 1.18e9;
        assert!(close(
            l.exchange_time(Topology::Switch, 4, &messages),
            expected
        ));
        // A direct mesh gives each pair its own cable: one message's bytes, 10.41 us.
        let direct = 250e-6 + 4.0 * 125e-6 + 12_288.0 / 1.18e9;
        assert!(close(
            l.exchange_time(Topology::Direct, 4, &messages),
            direct
        ));
        // Over RDMA there is no per-message software overhead: 250 + 31.24 us.
        let rdma = link(250.0, 1.18, Transport::Rdma);
        assert!(close(
            rdma.exchange_time(Topology::Switch, 4, &messages),
            250e-6 + 3.0 * 12_288.0 / 1.18e9
        ));
    }

    #[test]
    fn ring_topology_forwards_through_the_middle_node() {
        // 4 nodes on a ring, one message 0 -> 2: two hops (2 latencies), node 1 (or 3)
        // forwards it (a receive and a send: 2 o), each cable carries the bytes once.
        //   2 x 100 us + 2 x 50 us + 1000 B / 1e9 B/s = 301 us.
        let l = link(100.0, 1.0, Transport::Tcp);
        let m = [Message {
            from: 0,
            to: 2,
            bytes: 1000.0,
        }];
        assert!(close(l.exchange_time(Topology::Ring, 4, &m), 301e-6));
        assert_eq!(Topology::Ring.hops(4, 0, 3), 1);
        assert_eq!(Topology::Ring.hops(5, 0, 2), 2);
        assert_eq!(Topology::Switch.hops(5, 0, 2), 1);
    }

    #[test]
    fn nothing_to_send_costs_nothing() {
        let l = link(250.0, 1.18, Transport::Tcp);
        assert_eq!(l.exchange_time(Topology::Switch, 4, &[]), 0.0);
    }
}
