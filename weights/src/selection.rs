//! Which uids the validator evaluates in a window, and the gather/reserve peer lists it publishes
//! (templar `bin_evaluation_peers`, `select_evaluation_uids_from_bin`,
//! `weighted_random_sample_no_replacement`, `select_initial_peers`, `select_next_peers`;
//! `reference/templar-protocol.md` §4.1, §3.5).
//!
//! Randomness is reproducible by anyone: the caller passes a 32-byte seed (the hash of the first
//! block of window w+1, `PROTOCOL.md` §5), and every draw comes from ChaCha20 keyed by that seed
//! (`rand_chacha` 0.3 `ChaCha20Rng::from_seed(seed)`: 20 rounds, 64-bit block counter from 0),
//! on stream [`EVAL_STREAM`] for the evaluation sample and [`PEER_FILL_STREAM`] for the random
//! fill of an initial peer list. An integer in `0..n` is drawn by [`uniform_below`]:
//! take `next_u64()` (two little-endian keystream words, low word first) and reject values at or
//! above the largest multiple of `n`, then reduce modulo `n` — exact, and simple to re-implement.

use std::collections::BTreeMap;

use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::Uid;

/// ChaCha20 stream of the evaluation sample (bin choice, then the weighted draws).
pub const EVAL_STREAM: u64 = 0;
/// ChaCha20 stream of the random fill of an initial peer list.
pub const PEER_FILL_STREAM: u64 = 1;

/// The generator for `seed` on `stream`.
pub fn rng(seed: [u8; 32], stream: u64) -> ChaCha20Rng {
    let mut r = ChaCha20Rng::from_seed(seed);
    r.set_stream(stream);
    r
}

/// A uniform integer in `0..n` by rejection sampling on `next_u64` (`n = 0` gives 0 and draws
/// nothing).
pub fn uniform_below(rng: &mut impl RngCore, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // Values below `zone` (a multiple of n) are accepted; at most half of all draws are rejected.
    let zone = u64::MAX - (u64::MAX % n + 1) % n;
    loop {
        let x = rng.next_u64();
        if x <= zone {
            return x % n;
        }
    }
}

/// Draws up to `k` distinct candidates, each draw picking a remaining candidate with probability
/// proportional to its weight (templar draws `r ~ U[0, total]` and takes the first cumulative sum
/// `≥ r`; here `r` is an integer in `0..total` and the first cumulative sum `> r` is taken, which
/// gives each candidate exactly `w/total`). Zero-weight candidates are never drawn.
pub fn weighted_sample_without_replacement(rng: &mut impl RngCore, candidates: &[(Uid, u64)], k: usize) -> Vec<Uid> {
    let mut pool: Vec<(Uid, u64)> = candidates.to_vec();
    let mut total: u64 = pool.iter().fold(0u64, |t, &(_, w)| t.saturating_add(w));
    let mut selected = Vec::with_capacity(k.min(pool.len()));
    while selected.len() < k && total > 0 && !pool.is_empty() {
        let r = uniform_below(rng, total);
        let mut cumulative = 0u64;
        let Some(pos) = pool.iter().position(|&(_, w)| {
            cumulative = cumulative.saturating_add(w);
            cumulative > r
        }) else {
            break; // unreachable: the weights sum to `total`
        };
        let (uid, w) = pool.remove(pos);
        selected.push(uid);
        total = total.saturating_sub(w);
    }
    selected
}

/// Splits candidates into `num_bins` bins by ordinal (best first) once there are at least
/// `num_bins × uids_per_window` of them; otherwise one bin in uid order. Ties in ordinal are
/// broken by uid. The first `len % num_bins` bins hold one extra candidate.
pub fn evaluation_bins(candidates: &[(Uid, f64)], num_bins: usize, uids_per_window: usize) -> Vec<Vec<Uid>> {
    let mut sorted: Vec<(Uid, f64)> = candidates.to_vec();
    if num_bins <= 1 || candidates.len() < num_bins.saturating_mul(uids_per_window) {
        sorted.sort_by_key(|&(u, _)| u);
        return vec![sorted.into_iter().map(|(u, _)| u).collect()];
    }
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (per_bin, remainder) = (sorted.len() / num_bins, sorted.len() % num_bins);
    let mut bins = Vec::with_capacity(num_bins);
    let mut start = 0;
    for i in 0..num_bins {
        let end = start + per_bin + usize::from(i < remainder);
        bins.push(sorted[start..end].iter().map(|&(u, _)| u).collect());
        start = end;
    }
    bins
}

