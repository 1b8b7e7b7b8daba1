//! Small signed JSON objects that peers publish besides gradients: the leading validator's peer
//! list (`peers_{w}`) and every node's debug slice (`debug-{w}-{uid}`).
//!
//! An object is its JSON body followed by a 64-byte sr25519 signature of blake2b-256 of the body,
//! by the publisher's hotkey (the same scheme as gradient payloads, `compression::signature`), so
//! a reader that knows the publisher's hotkey from the chain trusts the bucket for nothing.

use chain::wallet::{Keypair, PublicKey};
use compression::signature::{self, SIGNATURE_LEN};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bigger signed objects than this are refused unread (a debug slice of the 72B model is ~50 KB).
pub use protocol::MAX_SIGNED_OBJECT;

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

pub use protocol::{DebugSlice, PeerList};

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
