//! The miner's side of the exchange: sign the payload, commit its hash, put it in the own bucket.
//!
//! The hash goes on chain *before* the bytes become readable: nobody can copy a payload before
//! its author's commitment is included, so the chain's order of commitments is the order in which
//! peers had their updates, which is what the validator's copycat rule relies on. The hash itself
//! reveals nothing.
//!
//! [`Publisher::publish_gradient`] refuses to work on a stale window: it checks that the chain is
//! inside the window's put window before committing, and it reports a commitment that was
//! included too late (the transaction raced the deadline) instead of pretending it counts and
//! uploading bytes no one will accept.

use super::client::{Bucket, StorageError};
use super::commit::{commitment_fields, CommitTiming, WindowTiming};
use super::credentials::BucketCredentials;
use super::keys::{ObjectKey, Version};
use chain::client::{ChainError, Client};
use chain::wallet::Keypair;
use compression::signature::{self, SignatureError};
use compression::wire;
use protocol::{Block, Window};

/// Why a publication did not happen (or did not count).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("window {window}'s put window opens at block {opens}; the chain is at {block}")]
    NotYet { window: u64, block: u64, opens: u64 },
    #[error(
        "window {window}'s put window closed at block {closed}; the chain is at {block}: not uploading a stale window"
    )]
    Stale { window: u64, block: u64, closed: u64 },
    #[error("not publishing: {0}")]
    Header(#[from] protocol::HeaderMismatch),
    #[error("the payload is not a readable gradient: {0}")]
    Payload(#[from] wire::DecodeError),
    #[error("signing the payload: {0}")]
    Sign(#[from] SignatureError),
    #[error("uploading the payload: {0}")]
    Storage(#[from] StorageError),
    #[error("committing the hash: {0}")]
    Chain(#[from] ChainError),
    #[error("the hash of window {window} was committed at block {block}, after its put window closed at {closed}: it will not count")]
    CommittedLate { window: u64, block: u64, closed: u64 },
}

/// What was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub key: String,
    pub hash: [u8; 32],
    pub size: usize,
    /// The block the commitment was included in.
    pub commit_block: u64,
}

/// Signs `object` (a wire payload with its signature slot) in place with `hotkey`:
/// `sr25519(hotkey, blake2b_256(object without the slot))`, as bittensor hotkeys sign.
pub fn sign_payload(object: &mut [u8], hotkey: &Keypair) -> Result<(), SignatureError> {
    let message = signature::signing_hash(object)?;
    signature::attach(object, &hotkey.sign(&message))
}

/// A miner's (or validator's) publishing handle.
pub struct Publisher<'a> {
    pub chain: &'a Client,
    pub hotkey: &'a Keypair,
    pub netuid: u16,
    pub uid: u16,
    /// The own bucket, with the write key.
    pub bucket: &'a Bucket,
    /// The read credentials committed on chain.
    pub credentials: &'a BucketCredentials,
    pub timing: WindowTiming,
    /// The protocol version in object keys.
    pub version: Version,
}

impl Publisher<'_> {
    /// Commits the bucket credentials alone (at start-up, before any window hash).
    pub async fn commit_credentials(&self) -> Result<u64, PublishError> {
        Ok(self.chain.tx().set_commitment(self.hotkey, self.netuid, &commitment_fields(self.credentials, None)).await?)
    }

    /// Why `window` cannot be published at `block`, if it cannot.
    fn window_problem(&self, window: u64, block: u64) -> Option<PublishError> {
        match self.timing.judge(Window(window), Block(block)) {
            CommitTiming::OnTime => None,
            CommitTiming::Early { block, opens } => {
                Some(PublishError::NotYet { window, block: block.0, opens: opens.0 })
            }
            CommitTiming::Late { block, closed } => {
                Some(PublishError::Stale { window, block: block.0, closed: closed.0 })
            }
        }
    }

    /// Signs `object` (an encoded payload for `window` whose header names this neuron), commits its
    /// hash with the credentials, then uploads it as `gradient-{window}-{uid}-v{ver}`.
    pub async fn publish_gradient(&self, window: u64, mut object: Vec<u8>) -> Result<Published, PublishError> {
        if let Some(e) = self.header_problem(window, &object) {
            return Err(e);
        }
        sign_payload(&mut object, self.hotkey)?;
        let hash = signature::content_hash(&object);
        if let Some(e) = self.window_problem(window, self.chain.finalized_block().await?) {
            return Err(e);
        }
        let fields = commitment_fields(self.credentials, Some((window, hash)));
        let commit_block = self.chain.tx().set_commitment(self.hotkey, self.netuid, &fields).await?;
        if let CommitTiming::Late { block: Block(block), closed: Block(closed) } =
            self.timing.judge(Window(window), Block(commit_block))
        {
            return Err(PublishError::CommittedLate { window, block, closed });
        }
        let key = ObjectKey::gradient(window, self.uid).with_version(self.version.clone()).to_string();
        let size = object.len();
        self.bucket.put(&key, object.into()).await?;
        tracing::info!(window, uid = self.uid, key, size, commit_block, "gradient published");
        Ok(Published { key, hash, size, commit_block })
    }

    /// The header must name this neuron and window (a payload for the wrong window would be
    /// rejected by every validator).
    fn header_problem(&self, window: u64, object: &[u8]) -> Option<PublishError> {
        let h = match wire::read_layout(object) {
            Ok(layout) => layout.header,
            Err(e) => return Some(PublishError::Payload(e)),
        };
        let expected = super::origin(self.netuid, window, self.uid, &self.hotkey.public());
        expected.check(&super::claimed_origin(&h)).err().map(PublishError::Header)
    }
}
