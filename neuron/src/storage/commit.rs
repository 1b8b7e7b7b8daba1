//! On-chain commitments of covenant-rs (PROTOCOL.md §4) and the put-window rule.
//!
//! A neuron's commitment has two `Raw` fields, rewritten together by every `set_commitment`:
//! 1. `Raw128`: its bucket's read credentials ([`BucketCredentials`], templar's layout);
//! 2. `Raw40` (optional): `window (u64 LE) ‖ blake2b_256(object)` — the hash of its gradient object
//!    for `window`.
//!
//! The chain records the block a commitment was set in; a gradient for window `w` counts only if
//! the commitment naming `w` was included in its put window `[start(w+1), start(w+1) + put_blocks]`
//! ([`WindowTiming`]). Because a later `set_commitment` overwrites the fields, readers look at the
//! chain state at the *end* of the put window ([`WindowView::read`]): what a miner commits
//! afterwards (its next window, or a late commit) cannot hide or replace an on-time commitment.

use super::credentials::{BucketCredentials, CredentialsError};
use chain::client::{ChainError, Client, Commitment, Field, Metagraph};
use chain::wallet::PublicKey;
use std::collections::BTreeMap;

use protocol::commitment::{judge_put_window, ChainPosition, PutWindowProblem, WindowCommitAt, WindowHash};
use protocol::{Block, Hash32, Window};
pub use protocol::{CommitTiming, WindowTiming};

/// The fields of a covenant-rs commitment, in order.
pub fn commitment_fields(credentials: &BucketCredentials, window: Option<(u64, [u8; 32])>) -> Vec<Field> {
    let mut fields = vec![Field::Raw(credentials.to_raw())];
    if let Some((w, hash)) = window {
        fields.push(Field::Raw(WindowHash { window: Window(w), hash: Hash32(hash) }.to_bytes().to_vec()));
    }
    fields
}

/// A window hash as committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCommit {
    pub window: u64,
    pub hash: [u8; 32],
    /// The block the commitment was included in.
    pub block: u64,
    /// The index of the extrinsic that set it inside `block` ([`Commitment::extrinsic_index`]):
    /// `(block, extrinsic_index)` is the chain's order of commitments.
    pub extrinsic_index: u32,
}

impl WindowCommit {
    /// The protocol's view of it.
    pub fn at(&self) -> WindowCommitAt {
        WindowCommitAt {
            field: WindowHash { window: Window(self.window), hash: Hash32(self.hash) },
            position: ChainPosition { block: Block(self.block), extrinsic_index: self.extrinsic_index },
        }
    }
}

/// A parsed covenant-rs commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCommitment {
    pub credentials: BucketCredentials,
    pub window: Option<WindowCommit>,
    /// The block the commitment was (last) set in.
    pub block: u64,
}

/// Why a hotkey's commitment is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    #[error("no commitment on chain")]
    Missing,
    #[error("the first field is not the bucket credentials: {0}")]
    Credentials(String),
    #[error("the bucket credentials are malformed: {0}")]
    BadCredentials(#[from] CredentialsError),
    #[error("the window field is not `window (u64 LE) ‖ blake2b-256` (40 raw bytes)")]
    BadWindowField,
}

impl PeerCommitment {
    /// Parses a commitment read from chain (untrusted).
    pub fn parse(c: &Commitment) -> Result<Self, CommitmentError> {
        let creds = match c.fields.first() {
            Some(Field::Raw(raw)) => BucketCredentials::from_raw(raw)?,
            Some(other) => return Err(CommitmentError::Credentials(format!("{other:?}"))),
            None => return Err(CommitmentError::Credentials("no fields".into())),
        };
        let window = match c.fields.get(1) {
            None | Some(Field::None) => None,
            Some(f) => {
                let WindowHash { window: Window(window), hash: Hash32(hash) } =
                    f.raw().and_then(WindowHash::parse).ok_or(CommitmentError::BadWindowField)?;
                Some(WindowCommit { window, hash, block: c.block, extrinsic_index: c.extrinsic_index })
            }
        };
        Ok(Self { credentials: creds, window, block: c.block })
    }
}

