//! A bundle of peers' payloads: what the leading validator publishes as `aggregator-{w}` so that
//! late joiners can replay window `w`'s outer step.
//!
//! The bundle carries the accepted payloads themselves, byte for byte, not the aggregate: every
//! payload is still signed by the miner who made it and its hash is still committed on chain, so a
//! replaying peer needs to trust nobody — it re-verifies each payload and aggregates them itself,
//! getting exactly the update every honest peer applied.
//!
//! Layout (little-endian): `"CVNTBNDL"` ‖ u16 version (1) ‖ u64 window ‖ u32 count ‖ count ×
//! (u16 uid ‖ u64 length ‖ payload bytes).

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"CVNTBNDL";
pub const VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 8 + 4;
const ENTRY_HEADER_LEN: usize = 2 + 8;

/// One window's accepted payloads, by uid, in the order they were aggregated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub window: u64,
    pub entries: Vec<(u16, Vec<u8>)>,
}

/// Why bytes are not an acceptable bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("bundle is truncated: {0}")]
    Truncated(&'static str),
    #[error("not a bundle (bad magic)")]
    BadMagic,
    #[error("unsupported bundle version {0}")]
    UnsupportedVersion(u16),
    #[error("bundle holds {count} payloads, more than the limit of {limit}")]
    TooManyPayloads { count: usize, limit: usize },
    #[error("payload of uid {uid} is {len} bytes, more than the limit of {limit}")]
    PayloadTooLarge { uid: u16, len: u64, limit: usize },
    #[error("uid {0} appears twice")]
    DuplicateUid(u16),
    #[error("{0} unexpected bytes after the last payload")]
    TrailingBytes(usize),
}

impl Bundle {
    pub fn encode(&self) -> Vec<u8> {
        let size = HEADER_LEN + self.entries.iter().map(|(_, p)| ENTRY_HEADER_LEN + p.len()).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.window.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (uid, payload) in &self.entries {
            out.extend_from_slice(&uid.to_le_bytes());
            out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            out.extend_from_slice(payload);
        }
        out
    }

    /// Parses `bytes`, refusing more than `max_payloads` entries or any entry over
    /// `max_payload_len` bytes (use [`crate::wire::max_payload_len`] of the model). Each payload
    /// still has to be verified and decoded by the caller.
    pub fn decode(bytes: &[u8], max_payloads: usize, max_payload_len: usize) -> Result<Self, BundleError> {
        let mut pos = 0usize;
        let mut take = |n: usize, what: &'static str| -> Result<&[u8], BundleError> {
            let end = pos.checked_add(n).filter(|&e| e <= bytes.len()).ok_or(BundleError::Truncated(what))?;
            let s = &bytes[pos..end];
            pos = end;
            Ok(s)
        };
        if take(8, "magic")? != MAGIC {
            return Err(BundleError::BadMagic);
        }
        let version = u16::from_le_bytes(take(2, "version")?.try_into().expect("2 bytes"));
        if version != VERSION {
            return Err(BundleError::UnsupportedVersion(version));
        }
        let window = u64::from_le_bytes(take(8, "window")?.try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(take(4, "count")?.try_into().expect("4 bytes")) as usize;
        if count > max_payloads {
            return Err(BundleError::TooManyPayloads { count, limit: max_payloads });
        }
        // Each entry takes at least its header: never reserve more than the bytes can hold.
        let mut entries: Vec<(u16, Vec<u8>)> = Vec::with_capacity(count.min(bytes.len() / ENTRY_HEADER_LEN));
        for _ in 0..count {
            let uid = u16::from_le_bytes(take(2, "uid")?.try_into().expect("2 bytes"));
            let len = u64::from_le_bytes(take(8, "length")?.try_into().expect("8 bytes"));
            if len > max_payload_len as u64 {
                return Err(BundleError::PayloadTooLarge { uid, len, limit: max_payload_len });
            }
            if entries.iter().any(|(u, _)| *u == uid) {
                return Err(BundleError::DuplicateUid(uid));
            }
            entries.push((uid, take(len as usize, "payload")?.to_vec()));
        }
        match bytes.len() - pos {
            0 => Ok(Self { window, entries }),
            extra => Err(BundleError::TrailingBytes(extra)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let b = Bundle { window: 9, entries: vec![(3, vec![1, 2, 3]), (7, vec![]), (1, vec![9; 100])] };
        let bytes = b.encode();
        assert_eq!(Bundle::decode(&bytes, 10, 100).unwrap(), b);
        assert_eq!(Bundle::decode(&bytes, 2, 100), Err(BundleError::TooManyPayloads { count: 3, limit: 2 }));
        assert!(matches!(Bundle::decode(&bytes, 10, 99), Err(BundleError::PayloadTooLarge { uid: 1, .. })));
        assert!(matches!(Bundle::decode(&bytes[..bytes.len() - 1], 10, 100), Err(BundleError::Truncated(_))));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Bundle::decode(&longer, 10, 100), Err(BundleError::TrailingBytes(1)));
        let twice = Bundle { window: 1, entries: vec![(3, vec![]), (3, vec![])] }.encode();
        assert_eq!(Bundle::decode(&twice, 10, 10), Err(BundleError::DuplicateUid(3)));
        assert_eq!(Bundle::decode(b"XXXXXXXX", 1, 1), Err(BundleError::BadMagic));
        // A count far beyond the bytes present fails on truncation, not on allocation.
        let mut huge = bytes.clone();
        huge[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Bundle::decode(&huge, usize::MAX, 100).is_err());
    }
}
