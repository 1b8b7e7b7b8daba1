//! Deterministic data assignment (`PROTOCOL.md` §5): which samples miner `uid` trains on in
//! `window`, reproducible by every validator on every machine.
//!
//! The pool of `(netuid, uid, window)` is `pool_size` distinct sample indices of a dataset of `n`
//! samples, drawn as follows (the specification other implementations must follow bit for bit):
//! 1. seed = blake2b-256(`netuid` u16 LE ‖ `uid` u16 LE ‖ `window` u64 LE ‖ `"pool"`);
//! 2. a ChaCha20 stream (20 rounds, 256-bit key = seed, nonce and stream 0, counter from 0; the
//!    `rand_chacha` `ChaCha20Rng::from_seed`) gives u64 words, each the next 8 bytes little-endian;
//! 3. a number below `s` is drawn by Lemire's multiply-shift with rejection: take a word `x`,
//!    `m = x·s` as u128; if `(m mod 2⁶⁴) < (2⁶⁴ − s) mod s`, take the next word; else `m >> 64`;
//! 4. a partial Fisher–Yates shuffle of `0..n`: for `i` in `0..pool_size`, draw `j` in `i..n`
//!    (`i + bounded(n − i)`), swap positions `i` and `j`, and emit position `i`.
//!
//! The miner trains on the first `H·B` entries; validators draw evaluation batches from the pool.

use std::collections::HashMap;

use blake2::Digest;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::Blake2b256;

/// A number uniformly below `bound` (> 0), as specified in the module docs.
pub fn bounded(rng: &mut ChaCha20Rng, bound: u64) -> u64 {
    debug_assert!(bound > 0);
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let m = rng.next_u64() as u128 * bound as u128;
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

/// `count` distinct indices below `n` (all of them, shuffled, if `count ≥ n`), by a partial
/// Fisher–Yates shuffle driven by `rng`.
pub fn sample_without_replacement(rng: &mut ChaCha20Rng, n: u64, count: u64) -> Vec<u64> {
    let count = count.min(n);
    // Positions moved by earlier swaps; untouched positions hold their own index.
    let mut moved: HashMap<u64, u64> = HashMap::with_capacity(count as usize * 2);
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let j = i + bounded(rng, n - i);
        let at_j = *moved.get(&j).unwrap_or(&j);
        let at_i = *moved.get(&i).unwrap_or(&i);
        moved.insert(j, at_i);
        out.push(at_j);
    }
    out
}

/// The seed of the pool of `(netuid, uid, window)`.
pub fn pool_seed(netuid: u16, uid: u16, window: u64) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(netuid.to_le_bytes());
    h.update(uid.to_le_bytes());
    h.update(window.to_le_bytes());
    h.update(b"pool");
    h.finalize().into()
}

/// The sample pool of `(netuid, uid, window)` over a dataset of `dataset_len` samples.
pub fn sample_pool(netuid: u16, uid: u16, window: u64, dataset_len: u64, pool_size: u64) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(pool_seed(netuid, uid, window));
    sample_without_replacement(&mut rng, dataset_len, pool_size)
}

/// `count` entries of `pool` chosen (without replacement) by a ChaCha20 stream keyed with `seed`,
/// e.g. the hash of the first block of window `w + 1` for a validator's evaluation batch.
pub fn eval_batch(pool: &[u64], seed: [u8; 32], count: usize) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    sample_without_replacement(&mut rng, pool.len() as u64, count as u64)
        .into_iter()
        .map(|i| pool[i as usize])
        .collect()
}

/// The pseudo-uid whose pool serves as "random" data in window evaluation with `seed`: a uid
/// no miner holds (≥ 2¹⁶ is impossible for a u16 uid, so the pool seed takes a distinct domain).
pub fn random_pool(netuid: u16, window: u64, seed: [u8; 32], dataset_len: u64, pool_size: u64) -> Vec<u64> {
    let mut h = Blake2b256::new();
    h.update(netuid.to_le_bytes());
    h.update(window.to_le_bytes());
    h.update(seed);
    h.update(b"random-pool");
    let mut rng = ChaCha20Rng::from_seed(h.finalize().into());
    sample_without_replacement(&mut rng, dataset_len, pool_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_distinct_in_range_and_deterministic() {
        let a = sample_pool(3, 7, 100, 10_000, 500);
        assert_eq!(a.len(), 500);
        assert!(a.iter().all(|&i| i < 10_000));
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 500);
        assert_eq!(a, sample_pool(3, 7, 100, 10_000, 500));
        assert_ne!(a, sample_pool(3, 8, 100, 10_000, 500));
        assert_ne!(a, sample_pool(3, 7, 101, 10_000, 500));
        // A pool larger than the dataset is a permutation of it.
        let mut all = sample_pool(1, 1, 1, 50, 80);
        all.sort_unstable();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn known_answer() {
        // Also produced by the independent Python implementation in tests/reference/pool.py;
        // other implementations can check themselves against these numbers.
        assert_eq!(sample_pool(3, 1, 42, 1_000_000, 5), [656963, 282256, 48595, 746446, 847858]);
    }

    #[test]
    fn bounded_is_roughly_uniform() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[bounded(&mut rng, 6) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
    }
}
