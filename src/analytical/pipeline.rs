//! Pipeline parallelism: layers split into stages on different nodes, activations
//! sent from stage to stage.
//!
//! **Split.** `even`: stage sizes differ by at most one layer, earlier stages taking
//! the extra ones (the last stage also runs the LM head). `memory`: layers in
//! proportion to each stage's memory, as exo partitions its ring, by largest
//! remainder, at least one layer per stage.
//!
//! **Decode.** One sequence (batch 1) goes through the stages one after another: a
//! step is the sum of the stage times, plus `P - 1` activation hops forward and one
//! hop to return the sampled token to the first stage. Nothing overlaps, so adding
//! stages over a network only adds hops (GPipe, Huang et al. 2019; exo's and
//! llama.cpp RPC's published multi-node runs show exactly this).
//!
//! With `B` sequences the batch is cut into `m = min(B, P)` micro-batches that chase
//! each other round the ring. A round (every sequence advances one token) takes
//! `max(m x slowest stage, sum of stages + hops)`: either the bottleneck stage is
//! always busy and the hops hide behind other micro-batches' work, or one
//! micro-batch's loop is the critical path.
//!
//! **Prefill.** The prompt's chunks flow through the stages: the makespan is the sum
//! over chunks of the slowest stage, plus draining the last chunk through the other
//! stages, plus `P - 1` hops: `sum_c max_s t(c, s) + (sum_s t(C, s) - max_s t(C, s)) +
//! (P - 1) hop`. One chunk gives the plain sum.

use std::ops::Range;

use super::stage::StageTime;

