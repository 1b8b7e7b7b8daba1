//! What a neuron commits on chain (PROTOCOL.md §4). A covenant-rs commitment has two `Raw`
//! fields, rewritten together by every `set_commitment`:
//! 1. `Raw128`: its bucket's read credentials (templar's layout, parsed by the node's storage);
//! 2. `Raw40` (optional): `window (u64 LE) ‖ blake2b_256(object)`, the [`WindowHash`] of its
//!    gradient object for `window`.
//!
//! The chain records the block (and extrinsic) a commitment was set in; a gradient for window `w`
//! counts only if the commitment naming `w` was included in its put window
//! ([`crate::WindowTiming::judge`]).

use crate::clock::{CommitTiming, WindowTiming};
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

/// A peer's latest window commitment: the field, and where on chain it was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCommitAt {
    pub field: WindowHash,
    pub position: ChainPosition,
}

/// Why a peer has no usable commitment for a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutWindowProblem<E> {
    /// Its commitment could not be parsed (`E`: the node's reason).
    Unusable(E),
    /// No commitment names the window; `latest` is the window its latest one names.
    NotCommitted {
        window: Window,
        latest: Option<Window>,
    },
    Early {
        window: Window,
        block: Block,
        opens: Block,
    },
    Late {
        window: Window,
        block: Block,
        closed: Block,
    },
}

/// The put-window judgement of one peer for `window` (PROTOCOL.md §4).
///
/// `at_close` is the peer's latest window commitment in the chain state at the end of the put
/// window (`None` if the uid then held another hotkey: its commitments say nothing about this
/// one's window), `head` the same now. A later `set_commitment` overwrites the field, so only the
/// state at the close can prove an on-time commitment; the head only explains a rejection
/// (late, or never). An unusable or missing commitment is `Err(E)` / `Ok(None)`.
pub fn judge_put_window<E: Clone>(
    window: Window,
    timing: &WindowTiming,
    at_close: Option<Result<Option<WindowCommitAt>, E>>,
    head: Result<Option<WindowCommitAt>, E>,
) -> Result<WindowCommitAt, PutWindowProblem<E>> {
    let judged = |state: Result<Option<WindowCommitAt>, E>| -> Result<WindowCommitAt, PutWindowProblem<E>> {
        let latest = state.map_err(PutWindowProblem::Unusable)?;
        let c = latest
            .filter(|c| c.field.window == window)
            .ok_or(PutWindowProblem::NotCommitted { window, latest: latest.map(|c| c.field.window) })?;
        match timing.judge(window, c.position.block) {
            CommitTiming::OnTime => Ok(c),
            CommitTiming::Early { block, opens } => Err(PutWindowProblem::Early { window, block, opens }),
            CommitTiming::Late { block, closed } => Err(PutWindowProblem::Late { window, block, closed }),
        }
    };
    match at_close.map(judged) {
        Some(Ok(c)) => Ok(c),
        Some(Err(e @ PutWindowProblem::Early { .. })) => Err(e),
        // Not there in time: say why from the head.
        _ => match judged(head) {
            // On time at the head but not at the close: the uid's hotkey changed in between.
            Ok(_) => Err(PutWindowProblem::NotCommitted { window, latest: None }),
            Err(e) => Err(e),
        },
    }
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

    const T: WindowTiming = WindowTiming { blocks_per_window: 10, put_blocks: 3 };

    fn at(window: u64, block: u64) -> Option<WindowCommitAt> {
        let field = WindowHash { window: Window(window), hash: Hash32([window as u8; 32]) };
        Some(WindowCommitAt { field, position: ChainPosition { block: Block(block), extrinsic_index: 1 } })
    }

    #[test]
    fn the_put_window_is_judged_at_its_close_and_explained_from_the_head() {
        type P = PutWindowProblem<&'static str>;
        let w = Window(4);
        let judge = |close, head| judge_put_window(w, &T, close, head);
        // On time at the close, whatever the head says since.
        assert_eq!(judge(Some(Ok(at(4, 51))), Ok(at(5, 61))), Ok(at(4, 51).unwrap()));
        assert_eq!(judge(Some(Ok(at(4, 53))), Err("garbage")), Ok(at(4, 53).unwrap()));
        // Early at the close.
        assert_eq!(
            judge(Some(Ok(at(4, 49))), Ok(at(4, 49))),
            Err(P::Early { window: w, block: Block(49), opens: Block(50) })
        );
        // Late: not at the close, at the head.
        assert_eq!(
            judge(Some(Ok(at(3, 40))), Ok(at(4, 60))),
            Err(P::Late { window: w, block: Block(60), closed: Block(53) })
        );
        // Never: the latest names another window, or there is none, or it is unusable.
        assert_eq!(
            judge(Some(Ok(at(3, 40))), Ok(at(3, 40))),
            Err(P::NotCommitted { window: w, latest: Some(Window(3)) })
        );
        assert_eq!(judge(None, Ok(None)), Err(P::NotCommitted { window: w, latest: None }));
        assert_eq!(judge(Some(Err("bad")), Err("bad")), Err(P::Unusable("bad")));
        // On time only at the head (the uid held another hotkey at the close): not committed.
        assert_eq!(judge(None, Ok(at(4, 52))), Err(P::NotCommitted { window: w, latest: None }));
    }

    #[test]
    fn positions_order_by_block_then_extrinsic() {
        let p = |block, extrinsic_index| ChainPosition { block: Block(block), extrinsic_index };
        assert!(p(10, 7) < p(10, 9));
        assert!(p(10, 9) < p(11, 0));
    }
}
