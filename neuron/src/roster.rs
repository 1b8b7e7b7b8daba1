//! The subnet as the chain has it at one block: neurons (uid, hotkey, stake, permit) joined with
//! their commitments, and the protocol's peer rules ([`protocol::peers`]) applied to it. Every
//! window phase that needs "who is who" reads one [`Roster`].

use anyhow::Result;
use chain::client::{Client, Metagraph};
use chain::wallet::PublicKey;
use protocol::{Member, Uid, Window};

use crate::storage::{BucketCredentials, PeerBook};

/// The leading validator (PROTOCOL.md §6.7) and where its objects are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub uid: u16,
    pub hotkey: PublicKey,
    /// Its bucket's read credentials, from its commitment.
    pub credentials: BucketCredentials,
}

/// Neurons, commitments and the subnet owner read at one block.
#[derive(Debug, Clone)]
pub struct Roster {
    pub metagraph: Metagraph,
    pub book: PeerBook,
    /// The subnet owner's uid (the uid of `SubnetOwnerHotkey`), if its hotkey holds one.
    pub owner_uid: Option<u16>,
}

impl Roster {
    /// The subnet at the finalized head: metagraph and commitments at the same block.
    pub async fn read(chain: &Client, netuid: u16) -> Result<Self> {
        let at = chain.at_finalized().await?;
        let metagraph = at.metagraph(netuid).await?;
        let commitments = at.commitments(netuid).await?;
        let book = PeerBook::from_parts(&metagraph, metagraph.block, &commitments);
        let owner = at.subnet_owner_hotkey(netuid).await?;
        let owner_uid = owner.and_then(|k| metagraph.uid_of(&k));
        Ok(Self { metagraph, book, owner_uid })
    }

    /// Every neuron as the peer rules see it.
    pub fn members(&self) -> Vec<Member> {
        members(&self.metagraph)
    }

    /// The leading validator, if it has committed its bucket.
    pub fn leader(&self) -> Option<Leader> {
        let best = protocol::peers::leader(&self.members())?;
        let credentials = self.book.get(best.uid.0)?.commitment.as_ref().ok()?.credentials.clone();
        Some(Leader { uid: best.uid.0, hotkey: best.hotkey.into(), credentials })
    }

    /// Uids staked at or above `threshold`: validators, neither evaluated nor gathered.
    pub fn validators(&self, threshold: u64) -> Vec<u16> {
        protocol::peers::validators(&self.members(), threshold).into_iter().map(|u| u.0).collect()
    }

    /// Miners other than `own` that committed within the active horizon of `window`.
    pub fn active_miners(&self, validators: &[u16], own: u16, window: u64) -> Vec<u16> {
        let latest = self.book.peers.values().map(|p| {
            let w = p.commitment.as_ref().ok().and_then(|c| c.window.as_ref()).map(|w| Window(w.window));
            (Uid(p.uid), w)
        });
        let validators: Vec<Uid> = validators.iter().map(|&u| Uid(u)).collect();
        protocol::peers::active_miners(latest, &validators, Uid(own), Window(window)).into_iter().map(|u| u.0).collect()
    }

    /// Every uid that is not a validator (the gather list before any peer list exists).
    pub fn non_validators(&self, validators: &[u16]) -> Vec<u16> {
        self.metagraph.neurons.iter().map(|n| n.uid).filter(|u| !validators.contains(u)).collect()
    }

    /// Every uid's hotkey.
    pub fn hotkeys(&self) -> std::collections::BTreeMap<u16, PublicKey> {
        self.metagraph.neurons.iter().map(|n| (n.uid, n.hotkey)).collect()
    }

    /// The hotkey the chain has for `uid`.
    pub fn hotkey(&self, uid: u16) -> Option<PublicKey> {
        self.metagraph.neurons.iter().find(|n| n.uid == uid).map(|n| n.hotkey)
    }
}

/// A metagraph's neurons as the peer rules see them.
pub fn members(metagraph: &Metagraph) -> Vec<Member> {
    metagraph
        .neurons
        .iter()
        .map(|n| Member {
            uid: Uid(n.uid),
            hotkey: n.hotkey.into(),
            stake: n.stake,
            validator_permit: n.validator_permit,
        })
        .collect()
}
