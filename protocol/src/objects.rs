//! The signed objects peers publish besides payloads (PROTOCOL.md §6.7, §7): the leader's peer
//! list and checkpoint pointer, and every node's debug slice. Each is JSON followed by the
//! publisher's sr25519 signature; signing and opening are the node's (they need the wallet).

use serde::{Deserialize, Serialize};

/// Largest signed object a reader downloads (a debug slice of a 70B model is ~10 KiB).
pub const MAX_SIGNED_OBJECT: usize = 4 << 20;

/// The peers whose updates everyone aggregates, from the leading validator (PROTOCOL.md §6.7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerList {
    pub netuid: u16,
    /// Window in which the list was made.
    pub window: u64,
    /// First window whose gather uses this list.
    pub first_effective_window: u64,
    /// Uids gathered every window.
    pub gather: Vec<u16>,
    /// Uids that replace missing gather peers, in order.
    pub reserve: Vec<u16>,
}

/// Two elements of every parameter after a node's outer step of `window` (the sync check).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DebugSlice {
    pub netuid: u16,
    pub uid: u16,
    pub window: u64,
    /// Outer steps applied so far.
    pub global_step: u64,
    /// `(parameter name, values)` in model order.
    pub params: Vec<(String, Vec<f32>)>,
}

/// The signed pointer `checkpoints/v{ver}/LATEST` (PROTOCOL.md §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointPointer {
    pub netuid: u16,
    /// The window whose outer step the weights include.
    pub window: u64,
    pub global_step: u64,
    /// The model architecture's fingerprint (`model::checkpoint::model_fingerprint`).
    pub model_fingerprint: String,
    /// Object key of the weights file.
    pub key: String,
    pub size: u64,
    /// blake2b-256 of the weights file, hex.
    pub hash: String,
}
