//! The identifiers every crate speaks of: a uid on a subnet, a window, a block, a hotkey and a
//! 32-byte hash. Each is a newtype over the chain's own representation, so a window is never
//! passed where a block is meant; `From` converts at the edges (chain client, wire header,
//! Gauntlet).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A neuron's uid on a subnet (subtensor's `u16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Uid(pub u16);

/// A window: `block / blocks_per_window` (PROTOCOL.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Window(pub u64);

/// A block number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Block(pub u64);

macro_rules! number {
    ($name:ident, $inner:ty) => {
        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
        impl From<$name> for $inner {
            fn from(v: $name) -> Self {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
number!(Uid, u16);
number!(Window, u64);
number!(Block, u64);

impl Window {
    /// The window after this one (saturating: the clock never wraps).
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The window before this one, if any.
    pub fn prev(self) -> Option<Self> {
        self.0.checked_sub(1).map(Self)
    }
}

macro_rules! bytes32 {
    ($name:ident, $what:literal) => {
        #[doc = $what]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Parses 64 hex digits, with or without `0x`.
            pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s.trim_start_matches("0x"), &mut out)?;
                Ok(Self(out))
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(v: [u8; 32]) -> Self {
                Self(v)
            }
        }

        impl From<$name> for [u8; 32] {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(0x{})"), hex::encode(self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        /// Hex in JSON and TOML.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
bytes32!(Hotkey, "A hotkey: an sr25519 public key, the chain's account id (ss58 is the chain client's).");
bytes32!(Hash32, "A 32-byte hash: blake2b-256 of an object, or a block hash.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newtypes_serialize_as_their_inner_value() {
        assert_eq!(serde_json::to_string(&Uid(7)).unwrap(), "7");
        assert_eq!(serde_json::to_string(&Window(9)).unwrap(), "9");
        let h = Hotkey([0xab; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<Hotkey>(&json).unwrap(), h);
        assert_eq!(Hash32::from_hex(&format!("0x{}", "01".repeat(32))).unwrap(), Hash32([1; 32]));
        assert!(Hash32::from_hex("0x01").is_err());
    }

    #[test]
    fn windows_step_without_wrapping() {
        assert_eq!(Window(u64::MAX).next(), Window(u64::MAX));
        assert_eq!(Window(0).prev(), None);
        assert_eq!(Window(5).prev(), Some(Window(4)));
    }
}
