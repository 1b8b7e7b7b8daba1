//! Payload signatures and content hashes.
//!
//! The last 64 bytes of a payload are an sr25519 signature, by the uploader's hotkey, of the
//! blake2b-256 hash of everything before them. sr25519 here is schnorrkel with Substrate's signing
//! context, so a signature made by a bittensor hotkey (sp-core's `sr25519::Pair::sign`) verifies here
//! and the other way round. The *content hash* that a miner commits on chain is blake2b-256 of the
//! whole object, signature included.

use blake2::Digest;
use schnorrkel::{signing_context, ExpansionMode, MiniSecretKey, PublicKey, Signature};

pub use schnorrkel::Keypair;

use crate::manifest::Blake2b256;

/// Length of the signature slot at the end of every payload.
pub const SIGNATURE_LEN: usize = 64;

/// Substrate's sr25519 signing context.
const CONTEXT: &[u8] = b"substrate";

/// Why a payload's signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("object of {0} bytes is too short to hold a signature")]
    TooShort(usize),
    #[error("the signature slot is empty (unsigned payload)")]
    Unsigned,
    #[error("hotkey is not a valid sr25519 public key")]
    BadPublicKey,
    #[error("signature bytes are malformed")]
    Malformed,
    #[error("signature does not verify for hotkey {0}")]
    Mismatch(String),
}

/// blake2b-256 of `bytes`.
pub fn blake2b_256(bytes: &[u8]) -> [u8; 32] {
    Blake2b256::digest(bytes).into()
}

/// The hash committed on chain for an object: blake2b-256 of all its bytes.
pub fn content_hash(object: &[u8]) -> [u8; 32] {
    blake2b_256(object)
}

/// The message a payload's signature signs: blake2b-256 of the object without its signature slot.
pub fn signing_hash(object: &[u8]) -> Result<[u8; 32], SignatureError> {
    let body = object.len().checked_sub(SIGNATURE_LEN).ok_or(SignatureError::TooShort(object.len()))?;
    Ok(blake2b_256(&object[..body]))
}

/// Writes `signature` into the signature slot of `object`.
pub fn attach(object: &mut [u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), SignatureError> {
    let body = object.len().checked_sub(SIGNATURE_LEN).ok_or(SignatureError::TooShort(object.len()))?;
    object[body..].copy_from_slice(signature);
    Ok(())
}

/// The sr25519 keypair of a 32-byte secret seed, derived as sp-core (and so bittensor's
/// `secretSeed`) derives it.
pub fn keypair_from_seed(seed: &[u8; 32]) -> Keypair {
    // A 32-byte slice is always a valid mini secret key.
    MiniSecretKey::from_bytes(seed).expect("32 bytes is a mini secret key").expand_to_keypair(ExpansionMode::Ed25519)
}

/// Signs `object` in place with `keypair` (an sr25519 hotkey).
pub fn sign(object: &mut [u8], keypair: &Keypair) -> Result<(), SignatureError> {
    let message = signing_hash(object)?;
    let signature = keypair.sign(signing_context(CONTEXT).bytes(&message));
    attach(object, &signature.to_bytes())
}

/// Verifies the signature of `object` against `hotkey` (32-byte sr25519 public key).
pub fn verify(object: &[u8], hotkey: &[u8; 32]) -> Result<(), SignatureError> {
    let message = signing_hash(object)?;
    let slot = &object[object.len() - SIGNATURE_LEN..];
    if slot.iter().all(|&b| b == 0) {
        return Err(SignatureError::Unsigned);
    }
    let public = PublicKey::from_bytes(hotkey).map_err(|_| SignatureError::BadPublicKey)?;
    let signature = Signature::from_bytes(slot).map_err(|_| SignatureError::Malformed)?;
    public
        .verify(signing_context(CONTEXT).bytes(&message), &signature)
        .map_err(|_| SignatureError::Mismatch(hotkey.iter().map(|b| format!("{b:02x}")).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_detect_tampering() {
        let keypair = Keypair::generate_with(rand::rngs::OsRng);
        let mut object = vec![7u8; 200];
        assert!(verify(&object, &keypair.public.to_bytes()).is_err());
        object[136..].fill(0);
        assert_eq!(verify(&object, &keypair.public.to_bytes()), Err(SignatureError::Unsigned));
        sign(&mut object, &keypair).unwrap();
        verify(&object, &keypair.public.to_bytes()).unwrap();
        object[3] ^= 1;
        assert!(matches!(verify(&object, &keypair.public.to_bytes()), Err(SignatureError::Mismatch(_))));
        let other = Keypair::generate_with(rand::rngs::OsRng);
        object[3] ^= 1;
        assert!(matches!(verify(&object, &other.public.to_bytes()), Err(SignatureError::Mismatch(_))));
        assert_eq!(verify(&[0u8; 10], &other.public.to_bytes()), Err(SignatureError::TooShort(10)));
    }
}
