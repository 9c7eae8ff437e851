//! Expert placement and the load that random top-k routing puts on each node.
//!
//! **Placement.** Each expert-parallel node holds a set of experts:
//! - `even`: contiguous blocks, sizes differing by at most one (16 experts on 2 nodes:
//!   0-7 and 8-15; on 4 nodes: 4 each);
//! - `replicated`: the experts in two halves, and the nodes in two groups, the first
//!   group no larger than the second; each node holds its group's half. This is the
//!   study's layout (arXiv 2506.23635): 2 nodes hold 8 experts each; 3 nodes: 0-7 on
//!   one node, 8-15 on the two others; 4 nodes: each half on two nodes;
//! - explicit lists per node from the scenario.
//!
//! **Routing.** Each token picks `k` distinct experts of `E`, uniformly at random (a
//! trained router balances experts on average; this is the balanced case, with only
//! the luck of the draw left). Each (token, expert) pick goes to the holder of the
//! expert with the fewest picks so far, the lowest-numbered on a tie: the router's
//! picks are spread over replicas.
//!
//! **Load imbalance.** A layer waits for its slowest node, so what matters is the
//! busiest node's load, whose expectation is larger than the mean. For one token on 2
//! nodes of 8 experts, top-4 of 16, the count on the first node is hypergeometric:
//! P(2) = 28 x 28 / 1820, P(1) = P(3) = 8 x 56 / 1820, P(0) = P(4) = 70 / 1820, so the
//! busiest node expects (784 x 2 + 896 x 3 + 140 x 4) / 1820 = 2.646 experts against a
//! mean of 2. [`routing_samples`] enumerates every choice exactly when one token is
//! routed and there are at most [`EXACT_LIMIT`] choices; otherwise it draws a seeded
//! Monte Carlo sample (SplitMix64, portable and deterministic: same seed, same bytes).

use crate::scenario::ExpertPlacement;

/// Enumerate the `C(E, k)` choices exactly up to this many (DBRX: C(16, 4) = 1820).
pub const EXACT_LIMIT: u64 = 50_000;

/// Which experts each node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub experts: u32,
    /// Expert ids held by each node.
    pub node_experts: Vec<Vec<u32>>,
    /// Nodes holding each expert.
    pub holders: Vec<Vec<usize>>,
}

impl Placement {
    pub fn new(kind: &ExpertPlacement, experts: u32, nodes: usize) -> Placement {
        let node_experts: Vec<Vec<u32>> = match kind {
            ExpertPlacement::Even => (0..nodes)
                .map(|i| {
                    let from = i as u64 * u64::from(experts) / nodes as u64;
                    let to = (i as u64 + 1) * u64::from(experts) / nodes as u64;
                    (from as u32..to as u32).collect()
                })
                .collect(),
            ExpertPlacement::Replicated => {
                let half = experts / 2;
                (0..nodes)
                    .map(|i| {
                        // Node i holds half 1 - floor(2 (nodes - 1 - i) / nodes): for 3
                        // nodes that is halves 0, 1, 1.
                        let group = if nodes < 2 {
                            None
                        } else {
                            Some(1 - (2 * (nodes - 1 - i)) / nodes)
                        };
                        match group {
                            None => (0..experts).collect(),
                            Some(0) => (0..half).collect(),
                            Some(_) => (half..experts).collect(),
                        }
                    })
                    .collect()
            }
            ExpertPlacement::Explicit(lists) => lists.clone(),
        };
        let mut holders = vec![Vec::new(); experts as usize];
        for (node, list) in node_experts.iter().enumerate() {
            for &e in list {
                holders[e as usize].push(node);
            }
        }
        Placement {
            experts,
            node_experts,
            holders,
        }
    }

    pub fn nodes(&self) -> usize {
        self.node_experts.len()
    }
}

/// The work routing gives one node in one layer: `rows[j]` token rows for the `j`-th
/// expert it runs, by expert id, and which owners (nodes holding the tokens, for
/// split attention) sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLoad {
    /// (expert id, token rows) for each expert this node runs.
    pub experts: Vec<(u32, u32)>,
    /// Distinct tokens from each owner node.
    pub tokens_from: Vec<u32>,
}

impl NodeLoad {
    pub fn rows(&self) -> u32 {
        self.experts.iter().map(|(_, r)| r).sum()
    }

    pub fn distinct_experts(&self) -> usize {
        self.experts.len()
    }
}

/// One routing outcome for every node, with its probability weight.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingSample {
    pub weight: f64,
    pub loads: Vec<NodeLoad>,
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny portable generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u32
    }
}

