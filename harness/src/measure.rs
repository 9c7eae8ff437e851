//! How many repetitions to time, and for how long.
//!
//! Every measurement runs once untimed (warm-up: page faults, JIT compilation, lazy
//! library loading), then repeats until it has at least `min_reps` samples and has
//! spent `target_s`, or has `max_reps` samples. The suite runs every measurement once
//! per pass, over several passes (`suite::run`), and the CSV keeps the median and the
//! minimum of all passes' timed samples.

use std::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub min_reps: usize,
    pub max_reps: usize,
    /// Seconds of timed work after which no more repetitions are started.
    pub target_s: f64,
}

impl Policy {
    /// The repetitions of one pass of the suite (`suite::run` runs several passes):
    /// one timed sample (quick) or two, each after the untimed warm-up.
    pub fn per_pass(quick: bool) -> Policy {
        let reps = if quick { 1 } else { 2 };
        Policy {
            min_reps: reps,
            max_reps: reps,
            target_s: 0.0,
        }
    }

    /// Whether to take another sample after `samples`.
    pub fn more(&self, samples: &[f64]) -> bool {
        let spent: f64 = samples.iter().sum();
        samples.len() < self.min_reps || (samples.len() < self.max_reps && spent < self.target_s)
    }
}

/// Times `run` on the host clock; `setup` runs untimed before every repetition (the
/// CPU backend evicts the caches there). Both get `state`, the buffers they share.
pub fn time_host<S>(
    policy: &Policy,
    state: &mut S,
    mut setup: impl FnMut(&mut S),
    mut run: impl FnMut(&mut S),
) -> Vec<f64> {
    setup(state);
    run(state);
    let mut samples = Vec::new();
    while policy.more(&samples) {
        setup(state);
        let start = Instant::now();
        run(state);
        samples.push(start.elapsed().as_secs_f64());
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_min_and_at_most_max_repetitions() {
        let p = Policy {
            min_reps: 3,
            max_reps: 5,
            target_s: 1.0,
        };
        // Three fast samples: the minimum is met but 0.003 s < 1 s, so more.
        assert!(p.more(&[0.001; 3]));
        // Five samples: the maximum.
        assert!(!p.more(&[0.001; 5]));
        // Three samples of 0.5 s: 1.5 s spent.
        assert!(!p.more(&[0.5; 3]));
        // Two samples, however long: below the minimum.
        assert!(p.more(&[10.0; 2]));
    }
}