/// The uids to evaluate: a bin drawn uniformly, then `min(uids_per_window, |bin|)` uids from it,
/// weighted by their counters (windows since last attempted, starting at 1).
/// `candidates` holds `(uid, ordinal, counter)`.
pub fn select_evaluation_uids(
    seed: [u8; 32],
    candidates: &[(Uid, f64, u64)],
    num_bins: usize,
    uids_per_window: usize,
) -> Vec<Uid> {
    let ordinals: Vec<(Uid, f64)> = candidates.iter().map(|&(u, o, _)| (u, o)).collect();
    let counters: BTreeMap<Uid, u64> = candidates.iter().map(|&(u, _, c)| (u, c)).collect();
    let bins = evaluation_bins(&ordinals, num_bins, uids_per_window);
    let mut rng = rng(seed, EVAL_STREAM);
    let drawn = uniform_below(&mut rng, num_bins.max(1) as u64) as usize;
    let bin = bins.get(drawn).filter(|b| !b.is_empty()).or_else(|| bins.first());
    let Some(bin) = bin else { return Vec::new() };
    let weighted: Vec<(Uid, u64)> = bin.iter().map(|u| (*u, counters.get(u).copied().unwrap_or(1))).collect();
    weighted_sample_without_replacement(&mut rng, &weighted, uids_per_window.min(bin.len()))
}

