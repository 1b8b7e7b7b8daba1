//! Gather: fetch the peers' gradients for one window and keep only the valid ones (PROTOCOL.md §4).
//!
//! A peer's payload for window `w` is accepted only if
//! - (a) its commitment naming `w` was included within the put window ([`WindowView`]),
//! - (b) the downloaded bytes hash (blake2b-256) to the committed hash,
//! - (c) the signature verifies for the uid's hotkey,
//! - (d) it decodes against the model manifest, and its header names this netuid, window, uid
//!   and hotkey (so an old or someone else's payload cannot be replayed).
//!
//! Downloads run concurrently under one deadline, each capped at the largest payload the
//! manifest allows (an object over the cap is never downloaded). Transient storage failures are
//! retried until the deadline. Every peer that is not accepted gets a typed [`Rejection`].

use super::client::{Bucket, StorageError, S3};
use super::commit::{CommitProblem, Committed, WindowView};
use super::credentials::{BucketCredentials, Endpoint};
use super::keys::{ObjectKey, Version};
use chain::wallet::PublicKey;
use compression::signature::{self, SignatureError};
use compression::wire::{self, DecodeError};
use compression::{Manifest, Payload};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How a rejection counts for the validator's penalties (PROTOCOL.md §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing usable was there in time: "missing upload" (×0.75).
    Missing,
    /// Something was there and it is wrong: "invalid" (score → 0).
    Invalid,
}

/// Why a peer's payload was not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("{0}")]
    Commit(CommitProblem),
    #[error("no object {key} in the peer's bucket")]
    NotUploaded { key: String },
    #[error("{0}")]
    TooLarge(StorageError),
    #[error("download failed: {0}")]
    Storage(StorageError),
    #[error("no valid payload before the gather deadline")]
    Deadline,
    #[error("the object's blake2b-256 is {found}, the commitment says {committed}")]
    HashMismatch { committed: String, found: String },
    #[error("bad signature: {0}")]
    Signature(SignatureError),
    #[error("does not decode: {0}")]
    Decode(DecodeError),
    #[error(transparent)]
    Header(#[from] protocol::HeaderMismatch),
    /// Checking the payload failed on this side (a bug, or the runtime shutting down).
    #[error("internal error while checking the payload: {0}")]
    Internal(String),
}

impl Rejection {
    /// Missing (nothing there in time, or unreachable) or invalid (wrong bytes were there).
    pub fn fault(&self) -> Fault {
        match self {
            Rejection::Commit(CommitProblem::Early { .. }) => Fault::Invalid,
            Rejection::Commit(_)
            | Rejection::NotUploaded { .. }
            | Rejection::Storage(_)
            | Rejection::Deadline
            | Rejection::Internal(_) => Fault::Missing,
            Rejection::TooLarge(_)
            | Rejection::HashMismatch { .. }
            | Rejection::Signature(_)
            | Rejection::Decode(_)
            | Rejection::Header(_) => Fault::Invalid,
        }
    }
}

/// A valid payload.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub uid: u16,
    pub hotkey: PublicKey,
    pub payload: Payload,
    /// The object itself (signed, as committed), when [`GatherOptions::keep_bytes`] is set — the
    /// leading validator republishes them for late joiners.
    pub bytes: Option<Vec<u8>>,
    pub size: usize,
    pub hash: [u8; 32],
    /// The block the hash was committed in (the chain's order decides who was first).
    pub commit_block: u64,
    /// The index of the committing extrinsic inside `commit_block`: with it, `(commit_block,
    /// commit_extrinsic_index)` orders commitments of the same block too.
    pub commit_extrinsic_index: u32,
}

/// Where the time went (summed over peers; peers overlap, so the sums can exceed the wall time).
#[derive(Debug, Clone, Default)]
pub struct GatherStats {
    pub wall: Duration,
    /// HEAD + GET + streaming hash, per peer, summed.
    pub download: Duration,
    /// Signature verification, summed.
    pub verify: Duration,
    /// Wire decoding, summed.
    pub decode: Duration,
    pub bytes: u64,
}

