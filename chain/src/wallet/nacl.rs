//! The `$NACL` keyfile encryption of bittensor: `"$NACL" ‖ nonce (24) ‖ secretbox(MAC ‖ ciphertext)`
//! with the key derived by libsodium's `crypto_pwhash_argon2i` at its SENSITIVE limits (Argon2i
//! v1.3, 8 passes, 512 MiB, one lane) over a fixed salt. Pure Rust: RustCrypto `argon2` and
//! `crypto_secretbox`, byte-compatible with libsodium.
//!
//! Deriving the key is deliberately slow (seconds in a release build): unlock once at start-up.

use super::WalletError;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use zeroize::Zeroizing;

pub const MAGIC: &[u8] = b"$NACL";
const NONCE_LEN: usize = 24;
const MAC_LEN: usize = 16;
/// bittensor's fixed salt (`NACL_SALT`).
const SALT: [u8; 16] = [0x13, 0x71, 0x83, 0xdf, 0xf1, 0x5a, 0x09, 0xbc, 0x9c, 0x90, 0xb5, 0x51, 0x87, 0x39, 0xe9, 0xb1];
/// libsodium `crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE`.
const OPS_LIMIT: u32 = 8;
/// libsodium `crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE` (512 MiB) in KiB.
const MEM_KIB: u32 = 512 * 1024;

fn derive_key(password: &[u8]) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let params = argon2::Params::new(MEM_KIB, OPS_LIMIT, 1, Some(32))
        .map_err(|e| WalletError::Crypto(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(password, &SALT, key.as_mut()).map_err(|e| WalletError::Crypto(format!("argon2: {e}")))?;
    Ok(key)
}

/// Seals `plain` under `password`.
pub fn encrypt(plain: &[u8], password: &str) -> Result<Vec<u8>, WalletError> {
    if password.is_empty() {
        return Err(WalletError::EmptyPassword);
    }
    let key = derive_key(password.as_bytes())?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let sealed =
        cipher.encrypt(Nonce::from_slice(&nonce), plain).map_err(|e| WalletError::Crypto(format!("secretbox: {e}")))?;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a `$NACL` blob. A wrong password (or tampered data) is [`WalletError::WrongPassword`].
pub fn decrypt(data: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>, WalletError> {
    let rest = data.strip_prefix(MAGIC).ok_or_else(|| WalletError::BadKeyfile("not a $NACL keyfile".into()))?;
    if rest.len() < NONCE_LEN + MAC_LEN {
        return Err(WalletError::BadKeyfile(format!("$NACL keyfile too short ({} bytes)", data.len())));
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let key = derive_key(password.as_bytes())?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher.decrypt(Nonce::from_slice(nonce), sealed).map(Zeroizing::new).map_err(|_| WalletError::WrongPassword)
}

#[cfg(test)]
mod tests {
    use super::*;

    // One Argon2i derivation costs seconds (512 MiB); these tests do three.
    #[test]
    fn seal_open_and_wrong_password() {
        let sealed = encrypt(b"{\"secretSeed\":\"0x00\"}", "pw-1").unwrap();
        assert!(sealed.starts_with(MAGIC));
        assert_eq!(sealed.len(), 5 + 24 + 16 + 21);
        assert_eq!(decrypt(&sealed, "pw-1").unwrap().as_slice(), b"{\"secretSeed\":\"0x00\"}");
        assert!(matches!(decrypt(&sealed, "pw-2"), Err(WalletError::WrongPassword)));
    }

    #[test]
    fn malformed_blobs_fail_before_any_key_derivation() {
        for bad in [&b""[..], b"$NAC", b"$NACL", &[b'$', b'N', b'A', b'C', b'L', 0, 1, 2]] {
            assert!(matches!(decrypt(bad, "x"), Err(WalletError::BadKeyfile(_))), "{bad:?}");
        }
        assert!(matches!(encrypt(b"x", ""), Err(WalletError::EmptyPassword)));
    }
}
