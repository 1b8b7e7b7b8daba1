//! Bittensor keyfiles: JSON with camelCase keys and `0x` hex (plain), or that JSON sealed in the
//! `$NACL` format (see [`super::nacl`]). Public-only files (`coldkeypub.txt`, `<hotkey>pub.txt`)
//! hold `accountId`, `publicKey`, `ss58Address` and `cryptoType` only.

use super::keypair::{decode_hex, Keypair, PublicKey};
use super::{nacl, WalletError};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// `cryptoType` of sr25519 keys (the only kind bittensor uses for wallets).
pub const CRYPTO_SR25519: u8 = 1;

/// How a keyfile's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// Plain JSON.
    None,
    /// `$NACL`: Argon2i + XSalsa20-Poly1305 (current bittensor).
    Nacl,
    /// `$ANSIBLE_VAULT` (old bittensor; read by btcli only).
    AnsibleVault,
    /// `gAAAAA…` Fernet (old bittensor; read by btcli only).
    LegacyFernet,
}

impl Encryption {
    pub fn detect(data: &[u8]) -> Self {
        if data.starts_with(nacl::MAGIC) {
            Encryption::Nacl
        } else if data.starts_with(b"$ANSIBLE_VAULT") {
            Encryption::AnsibleVault
        } else if data.starts_with(b"gAAAAA") {
            Encryption::LegacyFernet
        } else {
            Encryption::None
        }
    }
}

/// The JSON document of a keyfile. Every field is optional on input; what is present decides how
/// the key is loaded.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyfileJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_phrase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ss58_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypto_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// What a keyfile yields: a full key pair, or only the public key.
#[derive(Debug, Clone)]
pub enum Loaded {
    Pair(Box<Keypair>),
    Public(PublicKey),
}

impl Loaded {
    pub fn public(&self) -> PublicKey {
        match self {
            Loaded::Pair(k) => k.public(),
            Loaded::Public(p) => *p,
        }
    }
}

impl KeyfileJson {
    /// The full document of a key pair (what bittensor writes for hotkeys and, encrypted, coldkeys).
    pub fn from_keypair(k: &Keypair) -> Self {
        let public = k.public();
        Self {
            secret_phrase: k.phrase().map(str::to_string),
            private_key: Some(format!("0x{}", hex::encode(k.private_key().as_slice()))),
            secret_seed: k.seed().map(|s| format!("0x{}", hex::encode(s))),
            ss58_address: Some(public.ss58()),
            crypto_type: Some(CRYPTO_SR25519),
            account_id: Some(public.hex()),
            public_key: Some(public.hex()),
        }
    }

    /// The public-only document (`coldkeypub.txt`, `<hotkey>pub.txt`).
    pub fn public_only(public: &PublicKey) -> Self {
        Self {
            ss58_address: Some(public.ss58()),
            crypto_type: Some(CRYPTO_SR25519),
            account_id: Some(public.hex()),
            public_key: Some(public.hex()),
            ..Self::default()
        }
    }

    /// Parses a plain (decrypted) keyfile; never panics on arbitrary bytes.
    pub fn parse(data: &[u8]) -> Result<Self, WalletError> {
        serde_json::from_slice(data).map_err(|e| WalletError::BadKeyfile(format!("not keyfile JSON: {e}")))
    }

    /// Serialises to the bytes written on disk.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        // Serialising a struct of strings and a u8 cannot fail.
        Zeroizing::new(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Loads the key the way btwallet does: secretPhrase, then secretSeed, then privateKey, then
    /// the public key alone. Whatever public key the file states must match the derived one.
    pub fn load(&self) -> Result<Loaded, WalletError> {
        if let Some(t) = self.crypto_type {
            if t != CRYPTO_SR25519 {
                return Err(WalletError::UnsupportedCryptoType(t));
            }
        }
        let loaded = if let Some(phrase) = self.secret_phrase.as_deref().filter(|p| !p.trim().is_empty()) {
            Loaded::Pair(Box::new(Keypair::from_phrase(phrase)?))
        } else if let Some(seed) = self.secret_seed.as_deref() {
            let bytes = Zeroizing::new(
                decode_hex(seed).map_err(|reason| WalletError::BadSecret { what: "secretSeed", reason })?,
            );
            let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| WalletError::BadSecret {
                what: "secretSeed",
                reason: format!("{} bytes, expected 32", bytes.len()),
            })?;
            let seed = Zeroizing::new(seed);
            Loaded::Pair(Box::new(Keypair::from_seed(&seed)))
        } else if let Some(pk) = self.private_key.as_deref() {
            let bytes =
                Zeroizing::new(decode_hex(pk).map_err(|reason| WalletError::BadSecret { what: "privateKey", reason })?);
            if bytes.len() != 64 {
                return Err(WalletError::BadSecret {
                    what: "privateKey",
                    reason: format!("{} bytes, expected 64", bytes.len()),
                });
            }
            Loaded::Pair(Box::new(Keypair::from_private_key(&bytes)?))
        } else if let Some(public) = self.stated_public()? {
            Loaded::Public(public)
        } else {
            return Err(WalletError::BadKeyfile("no secretPhrase, secretSeed, privateKey or address".into()));
        };
        if let Some(stated) = self.stated_public()? {
            if stated != loaded.public() {
                return Err(WalletError::KeyMismatch { stated: stated.ss58(), derived: loaded.public().ss58() });
            }
        }
        Ok(loaded)
    }

