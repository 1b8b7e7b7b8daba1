//! The window clock (PROTOCOL.md §1): the only window arithmetic in covenant-rs.
//!
//! `window = block / blocks_per_window`; window `w`'s hash is committed in its put window, the
//! first `put_blocks + 1` blocks of `w + 1`. Arithmetic saturates: a block or window near
//! `u64::MAX` never wraps around to an early one. A zero `blocks_per_window` is treated as 1
//! (configuration refuses it; see [`crate::ProtocolConfig::validate`]).

use crate::ids::{Block, Window};

/// The network's clock constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTiming {
    pub blocks_per_window: u64,
    /// Blocks after the start of `w + 1` during which window `w`'s hash may be committed.
    pub put_blocks: u64,
}

/// First and last block (inclusive) of a put window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutWindow {
    pub opens: Block,
    pub closes: Block,
}

impl PutWindow {
    pub fn contains(&self, block: Block) -> bool {
        self.opens <= block && block <= self.closes
    }
}

/// When a commitment naming a window was included, against its put window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitTiming {
    OnTime,
    /// Before the window it names was over.
    Early {
        block: Block,
        opens: Block,
    },
    /// After the put window closed.
    Late {
        block: Block,
        closed: Block,
    },
}

impl WindowTiming {
    fn bpw(&self) -> u64 {
        self.blocks_per_window.max(1)
    }

    /// The window `block` belongs to.
    pub fn window_of(&self, block: Block) -> Window {
        Window(block.0 / self.bpw())
    }

    /// The first block of `window`.
    pub fn start(&self, window: Window) -> Block {
        Block(window.0.saturating_mul(self.bpw()))
    }

    /// Window `window`'s put window.
    pub fn put_window(&self, window: Window) -> PutWindow {
        let opens = self.start(window.next());
        PutWindow { opens, closes: Block(opens.0.saturating_add(self.put_blocks)) }
    }

    /// The first block at which window `window` may be processed: its put window is over.
    pub fn processable_from(&self, window: Window) -> Block {
        Block(self.put_window(window).closes.0.saturating_add(1))
    }

    /// The block whose hash is window `window`'s public randomness (which uids are evaluated, the
    /// random batches, each uid's evaluation batches; PROTOCOL.md §5): the first block after its
    /// put window closes, so no miner knows it before its commitment for `window` is final.
    pub fn seed_block(&self, window: Window) -> Block {
        self.processable_from(window)
    }

    /// Judges a commitment naming `window` included in `block`.
    pub fn judge(&self, window: Window, block: Block) -> CommitTiming {
        let PutWindow { opens, closes } = self.put_window(window);
        if block < opens {
            CommitTiming::Early { block, opens }
        } else if block > closes {
            CommitTiming::Late { block, closed: closes }
        } else {
            CommitTiming::OnTime
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: WindowTiming = WindowTiming { blocks_per_window: 10, put_blocks: 3 };

    #[test]
    fn windows_and_their_blocks() {
        assert_eq!(T.window_of(Block(0)), Window(0));
        assert_eq!(T.window_of(Block(49)), Window(4));
        assert_eq!(T.window_of(Block(50)), Window(5));
        assert_eq!(T.start(Window(5)), Block(50));
        assert_eq!(T.processable_from(Window(4)), Block(54));
        // The seed comes after the last block in which a commitment for the window counts.
        assert_eq!(T.seed_block(Window(4)), Block(54));
        assert!(!T.put_window(Window(4)).contains(T.seed_block(Window(4))));
    }

    #[test]
    fn put_windows_are_inclusive_block_ranges() {
        assert_eq!(T.put_window(Window(4)), PutWindow { opens: Block(50), closes: Block(53) });
        assert!(T.put_window(Window(4)).contains(Block(53)));
        assert_eq!(T.judge(Window(4), Block(49)), CommitTiming::Early { block: Block(49), opens: Block(50) });
        assert_eq!(T.judge(Window(4), Block(50)), CommitTiming::OnTime);
        assert_eq!(T.judge(Window(4), Block(53)), CommitTiming::OnTime);
        assert_eq!(T.judge(Window(4), Block(54)), CommitTiming::Late { block: Block(54), closed: Block(53) });
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let huge = Window(u64::MAX / 3);
        assert_eq!(T.start(huge), Block(u64::MAX));
        assert_eq!(T.put_window(Window(u64::MAX)).closes, Block(u64::MAX));
        // A late commitment far in the future is late, never "early" through a wrap.
        assert!(matches!(T.judge(Window(u64::MAX - 1), Block(5)), CommitTiming::Early { .. }));
        let zero = WindowTiming { blocks_per_window: 0, put_blocks: 0 };
        assert_eq!(zero.window_of(Block(7)), Window(7));
    }
}