/// One neuron as seen on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u16,
    pub hotkey: PublicKey,
    pub commitment: Result<PeerCommitment, CommitmentError>,
}

/// `uid → (hotkey, bucket credentials, latest window commitment, commit block)` at one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBook {
    pub netuid: u16,
    /// The block the commitments were read at.
    pub block: u64,
    pub peers: BTreeMap<u16, Peer>,
}

impl PeerBook {
    /// Joins a metagraph (uid → hotkey) with commitments (hotkey → fields).
    pub fn from_parts(metagraph: &Metagraph, block: u64, commitments: &[Commitment]) -> Self {
        let by_hotkey: BTreeMap<PublicKey, &Commitment> = commitments.iter().map(|c| (c.hotkey, c)).collect();
        let peers = metagraph
            .neurons
            .iter()
            .map(|n| {
                let commitment = match by_hotkey.get(&n.hotkey) {
                    Some(c) => PeerCommitment::parse(c),
                    None => Err(CommitmentError::Missing),
                };
                (n.uid, Peer { uid: n.uid, hotkey: n.hotkey, commitment })
            })
            .collect();
        Self { netuid: metagraph.netuid, block, peers }
    }

    /// The book at the finalized head (metagraph and commitments read at one block).
    pub async fn read(client: &Client, netuid: u16) -> Result<Self, ChainError> {
        let at = client.at_finalized().await?;
        let metagraph = at.metagraph(netuid).await?;
        let commitments = at.commitments(netuid).await?;
        Ok(Self::from_parts(&metagraph, at.block(), &commitments))
    }

    /// The commitments as they were at `block` (uids and hotkeys from `metagraph`).
    pub async fn read_at(client: &Client, metagraph: &Metagraph, block: u64) -> Result<Self, ChainError> {
        let commitments = commitments_at(client, metagraph.netuid, block).await?;
        Ok(Self::from_parts(metagraph, block, &commitments))
    }

    pub fn get(&self, uid: u16) -> Option<&Peer> {
        self.peers.get(&uid)
    }
}

/// Every `CommitmentOf(netuid, *)` at `block` (with each commitment's extrinsic index).
pub async fn commitments_at(client: &Client, netuid: u16, block: u64) -> Result<Vec<Commitment>, ChainError> {
    client.at(block).await?.commitments(netuid).await
}

/// A peer's on-time commitment for the window being gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub uid: u16,
    pub hotkey: PublicKey,
    pub credentials: BucketCredentials,
    pub hash: [u8; 32],
    pub block: u64,
    /// The index of the committing extrinsic inside `block`.
    pub extrinsic_index: u32,
}

/// Why a peer has no usable commitment for the window (before anything is downloaded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitProblem {
    #[error("uid {0} is not in the metagraph")]
    UnknownUid(u16),
    #[error("commitment unusable: {0}")]
    Commitment(CommitmentError),
    #[error("no hash committed for window {window} ({})", latest_window(latest))]
    NotCommitted { window: u64, latest: Option<u64> },
    #[error("the hash for window {window} was committed at block {block}, before its put window opened at {opens}")]
    Early { window: u64, block: u64, opens: u64 },
    #[error("the hash for window {window} was committed at block {block}, after its put window closed at {closed}")]
    Late { window: u64, block: u64, closed: u64 },
}

impl From<PutWindowProblem<CommitmentError>> for CommitProblem {
    fn from(p: PutWindowProblem<CommitmentError>) -> Self {
        match p {
            PutWindowProblem::Unusable(e) => Self::Commitment(e),
            PutWindowProblem::NotCommitted { window, latest } => {
                Self::NotCommitted { window: window.0, latest: latest.map(|w| w.0) }
            }
            PutWindowProblem::Early { window, block, opens } => {
                Self::Early { window: window.0, block: block.0, opens: opens.0 }
            }
            PutWindowProblem::Late { window, block, closed } => {
                Self::Late { window: window.0, block: block.0, closed: closed.0 }
            }
        }
    }
}

