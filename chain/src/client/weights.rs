//! Weights helpers: scores to u16 weights, and the commit-reveal v2 hash.

use super::error::ChainError;
use crate::wallet::PublicKey;
use codec::Encode;

/// Commit-reveal v2 hash (subtensor `get_commit_hash`):
/// `blake2_256(SCALE((hotkey, netuid_index, uids, values, salt, version_key)))`.
/// `netuid_index` is the netuid for mechanism 0.
pub fn commit_hash(
    hotkey: &PublicKey,
    netuid_index: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    let encoded = (hotkey.0, netuid_index, uids.to_vec(), values.to_vec(), salt.to_vec(), version_key).encode();
    blake2_256(&encoded)
}

/// BLAKE2b with a 32-byte digest.
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    use blake2::digest::{consts::U32, Digest};
    let mut h = blake2::Blake2b::<U32>::new();
    h.update(data);
    h.finalize().into()
}

/// A random salt of `len` u16s for a commit.
pub fn random_salt(len: usize) -> Vec<u16> {
    (0..len).map(|_| rand::random::<u16>()).collect()
}

/// Scores to weights the way the chain normalises them: the largest becomes 65535 and the others
/// scale proportionally. Negative, NaN and infinite scores count as 0. All-zero gives all zeros.
pub fn scores_to_weights(scores: &[f64]) -> Vec<u16> {
    let clean: Vec<f64> = scores.iter().map(|s| if s.is_finite() && *s > 0.0 { *s } else { 0.0 }).collect();
    let max = clean.iter().copied().fold(0.0f64, f64::max);
    if max <= 0.0 {
        return vec![0; scores.len()];
    }
    clean.iter().map(|s| ((s / max) * f64::from(u16::MAX)).round().clamp(0.0, f64::from(u16::MAX)) as u16).collect()
}

/// Parses `uid:weight` pairs or two comma lists (for the CLI).
pub fn parse_u16_list(s: &str) -> Result<Vec<u16>, ChainError> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse::<u16>().map_err(|_| ChainError::BadArgument(format!("{t:?} is not a number from 0 to 65535")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_hash_matches_the_reference_value() {
        // subtensor-interface.md §12.2: Alice, netuid_index 1, uids [0,1], values [65535,100],
        // salt [1..8], version_key 0.
        let alice = PublicKey::from_ss58("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY").unwrap();
        let h = commit_hash(&alice, 1, &[0, 1], &[65535, 100], &[1, 2, 3, 4, 5, 6, 7, 8], 0);
        assert_eq!(hex::encode(h), "9679ad4d55c910f4d03934a379e4f92abe803be586e851c46b2faa3aab424c8c");
    }

    #[test]
    fn scores_normalise_like_the_chain() {
        assert_eq!(scores_to_weights(&[2.0, 1.0, 0.0]), vec![65535, 32768, 0]);
        assert_eq!(scores_to_weights(&[f64::NAN, -1.0, 3.0]), vec![0, 0, 65535]);
        assert_eq!(scores_to_weights(&[0.0, 0.0]), vec![0, 0]);
        assert_eq!(scores_to_weights(&[]), Vec::<u16>::new());
    }

    #[test]
    fn lists_parse() {
        assert_eq!(parse_u16_list("0, 1,2").unwrap(), vec![0, 1, 2]);
        assert!(parse_u16_list("1,x").is_err());
        assert!(parse_u16_list("70000").is_err());
    }
}
