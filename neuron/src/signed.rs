//! Small signed JSON objects that peers publish besides gradients: the leading validator's peer
//! list (`peers_{w}`) and every node's debug slice (`debug-{w}-{uid}`).
//!
//! An object is its JSON body followed by a 64-byte sr25519 signature of blake2b-256 of the body,
//! by the publisher's hotkey (the same scheme as gradient payloads, `compression::signature`), so
//! a reader that knows the publisher's hotkey from the chain trusts the bucket for nothing.

use chain::wallet::{Keypair, PublicKey};
use compression::signature::{self, SIGNATURE_LEN};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bigger signed objects than this are refused unread (a debug slice of the 72B model is ~50 KB).
pub const MAX_SIGNED_OBJECT: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignedError {
    #[error("object of {0} bytes is over the {MAX_SIGNED_OBJECT}-byte limit")]
    TooLarge(usize),
    #[error("signature: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("body: {0}")]
    Json(#[from] serde_json::Error),
}

/// `body` as JSON, signed by `hotkey`.
pub fn sign<T: Serialize>(body: &T, hotkey: &Keypair) -> Result<Vec<u8>, SignedError> {
    let mut bytes = serde_json::to_vec(body)?;
    bytes.extend_from_slice(&[0u8; SIGNATURE_LEN]);
    let message = signature::signing_hash(&bytes)?;
    signature::attach(&mut bytes, &hotkey.sign(&message))?;
    Ok(bytes)
}

/// The body of `bytes` if its signature verifies for `publisher`.
pub fn open<T: DeserializeOwned>(bytes: &[u8], publisher: &PublicKey) -> Result<T, SignedError> {
    if bytes.len() > MAX_SIGNED_OBJECT {
        return Err(SignedError::TooLarge(bytes.len()));
    }
    signature::verify(bytes, &publisher.0)?;
    Ok(serde_json::from_slice(&bytes[..bytes.len() - SIGNATURE_LEN])?)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_objects_round_trip_and_reject_tampering() {
        let key = Keypair::from_seed(&[7; 32]);
        let list = PeerList { netuid: 3, window: 10, first_effective_window: 11, gather: vec![1, 2], reserve: vec![5] };
        let mut bytes = sign(&list, &key).unwrap();
        assert_eq!(open::<PeerList>(&bytes, &key.public()).unwrap(), list);
        let other = Keypair::from_seed(&[8; 32]);
        assert!(open::<PeerList>(&bytes, &other.public()).is_err());
        bytes[3] ^= 1;
        assert!(open::<PeerList>(&bytes, &key.public()).is_err());
        let huge = vec![0; MAX_SIGNED_OBJECT + 1];
        assert!(matches!(open::<PeerList>(&huge, &key.public()), Err(SignedError::TooLarge(_))));
    }
}