/// Gather and reserve lists from current weights (templar `select_next_peers`): `eligible` peers
/// sorted by weight (highest first, ties by uid), the first `gather` of them gather, the next
/// `reserve` reserve.
pub fn peers_by_weight(
    eligible: &[Uid],
    weights: &BTreeMap<Uid, f64>,
    gather: usize,
    reserve: usize,
) -> (Vec<Uid>, Vec<Uid>) {
    let mut ranked: Vec<(Uid, f64)> = eligible.iter().map(|&u| (u, weights.get(&u).copied().unwrap_or(0.0))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.dedup_by_key(|x| x.0);
    let picked: Vec<Uid> = ranked.into_iter().take(gather + reserve).map(|(u, _)| u).collect();
    let split = gather.min(picked.len());
    (picked[..split].to_vec(), picked[split..].to_vec())
}

/// The first peer lists (templar `select_initial_peers`): eligible peers with positive incentive,
/// highest first (ties by uid), then a uniformly random fill from the other eligible peers
/// (ChaCha20 stream [`PEER_FILL_STREAM`], a partial Fisher–Yates shuffle of them in uid order).
pub fn initial_peers(
    seed: [u8; 32],
    eligible: &[Uid],
    incentive: &BTreeMap<Uid, f64>,
    gather: usize,
    reserve: usize,
) -> (Vec<Uid>, Vec<Uid>) {
    let total = gather + reserve;
    let mut eligible: Vec<Uid> = eligible.to_vec();
    eligible.sort_unstable();
    eligible.dedup();
    let mut ranked: Vec<(Uid, f64)> = eligible
        .iter()
        .filter_map(|u| incentive.get(u).filter(|i| i.is_finite() && **i > 0.0).map(|&i| (*u, i)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(total);
    let mut picked: Vec<Uid> = ranked.iter().map(|&(u, _)| u).collect();
    let mut rest: Vec<Uid> = eligible.iter().copied().filter(|u| !picked.contains(u)).collect();
    let mut rng = rng(seed, PEER_FILL_STREAM);
    let need = total.saturating_sub(picked.len()).min(rest.len());
    for i in 0..need {
        let j = i + uniform_below(&mut rng, (rest.len() - i) as u64) as usize;
        rest.swap(i, j);
        picked.push(rest[i]);
    }
    let split = gather.min(picked.len());
    (picked[..split].to_vec(), picked[split..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_below_is_in_range_and_covers_it() {
        let mut r = rng([1; 32], 0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[uniform_below(&mut r, 7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 850 && c < 1150), "{seen:?}");
        assert_eq!(uniform_below(&mut r, 1), 0);
        let _ = uniform_below(&mut r, u64::MAX);
    }

    #[test]
    fn same_seed_same_sample_other_seed_other_sample() {
        let cands: Vec<(Uid, f64, u64)> = (0..60).map(|u| (u, 0.0, 1 + u64::from(u % 4))).collect();
        let a = select_evaluation_uids([7; 32], &cands, 5, 20);
        let b = select_evaluation_uids([7; 32], &cands, 5, 20);
        let c = select_evaluation_uids([8; 32], &cands, 5, 20);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 20);
        let mut d = a.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 20, "no uid twice");
    }

    #[test]
    fn sampling_is_proportional_to_the_counters() {
        // uid 0 has counter 9, uid 1 counter 1: drawing one of them, uid 0 wins ~90 %.
        let mut r = rng([3; 32], 0);
        let wins = (0..20_000)
            .filter(|_| weighted_sample_without_replacement(&mut r, &[(0, 9), (1, 1)], 1) == vec![0])
            .count();
        assert!((17_600..18_400).contains(&wins), "{wins}");
        // Zero weights are never drawn, even when k asks for more.
        assert_eq!(weighted_sample_without_replacement(&mut r, &[(4, 0), (5, 2)], 2), vec![5]);
        assert!(weighted_sample_without_replacement(&mut r, &[], 3).is_empty());
    }

    #[test]
    fn bins_by_ordinal_only_from_num_bins_times_uids_per_window() {
        let few: Vec<(Uid, f64)> = (0..99).map(|u| (u, f64::from(u))).collect();
        let bins = evaluation_bins(&few, 5, 20);
        assert_eq!(bins.len(), 1);
        assert_eq!(bins[0], (0..99).collect::<Vec<_>>());
        let many: Vec<(Uid, f64)> = (0..103).map(|u| (u, f64::from(u))).collect();
        let bins = evaluation_bins(&many, 5, 20);
        assert_eq!(bins.iter().map(Vec::len).collect::<Vec<_>>(), vec![21, 21, 21, 20, 20]);
        assert_eq!(bins[0][0], 102, "best ordinal first");
        assert_eq!(*bins[4].last().unwrap(), 0);
        // With bins, the sample comes from one bin only.
        let cands: Vec<(Uid, f64, u64)> = many.iter().map(|&(u, o)| (u, o, 1)).collect();
        let s = select_evaluation_uids([9; 32], &cands, 5, 20);
        assert_eq!(s.len(), 20);
        assert!(bins.iter().any(|b| s.iter().all(|u| b.contains(u))));
    }

    #[test]
    fn peer_lists_by_weight() {
        let weights: BTreeMap<Uid, f64> = [(1, 0.5), (4, 0.2), (7, 0.3), (9, 0.2)].into_iter().collect();
        let (g, r) = peers_by_weight(&[9, 4, 7, 11, 12], &weights, 2, 2);
        assert_eq!(g, vec![7, 4]);
        assert_eq!(r, vec![9, 11]);
    }

    #[test]
    fn initial_peers_by_incentive_then_random_fill() {
        let incentive: BTreeMap<Uid, f64> = [(3, 0.1), (5, 0.4), (6, 0.0)].into_iter().collect();
        let eligible: Vec<Uid> = (1..=10).collect();
        let (g, r) = initial_peers([2; 32], &eligible, &incentive, 3, 2);
        assert_eq!(&g[..2], &[5, 3]);
        assert_eq!(g.len() + r.len(), 5);
        let all: Vec<Uid> = g.iter().chain(&r).copied().collect();
        let mut uniq = all.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 5);
        assert_eq!(initial_peers([2; 32], &eligible, &incentive, 3, 2), (g, r));
        // Fewer eligible than slots: everyone, no panic.
        let (g, r) = initial_peers([2; 32], &[4, 2], &incentive, 3, 2);
        assert_eq!(g.len() + r.len(), 2);
        assert!(r.is_empty());
    }
}
