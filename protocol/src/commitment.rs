//! What a neuron commits on chain (PROTOCOL.md §4). A covenant-rs commitment has two `Raw`
//! fields, rewritten together by every `set_commitment`:
//! 1. `Raw128`: its bucket's read credentials (templar's layout, parsed by the node's storage);
//! 2. `Raw40` (optional): `window (u64 LE) ‖ blake2b_256(object)`, the [`WindowHash`] of its
//!    gradient object for `window`.
//!
//! The chain records the block (and extrinsic) a commitment was set in; a gradient for window `w`
//! counts only if the commitment naming `w` was included in its put window
//! ([`crate::WindowTiming::judge`]).

use crate::ids::{Block, Hash32, Window};

/// Length of the window field.
pub const WINDOW_FIELD_LEN: usize = 40;

/// The per-window field: which window, and the hash of the object uploaded for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowHash {
    pub window: Window,
    pub hash: Hash32,
}

impl WindowHash {
    pub fn to_bytes(&self) -> [u8; WINDOW_FIELD_LEN] {
        let mut b = [0u8; WINDOW_FIELD_LEN];
        b[..8].copy_from_slice(&self.window.0.to_le_bytes());
        b[8..].copy_from_slice(&self.hash.0);
        b
    }

    /// Parses the field's bytes (untrusted): exactly 40 bytes, else `None`.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; WINDOW_FIELD_LEN] = bytes.try_into().ok()?;
        let mut window = [0u8; 8];
        window.copy_from_slice(&b[..8]);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[8..]);
        Some(Self { window: Window(u64::from_le_bytes(window)), hash: Hash32(hash) })
    }
}

/// Where a commitment sits in the chain: block, then the extrinsic's index inside it. The order
/// of two commitments is who committed first (the copycat rule's premise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainPosition {
    pub block: Block,
    pub extrinsic_index: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fields_round_trip_and_refuse_other_lengths() {
        let w = WindowHash { window: Window(77), hash: Hash32([3; 32]) };
        assert_eq!(WindowHash::parse(&w.to_bytes()), Some(w));
        assert_eq!(&w.to_bytes()[..8], &77u64.to_le_bytes());
        assert_eq!(WindowHash::parse(&[0; 39]), None);
        assert_eq!(WindowHash::parse(&[0; 41]), None);
    }

    #[test]
    fn positions_order_by_block_then_extrinsic() {
        let p = |block, extrinsic_index| ChainPosition { block: Block(block), extrinsic_index };
        assert!(p(10, 7) < p(10, 9));
        assert!(p(10, 9) < p(11, 0));
    }
}
