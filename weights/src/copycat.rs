//! Copy-cat detection by top-k index overlap (templar `check_uid_index_overlap`,
//! `reference/templar-protocol.md` §4.7), with the chain's commit order deciding who copied.
//!
//! For two peers and one parameter, the overlap of a chunk is `|idx_a ∩ idx_b| / k` (templar counts
//! the entries of `a`'s chunk found in `b`'s, which is the intersection size for the distinct
//! indices a top-k produces); the parameter's overlap is the mean over its chunks, and the pair's
//! overlap is the mean over parameters weighted by `C·k` (chunks × kept per chunk).
//! A pair at or above `idx_overlap_threshold` is flagged and the peer whose gradient commitment
//! came *later on chain* — the greater `(block, extrinsic index)` — is the copycat (templar compared
//! the buckets' `LastModified` times; ours uses the chain's clock, `PROTOCOL.md` §4). Two equal
//! positions cannot come from two distinct extrinsics, so both peers are flagged then.

use compression::SparseParam;
use serde::{Deserialize, Serialize};

use crate::Uid;

/// Where a gradient commitment was included on chain; the derived order is the chain's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CommitPosition {
    pub block: u64,
    pub extrinsic_index: u32,
}

/// One parameter's kept indices: `k` per chunk, chunk after chunk.
#[derive(Clone, Copy, Debug)]
pub struct ParamIndices<'a> {
    pub k: usize,
    pub indices: &'a [u16],
}

impl<'a> From<&'a SparseParam> for ParamIndices<'a> {
    fn from(p: &'a SparseParam) -> Self {
        ParamIndices { k: p.geometry.k, indices: &p.indices }
    }
}

/// Two peers' index sets that cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopycatError {
    #[error("peers have {a} and {b} parameters")]
    ParamCount { a: usize, b: usize },
    #[error("parameter {param}: k = {k_a} with {len_a} indices vs k = {k_b} with {len_b} indices")]
    Shape { param: usize, k_a: usize, len_a: usize, k_b: usize, len_b: usize },
    #[error("parameter {param}: k is 0 or does not divide the {len} indices")]
    BadK { param: usize, len: usize },
}

/// Mean over chunks of `|a_c ∩ b_c| / k` for one parameter, and its weight `C·k`.
fn param_overlap(
    param: usize,
    a: &ParamIndices<'_>,
    b: &ParamIndices<'_>,
    seen: &mut [u64],
) -> Result<(f64, f64), CopycatError> {
    if a.k != b.k || a.indices.len() != b.indices.len() {
        return Err(CopycatError::Shape { param, k_a: a.k, len_a: a.indices.len(), k_b: b.k, len_b: b.indices.len() });
    }
    let k = a.k;
    if a.indices.len().checked_rem(k) != Some(0) {
        return Err(CopycatError::BadK { param, len: a.indices.len() });
    }
    let chunks = a.indices.len() / k;
    if chunks == 0 {
        return Ok((0.0, 0.0));
    }
    let mut sum = 0.0f64;
    for (ca, cb) in a.indices.chunks_exact(k).zip(b.indices.chunks_exact(k)) {
        for &i in cb {
            seen[usize::from(i) >> 6] |= 1u64 << (i & 63);
        }
        let inter = ca.iter().filter(|&&i| seen[usize::from(i) >> 6] >> (i & 63) & 1 == 1).count();
        for &i in cb {
            seen[usize::from(i) >> 6] = 0;
        }
        // torch: (inter.float() / k).mean() — per-chunk fractions in f32, averaged.
        sum += f64::from(inter as f32 / k as f32);
    }
    let weight = (chunks * k) as f64;
    Ok((sum / chunks as f64, weight))
}

/// The size-weighted mean index overlap of two peers' updates (`0..=1`). Parameters are matched
/// by position and must have the same `k` and number of indices; a peer with no indices at all
/// overlaps 0.
pub fn pair_overlap(a: &[ParamIndices<'_>], b: &[ParamIndices<'_>]) -> Result<f64, CopycatError> {
    if a.len() != b.len() {
        return Err(CopycatError::ParamCount { a: a.len(), b: b.len() });
    }
    let mut seen = vec![0u64; 1 << 10]; // one bit per possible u16 index
    let (mut weighted, mut total) = (0.0f64, 0.0f64);
    for (param, (pa, pb)) in a.iter().zip(b).enumerate() {
        let (mean, weight) = param_overlap(param, pa, pb, &mut seen)?;
        weighted += mean * weight;
        total += weight;
    }
    Ok(if total > 0.0 { weighted / total } else { 0.0 })
}

