//! sr25519 keys as bittensor stores them: a 32-byte mini secret (`secretSeed`, expanded the
//! Ed25519 way), a BIP-39 phrase (`secretPhrase`, substrate's entropy-based derivation with an
//! empty password), or the 64-byte expanded secret (`privateKey`). Addresses are SS58 with the
//! generic substrate prefix 42, which subtensor uses.

use super::WalletError;
use sp_core::crypto::{Ss58AddressFormat, Ss58Codec};
use sp_core::{sr25519, Pair as _};
use zeroize::Zeroizing;

/// The SS58 prefix of subtensor (and of substrate's generic format).
pub const SS58_PREFIX: u16 = 42;

/// A public key / account id (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// The protocol's hotkey is the chain's account id; ss58 text lives here, on the chain side.
impl From<PublicKey> for protocol::Hotkey {
    fn from(k: PublicKey) -> Self {
        Self(k.0)
    }
}

impl From<protocol::Hotkey> for PublicKey {
    fn from(k: protocol::Hotkey) -> Self {
        Self(k.0)
    }
}

impl PublicKey {
    /// Parses an SS58 address (any prefix; the checksum must match).
    pub fn from_ss58(s: &str) -> Result<Self, WalletError> {
        let (public, _format) = sr25519::Public::from_ss58check_with_version(s.trim())
            .map_err(|e| WalletError::BadAddress { address: s.to_string(), reason: format!("{e:?}") })?;
        Ok(Self(public.0))
    }

    /// Parses `0x`-prefixed (or bare) hex of 32 bytes.
    pub fn from_hex(s: &str) -> Result<Self, WalletError> {
        let bytes = decode_hex(s).map_err(|reason| WalletError::BadAddress { address: s.to_string(), reason })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| WalletError::BadAddress {
            address: s.to_string(),
            reason: format!("{} bytes, expected 32", b.len()),
        })?;
        Ok(Self(arr))
    }

    /// An SS58 address or 32 bytes of hex.
    pub fn parse(s: &str) -> Result<Self, WalletError> {
        let t = s.trim();
        if t.starts_with("0x") || (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())) {
            Self::from_hex(t)
        } else {
            Self::from_ss58(t)
        }
    }

    pub fn ss58(&self) -> String {
        sr25519::Public::from_raw(self.0).to_ss58check_with_version(Ss58AddressFormat::custom(SS58_PREFIX))
    }

    pub fn hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// Checks an sr25519 signature by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = sr25519::Signature::from_raw(*signature);
        sr25519::Pair::verify(&sig, message, &sr25519::Public::from_raw(self.0))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.ss58())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.ss58())
    }
}

impl std::str::FromStr for PublicKey {
    type Err = WalletError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An sr25519 key pair with whatever secret forms it was made from (kept for writing keyfiles).
#[derive(Clone)]
pub struct Keypair {
    pair: sr25519::Pair,
    seed: Option<Zeroizing<[u8; 32]>>,
    phrase: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        write!(f, "Keypair({})", self.public().ss58())
    }
}

