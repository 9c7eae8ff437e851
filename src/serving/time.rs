//! Simulated time and the event queue.
//!
//! Time is an integer count of nanoseconds, so adding durations is exact and the
//! order of events never depends on floating-point rounding. Events at the same
//! instant run in the order they were scheduled: the queue orders by (time,
//! insertion sequence), and that rule is written once, in [`Scheduled`]'s `Ord`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::Serialize;

/// The latest arrival a run accepts, in seconds (about 31.7 years). The clock counts
/// nanoseconds in a `u64`, which holds 1.8e10 s: arrivals up to this limit leave a run
/// more than 17 times as long again to finish before the clock would saturate.
pub const ARRIVAL_LIMIT_S: f64 = 1e9;

/// Nanoseconds since the start of the simulation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    /// The instant `seconds` after the start, rounded to the nearest nanosecond.
    pub fn from_secs(seconds: f64) -> SimTime {
        SimTime(Duration::from_secs(seconds).0)
    }

    pub fn as_secs(self) -> f64 {
        self.0 as f64 * 1e-9
    }

    pub fn after(self, d: Duration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A span of simulated time in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Duration(pub u64);

impl Duration {
    /// `seconds` rounded to the nearest nanosecond; negative or non-finite is zero.
    pub fn from_secs(seconds: f64) -> Duration {
        if seconds.is_finite() && seconds > 0.0 {
            Duration((seconds * 1e9).round() as u64)
        } else {
            Duration(0)
        }
    }

    pub fn as_secs(self) -> f64 {
        self.0 as f64 * 1e-9
    }
}

/// An event with its firing time and the sequence number that breaks ties.
#[derive(Debug)]
struct Scheduled<E> {
    time: SimTime,
    sequence: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.sequence == other.sequence
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Earliest time first, then earliest scheduled. Reversed because
    /// `BinaryHeap` is a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.sequence).cmp(&(self.time, self.sequence))
    }
}

/// Pending events, popped in (time, insertion sequence) order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    next_sequence: u64,
    now: SimTime,
    processed: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_sequence: 0,
            now: SimTime::ZERO,
            processed: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `time`; a time in the past is clamped to now.
    pub fn schedule(&mut self, time: SimTime, event: E) {
        let time = time.max(self.now);
        self.heap.push(Scheduled {
            time,
            sequence: self.next_sequence,
            event,
        });
        self.next_sequence += 1;
    }

    /// The next event, advancing the clock to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let next = self.heap.pop()?;
        self.now = next.time;
        self.processed += 1;
        Some((next.time, next.event))
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events popped so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_time_events_keep_insertion_order() {
        let mut q = EventQueue::default();
        q.schedule(SimTime(5), "b");
        q.schedule(SimTime(3), "a");
        q.schedule(SimTime(5), "c");
        q.schedule(SimTime(5), "d");
        let order: Vec<&str> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }

    #[test]
    fn seconds_round_to_nanoseconds() {
        // 1.5 us = 1,500 ns; 0.1 ns rounds to 0; a negative duration is zero.
        assert_eq!(Duration::from_secs(1.5e-6), Duration(1500));
        assert_eq!(Duration::from_secs(1e-10), Duration(0));
        assert_eq!(Duration::from_secs(-1.0), Duration(0));
        assert_eq!(SimTime(2_000_000_000).as_secs(), 2.0);
    }
}