fn binomial(n: u64, k: u64) -> u64 {
    let k = k.min(n - k.min(n));
    let mut c: u64 = 1;
    for i in 0..k {
        c = match c.checked_mul(n - i) {
            Some(x) => x / (i + 1),
            None => return u64::MAX,
        };
    }
    c
}

/// Every k-subset of `0..e` in lexicographic order.
fn subsets(e: u32, k: u32, mut visit: impl FnMut(&[u32])) {
    let mut pick: Vec<u32> = (0..k).collect();
    loop {
        visit(&pick);
        let Some(i) = (0..k as usize).rev().find(|&i| pick[i] < e - k + i as u32) else {
            return;
        };
        pick[i] += 1;
        for j in i + 1..k as usize {
            pick[j] = pick[j - 1] + 1;
        }
    }
}

/// Assigns each token's `k` picks to holders and returns the loads: token `t` is owned
/// by node `owners[t]` and picks `chosen[t k..(t + 1) k]`.
fn assign(placement: &Placement, owners: &[usize], chosen: &[u32], k: usize) -> Vec<NodeLoad> {
    let n = placement.nodes();
    let experts = placement.experts as usize;
    let mut loads = vec![
        NodeLoad {
            experts: Vec::new(),
            tokens_from: vec![0; n],
        };
        n
    ];
    let mut picks = vec![0u32; n];
    // Where expert `e` sits in node `i`'s list (`slot[i * experts + e]`), so each pick
    // finds its row count at once; the lists keep the order of first picks.
    let mut slot = vec![u32::MAX; n * experts];
    let mut seen = vec![false; n];
    for (&owner, token) in owners.iter().zip(chosen.chunks_exact(k.max(1))) {
        seen.fill(false);
        for &e in token {
            let node = *placement.holders[e as usize]
                .iter()
                .min_by_key(|&&h| (picks[h], h))
                .expect("validated placements hold every expert");
            picks[node] += 1;
            let load = &mut loads[node];
            let at = &mut slot[node * experts + e as usize];
            if *at == u32::MAX {
                *at = load.experts.len() as u32;
                load.experts.push((e, 1));
            } else {
                load.experts[*at as usize].1 += 1;
            }
            if !seen[node] {
                seen[node] = true;
                load.tokens_from[owner] += 1;
            }
        }
    }
    loads
}

/// Routing outcomes for `tokens` tokens (token `t` owned by node `owner(t)`), each
/// choosing `k` of the placement's experts: exact when one token has at most
/// [`EXACT_LIMIT`] choices, else `samples` seeded draws of equal weight.
pub fn routing_samples(
    placement: &Placement,
    k: u32,
    owners: &[usize],
    samples: usize,
    seed: u64,
) -> Vec<RoutingSample> {
    let e = placement.experts;
    if owners.len() == 1 && binomial(u64::from(e), u64::from(k)) <= EXACT_LIMIT {
        let mut out = Vec::new();
        subsets(e, k, |pick| {
            out.push(RoutingSample {
                weight: 1.0,
                loads: assign(placement, &owners[..1], pick, k as usize),
            })
        });
        let w = 1.0 / out.len() as f64;
        out.iter_mut().for_each(|s| s.weight = w);
        return out;
    }
    monte_carlo(placement, k, owners, samples, seed)
}

fn monte_carlo(
    placement: &Placement,
    k: u32,
    owners: &[usize],
    samples: usize,
    seed: u64,
) -> Vec<RoutingSample> {
    let e = placement.experts;
    let mut rng = SplitMix64(seed ^ 0x005E_ED0F_E4E7);
    let samples = samples.max(1);
    let k = k as usize;
    let mut pool: Vec<u32> = (0..e).collect();
    let mut chosen: Vec<u32> = Vec::with_capacity(owners.len() * k);
    (0..samples)
        .map(|_| {
            chosen.clear();
            for _ in owners {
                // Partial Fisher-Yates: the first k of a shuffled pool.
                for i in 0..k {
                    let j = i + rng.below(e - i as u32) as usize;
                    pool.swap(i, j);
                }
                let from = chosen.len();
                chosen.extend_from_slice(&pool[..k]);
                chosen[from..].sort_unstable();
            }
            RoutingSample {
                weight: 1.0 / samples as f64,
                loads: assign(placement, owners, &chosen, k),
            }
        })
        .collect()
}

/// Expected value of `f` over the samples.
pub fn expectation(samples: &[RoutingSample], mut f: impl FnMut(&[NodeLoad]) -> f64) -> f64 {
    samples.iter().map(|s| s.weight * f(&s.loads)).sum()
}

