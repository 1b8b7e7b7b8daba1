//! Late joiners (PROTOCOL.md §7): the leading validator's published checkpoints, and the replay of
//! its `aggregator-{w}` bundles by a node whose model is behind.
//!
//! The leader publishes, every `checkpoint_frequency` outer steps, the weights of its checkpoint
//! as `checkpoints/v{ver}/{w}/model.safetensors` and then a signed pointer
//! `checkpoints/v{ver}/LATEST` naming the window, global step, model fingerprint, size and
//! blake2b-256 of that file. A node that is behind loads the newest checkpoint (when it has no
//! state, or its state is older) and replays, window by window, the bundles of payloads the
//! leader aggregated: the same payloads in the same order give the same outer step, bit for bit.
//!
//! Trust: the pointer is signed by the leader's hotkey (from the chain), the weights must hash
//! to what it says, and every payload in a bundle must carry a valid signature of the miner its
//! header names. Which payloads a window's outer step used, and in which order, is the leader's
//! word, as the checkpoint is.

use std::collections::BTreeMap;
use std::path::Path;

use chain::wallet::{Keypair, PublicKey};
use compression::bundle::Bundle;
use compression::wire::{self, Payload};
use compression::{signature, Aggregation, Manifest};
use model::{checkpoint, Trainer};

use crate::replica::Replica;
use crate::signed::{self, SignedError};
use crate::storage::{Bucket, ObjectKey, StorageError, Version};

/// The file of a checkpoint that is published (weights only: each node keeps its own inner
/// optimizer).
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Most payloads a bundle may hold (the gather list plus its reserves, with room to spare).
pub const MAX_BUNDLE_PAYLOADS: usize = 256;

pub use protocol::CheckpointPointer;

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("storage: {0}")]
    Storage(Box<StorageError>),
    #[error("the checkpoint pointer: {0}")]
    Pointer(#[from] SignedError),
    #[error("the checkpoint pointer is for subnet {found}, not {expected}")]
    WrongSubnet { expected: u16, found: u16 },
    #[error("the checkpoint is for model {found}, this node runs {expected}")]
    WrongModel { expected: String, found: String },
    #[error("the checkpoint's weights hash to {found}, the signed pointer says {expected}")]
    WrongHash { expected: String, found: String },
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("the bundle of window {window}: {source}")]
    Bundle { window: u64, source: compression::bundle::BundleError },
    #[error("the bundle published as window {window} says it is window {found}")]
    BundleWindow { window: u64, found: u64 },
    #[error("the bundle of window {window}, payload of uid {uid}: {problem}")]
    Payload { window: u64, uid: u16, problem: String },
    #[error("replaying window {window}: {source}")]
    Replay { window: u64, source: crate::replica::ReplicaError },
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl From<StorageError> for CatchUpError {
    fn from(e: StorageError) -> Self {
        Self::Storage(Box::new(e))
    }
}

/// Uploads the weights of the local checkpoint in `dir` and then the signed pointer to them.
/// Readers never see a pointer to weights that are not completely uploaded.
pub async fn publish_checkpoint(
    bucket: &Bucket,
    hotkey: &Keypair,
    netuid: u16,
    version: &Version,
    dir: &Path,
) -> Result<CheckpointPointer, CatchUpError> {
    let manifest = checkpoint::read_manifest(dir)?;
    let path = checkpoint::weights_file(dir);
    let bytes = std::fs::read(&path).map_err(|source| CatchUpError::Io { path: path.clone(), source })?;
    let key = ObjectKey::checkpoint(manifest.window, WEIGHTS_FILE)
        .expect("a valid file name")
        .with_version(version.clone())
        .to_string();
    let pointer = CheckpointPointer {
        netuid,
        window: manifest.window,
        global_step: manifest.global_step,
        model_fingerprint: manifest.model_fingerprint,
        key: key.clone(),
        size: bytes.len() as u64,
        hash: hex::encode(signature::content_hash(&bytes)),
    };
    bucket.put(&key, bytes.into()).await?;
    let latest = ObjectKey::checkpoint_latest().with_version(version.clone()).to_string();
    bucket.put(&latest, signed::sign(&pointer, hotkey)?.into()).await?;
    Ok(pointer)
}

