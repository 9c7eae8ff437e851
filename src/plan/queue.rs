//! Waiting time in M/D/1 and M/D/c queues: Poisson arrivals served, one at a time
//! per server, each for the same time. The plan's screen queues prefills this way.
//!
//! The distribution is Erlang's (derived by Crommelin, 1932): with load `ρ`, service
//! time `D` and arrival rate `λ = ρ / D`,
//!
//! `P(W <= t) = (1 - ρ) Σ_{k=0}^{⌊t/D⌋} (λ(kD - t))^k / k! · e^{-λ(kD - t)}`.
//!
//! Its terms alternate in sign and grow to about `e^{2λt}`, so the sum is used while
//! `λt <= SERIES_LIMIT` (terms below 3e10: the CDF keeps six digits). Beyond (loads
//! above about 0.91 at the 90th percentile), the tail is the two-moment exponential
//! `P(W > t) = ρ e^{-ρ t / W̄}`, which has the right probability of waiting (`ρ`) and
//! the right mean (`W̄ = ρ D / (2 (1 - ρ))`) and is within 3% of the exact 90th
//! percentile from a load of 0.9 up.

/// Largest `λt` for which Erlang's series is summed.
const SERIES_LIMIT: f64 = 12.0;

/// P(W <= t) by Erlang's series, for `λt <= SERIES_LIMIT`.
fn erlang_cdf(rho: f64, service_s: f64, t: f64) -> f64 {
    let lambda = rho / service_s;
    let last = (t / service_s).floor() as u64;
    let mut sum = 0.0;
    let mut factorial = 1.0;
    for k in 0..=last {
        if k > 0 {
            factorial *= k as f64;
        }
        let x = lambda * (k as f64 * service_s - t);
        sum += x.powi(k as i32) / factorial * (-x).exp();
    }
    (1.0 - rho) * sum
}

/// The `q` quantile of an exponential-tailed wait, `P(W > t) = p_wait e^{-p_wait t / mean}`:
/// the right probability of waiting at all and the right mean wait.
fn exponential_tail_quantile(p_wait: f64, mean: f64, q: f64) -> f64 {
    mean / p_wait * (p_wait / (1.0 - q)).ln()
}