/// Expected expert count of the busiest node (by distinct experts run).
pub fn expected_busiest_experts(samples: &[RoutingSample]) -> f64 {
    expectation(samples, |loads| {
        loads
            .iter()
            .map(|l| l.distinct_experts())
            .max()
            .unwrap_or(0) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busiest(kind: ExpertPlacement, nodes: usize) -> f64 {
        let p = Placement::new(&kind, 16, nodes);
        expected_busiest_experts(&routing_samples(&p, 4, &[0], 0, 7))
    }

    #[test]
    fn study_layouts() {
        let p = Placement::new(&ExpertPlacement::Replicated, 16, 3);
        assert_eq!(p.node_experts[0], (0..8).collect::<Vec<_>>());
        assert_eq!(p.node_experts[1], (8..16).collect::<Vec<_>>());
        assert_eq!(p.node_experts[2], (8..16).collect::<Vec<_>>());
        let p = Placement::new(&ExpertPlacement::Replicated, 16, 4);
        assert_eq!(p.holders[0], vec![0, 1]);
        assert_eq!(p.holders[15], vec![2, 3]);
        let p = Placement::new(&ExpertPlacement::Even, 16, 3);
        assert_eq!(
            p.node_experts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![5, 5, 6]
        );
    }

    #[test]
    fn busiest_node_two_nodes_by_hand() {
        // Hypergeometric count on node 0 (8 of 16 experts, 4 picks): C(8,j) C(8,4-j) /
        // C(16,4) = 70, 448, 784, 448, 70 over 1820. The busiest node holds
        // max(j, 4 - j): E = (784 x 2 + 896 x 3 + 140 x 4) / 1820 = 4816 / 1820.
        assert!((busiest(ExpertPlacement::Even, 2) - 4816.0 / 1820.0).abs() < 1e-12);
    }

    #[test]
    fn busiest_node_three_nodes_replicated_by_hand() {
        // j picks in 0-7 go to node 0; the 4 - j in 8-15 split over nodes 1 and 2 as
        // ceil and floor. Busiest = max(j, ceil((4 - j) / 2)): j = 0, 1, 2 -> 2;
        // j = 3 -> 3; j = 4 -> 4.
        //   E = (2 x (70 + 448 + 784) + 3 x 448 + 4 x 70) / 1820 = 4228 / 1820 = 2.323.
        assert!((busiest(ExpertPlacement::Replicated, 3) - 4228.0 / 1820.0).abs() < 1e-12);
    }

    #[test]
    fn busiest_node_four_nodes_by_hand() {
        // Replicated halves: the larger half's m = max(j, 4 - j) picks split over two
        // nodes, busiest ceil(m / 2): m = 2 -> 1 (784), m = 3 or 4 -> 2 (896 + 140).
        //   E = (784 + 2 x 1036) / 1820 = 2856 / 1820 = 1.569.
        assert!((busiest(ExpertPlacement::Replicated, 4) - 2856.0 / 1820.0).abs() < 1e-12);
        // Even, 4 experts per node. Count patterns of the 1820 choices: (1,1,1,1):
        // 4^4 = 256; (2,1,1,0): 4 x 3 x 6 x 4 x 4 = 1152; (2,2,0,0): 6 x 36 = 216;
        // (3,1,0,0): 4 x 3 x 4 x 4 = 192; (4,0,0,0): 4.
        //   E = (256 + 2 x 1368 + 3 x 192 + 4 x 4) / 1820 = 3584 / 1820 = 1.969.
        assert!((busiest(ExpertPlacement::Even, 4) - 3584.0 / 1820.0).abs() < 1e-12);
    }

    #[test]
    fn monte_carlo_agrees_with_the_exact_expectation_and_is_seeded() {
        let p = Placement::new(&ExpertPlacement::Even, 16, 2);
        // 20,000 draws of one token: the standard error of the busiest count (values
        // 2 to 4, sd ~0.6) is ~0.004, so 0.03 is more than 5 standard errors.
        let one = monte_carlo(&p, 4, &[0], 20_000, 3);
        let e = expected_busiest_experts(&one);
        assert!((e - 4816.0 / 1820.0).abs() < 0.03, "{e}");
        let a = routing_samples(&p, 4, &[0, 0], 4000, 11);
        let b = routing_samples(&p, 4, &[0, 0], 4000, 11);
        assert_eq!(a, b);
        // Two tokens: 8 picks over 2 nodes of 8 experts; the busiest runs at least 4
        // picks and its distinct experts lie between 2 and 8.
        let e = expected_busiest_experts(&a);
        assert!((2.0..=8.0).contains(&e), "{e}");
        let rows = expectation(&a, |l| l.iter().map(|x| x.rows()).max().unwrap() as f64);
        assert!(rows >= 4.0, "{rows}");
    }

    #[test]
    fn binomials() {
        assert_eq!(binomial(16, 4), 1820);
        assert_eq!(binomial(128, 8), 1_429_702_652_400);
    }
}
