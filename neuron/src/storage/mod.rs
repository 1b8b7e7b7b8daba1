//! Gradient exchange over S3 with on-chain hash commitments (PROTOCOL.md §2, §4, §6).
//!
//! Peers never talk to each other: each writes to its own bucket and commits on chain the bucket's
//! read credentials and, per window, the blake2b-256 of its gradient object. Readers trust the
//! chain, not the bucket: a payload counts only if its hash was committed inside the put window,
//! the bytes match it, the signature verifies for the uploader's hotkey and it decodes.
//!
//! Modules, by job:
//! - [`keys`]: the object names (the protocol crate's; the protocol version is in every key);
//! - [`credentials`]: bucket credentials (`Raw128`), endpoints (R2 or a URL);
//! - [`client`]: the S3 client (retries, timeouts, capped and hashed downloads, multipart);
//! - [`commit`]: commitment fields, the put-window rule, who committed what and when;
//! - [`publish`]: the miner's sign → put → commit;
//! - [`gather`]: the concurrent, validated download of a window's payloads.
//!
//! A miner, per window `w` (once the chain is in `w+1`):
//! ```no_run
//! # async fn miner(chain: &chain::client::Client, hotkey: &chain::wallet::Keypair,
//! #     payload_bytes: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use neuron::storage::*;
//! let keys = BucketKeys::generate(); // in practice: the neuron's configured R2 keys
//! let s3 = S3::default();
//! let bucket = s3.writer(&Endpoint::R2, &keys);
//! let creds = keys.published()?;
//! let timing = WindowTiming { blocks_per_window: 115, put_blocks: 6 };
//! let publisher =
//!     Publisher { chain, hotkey, netuid: 3, uid: 7, bucket: &bucket, credentials: &creds, timing, version: Version::current() };
//! publisher.publish_gradient(41, payload_bytes).await?;
//! # Ok(()) }
//! ```
//! A validator (or miner) gathers window `w` once its put window is over:
//! ```no_run
//! # async fn validator(chain: &chain::client::Client, manifest: std::sync::Arc<compression::Manifest>)
//! #     -> Result<(), Box<dyn std::error::Error>> {
//! use neuron::storage::*;
//! let timing = WindowTiming { blocks_per_window: 115, put_blocks: 6 };
//! let view = WindowView::read(chain, 3, 41, timing).await?;
//! let gatherer = Gatherer::new(S3::default(), Endpoint::R2);
//! let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
//! let got = gatherer.gather(3, &view, &[1, 2, 5], &manifest, deadline, &GatherOptions::default()).await;
//! for (uid, why) in &got.rejected {
//!     println!("uid {uid}: {why} ({:?})", why.fault());
//! }
//! # Ok(()) }
//! ```

pub mod client;
pub mod commit;
pub mod credentials;
pub mod dataset;
pub mod gather;
pub use protocol::keys;
pub mod publish;

pub use client::{Bucket, Cleanup, Download, ObjectInfo, Retry, S3Options, StorageError, S3};
pub use commit::{
    commitment_fields, CommitProblem, CommitTiming, CommitmentError, Committed, Peer, PeerBook, PeerCommitment,
    WindowCommit, WindowTiming, WindowView,
};
pub use credentials::{AccessKey, BucketCredentials, BucketKeys, CredentialsError, Endpoint};
pub use dataset::{DatasetError, DatasetUrl};
pub use gather::{Accepted, Fault, GatherOptions, GatherStats, Gathered, Gatherer, Rejection};
pub use keys::{ObjectKey, Version, PROTOCOL_VERSION};
pub use publish::{sign_payload, PublishError, Published, Publisher};

/// What a payload's header claims, for the protocol's one header check
/// ([`protocol::PayloadOrigin::check`]).
pub fn claimed_origin(h: &compression::wire::Header) -> protocol::PayloadOrigin {
    protocol::PayloadOrigin {
        netuid: h.netuid,
        window: protocol::Window(h.window),
        uid: protocol::Uid(h.uid),
        hotkey: protocol::Hotkey(h.hotkey),
    }
}

/// What a reader expects a payload of `uid` for `window` to claim: `hotkey` is the chain's.
pub fn origin(netuid: u16, window: u64, uid: u16, hotkey: &chain::wallet::PublicKey) -> protocol::PayloadOrigin {
    protocol::PayloadOrigin {
        netuid,
        window: protocol::Window(window),
        uid: protocol::Uid(uid),
        hotkey: (*hotkey).into(),
    }
}