fn latest_window(latest: &Option<u64>) -> String {
    latest.map_or_else(|| "none committed yet".into(), |w| format!("the latest is for window {w}"))
}

/// Every peer's commitment for one window, judged against its put window.
#[derive(Debug, Clone)]
pub struct WindowView {
    pub window: u64,
    pub timing: WindowTiming,
    pub entries: BTreeMap<u16, Result<Committed, CommitProblem>>,
}

impl WindowView {
    /// Reads window `window`'s commitments: the chain state at the end of its put window, and the
    /// head (only to tell "late" from "never"). Errors if the put window is not over yet.
    pub async fn read(client: &Client, netuid: u16, window: u64, timing: WindowTiming) -> Result<Self, ChainError> {
        let closes = timing.put_window(Window(window)).closes.0;
        let head = client.at_finalized().await?;
        let metagraph = head.metagraph(netuid).await?;
        if metagraph.block < closes {
            return Err(ChainError::BadArgument(format!(
                "the put window of window {window} is open until block {closes} (finalized: {})",
                metagraph.block
            )));
        }
        let at_close = PeerBook::read_at(client, &metagraph, closes).await?;
        let head = PeerBook::from_parts(&metagraph, metagraph.block, &head.commitments(netuid).await?);
        Ok(Self::judge(window, timing, &at_close, &head))
    }

    /// Judges each peer ([`protocol::commitment::judge_put_window`]): its commitment naming
    /// `window` as of the put window's end, else (to explain the rejection) as of the head.
    pub fn judge(window: u64, timing: WindowTiming, at_close: &PeerBook, head: &PeerBook) -> Self {
        let latest = |p: &Peer| -> Result<Option<WindowCommitAt>, CommitmentError> {
            p.commitment.as_ref().map(|c| c.window.as_ref().map(WindowCommit::at)).map_err(Clone::clone)
        };
        let mut entries = BTreeMap::new();
        for (&uid, peer) in &head.peers {
            // The same hotkey at the end of the put window (a uid re-registered since has a new
            // hotkey, whose commitments say nothing about this window).
            let at_close_peer = at_close.get(uid).filter(|p| p.hotkey == peer.hotkey);
            let judged = judge_put_window(Window(window), &timing, at_close_peer.map(latest), latest(peer));
            let entry = match (judged, at_close_peer.map(|p| &p.commitment)) {
                (Ok(c), Some(Ok(on_chain))) => Ok(Committed {
                    uid,
                    hotkey: peer.hotkey,
                    credentials: on_chain.credentials.clone(),
                    hash: c.field.hash.0,
                    block: c.position.block.0,
                    extrinsic_index: c.position.extrinsic_index,
                }),
                // (Not reached: an on-time verdict comes from a usable commitment at the close.)
                (Ok(_), _) => Err(CommitProblem::NotCommitted { window, latest: None }),
                (Err(problem), _) => Err(CommitProblem::from(problem)),
            };
            entries.insert(uid, entry);
        }
        Self { window, timing, entries }
    }

