//! The Pareto frontier: options no other option beats on every objective at once.

/// Indices of the points not dominated by any other. Each point is a vector of
/// objectives to minimise (negate one to maximise it). `a` dominates `b` when it is
/// no worse on every objective and strictly better on one. Sorting by the first
/// objective lets each point be compared only with the frontier so far: O(n f).
pub fn pareto_front(points: &[Vec<f64>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .iter()
            .zip(&points[b])
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let mut front: Vec<usize> = Vec::new();
    for i in order {
        if !front
            .iter()
            .any(|&j| dominates(&points[j], &points[i]) || points[j] == points[i])
        {
            front.push(i);
        }
    }
    front.sort_unstable();
    front
}

pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, checked pair by pair.
    fn brute_force(points: &[Vec<f64>]) -> Vec<usize> {
        (0..points.len())
            .filter(|&i| {
                !(0..points.len()).any(|j| {
                    j != i
                        && (dominates(&points[j], &points[i]) || (points[j] == points[i] && j < i))
                })
            })
            .collect()
    }

    #[test]
    fn small_set_by_hand() {
        // (cost, -throughput): (1,-1) (2,-3) (3,-2) (2,-2) (4,-4)
        // (3,-2) is beaten by (2,-3); (2,-2) by (2,-3). Front: 0, 1, 4.
        let p = vec![
            vec![1.0, -1.0],
            vec![2.0, -3.0],
            vec![3.0, -2.0],
            vec![2.0, -2.0],
            vec![4.0, -4.0],
        ];
        assert_eq!(pareto_front(&p), vec![0, 1, 4]);
        assert_eq!(brute_force(&p), vec![0, 1, 4]);
    }

    proptest! {
        #[test]
        fn matches_brute_force(points in prop::collection::vec(prop::collection::vec(0u8..6, 3), 0..40)) {
            let p: Vec<Vec<f64>> = points.iter().map(|v| v.iter().map(|x| f64::from(*x)).collect()).collect();
            prop_assert_eq!(pareto_front(&p), brute_force(&p));
        }
    }
}
