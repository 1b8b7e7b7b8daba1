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
    /// The index of the extrinsic that set it inside `block` (from the block's `Commitments`
    /// event, emitted in phase `ApplyExtrinsic(i)`): `(block, extrinsic_index)` orders commitments
    /// as the chain applied them. [`Commitment::UNKNOWN_EXTRINSIC`] when the block's events could
    /// not be read (a pruned node keeps no state of old blocks) or name no such extrinsic.
    pub extrinsic_index: u32,
    pub fields: Vec<Field>,
}

impl Commitment {
    /// [`Commitment::extrinsic_index`] when it is not known (sorts after every real index).
    pub const UNKNOWN_EXTRINSIC: u32 = u32::MAX;
}

/// The `Commitments` events that mean "`who` set a commitment on `netuid`": `Commitment` (subtensor
/// and the dev chain), `TimelockCommitment` (timelocked fields), and `CommitmentSet` (a name some
/// versions of the pallet use).
pub const SET_EVENTS: &[&str] = &["Commitment", "TimelockCommitment", "CommitmentSet"];

/// One event of the `Commitments` pallet in a block: the extrinsic that emitted it (the event's
/// phase `ApplyExtrinsic(i)`; `None` for block initialization/finalization), its name, and its
/// fields as decoded through the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitmentEvent {
    pub extrinsic: Option<u32>,
    pub name: String,
    pub fields: Composite<()>,
}

/// `hotkey → index of the extrinsic that set its commitment on netuid` in one block, from that
/// block's `Commitments` events (see [`SET_EVENTS`]). When a hotkey set it twice in the block,
/// the later extrinsic wins (it is the one whose value is stored). Events without an extrinsic,
/// of other subnets, or whose fields do not read as `{ netuid, who }` are skipped.
pub fn extrinsic_indices(events: &[CommitmentEvent], netuid: u16) -> std::collections::BTreeMap<PublicKey, u32> {
    let mut out = std::collections::BTreeMap::new();
    for ev in events {
        let Some(index) = ev.extrinsic else { continue };
        if !SET_EVENTS.contains(&ev.name.as_str()) {
            continue;
        }
        let field = |name: &str, i: usize| match &ev.fields {
            Composite::Named(f) => f.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            Composite::Unnamed(f) => f.get(i),
        };
        let Some(n) = field("netuid", 0).and_then(number) else { continue };
        if n != u128::from(netuid) {
            continue;
        }
        let Some(who) = field("who", 1).and_then(|w| bytes_of(w).ok()).and_then(|b| <[u8; 32]>::try_from(b).ok())
        else {
            continue;
        };
        let slot = out.entry(PublicKey(who)).or_insert(index);
        *slot = (*slot).max(index);
    }
    out
}

/// A number, seeing through single-field wrappers (`NetUid(u16)`).
fn number<C>(v: &Value<C>) -> Option<u128> {
    match &v.value {
        ValueDef::Composite(c) => match c.values().collect::<Vec<_>>().as_slice() {
            [one] => number(one),
            _ => None,
        },
        _ => v.as_u128(),
    }
}

fn ser_ss58<S: serde::Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.ss58())
}

/// Decodes a stored `Registration { deposit, block, info: { fields } }` (as a dynamic value). The
/// extrinsic index is not stored there: it is [`Commitment::UNKNOWN_EXTRINSIC`] until filled in
/// from the block's events ([`extrinsic_indices`]).
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
    Ok(Commitment { hotkey, block, extrinsic_index: Commitment::UNKNOWN_EXTRINSIC, fields })
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
    fn extrinsic_indices_come_from_the_commitment_events_of_the_subnet() {
        let who = |k: u8| Value::from_bytes([k; 32]);
        let ev = |extrinsic: Option<u32>, name: &str, fields: Composite<()>| CommitmentEvent {
            extrinsic,
            name: name.into(),
            fields,
        };
        let named = |netuid: Value, k: u8| Composite::Named(vec![("netuid".into(), netuid), ("who".into(), who(k))]);
        let events = [
            // The dev chain's and subtensor's `Commitment { netuid, who }`.
            ev(Some(2), "Commitment", named(Value::u128(3), 1)),
            // A `NetUid(u16)` newtype and an `AccountId32([u8; 32])` wrapper.
            ev(
                Some(4),
                "Commitment",
                Composite::Named(vec![
                    ("netuid".into(), Value::unnamed_composite([Value::u128(3)])),
                    ("who".into(), Value::unnamed_composite([who(2)])),
                ]),
            ),
            // Another subnet, another event, no extrinsic: ignored.
            ev(Some(5), "Commitment", named(Value::u128(4), 3)),
            ev(Some(6), "CommitmentRevealed", named(Value::u128(3), 3)),
            ev(None, "Commitment", named(Value::u128(3), 3)),
            // Timelocked, with an extra field; unnamed fields by position.
            ev(
                Some(7),
                "TimelockCommitment",
                Composite::Named(vec![
                    ("netuid".into(), Value::u128(3)),
                    ("who".into(), who(4)),
                    ("reveal_round".into(), Value::u128(99)),
                ]),
            ),
            ev(Some(8), "CommitmentSet", Composite::Unnamed(vec![Value::u128(3), who(5)])),
            // Garbage is skipped, not an error.
            ev(Some(9), "Commitment", Composite::Named(vec![("netuid".into(), Value::u128(3))])),
            ev(Some(9), "Commitment", named(Value::u128(3), 0)),
            ev(Some(10), "Commitment", Composite::Unnamed(vec![Value::u128(3), Value::from_bytes([1; 31])])),
            // The same hotkey twice: the later extrinsic set the stored value.
            ev(Some(11), "Commitment", named(Value::u128(3), 1)),
        ];
        let got = extrinsic_indices(&events, 3);
        let want: Vec<(PublicKey, u32)> = vec![
            (PublicKey([0; 32]), 9),
            (PublicKey([1; 32]), 11),
            (PublicKey([2; 32]), 4),
            (PublicKey([4; 32]), 7),
            (PublicKey([5; 32]), 8),
        ];
        assert_eq!(got.into_iter().collect::<Vec<_>>(), want);
        assert!(extrinsic_indices(&events, 9).is_empty());
        assert!(extrinsic_indices(&[], 3).is_empty());
    }
}