/// How bad a flagged overlap is (templar `determine_slash_egregiousness`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlapLevel {
    /// `threshold ≤ overlap < max`: scores × `idx_overlap_high_slash_rate` (0.5).
    High,
    /// `max ≤ overlap < mega`: the peer is reset.
    Max,
    /// `overlap ≥ mega`: reset and naughty list.
    Mega,
}

impl OverlapLevel {
    /// The level of an overlap, `None` below `threshold`.
    pub fn of(overlap: f64, threshold: f64, max: f64, mega: f64) -> Option<Self> {
        if overlap >= mega {
            Some(OverlapLevel::Mega)
        } else if overlap >= max {
            Some(OverlapLevel::Max)
        } else if overlap >= threshold {
            Some(OverlapLevel::High)
        } else {
            None
        }
    }
}

/// One gathered peer's update, for the pairwise check.
#[derive(Clone, Debug)]
pub struct PeerUpdate<'a> {
    pub uid: Uid,
    /// Where the commitment of this window's gradient was included on chain.
    pub commit: CommitPosition,
    pub params: Vec<ParamIndices<'a>>,
}

/// A flagged peer: the later committer of a pair whose overlap reached the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopycatFinding {
    pub offender: Uid,
    /// The earlier committer it overlapped with.
    pub original: Uid,
    pub overlap: f64,
    pub level: OverlapLevel,
}

