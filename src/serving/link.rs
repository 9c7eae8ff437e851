//! A network link whose bandwidth is shared equally among the transfers in flight
//! (processor sharing, as TCP flows on one bottleneck roughly do). A transfer is
//! delivered one link latency after its last byte leaves.
//!
//! Each prefill node's link is its own resource (its network port's egress); the
//! decode side's ingress is not modelled as a separate bottleneck.

use super::time::{Duration, SimTime};

#[derive(Debug, Clone)]
struct Flow {
    id: usize,
    remaining_bytes: f64,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    bandwidth_bytes_s: f64,
    pub latency: Duration,
    active: Vec<Flow>,
    last_update: SimTime,
    /// Bumped whenever the set of flows changes, so stale drain events are ignored.
    pub version: u64,
    pub busy_ns: u64,
    pub bytes_sent: f64,
}

impl Link {
    pub fn new(name: String, bandwidth_bytes_s: f64, latency_s: f64) -> Link {
        Link {
            name,
            bandwidth_bytes_s,
            latency: Duration::from_secs(latency_s),
            active: Vec::new(),
            last_update: SimTime::ZERO,
            version: 0,
            busy_ns: 0,
            bytes_sent: 0.0,
        }
    }

    /// Moves the flows forward to `now` at their equal shares.
    fn advance(&mut self, now: SimTime) {
        let dt = now.since(self.last_update);
        if !self.active.is_empty() && dt.0 > 0 {
            let share = self.bandwidth_bytes_s * dt.as_secs() / self.active.len() as f64;
            for f in &mut self.active {
                f.remaining_bytes -= share;
            }
            self.busy_ns += dt.0;
        }
        self.last_update = now;
    }

    /// Starts a transfer of `bytes` at `now`.
    pub fn start(&mut self, now: SimTime, id: usize, bytes: f64) {
        self.advance(now);
        self.active.push(Flow {
            id,
            remaining_bytes: bytes,
        });
        self.bytes_sent += bytes;
        self.version += 1;
    }

    /// When the next transfer drains, if any is in flight.
    pub fn next_drain(&self) -> Option<SimTime> {
        let n = self.active.len() as f64;
        self.active
            .iter()
            .map(|f| f.remaining_bytes)
            .min_by(f64::total_cmp)
            .map(|least| {
                let seconds = least.max(0.0) * n / self.bandwidth_bytes_s;
                // Round up so the flow has fully drained at the event.
                self.last_update
                    .after(Duration((seconds * 1e9).ceil() as u64))
            })
    }

    /// Removes the transfers drained by `now` and returns their ids.
    pub fn drain(&mut self, now: SimTime) -> Vec<usize> {
        self.advance(now);
        // Up to two nanoseconds' worth of bytes is rounding, not data.
        let tolerance = self.bandwidth_bytes_s * 2e-9;
        let mut done = Vec::new();
        self.active.retain(|f| {
            if f.remaining_bytes <= tolerance {
                done.push(f.id);
                false
            } else {
                true
            }
        });
        if !done.is_empty() {
            self.version += 1;
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_flows_share_the_bandwidth() {
        // 1 GB/s. Flow A (10 MB) starts at 0; flow B (10 MB) at 5 ms. A alone sends
        // 5 MB by 5 ms; then each gets 0.5 GB/s: A's last 5 MB take 10 ms (done at
        // 15 ms), by which B has 5 MB left, sent alone in 5 ms (done at 20 ms).
        let mut link = Link::new("l".into(), 1e9, 0.0);
        link.start(SimTime::ZERO, 0, 1e7);
        link.start(SimTime::from_secs(0.005), 1, 1e7);
        let t = link.next_drain().unwrap();
        assert_eq!(t, SimTime::from_secs(0.015));
        assert_eq!(link.drain(t), vec![0]);
        let t = link.next_drain().unwrap();
        assert_eq!(t, SimTime::from_secs(0.020));
        assert_eq!(link.drain(t), vec![1]);
        assert_eq!(link.busy_ns, 20_000_000);
    }
}
