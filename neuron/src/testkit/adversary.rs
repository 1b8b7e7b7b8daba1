//! Dishonest miners for the local network and the end-to-end tests: each breaks one rule the
//! validator must catch (PROTOCOL.md §4, §6.5). `neuron adversary --kind K` runs one
//! ([`crate::testkit::miner`]).

use anyhow::{Context, Result};
use compression::signature;
use compression::wire;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::node::Node;
use crate::storage::{commitment_fields, ObjectKey};

/// Kinds of dishonest miner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// Uploads random noise with the norm of an honest update.
    Noise,
    /// Uploads its honest update ×100.
    Scaled,
    /// Re-uploads its payload of an earlier window.
    Stale,
    /// Copies another miner's payload after seeing it.
    Copycat,
    /// Commits after the put window.
    Late,
    /// Uploads corrupt bytes.
    Malformed,
    /// Trains on samples that are not its assignment.
    Freeloader,
    /// Uploads its honest update negated.
    SignFlip,
    /// Takes one inner step instead of H.
    Lazy,
    /// Uploads its honest update ×0.01 (the right direction, no real work's size).
    Tiny,
    /// Publishes the leading validator's debug slice as its own (a fake sync score).
    SyncSpoof,
}

impl Adversary {
    pub fn name(self) -> &'static str {
        match self {
            Self::Noise => "noise",
            Self::Scaled => "scaled",
            Self::Stale => "stale",
            Self::Copycat => "copycat",
            Self::Late => "late",
            Self::Malformed => "malformed",
            Self::Freeloader => "freeloader",
            Self::SignFlip => "sign-flip",
            Self::Lazy => "lazy",
            Self::Tiny => "tiny",
            Self::SyncSpoof => "sync-spoof",
        }
    }

    pub const ALL: [Adversary; 11] = [
        Self::Noise,
        Self::Scaled,
        Self::Stale,
        Self::Copycat,
        Self::Late,
        Self::Malformed,
        Self::Freeloader,
        Self::SignFlip,
        Self::Lazy,
        Self::Tiny,
        Self::SyncSpoof,
    ];

    /// The kind named `name` (as [`Adversary::name`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The uid whose sample pool this miner trains on.
    pub fn training_uid(self, uid: u16) -> u16 {
        match self {
            Self::Freeloader => uid.wrapping_add(1000),
            _ => uid,
        }
    }

    /// Inner steps per window, for an honest `h`.
    pub fn inner_steps(self, h: usize) -> usize {
        match self {
            Self::Lazy => 1,
            _ => h,
        }
    }

    /// Whether it publishes its payload the honest way (commit in time, then upload): the kinds
    /// that cheat in what they upload or in their debug slice, not in how they publish.
    pub fn publishes_honestly(self) -> bool {
        matches!(
            self,
            Self::Noise | Self::Scaled | Self::Freeloader | Self::SignFlip | Self::Lazy | Self::Tiny | Self::SyncSpoof
        )
    }

    /// Replaces the honest pseudo-gradient before compression.
    pub fn distort(self, delta: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Noise => {
                let noise = delta.f_randn_like()?;
                let scale = delta.f_norm()?.f_div(&noise.f_norm()?.f_add_scalar(1e-12)?)?;
                noise.f_mul(&scale)?
            }
            Self::Scaled => delta.f_mul_scalar(100.0)?,
            Self::SignFlip => delta.f_neg()?,
            Self::Tiny => delta.f_mul_scalar(0.01)?,
            _ => delta.shallow_clone(),
        })
    }
}

/// Puts `object` as this node's gradient for `window` and commits its hash, without the honest
/// publisher's checks (timing, header).
pub async fn publish_raw(node: &Node, window: u64, object: Vec<u8>) -> Result<u64> {
    let hash = signature::content_hash(&object);
    node.bucket.put(&node.key(ObjectKey::gradient(window, node.uid)), object.into()).await?;
    let fields = commitment_fields(&node.credentials, Some((window, hash)));
    Ok(node.chain.tx().set_commitment(&node.hotkey, node.netuid, &fields).await?)
}

/// Signs an encoded payload with the node's hotkey.
pub fn sign(node: &Node, object: &mut [u8]) -> Result<()> {
    crate::storage::sign_payload(object, &node.hotkey)?;
    Ok(())
}

/// Bytes that are not a payload but are the size of one.
pub fn malformed(len: usize, window: u64) -> Vec<u8> {
    let mut state = window.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len.max(64))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// The bucket a victim's payloads are read from (its credentials are on chain).
pub async fn victim_bucket(node: &Node, victim: u16) -> Result<crate::storage::Bucket> {
    let book = crate::storage::PeerBook::read(&node.chain, node.netuid).await?;
    let peer = book.get(victim).context("victim uid is not on the subnet")?;
    let creds =
        peer.commitment.as_ref().map_err(|e| anyhow::anyhow!("victim has no commitment: {e}"))?.credentials.clone();
    Ok(node.s3.reader(&node.endpoint, &creds))
}

/// Another miner's payload for `window` from its bucket, re-signed as this node's: same updates,
/// own header. Fails until the victim has uploaded it (which honest miners do only once their
/// hash is committed).
pub async fn copy_of(node: &Node, bucket: &crate::storage::Bucket, window: u64, victim: u16) -> Result<Vec<u8>> {
    let limit = wire::max_payload_len(&node.manifest) as u64;
    let got = bucket.get_capped(&node.key(ObjectKey::gradient(window, victim)), limit).await?;
    let theirs = wire::decode(&got.bytes, &node.manifest)?;
    let mut object = node.encode_payload(window, theirs.params)?;
    sign(node, &mut object)?;
    Ok(object)
}

/// Re-signs the leading validator's debug slice of `window` as this node's own (the sync-spoof
/// adversary). `Ok(false)` while the leader has not published it.
pub async fn spoof_debug(node: &Node, window: u64) -> Result<bool> {
    let roster = node.roster().await?;
    let Some(leader) = roster.leader() else { return Ok(false) };
    let bucket = node.s3.reader(&node.endpoint, &leader.credentials);
    let key = node.key(ObjectKey::debug(window, leader.uid));
    let Ok(got) = bucket.get_capped(&key, crate::signed::MAX_SIGNED_OBJECT as u64).await else { return Ok(false) };
    let mut slice: crate::signed::DebugSlice = crate::signed::open(&got.bytes, &leader.hotkey)?;
    slice.uid = node.uid;
    let bytes = crate::signed::sign(&slice, &node.hotkey)?;
    node.bucket.put(&node.key(ObjectKey::debug(window, node.uid)), bytes.into()).await?;
    Ok(true)
}
