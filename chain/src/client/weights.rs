//! Setting weights: the [`Weights`] façade (`client.weights()`: `set_weights`, commit-reveal v2,
//! and the reads that flow needs), and pure helpers (scores to u16 weights, the commit hash).
//!
//! ```no_run
//! # async fn demo(client: &chain::client::Client, hotkey: &chain::wallet::Keypair)
//! # -> Result<(), chain::client::ChainError> {
//! let weights = client.weights();
//! let version_key = weights.version_key(3).await?;
//! let timeout = std::time::Duration::from_secs(600);
//! let set = weights.set_weights_auto(hotkey, 3, &[0, 1], &[65535, 100], version_key, timeout).await?;
//! # let _ = set; Ok(()) }
//! ```

use super::calls;
use super::error::{self, ChainError};
use super::Client;
use crate::wallet::{Keypair, PublicKey};
use codec::Encode;
use std::time::Duration;

/// The outcome of [`Weights::set_weights_auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WeightsSet {
    /// The block of `set_weights`, or of `reveal_weights`.
    pub block: u64,
    /// The block of the commit, when the subnet required commit-reveal.
    pub committed_at: Option<u64>,
}

/// A commit-reveal v2 commit waiting to be revealed: keep it until the reveal epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingReveal {
    pub netuid: u16,
    pub uids: Vec<u16>,
    pub values: Vec<u16>,
    pub salt: Vec<u16>,
    pub version_key: u64,
    /// The block the commit was included in.
    pub commit_block: u64,
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
}

mod hex_32 {
    pub fn serialize<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(h)))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        let b = hex::decode(s.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
        b.try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// Whether a reveal failed only because its reveal epoch has not come: the pallet's
/// `RevealTooEarly`, or subtensor's pool refusing it with `CommitBlockNotInRevealRange`.
pub fn is_too_early(e: &ChainError) -> bool {
    e.dispatch_error_name() == Some("RevealTooEarly")
        || e.custom_code() == Some(error::custom::COMMIT_BLOCK_NOT_IN_REVEAL_RANGE)
}

/// Setting weights on a [`Client`] (`client.weights()`): directly, or by commit-reveal v2. Reads
/// are at the finalized head at the time of each read.
#[derive(Debug, Clone, Copy)]
pub struct Weights<'a> {
    client: &'a Client,
}