/// The outcome for one window.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub window: u64,
    /// In the order of the requested peer list.
    pub accepted: Vec<Accepted>,
    /// One reason per requested peer that was not accepted.
    pub rejected: BTreeMap<u16, Rejection>,
    pub stats: GatherStats,
}

impl Gathered {
    /// `|accepted| / |requested|`.
    pub fn success_rate(&self) -> f64 {
        let n = self.accepted.len() + self.rejected.len();
        if n == 0 {
            0.0
        } else {
            self.accepted.len() as f64 / n as f64
        }
    }
}

/// Knobs of one gather.
#[derive(Debug, Clone)]
pub struct GatherOptions {
    /// Peers downloaded at once.
    pub concurrency: usize,
    /// Keep each accepted object's bytes in [`Accepted::bytes`].
    pub keep_bytes: bool,
    /// The protocol version whose objects are fetched (peers on another version are ignored).
    pub version: Version,
}

impl Default for GatherOptions {
    fn default() -> Self {
        Self { concurrency: 8, keep_bytes: false, version: Version::current() }
    }
}

/// Fetches peers' payloads. Keeps one S3 client per peer bucket across windows (one shared
/// connection pool).
pub struct Gatherer {
    s3: S3,
    endpoint: Endpoint,
    readers: Mutex<HashMap<BucketCredentials, Bucket>>,
}

impl Gatherer {
    pub fn new(s3: S3, endpoint: Endpoint) -> Self {
        Self { s3, endpoint, readers: Mutex::new(HashMap::new()) }
    }

    fn reader(&self, creds: &BucketCredentials) -> Bucket {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        readers.entry(creds.clone()).or_insert_with(|| self.s3.reader(&self.endpoint, creds)).clone()
    }

    /// Gathers `peers`' payloads for `view.window` until `deadline`.
    pub async fn gather(
        &self,
        netuid: u16,
        view: &WindowView,
        peers: &[u16],
        manifest: &Arc<Manifest>,
        deadline: Instant,
        opts: &GatherOptions,
    ) -> Gathered {
        let started = Instant::now();
        let window = view.window;
        let limit = wire::max_payload_len(manifest) as u64;
        let peers_in_order = first_occurrences(peers);
        let mut results: BTreeMap<u16, Result<Accepted, Rejection>> = BTreeMap::new();
        let mut stats = GatherStats::default();
        let mut todo = Vec::new();
        for &uid in &peers_in_order {
            match view.get(uid) {
                Ok(c) => todo.push(c.clone()),
                Err(p) => {
                    results.insert(uid, Err(Rejection::Commit(p)));
                }
            }
        }
        let fetches = futures_util::stream::iter(todo)
            .map(|c| {
                let bucket = self.reader(&c.credentials);
                let manifest = manifest.clone();
                let keep = opts.keep_bytes;
                let key = ObjectKey::gradient(window, c.uid).with_version(opts.version.clone()).to_string();
                async move {
                    let uid = c.uid;
                    (uid, fetch_one(bucket, key, c, netuid, window, manifest, limit, deadline, keep).await)
                }
            })
            .buffer_unordered(opts.concurrency.max(1));
        tokio::pin!(fetches);
        let expired = tokio::time::sleep_until(deadline);
        tokio::pin!(expired);
        loop {
            tokio::select! {
                next = fetches.next() => match next {
                    Some((uid, (outcome, s))) => {
                        stats.download += s.download;
                        stats.verify += s.verify;
                        stats.decode += s.decode;
                        stats.bytes += s.bytes;
                        results.insert(uid, outcome);
                    }
                    None => break,
                },
                _ = &mut expired => break,
            }
        }
        let (accepted, rejected) = sort_out(&peers_in_order, results);
        stats.wall = started.elapsed();
        tracing::debug!(
            window,
            accepted = accepted.len(),
            rejected = rejected.len(),
            wall_ms = stats.wall.as_millis() as u64,
            "gathered"
        );
        for (uid, why) in &rejected {
            tracing::debug!(window, uid, reason = %why, "peer rejected");
        }
        Gathered { window, accepted, rejected, stats }
    }
}