    /// The public key the file states (publicKey, accountId or ss58Address), checked consistent.
    fn stated_public(&self) -> Result<Option<PublicKey>, WalletError> {
        let mut found: Option<PublicKey> = None;
        let candidates = [
            self.public_key.as_deref().map(PublicKey::from_hex),
            self.account_id.as_deref().map(PublicKey::from_hex),
            self.ss58_address.as_deref().map(PublicKey::from_ss58),
        ];
        for c in candidates.into_iter().flatten() {
            let p = c?;
            match found {
                Some(f) if f != p => {
                    return Err(WalletError::KeyMismatch { stated: f.ss58(), derived: p.ss58() });
                }
                _ => found = Some(p),
            }
        }
        Ok(found)
    }
}

/// Reads a keyfile's raw bytes (a missing file is [`WalletError::Missing`]).
pub fn read_raw(path: &Path) -> Result<Vec<u8>, WalletError> {
    match std::fs::read(path) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(WalletError::Missing(path.to_path_buf())),
        Err(source) => Err(WalletError::Io { path: path.to_path_buf(), source }),
    }
}

/// Writes `data` to `path` atomically with mode 0600: a temporary file in the same folder, fsync,
/// rename, fsync of the folder. Parent folders are created with mode 0700.
pub fn write_private(path: &Path, data: &[u8], overwrite: bool) -> Result<(), WalletError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let io = |source| WalletError::Io { path: path.to_path_buf(), source };
    if !overwrite && path.exists() {
        return Err(WalletError::Exists(path.to_path_buf()));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("keyfile");
    let tmp = dir.join(format!(".{name}.tmp.{}.{}", std::process::id(), rand::random::<u32>()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_public_only() {
        let k = Keypair::generate(12).unwrap();
        let doc = KeyfileJson::from_keypair(&k);
        let parsed = KeyfileJson::parse(&doc.to_bytes()).unwrap();
        match parsed.load().unwrap() {
            Loaded::Pair(l) => assert_eq!(l.public(), k.public()),
            Loaded::Public(_) => panic!("expected a pair"),
        }
        let public = KeyfileJson::public_only(&k.public());
        assert!(
            matches!(KeyfileJson::parse(&public.to_bytes()).unwrap().load().unwrap(), Loaded::Public(p) if p == k.public())
        );
    }

    #[test]
    fn each_secret_form_loads_alone() {
        let k = Keypair::generate(12).unwrap();
        let full = KeyfileJson::from_keypair(&k);
        let only_seed = KeyfileJson { secret_seed: full.secret_seed.clone(), ..KeyfileJson::default() };
        let only_private = KeyfileJson { private_key: full.private_key.clone(), ..KeyfileJson::default() };
        for doc in [only_seed, only_private] {
            assert_eq!(doc.load().unwrap().public(), k.public());
        }
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let k = Keypair::generate(12).unwrap();
        let other = Keypair::generate(12).unwrap();
        let mut doc = KeyfileJson::from_keypair(&k);
        doc.ss58_address = Some(other.ss58());
        assert!(matches!(doc.load(), Err(WalletError::KeyMismatch { .. })));
        let cases: &[&[u8]] = &[
            b"",
            b"{",
            b"[]",
            b"{}",
            br#"{"secretSeed":"0x12"}"#,
            br#"{"secretSeed":"zz"}"#,
            br#"{"privateKey":"0x00"}"#,
            br#"{"secretPhrase":"not a phrase at all"}"#,
            br#"{"ss58Address":"nope"}"#,
            br#"{"cryptoType":2,"ss58Address":"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"}"#,
            br#"{"secretSeed":5}"#,
        ];
        for c in cases {
            let r = KeyfileJson::parse(c).and_then(|d| d.load());
            assert!(r.is_err(), "{:?} loaded", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn encryption_is_detected() {
        assert_eq!(Encryption::detect(b"$NACL...."), Encryption::Nacl);
        assert_eq!(Encryption::detect(b"$ANSIBLE_VAULT;1.1"), Encryption::AnsibleVault);
        assert_eq!(Encryption::detect(b"gAAAAABk"), Encryption::LegacyFernet);
        assert_eq!(Encryption::detect(b"{\"a\":1}"), Encryption::None);
    }

    #[test]
    fn writes_are_private_and_refuse_to_clobber() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w/hotkeys/hk");
        write_private(&path, b"one", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(write_private(&path, b"two", false), Err(WalletError::Exists(_))));
        write_private(&path, b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
    }
}
