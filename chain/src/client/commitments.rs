//! Commitments (pallet `Commitments`): the fields a hotkey publishes, and reading them back.
//!
//! On chain a field is subtensor's `Data`: `RawN` (N = 0..=128 raw bytes, no length prefix),
//! hashes, `BigRaw`, timelocked ciphertext, … Reads decode the stored value through the chain's
//! metadata (variant *names*), so layout changes in the surrounding `Registration` struct are
//! tolerated; anything unexpected is an error or [`Field::Unknown`], never a panic.
//!
//! covenant-rs uses two `Raw` fields (PROTOCOL.md §4): bucket read credentials (`Raw128`) and the
//! per-window `window (u64 LE) ‖ blake2b_256(object)` (`Raw40`).

use super::error::ChainError;
use crate::wallet::PublicKey;
use serde::Serialize;
use subxt::dynamic::Value;
use subxt::ext::scale_value::{Composite, ValueDef};

/// Longest `RawN` field.
pub const MAX_RAW: usize = 128;
/// Longest `BigRaw` field.
pub const MAX_BIG_RAW: usize = 512;

/// One committed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    None,
    /// `RawN`: up to 128 bytes.
    Raw(Vec<u8>),
    /// `BlakeTwo256`, `Sha256`, `Keccak256` or `ShaThree256`.
    Hash {
        kind: String,
        hash: [u8; 32],
    },
    /// `BigRaw`: up to 512 bytes.
    BigRaw(Vec<u8>),
    /// `TimelockEncrypted`: revealed by the chain once the drand round is known.
    Timelocked {
        encrypted: Vec<u8>,
        reveal_round: u64,
    },
    ResetBondsFlag,
    /// A variant this client does not know (a newer chain).
    Unknown(String),
}

impl Field {
    /// The dynamic value `set_commitment` takes for this field.
    pub fn to_value(&self) -> Result<Value, ChainError> {
        Ok(match self {
            Field::None => Value::unnamed_variant("None", []),
            Field::Raw(b) if b.len() <= MAX_RAW => {
                Value::unnamed_variant(format!("Raw{}", b.len()), [Value::from_bytes(b)])
            }
            Field::Raw(b) => {
                return Err(ChainError::BadArgument(format!("a Raw field holds at most 128 bytes, not {}", b.len())))
            }
            Field::BigRaw(b) if b.len() <= MAX_BIG_RAW => Value::unnamed_variant("BigRaw", [Value::from_bytes(b)]),
            Field::BigRaw(b) => {
                return Err(ChainError::BadArgument(format!("a BigRaw field holds at most 512 bytes, not {}", b.len())))
            }
            Field::Hash { kind, hash } => Value::unnamed_variant(kind.clone(), [Value::from_bytes(hash)]),
            Field::ResetBondsFlag => Value::unnamed_variant("ResetBondsFlag", []),
            Field::Timelocked { .. } | Field::Unknown(_) => {
                return Err(ChainError::BadArgument(
                    "only None, Raw, BigRaw, hash and ResetBondsFlag fields are sent".into(),
                ))
            }
        })
    }

    /// The bytes of a `Raw` or `BigRaw` field.
    pub fn raw(&self) -> Option<&[u8]> {
        match self {
            Field::Raw(b) | Field::BigRaw(b) => Some(b),
            _ => None,
        }
    }