/// Splits `layers` into one range per stage, in proportion to `weights`.
pub fn split_layers(layers: u32, weights: &[f64]) -> Vec<Range<u32>> {
    let stages = weights.len();
    assert!(stages >= 1 && stages as u32 <= layers);
    let total: f64 = weights.iter().sum();
    let quotas: Vec<f64> = weights
        .iter()
        .map(|w| f64::from(layers) * w / total)
        .collect();
    let mut counts: Vec<u32> = quotas.iter().map(|q| q.floor() as u32).collect();
    let mut left = layers - counts.iter().sum::<u32>();
    // Largest remainder first; ties to earlier stages (relative to the quota so that
    // equal weights give earlier stages the extra layers).
    let mut order: Vec<usize> = (0..stages).collect();
    order.sort_by(|&a, &b| {
        let ra = quotas[a] - quotas[a].floor();
        let rb = quotas[b] - quotas[b].floor();
        rb.partial_cmp(&ra)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    // Every stage runs at least one layer: take from the largest.
    while let Some(empty) = counts.iter().position(|&c| c == 0) {
        let largest = (0..stages)
            .max_by_key(|&i| (counts[i], stages - i))
            .unwrap();
        counts[largest] -= 1;
        counts[empty] += 1;
    }
    let mut start = 0;
    counts
        .iter()
        .map(|&c| {
            let r = start..start + c;
            start += c;
            r
        })
        .collect()
}

/// One decode round: every sequence advances a token. `stages[s]` is one
/// micro-batch's time through stage `s`; `hop_forward_s` a micro-batch's activation
/// between stages and `hop_return_s` the sampled tokens back to the first stage.
pub fn decode_round(
    stages: &[StageTime],
    microbatches: usize,
    hop_forward_s: f64,
    hop_return_s: f64,
) -> StageTime {
    let p = stages.len();
    let m = microbatches.max(1) as f64;
    let hops = if p > 1 {
        (p - 1) as f64 * hop_forward_s + hop_return_s
    } else {
        0.0
    };
    let mut path = StageTime::default();
    for s in stages {
        path.add(s);
    }
    let all_comm = m * (path.communication_s + hops);
    let flops = m * path.flops;
    let bytes = m * path.bytes;
    let loop_s = path.total_s() + hops;
    let bottleneck = stages
        .iter()
        .copied()
        .max_by(|a, b| a.total_s().total_cmp(&b.total_s()))
        .unwrap_or_default();
    if m * bottleneck.total_s() > loop_s {
        StageTime {
            communication_s: all_comm,
            flops,
            bytes,
            ..bottleneck.scaled(m)
        }
    } else {
        StageTime {
            communication_s: all_comm,
            exposed_communication_s: path.exposed_communication_s + hops,
            flops,
            bytes,
            ..path
        }
    }
}

/// Makespan of prefill chunks through the stages: `chunks[c][s]` is chunk `c` on
/// stage `s`, `hop_s[c]` chunk `c`'s activation between stages.
pub fn prefill_makespan(chunks: &[Vec<StageTime>], hop_s: &[f64]) -> StageTime {
    let mut out = StageTime::default();
    let Some(last) = chunks.last() else {
        return out;
    };
    let p = last.len();
    let bottleneck = |c: &[StageTime]| {
        (0..c.len())
            .max_by(|&a, &b| c[a].total_s().total_cmp(&c[b].total_s()))
            .unwrap_or(0)
    };
    let mut in_flight = 0.0;
    for (c, stages) in chunks.iter().enumerate() {
        let b = bottleneck(stages);
        let critical = stages[b];
        out.compute_s += critical.compute_s;
        out.exposed_communication_s += critical.exposed_communication_s;
        out.overhead_s += critical.overhead_s;
        for s in stages {
            in_flight += s.communication_s;
            out.flops += s.flops;
            out.bytes += s.bytes;
        }
        in_flight += (p.saturating_sub(1)) as f64 * hop_s[c];
    }
    let b = bottleneck(last);
    for (s, t) in last.iter().enumerate() {
        if s != b {
            out.compute_s += t.compute_s;
            out.exposed_communication_s += t.exposed_communication_s;
            out.overhead_s += t.overhead_s;
        }
    }
    out.exposed_communication_s += (p.saturating_sub(1)) as f64 * hop_s[chunks.len() - 1];
    out.communication_s = in_flight;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(compute: f64) -> StageTime {
        StageTime {
            compute_s: compute,
            ..StageTime::default()
        }
    }

    #[test]
    fn even_and_memory_splits() {
        // 40 layers over 3 equal stages: 40/3 = 13.33 each, remainders equal, the
        // extra layer to the first: 14, 13, 13.
        assert_eq!(
            split_layers(40, &[1.0, 1.0, 1.0]),
            vec![0..14, 14..27, 27..40]
        );
        // 94 layers over 512 + 256 GB: quotas 62.67 and 31.33 -> 63 and 31.
        assert_eq!(split_layers(94, &[512.0, 256.0]), vec![0..63, 63..94]);
        // A tiny node still gets a layer: 4 layers over 100 : 1 -> quotas 3.96, 0.04
        // -> 4, 0 -> 3, 1.
        assert_eq!(split_layers(4, &[100.0, 1.0]), vec![0..3, 3..4]);
    }

    #[test]
    fn batch_one_decode_is_sequential() {
        // Two stages of 10 ms, hops 0.3 ms forward and 0.29 ms back:
        // 10 + 10 + 0.3 + 0.29 = 20.59 ms, all communication exposed.
        let r = decode_round(&[t(0.010), t(0.010)], 1, 0.0003, 0.00029);
        assert!((r.total_s() - 0.02059).abs() < 1e-12);
        assert!((r.exposed_communication_s - 0.00059).abs() < 1e-12);
        assert!((r.communication_s - 0.00059).abs() < 1e-12);
        // One stage: no hop.
        assert_eq!(decode_round(&[t(0.02)], 1, 0.0003, 0.00029).total_s(), 0.02);
    }

    #[test]
    fn micro_batches_overlap_the_stages() {
        // Two micro-batches through two 10 ms stages, hops 1 ms each way: the loop is
        // 10 + 10 + 1 + 1 = 22 ms, the bottleneck busy 2 x 10 = 20 ms: 22 ms.
        let r = decode_round(&[t(0.010), t(0.010)], 2, 0.001, 0.001);
        assert!((r.total_s() - 0.022).abs() < 1e-12);
        // Three micro-batches with 0.1 ms hops: the loop is 20.2 ms, the bottleneck
        // busy 3 x 10 = 30 ms, which wins; the hops hide (3 x 0.2 = 0.6 ms in flight,
        // none exposed).
        let r = decode_round(&[t(0.010), t(0.010)], 3, 0.0001, 0.0001);
        assert!((r.total_s() - 0.030).abs() < 1e-12);
        assert_eq!(r.exposed_communication_s, 0.0);
        assert!((r.communication_s - 0.0006).abs() < 1e-12);
    }

    #[test]
    fn prefill_chunks_pipeline() {
        // Three chunks over two stages of 4 and 6 ms, hop 1 ms:
        // 3 x 6 (bottleneck) + 4 (drain of the last chunk) + 1 hop = 23 ms.
        let chunk = vec![t(0.004), t(0.006)];
        let r = prefill_makespan(&[chunk.clone(), chunk.clone(), chunk], &[0.001; 3]);
        assert!((r.total_s() - 0.023).abs() < 1e-12);
        assert!((r.communication_s - 0.003).abs() < 1e-12);
        // One chunk: the plain sum 4 + 6 + 1 = 11 ms.
        let r = prefill_makespan(&[vec![t(0.004), t(0.006)]], &[0.001]);
        assert!((r.total_s() - 0.011).abs() < 1e-12);
    }
}