/// Every pair of `peers` (in order `i < j`) whose overlap is at least `threshold`, with the
/// offender chosen by commit order. Pairs that cannot be compared are returned separately (they
/// are not flagged: a shape mismatch means one update is malformed, which decoding rejects).
pub fn detect(
    peers: &[PeerUpdate<'_>],
    threshold: f64,
    max: f64,
    mega: f64,
) -> (Vec<CopycatFinding>, Vec<(Uid, Uid, CopycatError)>) {
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    for (i, a) in peers.iter().enumerate() {
        for b in &peers[i + 1..] {
            let overlap = match pair_overlap(&a.params, &b.params) {
                Ok(o) => o,
                Err(e) => {
                    errors.push((a.uid, b.uid, e));
                    continue;
                }
            };
            let Some(level) = OverlapLevel::of(overlap, threshold, max, mega) else { continue };
            let mut flag =
                |offender: Uid, original: Uid| findings.push(CopycatFinding { offender, original, overlap, level });
            match a.commit.cmp(&b.commit) {
                std::cmp::Ordering::Less => flag(b.uid, a.uid),
                std::cmp::Ordering::Greater => flag(a.uid, b.uid),
                std::cmp::Ordering::Equal => {
                    flag(a.uid, b.uid);
                    flag(b.uid, a.uid);
                }
            }
        }
    }
    (findings, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use compression::{ChunkGeometry, QuantParams};

    fn p(k: usize, indices: &[u16]) -> ParamIndices<'_> {
        ParamIndices { k, indices }
    }

    #[test]
    fn overlap_is_the_weighted_mean_of_per_chunk_fractions() {
        // Param 0: k = 2, two chunks: chunk 0 shares 1 of 2, chunk 1 shares 2 of 2 → mean 0.75,
        // weight 4. Param 1: k = 4, one chunk sharing 1 of 4 → 0.25, weight 4.
        let a0 = [1u16, 5, 7, 9];
        let b0 = [5u16, 6, 9, 7];
        let a1 = [0u16, 1, 2, 3];
        let b1 = [3u16, 10, 11, 12];
        let o = pair_overlap(&[p(2, &a0), p(4, &a1)], &[p(2, &b0), p(4, &b1)]).unwrap();
        assert!((o - (0.75 * 4.0 + 0.25 * 4.0) / 8.0).abs() < 1e-12);
        // Symmetric for distinct indices, 1 with itself, 0 when disjoint.
        let o2 = pair_overlap(&[p(2, &b0), p(4, &b1)], &[p(2, &a0), p(4, &a1)]).unwrap();
        assert_eq!(o, o2);
        assert_eq!(pair_overlap(&[p(2, &a0)], &[p(2, &a0)]).unwrap(), 1.0);
        let far = [100u16, 101, 4095, 65535];
        assert_eq!(pair_overlap(&[p(2, &a0)], &[p(2, &far)]).unwrap(), 0.0);
    }

    #[test]
    fn weights_favour_larger_parameters() {
        // A big identical parameter (weight 64) and a small disjoint one (weight 2).
        let big: Vec<u16> = (0..64).collect();
        let small_a = [0u16, 1];
        let small_b = [2u16, 3];
        let o = pair_overlap(&[p(8, &big), p(2, &small_a)], &[p(8, &big), p(2, &small_b)]).unwrap();
        assert!((o - 64.0 / 66.0).abs() < 1e-12);
    }

    #[test]
    fn mismatched_updates_are_errors() {
        let a = [1u16, 2];
        let b = [1u16, 2, 3, 4];
        assert_eq!(pair_overlap(&[p(2, &a)], &[]), Err(CopycatError::ParamCount { a: 1, b: 0 }));
        assert!(matches!(pair_overlap(&[p(2, &a)], &[p(2, &b)]), Err(CopycatError::Shape { .. })));
        assert!(matches!(pair_overlap(&[p(3, &b)], &[p(3, &b)]), Err(CopycatError::BadK { .. })));
        assert!(matches!(pair_overlap(&[p(0, &b)], &[p(0, &b)]), Err(CopycatError::BadK { .. })));
    }

    #[test]
    fn levels() {
        let l = |o| OverlapLevel::of(o, 0.4, 0.5, 0.6);
        assert_eq!(l(0.39), None);
        assert_eq!(l(0.4), Some(OverlapLevel::High));
        assert_eq!(l(0.5), Some(OverlapLevel::Max));
        assert_eq!(l(0.6), Some(OverlapLevel::Mega));
        assert_eq!(l(1.0), Some(OverlapLevel::Mega));
    }

    #[test]
    fn the_later_committer_is_the_copycat_whatever_the_list_order() {
        let honest: Vec<u16> = (0..8).collect();
        let copy = honest.clone();
        let other: Vec<u16> = (100..108).collect();
        let early = CommitPosition { block: 10, extrinsic_index: 7 };
        let late_same_block = CommitPosition { block: 10, extrinsic_index: 9 };
        let later_block = CommitPosition { block: 11, extrinsic_index: 0 };
        let peers = vec![
            PeerUpdate { uid: 5, commit: late_same_block, params: vec![p(4, &copy)] },
            PeerUpdate { uid: 9, commit: later_block, params: vec![p(4, &other)] },
            PeerUpdate { uid: 3, commit: early, params: vec![p(4, &honest)] },
        ];
        let (f, e) = detect(&peers, 0.4, 0.5, 0.6);
        assert!(e.is_empty());
        assert_eq!(f, vec![CopycatFinding { offender: 5, original: 3, overlap: 1.0, level: OverlapLevel::Mega }]);
        // Swap who committed first: now uid 3 copied.
        let mut peers = peers;
        peers[0].commit = CommitPosition { block: 9, extrinsic_index: 50 };
        let (f, _) = detect(&peers, 0.4, 0.5, 0.6);
        assert_eq!(f[0].offender, 3);
        assert_eq!(f[0].original, 5);
        // Equal positions (impossible for distinct extrinsics): both are flagged.
        peers[0].commit = early;
        let (f, _) = detect(&peers, 0.4, 0.5, 0.6);
        let mut offenders: Vec<_> = f.iter().map(|x| x.offender).collect();
        offenders.sort();
        assert_eq!(offenders, vec![3, 5]);
    }

    #[test]
    fn sparse_params_of_the_codec_can_be_compared() {
        let g = ChunkGeometry::new(&[8, 8], 4, 2).unwrap(); // 4 chunks of 4×4, k = 2
        let quant = QuantParams { shift: 0.0, scale: 1.0, lookup: [0.0; 4] };
        let a = SparseParam { geometry: g, indices: vec![0, 1, 2, 3, 4, 5, 6, 7], codes: vec![0; 8], quant };
        let b = SparseParam { geometry: g, indices: vec![0, 1, 2, 9, 4, 10, 11, 12], codes: vec![0; 8], quant };
        let o = pair_overlap(&[ParamIndices::from(&a)], &[ParamIndices::from(&b)]).unwrap();
        // Chunk overlaps: 1, 1/2, 1/2, 0 → 0.5.
        assert!((o - 0.5).abs() < 1e-12);
    }
}