/// `uids` without repeats, in the order of their first occurrence.
fn first_occurrences(uids: &[u16]) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::with_capacity(uids.len());
    for &uid in uids {
        if !out.contains(&uid) {
            out.push(uid);
        }
    }
    out
}

/// The accepted payloads in `order`, and why each other peer was not: a peer with no result
/// was still being fetched at the deadline.
fn sort_out(
    order: &[u16],
    mut results: BTreeMap<u16, Result<Accepted, Rejection>>,
) -> (Vec<Accepted>, BTreeMap<u16, Rejection>) {
    let mut accepted = Vec::new();
    let mut rejected = BTreeMap::new();
    for &uid in order {
        match results.remove(&uid) {
            Some(Ok(a)) => accepted.push(a),
            Some(Err(r)) => {
                rejected.insert(uid, r);
            }
            None => {
                rejected.insert(uid, Rejection::Deadline);
            }
        }
    }
    (accepted, rejected)
}

/// Per-peer timings.
#[derive(Default)]
struct PeerStats {
    download: Duration,
    verify: Duration,
    decode: Duration,
    bytes: u64,
}

#[allow(clippy::too_many_arguments)]
async fn fetch_one(
    bucket: Bucket,
    key: String,
    c: Committed,
    netuid: u16,
    window: u64,
    manifest: Arc<Manifest>,
    limit: u64,
    deadline: Instant,
    keep_bytes: bool,
) -> (Result<Accepted, Rejection>, PeerStats) {
    let mut stats = PeerStats::default();
    let t = Instant::now();
    let got = bucket.get_capped_by(&key, limit, Some(deadline)).await;
    stats.download = t.elapsed();
    let download = match got {
        Ok(d) => d,
        Err(e) => {
            let r = match e {
                StorageError::NotFound { .. } => Rejection::NotUploaded { key },
                StorageError::TooLarge { .. } | StorageError::Overflow { .. } => Rejection::TooLarge(e),
                e => Rejection::Storage(e),
            };
            return (Err(r), stats);
        }
    };
    stats.bytes = download.bytes.len() as u64;
    if download.hash != c.hash {
        let r = Rejection::HashMismatch { committed: hex::encode(c.hash), found: hex::encode(download.hash) };
        return (Err(r), stats);
    }
    // Signature and decoding are CPU work: off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let mut stats = PeerStats::default();
        let bytes = download.bytes;
        let t = std::time::Instant::now();
        let verified = signature::verify(&bytes, &c.hotkey.0);
        stats.verify = t.elapsed();
        if let Err(e) = verified {
            return (Err(Rejection::Signature(e)), stats);
        }
        let t = std::time::Instant::now();
        let decoded = wire::decode(&bytes, &manifest);
        stats.decode = t.elapsed();
        let payload = match decoded {
            Ok(p) => p,
            Err(e) => return (Err(Rejection::Decode(e)), stats),
        };
        if let Some(r) = header_problem(&payload, netuid, window, &c) {
            return (Err(r), stats);
        }
        let size = bytes.len();
        let accepted = Accepted {
            uid: c.uid,
            hotkey: c.hotkey,
            payload,
            bytes: keep_bytes.then_some(bytes),
            size,
            hash: c.hash,
            commit_block: c.block,
            commit_extrinsic_index: c.extrinsic_index,
        };
        (Ok(accepted), stats)
    })
    .await;
    match checked {
        Ok((outcome, s)) => {
            stats.verify = s.verify;
            stats.decode = s.decode;
            (outcome, stats)
        }
        // The blocking task panicked or was cancelled (runtime shutting down).
        Err(e) => (Err(Rejection::Internal(e.to_string())), stats),
    }
}

/// Why the payload's header does not name this netuid, window, uid and hotkey, if it does not.
fn header_problem(p: &Payload, netuid: u16, window: u64, c: &Committed) -> Option<Rejection> {
    let expected = super::origin(netuid, window, c.uid, &c.hotkey);
    expected.check(&super::claimed_origin(&p.header)).err().map(Rejection::Header)
}