    /// Parses one decoded `Data` value (untrusted).
    fn from_value<C: Clone>(v: &Value<C>) -> Result<Field, String> {
        let ValueDef::Variant(var) = &v.value else { return Err("a field is not an enum variant".into()) };
        let name = var.name.as_str();
        let inner: Vec<&Value<C>> = var.values.values().collect();
        let only_bytes = || -> Result<Vec<u8>, String> {
            match inner.as_slice() {
                [one] => bytes_of(one),
                _ => Err(format!("{name} has {} values, expected 1", inner.len())),
            }
        };
        Ok(match name {
            "None" => Field::None,
            "ResetBondsFlag" => Field::ResetBondsFlag,
            "BigRaw" => Field::BigRaw(only_bytes()?),
            "BlakeTwo256" | "Sha256" | "Keccak256" | "ShaThree256" => {
                let b = only_bytes()?;
                let hash: [u8; 32] = b.try_into().map_err(|b: Vec<u8>| format!("{name} of {} bytes", b.len()))?;
                Field::Hash { kind: name.to_string(), hash }
            }
            "TimelockEncrypted" => {
                let field = |n: &str, i: usize| match &var.values {
                    Composite::Named(f) => f.iter().find(|(k, _)| k == n).map(|(_, v)| v),
                    Composite::Unnamed(f) => f.get(i),
                };
                let encrypted = field("encrypted", 0).ok_or("TimelockEncrypted without ciphertext")?;
                let round = field("reveal_round", 1).ok_or("TimelockEncrypted without reveal_round")?;
                let reveal_round = round
                    .as_u128()
                    .and_then(|r| u64::try_from(r).ok())
                    .ok_or("TimelockEncrypted reveal_round is not a u64")?;
                Field::Timelocked { encrypted: bytes_of(encrypted)?, reveal_round }
            }
            n if n.starts_with("Raw") && n[3..].parse::<usize>().is_ok() => {
                let want: usize = n[3..].parse().unwrap_or(usize::MAX);
                let b = if want == 0 && inner.is_empty() { Vec::new() } else { only_bytes()? };
                if b.len() != want {
                    return Err(format!("{n} holds {} bytes", b.len()));
                }
                Field::Raw(b)
            }
            other => Field::Unknown(other.to_string()),
        })
    }
}

/// Bytes from a decoded `[u8; N]` / `Vec<u8>` / single-field wrapper of those.
fn bytes_of<C: Clone>(v: &Value<C>) -> Result<Vec<u8>, String> {
    match &v.value {
        ValueDef::Composite(c) => {
            let vals: Vec<&Value<C>> = c.values().collect();
            if let [one] = vals.as_slice() {
                if matches!(one.value, ValueDef::Composite(_)) {
                    return bytes_of(one);
                }
            }
            vals.iter()
                .map(|x| x.as_u128().and_then(|n| u8::try_from(n).ok()).ok_or_else(|| "a byte is not a u8".to_string()))
                .collect()
        }
        _ => Err("expected bytes".into()),
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            len: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            hex: Option<String>,
            /// The bytes as text when they are printable UTF-8.
            #[serde(skip_serializing_if = "Option::is_none")]
            text: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            reveal_round: Option<u64>,
        }
        let hexed = |b: &[u8]| Some(format!("0x{}", hex::encode(b)));
        fn text(b: &[u8]) -> Option<&str> {
            std::str::from_utf8(b).ok().filter(|t| !t.is_empty() && t.chars().all(|c| !c.is_control()))
        }
        let out = match self {
            Field::None => Out { kind: "None", len: None, hex: None, text: None, reveal_round: None },
            Field::Raw(b) => Out { kind: "Raw", len: Some(b.len()), hex: hexed(b), text: text(b), reveal_round: None },
            Field::BigRaw(b) => {
                Out { kind: "BigRaw", len: Some(b.len()), hex: hexed(b), text: text(b), reveal_round: None }
            }
            Field::Hash { kind, hash } => Out { kind, len: Some(32), hex: hexed(hash), text: None, reveal_round: None },
            Field::Timelocked { encrypted, reveal_round } => Out {
                kind: "TimelockEncrypted",
                len: Some(encrypted.len()),
                hex: hexed(encrypted),
                text: None,
                reveal_round: Some(*reveal_round),
            },
            Field::ResetBondsFlag => {
                Out { kind: "ResetBondsFlag", len: None, hex: None, text: None, reveal_round: None }
            }
            Field::Unknown(k) => Out { kind: k, len: None, hex: None, text: None, reveal_round: None },
        };
        out.serialize(s)
    }
}

/// A hotkey's commitment on a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commitment {
    #[serde(serialize_with = "ser_ss58")]
    pub hotkey: PublicKey,
    /// The block in which it was (last) set.
    pub block: u64,
    pub fields: Vec<Field>,
}

fn ser_ss58<S: serde::Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.ss58())
}

/// Decodes a stored `Registration { deposit, block, info: { fields } }` (as a dynamic value).
pub fn decode_registration<C: Clone>(hotkey: PublicKey, v: &Value<C>) -> Result<Commitment, ChainError> {
    let what = format!("the commitment of {hotkey}");
    let bad = |reason: String| ChainError::Decode { what: what.clone(), reason };
    let block = named(v, "block")
        .and_then(|b| b.as_u128())
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| bad("no block number".into()))?;
    let info = named(v, "info").ok_or_else(|| bad("no info".into()))?;
    let fields = named(info, "fields").ok_or_else(|| bad("no fields".into()))?;
    let list = sequence(fields).ok_or_else(|| bad("fields is not a list".into()))?;
    let fields = list.iter().map(|f| Field::from_value(f).map_err(&bad)).collect::<Result<Vec<_>, _>>()?;
    Ok(Commitment { hotkey, block, fields })
}

