//! Order statistics shared by the validation summaries and the serving metrics.

/// Nearest-rank quantile of sorted values: the value at rank ceil(q n).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Median: the mean of the two middle values for an even count.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_nearest_rank_quantiles_by_hand() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(median(&v), Some(3.0));
        // p90 of 5 values: rank ceil(4.5) = 5 -> 10.
        assert_eq!(quantile(&v, 0.9), Some(10.0));
        // Even count: median of [1, 2, 3, 4] = 2.5; p90 rank ceil(3.6) = 4 -> 4.
        assert_eq!(median(&v[..4]), Some(2.5));
        assert_eq!(quantile(&v[..4], 0.9), Some(4.0));
        assert_eq!(median(&[]), None);
    }
}