/// The leader's latest checkpoint pointer, if it published one, verified against its hotkey.
pub async fn latest_checkpoint(
    leader: &Bucket,
    leader_hotkey: &PublicKey,
    netuid: u16,
    version: &Version,
) -> Result<Option<CheckpointPointer>, CatchUpError> {
    let key = ObjectKey::checkpoint_latest().with_version(version.clone()).to_string();
    let got = match leader.get_capped(&key, signed::MAX_SIGNED_OBJECT as u64).await {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let pointer: CheckpointPointer = signed::open(&got.bytes, leader_hotkey)?;
    if pointer.netuid != netuid {
        return Err(CatchUpError::WrongSubnet { expected: netuid, found: pointer.netuid });
    }
    Ok(Some(pointer))
}

/// Downloads the weights `pointer` names (no more than the model's size allows), checks their
/// hash, and loads them into `trainer`. `scratch` is a folder for the downloaded file.
pub async fn load_checkpoint(
    leader: &Bucket,
    pointer: &CheckpointPointer,
    trainer: &mut Trainer,
    scratch: &Path,
) -> Result<(), CatchUpError> {
    let expected = checkpoint::model_fingerprint(trainer.model.config());
    if pointer.model_fingerprint != expected {
        return Err(CatchUpError::WrongModel { expected, found: pointer.model_fingerprint.clone() });
    }
    let params = trainer.model.params();
    // f32 data plus the safetensors header (names, shapes, offsets): generous per tensor.
    let limit = params.numel() as u64 * 4 + 1024 * params.len() as u64 + 4096;
    let got = leader.get_capped(&pointer.key, limit).await?;
    let found = hex::encode(got.hash);
    if found != pointer.hash {
        return Err(CatchUpError::WrongHash { expected: pointer.hash.clone(), found });
    }
    std::fs::create_dir_all(scratch).map_err(|source| CatchUpError::Io { path: scratch.into(), source })?;
    let path = scratch.join(format!("downloaded-{WEIGHTS_FILE}"));
    std::fs::write(&path, &got.bytes).map_err(|source| CatchUpError::Io { path: path.clone(), source })?;
    let loaded = checkpoint::load_weights(&path, trainer);
    let _ = std::fs::remove_file(&path);
    Ok(loaded?)
}

/// The payloads the leader aggregated in `window`, in order; `None` if it published no bundle.
/// Every payload must decode for `manifest`, pass the header check for this subnet, the window,
/// its uid and the hotkey the chain has for that uid (`hotkeys`), and carry that hotkey's valid
/// signature: the bundle's own bytes are trusted for nothing.
pub async fn fetch_bundle(
    leader: &Bucket,
    netuid: u16,
    hotkeys: &BTreeMap<u16, PublicKey>,
    window: u64,
    version: &Version,
    manifest: &Manifest,
) -> Result<Option<Vec<Payload>>, CatchUpError> {
    let max_payload = wire::max_payload_len(manifest);
    let limit = 64 + (MAX_BUNDLE_PAYLOADS * (max_payload + 16)) as u64;
    let key = ObjectKey::aggregator(window).with_version(version.clone()).to_string();
    let got = match leader.get_capped(&key, limit).await {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bundle = Bundle::decode(&got.bytes, MAX_BUNDLE_PAYLOADS, max_payload)
        .map_err(|source| CatchUpError::Bundle { window, source })?;
    if bundle.window != window {
        return Err(CatchUpError::BundleWindow { window, found: bundle.window });
    }
    let mut payloads = Vec::with_capacity(bundle.entries.len());
    for (uid, bytes) in &bundle.entries {
        let bad = |problem: String| CatchUpError::Payload { window, uid: *uid, problem };
        let hotkey = hotkeys.get(uid).ok_or_else(|| bad("the uid is not on the subnet".into()))?;
        let payload = wire::decode(bytes, manifest).map_err(|e| bad(e.to_string()))?;
        let expected = crate::storage::origin(netuid, window, *uid, hotkey);
        expected.check(&crate::storage::claimed_origin(&payload.header)).map_err(|e| bad(e.to_string()))?;
        signature::verify(bytes, &hotkey.0).map_err(|e| bad(e.to_string()))?;
        payloads.push(payload);
    }
    Ok(Some(payloads))
}

/// Window `window`'s outer step from its bundle: aggregate and `θ ← θ − α·G`. Returns whether a
/// step was taken (a window with no accepted payloads has none).
pub fn replay(
    replica: &mut Replica,
    window: u64,
    payloads: &[Payload],
    aggregation: Aggregation,
    alpha: f64,
) -> Result<bool, CatchUpError> {
    if payloads.is_empty() {
        return Ok(false);
    }
    let updates: Vec<&[compression::SparseParam]> = payloads.iter().map(|p| p.params.as_slice()).collect();
    let replay_error = |source| CatchUpError::Replay { window, source };
    let g = replica.aggregate(&updates, aggregation).map_err(replay_error)?;
    replica.outer_step(&g, alpha).map_err(replay_error)?;
    Ok(true)
}