    pub fn get(&self, uid: u16) -> Result<&Committed, CommitProblem> {
        match self.entries.get(&uid) {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(e.clone()),
            None => Err(CommitProblem::UnknownUid(uid)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::credentials::BucketKeys;
    use chain::client::metagraph::{Neuron, Source};

    const TIMING: WindowTiming = WindowTiming { blocks_per_window: 10, put_blocks: 3 };

    fn metagraph(hotkeys: &[PublicKey]) -> Metagraph {
        let neurons = hotkeys
            .iter()
            .enumerate()
            .map(|(uid, &hotkey)| Neuron {
                uid: uid as u16,
                hotkey,
                coldkey: hotkey,
                stake: 0,
                alpha_stake: 0,
                active: true,
                validator_permit: false,
                last_update: 0,
                incentive: 0,
                dividends: 0,
                emission: 0,
                block_at_registration: 0,
            })
            .collect();
        Metagraph { netuid: 3, block: 100, source: Source::Storage, neurons }
    }

    fn commitment(hotkey: PublicKey, block: u64, window: Option<u64>) -> Commitment {
        let creds = BucketKeys::generate().published().unwrap();
        // A made-up extrinsic index that differs per hotkey and block.
        let extrinsic_index = u32::from(hotkey.0[0]) + block as u32;
        Commitment {
            hotkey,
            block,
            extrinsic_index,
            fields: commitment_fields(&creds, window.map(|w| (w, [w as u8; 32]))),
        }
    }

    #[test]
    fn commitments_parse_and_refuse_garbage() {
        let k = PublicKey([1; 32]);
        let c = Commitment { extrinsic_index: 3, ..commitment(k, 7, Some(4)) };
        let p = PeerCommitment::parse(&c).unwrap();
        assert_eq!(p.window, Some(WindowCommit { window: 4, hash: [4; 32], block: 7, extrinsic_index: 3 }));
        let creds_only = Commitment { fields: c.fields[..1].to_vec(), ..c.clone() };
        assert_eq!(PeerCommitment::parse(&creds_only).unwrap().window, None);
        for fields in [
            vec![],
            vec![Field::Raw(vec![b'a'; 127])],
            vec![Field::BigRaw(vec![b'a'; 128])],
            vec![c.fields[0].clone(), Field::Raw(vec![0; 39])],
        ] {
            assert!(PeerCommitment::parse(&Commitment { fields, ..c.clone() }).is_err());
        }
    }

    #[test]
    fn windows_are_judged_at_the_end_of_the_put_window() {
        let keys: Vec<PublicKey> = (0..6).map(|i| PublicKey([i + 1; 32])).collect();
        let mg = metagraph(&keys);
        // uid 0 on time; 1 early; 2 late (only at head); 3 never; 4 on time then moved on to window
        // 5 (head shows 5); 5 committed nothing at all.
        let at_close = [
            commitment(keys[0], 51, Some(4)),
            commitment(keys[1], 49, Some(4)),
            commitment(keys[3], 40, Some(3)),
            commitment(keys[4], 53, Some(4)),
        ];
        let head = [
            commitment(keys[0], 51, Some(4)),
            commitment(keys[1], 49, Some(4)),
            commitment(keys[2], 60, Some(4)),
            commitment(keys[3], 40, Some(3)),
            commitment(keys[4], 61, Some(5)),
        ];
        let view = WindowView::judge(
            4,
            TIMING,
            &PeerBook::from_parts(&mg, 53, &at_close),
            &PeerBook::from_parts(&mg, 70, &head),
        );
        assert_eq!((view.get(0).unwrap().block, view.get(0).unwrap().extrinsic_index), (51, 1 + 51));
        assert_eq!(view.get(1).unwrap_err(), CommitProblem::Early { window: 4, block: 49, opens: 50 });
        assert_eq!(view.get(2).unwrap_err(), CommitProblem::Late { window: 4, block: 60, closed: 53 });
        assert_eq!(view.get(3).unwrap_err(), CommitProblem::NotCommitted { window: 4, latest: Some(3) });
        assert_eq!(view.get(4).unwrap().hash, [4; 32]);
        // The on-time commitment as of the put window's end, with its extrinsic index (not the
        // head's later one).
        assert_eq!((view.get(4).unwrap().block, view.get(4).unwrap().extrinsic_index), (53, 5 + 53));
        assert_eq!(view.get(5).unwrap_err(), CommitProblem::Commitment(CommitmentError::Missing));
        assert_eq!(view.get(9).unwrap_err(), CommitProblem::UnknownUid(9));
    }
}
