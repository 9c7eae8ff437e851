//! Picks the instance a request goes to, among the instances of one role.

use crate::scenario::RouterPolicy;

#[derive(Debug, Clone)]
pub struct Router {
    policy: RouterPolicy,
    /// Indices of the instances this router serves.
    targets: Vec<usize>,
    next: usize,
}

impl Router {
    pub fn new(policy: RouterPolicy, targets: Vec<usize>) -> Router {
        Router {
            policy,
            targets,
            next: 0,
        }
    }

    /// The instance for the next request; `load(i)` is instance i's outstanding
    /// requests. Ties go to the lowest index, so the choice is deterministic.
    pub fn pick(&mut self, load: impl Fn(usize) -> u64) -> usize {
        match self.policy {
            RouterPolicy::RoundRobin => {
                let chosen = self.targets[self.next % self.targets.len()];
                self.next += 1;
                chosen
            }
            RouterPolicy::LeastLoaded => *self
                .targets
                .iter()
                .min_by_key(|&&i| (load(i), i))
                .expect("a router has at least one instance"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_and_least_loaded_picks_the_idlest() {
        let mut rr = Router::new(RouterPolicy::RoundRobin, vec![2, 5, 7]);
        let picks: Vec<usize> = (0..4).map(|_| rr.pick(|_| 0)).collect();
        assert_eq!(picks, [2, 5, 7, 2]);
        let mut ll = Router::new(RouterPolicy::LeastLoaded, vec![0, 1, 2]);
        let load = [3, 1, 1];
        // Instances 1 and 2 tie at one request: the lower index wins.
        assert_eq!(ll.pick(|i| load[i]), 1);
    }
}