impl Keypair {
    /// From a 32-byte mini secret (bittensor's `secretSeed`).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // A 32-byte slice is always accepted by from_seed_slice.
        let pair = sr25519::Pair::from_seed(seed);
        Self { pair, seed: Some(Zeroizing::new(*seed)), phrase: None }
    }

    /// From a BIP-39 phrase (bittensor's `secretPhrase`; no BIP-39 password).
    pub fn from_phrase(phrase: &str) -> Result<Self, WalletError> {
        let words = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
        let (pair, seed) = sr25519::Pair::from_phrase(&words, None)
            .map_err(|e| WalletError::BadSecret { what: "secretPhrase", reason: format!("{e:?}") })?;
        Ok(Self { pair, seed: Some(Zeroizing::new(seed)), phrase: Some(Zeroizing::new(words)) })
    }

    /// From the 64-byte expanded secret key (bittensor's `privateKey`) or a 32-byte seed.
    pub fn from_private_key(bytes: &[u8]) -> Result<Self, WalletError> {
        if bytes.len() == 32 {
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(bytes);
            return Ok(Self::from_seed(&seed));
        }
        let pair = sr25519::Pair::from_seed_slice(bytes)
            .map_err(|e| WalletError::BadSecret { what: "privateKey", reason: format!("{e:?}") })?;
        Ok(Self { pair, seed: None, phrase: None })
    }

    /// From a secret URI: `//Alice`, `PHRASE//hard/soft`, `0xSEED//derivation`.
    pub fn from_uri(uri: &str) -> Result<Self, WalletError> {
        let (pair, seed) = sr25519::Pair::from_string_with_seed(uri, None)
            .map_err(|e| WalletError::BadSecret { what: "secret URI", reason: format!("{e:?}") })?;
        // `seed` is the mini secret of the (derived) key only when every junction is hard.
        Ok(Self { pair, seed: seed.map(Zeroizing::new), phrase: None })
    }

    /// A new random key with a phrase of `words` words (12, 15, 18, 21 or 24).
    pub fn generate(words: usize) -> Result<Self, WalletError> {
        let entropy_len = match words {
            12 => 16,
            15 => 20,
            18 => 24,
            21 => 28,
            24 => 32,
            n => return Err(WalletError::BadWordCount(n)),
        };
        let mut entropy = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut entropy[..entropy_len]);
        let mnemonic = bip39::Mnemonic::from_entropy(&entropy[..entropy_len])
            .map_err(|e| WalletError::BadSecret { what: "generated phrase", reason: e.to_string() })?;
        let phrase = Zeroizing::new(mnemonic.words().collect::<Vec<_>>().join(" "));
        Self::from_phrase(&phrase)
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.pair.public().0)
    }

    pub fn ss58(&self) -> String {
        self.public().ss58()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.pair.sign(message).0
    }

    /// The 32-byte mini secret, when known.
    pub fn seed(&self) -> Option<&[u8; 32]> {
        self.seed.as_deref()
    }

    /// The BIP-39 phrase, when known.
    pub fn phrase(&self) -> Option<&str> {
        self.phrase.as_deref().map(String::as_str)
    }

    /// The 64-byte expanded secret (bittensor's `privateKey`).
    pub fn private_key(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pair.to_raw_vec())
    }

    pub fn pair(&self) -> &sr25519::Pair {
        &self.pair
    }
}

pub(crate) fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    hex::decode(t).map_err(|e| format!("bad hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The well-known dev key //Alice.
    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    #[test]
    fn dev_uri_gives_the_known_address() {
        let k = Keypair::from_uri("//Alice").unwrap();
        assert_eq!(k.ss58(), ALICE);
        assert!(k.seed().is_some(), "hard derivation yields a mini secret");
        // The seed and the expanded key both reproduce it.
        assert_eq!(Keypair::from_seed(k.seed().unwrap()).ss58(), ALICE);
        assert_eq!(Keypair::from_private_key(&k.private_key()).unwrap().ss58(), ALICE);
    }

    #[test]
    fn phrase_seed_and_private_key_agree() {
        let k = Keypair::generate(12).unwrap();
        let phrase = k.phrase().unwrap().to_string();
        assert_eq!(phrase.split(' ').count(), 12);
        let again = Keypair::from_phrase(&phrase).unwrap();
        assert_eq!(again.public(), k.public());
        assert_eq!(again.seed(), k.seed());
        assert_eq!(Keypair::from_seed(k.seed().unwrap()).public(), k.public());
        assert_eq!(Keypair::from_private_key(&k.private_key()).unwrap().public(), k.public());
        assert_eq!(Keypair::generate(24).unwrap().phrase().unwrap().split(' ').count(), 24);
        assert!(matches!(Keypair::generate(13), Err(WalletError::BadWordCount(13))));
    }

    #[test]
    fn addresses_round_trip_and_bad_ones_are_errors() {
        let p = PublicKey::from_ss58(ALICE).unwrap();
        assert_eq!(p.ss58(), ALICE);
        assert_eq!(PublicKey::parse(&p.hex()).unwrap(), p);
        assert!(PublicKey::from_ss58("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ").is_err());
        assert!(PublicKey::parse("0x1234").is_err());
        assert!(PublicKey::parse("").is_err());
    }

    #[test]
    fn signatures_verify() {
        let k = Keypair::generate(12).unwrap();
        let sig = k.sign(b"msg");
        assert!(k.public().verify(b"msg", &sig));
        assert!(!k.public().verify(b"other", &sig));
    }
}