impl<'a> Weights<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// `WeightsVersionKey(netuid)` at the finalized head: weights need at least this version key.
    pub async fn version_key(&self, netuid: u16) -> Result<u64, ChainError> {
        self.client.at_finalized().await?.weights_version_key(netuid).await
    }

    /// Whether `netuid` requires commit-reveal, at the finalized head.
    pub async fn commit_reveal_enabled(&self, netuid: u16) -> Result<bool, ChainError> {
        self.client.at_finalized().await?.commit_reveal_enabled(netuid).await
    }

    /// Sets weights directly (subnets without commit-reveal); returns the block.
    pub async fn set_weights(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<u64, ChainError> {
        Ok(self.client.tx().submit(&calls::set_weights(netuid, uids, weights, version_key)?, hotkey).await?.block)
    }

    /// Commit-reveal v2, step 1: commits the hash of the weights with a fresh salt. Keep the
    /// returned [`PendingReveal`] and pass it to [`Self::reveal_weights`] in the reveal epoch.
    pub async fn commit_weights(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
    ) -> Result<PendingReveal, ChainError> {
        if uids.len() != values.len() {
            return Err(ChainError::BadArgument(format!("{} uids but {} weights", uids.len(), values.len())));
        }
        let salt = random_salt(8);
        let hash = commit_hash(&hotkey.public(), netuid, uids, values, &salt, version_key);
        let inc = self.client.tx().submit(&calls::commit_weights(netuid, &hash), hotkey).await?;
        Ok(PendingReveal {
            netuid,
            uids: uids.to_vec(),
            values: values.to_vec(),
            salt,
            version_key,
            commit_block: inc.block,
            hash,
        })
    }

    /// Commit-reveal v2, step 2; returns the block.
    pub async fn reveal_weights(&self, hotkey: &Keypair, pending: &PendingReveal) -> Result<u64, ChainError> {
        let call =
            calls::reveal_weights(pending.netuid, &pending.uids, &pending.values, &pending.salt, pending.version_key)?;
        Ok(self.client.tx().submit(&call, hotkey).await?.block)
    }

    /// Sets weights the way the subnet requires: directly, or (when commit-reveal is on) by a v2
    /// commit, waiting for the reveal epoch, and the reveal. Returns the block of the set or reveal.
    pub async fn set_weights_auto(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
        reveal_timeout: Duration,
    ) -> Result<WeightsSet, ChainError> {
        if !self.commit_reveal_enabled(netuid).await? {
            let block = self.set_weights(hotkey, netuid, uids, weights, version_key).await?;
            return Ok(WeightsSet { block, committed_at: None });
        }
        let pending = self.commit_weights(hotkey, netuid, uids, weights, version_key).await?;
        let block = self.reveal_when_due(hotkey, &pending, reveal_timeout).await?;
        Ok(WeightsSet { block, committed_at: Some(pending.commit_block) })
    }

    /// Reveals a v2 commit as soon as the chain accepts it. Where the chain keeps epochs
    /// (`SubnetEpochIndex`), the reveal epoch is the commit's own epoch (from `WeightCommits`)
    /// plus `RevealPeriodEpochs`: it waits exactly for that one, and says so if it has passed
    /// already. Elsewhere it tries after each `Tempo` blocks. Gives up after `timeout`.
    pub async fn reveal_when_due(
        &self,
        hotkey: &Keypair,
        pending: &PendingReveal,
        timeout: Duration,
    ) -> Result<u64, ChainError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let netuid = pending.netuid;
        let epoch_now = move || async move { self.client.at_finalized().await?.epoch_index(netuid).await };
        let due = self.client.at_finalized().await?.reveal_epoch(netuid, &hotkey.public(), &pending.hash).await?;
        if let Some(reveal_epoch) = due {
            loop {
                let Some(epoch) = epoch_now().await? else { break };
                if epoch > reveal_epoch {
                    return Err(ChainError::BadArgument(format!(
                        "the commit of block {} had to be revealed in epoch {reveal_epoch}; the chain is in epoch {epoch}",
                        pending.commit_block
                    )));
                }
                if epoch == reveal_epoch {
                    return self.reveal_weights(hotkey, pending).await;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ChainError::Timeout { what: "the reveal epoch".into(), secs: timeout.as_secs() });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        loop {
            let at = self.client.at_finalized().await?;
            let (epoch, block, tempo) = (at.epoch_index(netuid).await?, at.block(), at.tempo(netuid).await?);
            let tempo = u64::from(tempo.max(1));
            // Wait for the next epoch.
            loop {
                if tokio::time::Instant::now() >= deadline {
                    return Err(ChainError::Timeout { what: "the reveal epoch".into(), secs: timeout.as_secs() });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let moved = match epoch {
                    Some(e) => epoch_now().await?.is_some_and(|now| now > e),
                    None => self.client.finalized_block().await? >= block + tempo,
                };
                if moved {
                    break;
                }
            }
            match self.reveal_weights(hotkey, pending).await {
                Ok(b) => return Ok(b),
                Err(e) if is_too_early(&e) => {
                    tracing::info!(netuid, "too early to reveal; waiting for the next epoch")
                }
                Err(e) => return Err(e),
            }
        }
    }
}

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
    fn early_reveals_are_recognized_by_their_codes() {
        let pool = |custom| ChainError::Rejected { call: "reveal_weights".into(), reason: String::new(), custom };
        assert!(is_too_early(&pool(Some(17))));
        assert!(!is_too_early(&pool(Some(6))));
        assert!(!is_too_early(&pool(None)));
        // The code is parsed from the node's message where the rejection is built, not matched
        // in the text afterwards.
        assert!(is_too_early(&ChainError::rejected("reveal_weights", "1010: Invalid Transaction: Custom error: 17")));
        assert!(!is_too_early(&ChainError::BadArgument("Custom error: 17".into())));
        let dispatch = |name: &str| ChainError::Dispatch {
            call: "reveal_weights".into(),
            pallet: "SubtensorModule".into(),
            error: name.into(),
            sentence: String::new(),
        };
        assert!(is_too_early(&dispatch("RevealTooEarly")));
        assert!(!is_too_early(&dispatch("ExpiredWeightCommit")));
    }

    #[test]
    fn pending_reveals_round_trip_through_json() {
        let p = PendingReveal {
            netuid: 3,
            uids: vec![0, 1],
            values: vec![65535, 1],
            salt: vec![1; 8],
            version_key: 7,
            commit_block: 40,
            hash: [0xab; 32],
        };
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(&format!("\"0x{}\"", "ab".repeat(32))), "{json}");
        assert_eq!(serde_json::from_str::<PendingReveal>(&json).unwrap(), p);
    }

    #[test]
    fn lists_parse() {
        assert_eq!(parse_u16_list("0, 1,2").unwrap(), vec![0, 1, 2]);
        assert!(parse_u16_list("1,x").is_err());
        assert!(parse_u16_list("70000").is_err());
    }
}