fn named<'a, C>(v: &'a Value<C>, name: &str) -> Option<&'a Value<C>> {
    match &v.value {
        ValueDef::Composite(Composite::Named(f)) => f.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        _ => None,
    }
}

/// The elements of a sequence, seeing through single-field wrappers (BoundedVec). Fields are enum
/// variants, never composites, so a sole composite element is a wrapper.
fn sequence<C>(v: &Value<C>) -> Option<Vec<&Value<C>>> {
    match &v.value {
        ValueDef::Composite(c) => {
            let vals: Vec<&Value<C>> = c.values().collect();
            match vals.as_slice() {
                [one] if matches!(&one.value, ValueDef::Composite(_)) => sequence(one),
                _ => Some(vals),
            }
        }
        _ => None,
    }
}

/// PROTOCOL.md §4: the per-window field, `window (u64 LE) ‖ blake2b_256(object)` (40 bytes).
pub fn window_field(window: u64, object_hash: &[u8; 32]) -> Field {
    let mut b = Vec::with_capacity(40);
    b.extend_from_slice(&window.to_le_bytes());
    b.extend_from_slice(object_hash);
    Field::Raw(b)
}

/// Reads a per-window field back: `(window, object hash)`.
pub fn parse_window_field(f: &Field) -> Option<(u64, [u8; 32])> {
    let b = f.raw()?;
    if b.len() != 40 {
        return None;
    }
    let window = u64::from_le_bytes(b[..8].try_into().ok()?);
    let hash: [u8; 32] = b[8..].try_into().ok()?;
    Some((window, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_value(b: &[u8]) -> Value {
        Value::from_bytes(b)
    }

    #[test]
    fn fields_round_trip_through_values() {
        let cases = [
            Field::Raw(vec![7; 128]),
            Field::Raw(vec![1, 2, 3]),
            Field::Raw(vec![]),
            Field::BigRaw(vec![9; 300]),
            Field::Hash { kind: "Sha256".into(), hash: [5; 32] },
            Field::None,
            Field::ResetBondsFlag,
        ];
        for f in cases {
            let v = f.to_value().unwrap();
            assert_eq!(Field::from_value(&v).unwrap(), f);
        }
        assert!(Field::Raw(vec![0; 129]).to_value().is_err());
        assert!(Field::BigRaw(vec![0; 513]).to_value().is_err());
    }

    #[test]
    fn hostile_values_are_errors() {
        let bad = [
            Value::u128(5),
            Value::unnamed_variant("Raw4", [bytes_value(&[1, 2])]),
            Value::unnamed_variant("Raw2", [Value::unnamed_composite([Value::u128(300), Value::u128(1)])]),
            Value::unnamed_variant("Sha256", [bytes_value(&[1; 31])]),
            Value::unnamed_variant("Raw1", []),
        ];
        for v in bad {
            assert!(Field::from_value(&v).is_err(), "{v:?}");
        }
        assert_eq!(Field::from_value(&Value::unnamed_variant("Future", [])).unwrap(), Field::Unknown("Future".into()));
    }

    #[test]
    fn registration_decodes_with_a_bounded_vec_wrapper() {
        let hotkey = PublicKey([1; 32]);
        let field = Field::Raw(b"abc".to_vec()).to_value().unwrap();
        for fields in [
            Value::unnamed_composite([field.clone()]),
            Value::unnamed_composite([Value::unnamed_composite([field.clone()])]),
        ] {
            let reg = Value::named_composite([
                ("deposit", Value::u128(0)),
                ("block", Value::u128(42)),
                ("info", Value::named_composite([("fields", fields)])),
            ]);
            let c = decode_registration(hotkey, &reg).unwrap();
            assert_eq!(c.block, 42);
            assert_eq!(c.fields, vec![Field::Raw(b"abc".to_vec())]);
        }
        assert!(decode_registration(hotkey, &Value::u128(1)).is_err());
    }

    #[test]
    fn window_field_round_trips() {
        let f = window_field(77, &[3; 32]);
        assert_eq!(f.raw().unwrap().len(), 40);
        assert_eq!(parse_window_field(&f), Some((77, [3; 32])));
        assert_eq!(parse_window_field(&Field::Raw(vec![0; 39])), None);
    }
}