/// The `q` quantile of the waiting time (before service starts) at load `rho` for
/// service time `service_s`; 0 when at least a fraction `q` of arrivals find the
/// server free (`1 - ρ >= q`). `rho` must be below 1.
pub fn md1_wait_quantile(rho: f64, service_s: f64, q: f64) -> f64 {
    if rho <= 0.0 || 1.0 - rho >= q {
        return 0.0;
    }
    let lambda = rho / service_s;
    let series_end = SERIES_LIMIT / lambda;
    if erlang_cdf(rho, service_s, series_end) < q {
        let mean = rho * service_s / (2.0 * (1.0 - rho));
        return exponential_tail_quantile(rho, mean, q);
    }
    // The CDF rises from 1 - ρ < q at 0: bisect for the first t where it reaches q.
    let (mut lo, mut hi) = (0.0, series_end);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if erlang_cdf(rho, service_s, mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The `q` quantile of the waiting time when arrivals at total load `servers x rho`
/// share `servers` identical servers (M/D/c: one queue, each request taken by the
/// first server to free; the engine's least-loaded router comes close to it): exact
/// for one server ([`md1_wait_quantile`]); for more, approximated from the M/M/c
/// queue. The probability of waiting is Erlang's C formula, the mean wait half of
/// M/M/c's (deterministic service halves it, as in M/D/1 against M/M/1: Lee and
/// Longton's approximation, `W(M/G/c) = (1 + cv²) / 2 x W(M/M/c)`), and the tail
/// exponential: `P(W > t) = C e^{-C t / W̄}`. Against a simulated M/D/c queue's 90th
/// percentile (400,000 arrivals; 2, 3, 4 and 8 servers; 2026-11-22) it is within 5%
/// from a load of 0.8 up, and at lower loads short of it by at most 0.08 service
/// times (2 servers at 0.5: 0.60 against 0.67; 8 servers at 0.7: 0.21 against 0.25).
pub fn mdc_wait_quantile(servers: u32, rho: f64, service_s: f64, q: f64) -> f64 {
    if servers <= 1 {
        return md1_wait_quantile(rho, service_s, q);
    }
    if rho <= 0.0 {
        return 0.0;
    }
    let c = f64::from(servers);
    let offered = c * rho;
    // Erlang C from the Erlang B recursion B(k) = a B(k-1) / (k + a B(k-1)), which
    // stays in [0, 1] for any number of servers.
    let mut blocking = 1.0;
    for k in 1..=servers {
        blocking = offered * blocking / (f64::from(k) + offered * blocking);
    }
    let waits = blocking / (1.0 - rho * (1.0 - blocking));
    if waits <= 1.0 - q {
        return 0.0;
    }
    let mean = waits * service_s / (c * (1.0 - rho)) / 2.0;
    exponential_tail_quantile(waits, mean, q)
}

/// The `q` quantile of a Poisson count with mean `mean`: the least `k` with
/// `P(N <= k) >= q`. Summed term by term (in logarithms, so a large mean does not
/// underflow `e^{-mean}`) up to a mean of 10,000, from the normal approximation
/// `mean + z_q sqrt(mean)` beyond (`z_q` by bisection on the normal CDF).
pub fn poisson_quantile(mean: f64, q: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    if mean > 10_000.0 {
        return (mean + normal_quantile(q) * mean.sqrt()).ceil();
    }
    let mut log_term = -mean;
    let mut cdf = log_term.exp();
    let mut k = 0.0;
    while cdf < q {
        k += 1.0;
        log_term += mean.ln() - f64::ln(k);
        cdf += log_term.exp();
    }
    k
}

/// The standard normal's `q` quantile, by bisection on `Φ(z) = erfc(-z / √2) / 2`
/// (erfc by Numerical Recipes' Chebyshev fit, relative error below 1.2e-7).
fn normal_quantile(q: f64) -> f64 {
    let erfc = |x: f64| {
        let z = x.abs();
        let t = 1.0 / (1.0 + 0.5 * z);
        let r = t
            * (-z * z - 1.265_512_23
                + t * (1.000_023_68
                    + t * (0.374_091_96
                        + t * (0.096_784_18
                            + t * (-0.186_288_06
                                + t * (0.278_868_07
                                    + t * (-1.135_203_98
                                        + t * (1.488_515_87
                                            + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
                .exp();
        if x >= 0.0 {
            r
        } else {
            2.0 - r
        }
    };
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * erfc(-mid / std::f64::consts::SQRT_2) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha12Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn below_one_service_time_the_quantile_is_closed_form() {
        // For t < D only k = 0 counts: P(W <= t) = (1 - ρ) e^{λt}. At ρ = 0.2, D = 1 s:
        // 0.8 e^{0.2 t} = 0.9 gives t = 5 ln(1.125) = 0.58892 s; D = 2 s doubles it.
        let t = md1_wait_quantile(0.2, 1.0, 0.9);
        assert!((t - 5.0 * 1.125_f64.ln()).abs() < 1e-9, "{t}");
        let t2 = md1_wait_quantile(0.2, 2.0, 0.9);
        assert!((t2 - 2.0 * t).abs() < 1e-9, "{t2}");
        // At ρ = 0.1, 90% of arrivals find the server free.
        assert_eq!(md1_wait_quantile(0.1, 1.0, 0.9), 0.0);
        assert_eq!(md1_wait_quantile(0.0, 1.0, 0.9), 0.0);
    }

    #[test]
    fn the_quantile_matches_a_simulated_queue() {
        // Erlang's series (0.3 to 0.9) and the exponential tail (0.95) against 400,000
        // simulated arrivals each; the old screen's 2.3 x mean wait is 25-40% short at
        // 0.3 to 0.7 (0.49, 1.15 and 2.69 s against about 0.84, 1.52 and 3.05 s).
        for rho in [0.3, 0.5, 0.7, 0.9, 0.95] {
            let exact = md1_wait_quantile(rho, 1.0, 0.9);
            let simulated = simulated_p90(1, rho, 400_000, 7);
            let tolerance = if rho >= 0.9 { 0.06 } else { 0.03 };
            assert!(
                (exact / simulated - 1.0).abs() < tolerance,
                "rho {rho}: {exact} against {simulated}"
            );
        }
    }

    /// The 90th percentile of the wait with `c` servers sharing one first-come queue
    /// (Kiefer-Wolfowitz: each arrival takes the server that frees first; Lindley's
    /// recursion for one), D = 1, nearest rank over `n` arrivals.
    fn simulated_p90(c: usize, rho: f64, n: usize, seed: u64) -> f64 {
        let mut rng = ChaCha12Rng::seed_from_u64(seed);
        let mut free = vec![0.0_f64; c];
        let (mut now, mut waits) = (0.0, Vec::with_capacity(n));
        for _ in 0..n {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            now += -(1.0 - u).ln() / (rho * c as f64);
            let first = (0..c).min_by(|&a, &b| free[a].total_cmp(&free[b])).unwrap();
            let start = free[first].max(now);
            waits.push(start - now);
            free[first] = start + 1.0;
        }
        waits.sort_by(f64::total_cmp);
        crate::stats::quantile(&waits, 0.9).unwrap()
    }

    #[test]
    fn shared_servers_match_a_simulated_queue() {
        // Erlang C by hand for c = 2 at a load of 0.5 (a = 1 erlang): B(1) = 1/2,
        // B(2) = 0.5 / (2 + 0.5) = 0.2, C = 0.2 / (1 - 0.5 x 0.8) = 1/3. Mean wait
        // (1/3) / (2 x 0.5) / 2 = 1/6; p90 = (1/6) / (1/3) x ln(10/3) = 0.60199.
        let t = mdc_wait_quantile(2, 0.5, 1.0, 0.9);
        assert!((t - 0.5 * (10.0_f64 / 3.0).ln()).abs() < 1e-12, "{t}");
        for (c, rho) in [(2, 0.5), (2, 0.7), (2, 0.9), (4, 0.7), (4, 0.9), (2, 0.3)] {
            let approx = mdc_wait_quantile(c, rho, 1.0, 0.9);
            let simulated = simulated_p90(c as usize, rho, 300_000, 11);
            let ok = if rho >= 0.5 {
                (approx / simulated - 1.0).abs() < 0.12
            } else {
                (approx - simulated).abs() < 0.06
            };
            assert!(ok, "c {c}, rho {rho}: {approx} against {simulated}");
        }
        // One server is M/D/1's exact quantile; sharing servers shortens the wait.
        assert_eq!(
            mdc_wait_quantile(1, 0.6, 1.0, 0.9),
            md1_wait_quantile(0.6, 1.0, 0.9)
        );
        assert!(mdc_wait_quantile(2, 0.6, 1.0, 0.9) < md1_wait_quantile(0.6, 1.0, 0.9));
    }

    proptest::proptest! {
        /// More load never shortens the wait, and more servers at the same load per
        /// server never lengthen it (pooling), across the series, the tail and the
        /// switch between them.
        #[test]
        fn load_lengthens_and_pooling_shortens_the_wait(
            rho in 0.01f64..0.99,
            extra in 0.0f64..0.3,
            servers in 1u32..8,
        ) {
            let more = (rho + extra).min(0.995);
            let wait = |c: u32, r: f64| mdc_wait_quantile(c, r, 1.0, 0.9);
            proptest::prop_assert!(wait(servers, more) >= wait(servers, rho) - 1e-9);
            proptest::prop_assert!(wait(servers + 1, rho) <= wait(servers, rho) + 1e-9);
        }
    }

    #[test]
    fn poisson_quantiles_by_hand() {
        // Mean 1: P(0) = P(1) = 0.3679, P(2) = 0.1839, P(3) = 0.0613: the CDF is
        // 0.3679, 0.7358, 0.9197 at 0, 1, 2, so the 90th percentile is 2.
        assert_eq!(poisson_quantile(1.0, 0.9), 2.0);
        // Mean 0.05: P(0) = e^-0.05 = 0.951 >= 0.9.
        assert_eq!(poisson_quantile(0.05, 0.9), 0.0);
        assert_eq!(poisson_quantile(0.0, 0.9), 0.0);
        // The normal quantile: z(0.9) = 1.28155 (tables).
        assert!((normal_quantile(0.9) - 1.281_552).abs() < 1e-5);
        // At a mean of 10,000 the sum and the normal approximation agree to a count
        // or two (10,000 + 1.2816 x 100 = 10,128.2).
        let summed = poisson_quantile(10_000.0, 0.9);
        let normal = poisson_quantile(10_000.5, 0.9);
        assert!((summed - normal).abs() <= 2.0, "{summed} {normal}");
        assert!((summed - 10_128.0).abs() <= 2.0, "{summed}");
    }

    #[test]
    fn the_series_and_the_tail_meet() {
        // Where the series stops, the exponential tail takes over: at a load where the
        // 90th percentile sits near λt = 12 both give about the same wait (within 3%).
        let rho = 0.91;
        let lambda = rho;
        let series = md1_wait_quantile(rho, 1.0, 0.9);
        assert!(lambda * series <= SERIES_LIMIT, "{series}");
        let mean = rho / (2.0 * (1.0 - rho));
        let tail = mean / rho * (rho / 0.1_f64).ln();
        assert!((tail / series - 1.0).abs() < 0.03, "{tail} {series}");
    }
}
