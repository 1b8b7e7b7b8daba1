//! Phase 1 of a validator's window: read who is who (one [`Roster`]), take the gather list in
//! force (the leader's peer list, or every active miner), download and check the window's
//! payloads, fix the outer step's peers, find copy-cats by commit order, read the debug slices,
//! and hand the Gauntlet its [`WindowStart`].

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;
use weights::{CommitPosition, CopycatFinding, GatherReport, Gauntlet, ParamIndices, PeerUpdate, WindowStart};

use crate::metrics::Metrics;
use crate::node::Node;
use crate::roster::Roster;
use crate::signed::{self, DebugSlice, PeerList};
use crate::storage::{Accepted, GatherOptions, Gathered, ObjectKey, WindowView};

/// What the gather phase found.
pub struct WindowGather {
    pub window: u64,
    pub roster: Roster,
    pub is_leader: bool,
    /// The window's public randomness: the hash of the first block after its put window closed.
    pub seed: [u8; 32],
    pub active: Vec<u16>,
    /// The gather list in force and its reserves.
    pub gather_list: Vec<u16>,
    pub reserve: Vec<u16>,
    pub gathered: Gathered,
    /// The outer step's peers, in aggregation order, and the gather places left empty.
    pub used: Vec<u16>,
    pub skipped: Vec<u16>,
    pub copycats: Vec<CopycatFinding>,
    /// This validator's own debug slice (its model after `window − 1`).
    pub own_slice: Vec<(String, Vec<f32>)>,
    /// Each gather peer's and active miner's debug slice of `window − 1`, if usable.
    pub slices: BTreeMap<u16, Option<DebugSlice>>,
}

impl WindowGather {
    pub fn accepted(&self, uid: u16) -> Option<&Accepted> {
        self.gathered.accepted.iter().find(|a| a.uid == uid)
    }

    /// The used peers' payloads, in aggregation order.
    pub fn used_updates(&self) -> Vec<&[compression::SparseParam]> {
        self.used.iter().filter_map(|u| self.accepted(*u)).map(|a| a.payload.params.as_slice()).collect()
    }

    /// Steps behind of `uid`'s debug slice against this validator's model.
    pub fn steps_behind(&self, gauntlet: &Gauntlet, uid: u16) -> Option<f64> {
        steps_behind(gauntlet, &self.own_slice, self.slices.get(&uid).and_then(|s| s.as_ref()))
    }

    /// The Gauntlet's input for the window.
    pub fn window_start(&self, node: &Node, gauntlet: &Gauntlet) -> WindowStart {
        let hotkeys = self.roster.metagraph.neurons.iter().map(|n| (n.uid, n.hotkey.into())).collect();
        WindowStart {
            owner_uid: self.roster.owner_uid,
            window: self.window,
            global_step: node.global_step,
            hotkeys,
            active: self.active.clone(),
            gather: Some(GatherReport {
                intended: self.gather_list.clone(),
                gathered: self.used.clone(),
                skipped: self.skipped.clone(),
            }),
            copycats: self.copycats.clone(),
            gather_sync: self.gather_list.iter().map(|u| (*u, self.steps_behind(gauntlet, *u))).collect(),
            seed: self.seed,
        }
    }
}

/// Gathers window `window` (its put window is over).
pub async fn gather(node: &Node, gauntlet: &Gauntlet, window: u64, metrics: &Metrics) -> Result<WindowGather> {
    let roster = node.roster().await?;
    let validators = node.validators(&roster);
    let active = roster.active_miners(&validators, node.uid, window);
    let leader = roster.leader();
    let is_leader = leader.as_ref().is_some_and(|l| l.uid == node.uid);
    let seed = node.chain.block_hash(node.timing.seed_block(protocol::Window(window)).0).await?;
    let list = match &leader {
        Some(l) => node.peer_list(l, window).await,
        None => None,
    };
    let (gather_list, reserve) = gather_lists(list.as_ref(), &active);

    // Which uids to evaluate is known before the gather: fetch their payloads in the same pass.
    let view = WindowView::read(&node.chain, node.netuid, window, node.timing).await?;
    let wanted = wanted(&gather_list, &reserve, &active);
    let deadline = Instant::now() + Duration::from_secs(node.config.protocol.gather_timeout_s);
    let opts = GatherOptions { keep_bytes: is_leader, version: node.version.clone(), ..GatherOptions::default() };
    let gathered = node.gatherer.gather(node.netuid, &view, &wanted, &node.manifest, deadline, &opts).await;
    metrics.download_bytes.inc_by(gathered.stats.bytes);
    metrics.download_seconds.set(gathered.stats.wall.as_secs_f64());

    let accepted: Vec<u16> = gathered.accepted.iter().map(|a| a.uid).collect();
    let peers = crate::miner::gather::outer_step(&gather_list, &reserve, &accepted);
    let (used, skipped): (Vec<u16>, Vec<u16>) =
        (peers.used.iter().map(|u| u.0).collect(), peers.skipped.iter().map(|u| u.0).collect());
    metrics.accepted.set(used.len() as i64);
    metrics.rejected.set(gathered.rejected.len() as i64);
    let copycats = copycats(gauntlet, &gathered, &used);

    // Sync: every gather peer's debug slice of w − 1 against the model (which includes w − 1).
    let own_slice = node.replica.debug_slice()?;
    let mut slices = BTreeMap::new();
    for uid in slice_uids(&gather_list, &active) {
        let slice = match window.checked_sub(1) {
            Some(prev) => read_debug(node, &roster, uid, prev).await,
            None => None,
        };
        slices.insert(uid, slice);
    }
    Ok(WindowGather {
        window,
        roster,
        is_leader,
        seed,
        active,
        gather_list,
        reserve,
        gathered,
        used,
        skipped,
        copycats,
        own_slice,
        slices,
    })
}

/// The gather list in force and its reserves: the leader's peer list, or every active miner.
pub fn gather_lists(list: Option<&PeerList>, active: &[u16]) -> (Vec<u16>, Vec<u16>) {
    match list {
        Some(p) => (p.gather.clone(), p.reserve.clone()),
        None => (active.to_vec(), Vec::new()),
    }
}

/// The uids to download: the gather list, its reserves and every active miner, once each.
pub fn wanted(gather: &[u16], reserve: &[u16], active: &[u16]) -> Vec<u16> {
    let mut wanted: Vec<u16> = gather.iter().chain(reserve).chain(active).copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
}

/// The uids whose debug slices are read: the gather list, then the other active miners.
pub fn slice_uids(gather: &[u16], active: &[u16]) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::with_capacity(gather.len() + active.len());
    for uid in gather.iter().chain(active) {
        if !out.contains(uid) {
            out.push(*uid);
        }
    }
    out
}

/// Copy-cats among the outer step's peers: the chain's commit order (block, then extrinsic)
/// says who was first.
fn copycats(gauntlet: &Gauntlet, gathered: &Gathered, used: &[u16]) -> Vec<CopycatFinding> {
    let updates: Vec<PeerUpdate<'_>> = used
        .iter()
        .filter_map(|u| gathered.accepted.iter().find(|a| a.uid == *u))
        .map(|a| PeerUpdate {
            uid: a.uid,
            commit: CommitPosition { block: a.commit_block, extrinsic_index: a.commit_extrinsic_index },
            params: a.payload.params.iter().map(ParamIndices::from).collect(),
        })
        .collect();
    let c = gauntlet.config();
    let (found, errors) =
        weights::copycat::detect(&updates, c.idx_overlap_threshold, c.idx_overlap_max, c.idx_overlap_mega);
    for (a, b, e) in errors {
        tracing::warn!(a, b, "overlap not computable: {e}");
    }
    found
}

/// A peer's debug slice for `window`, verified against the hotkey the chain has for it.
async fn read_debug(node: &Node, roster: &Roster, uid: u16, window: u64) -> Option<DebugSlice> {
    let peer = roster.book.get(uid)?;
    let creds = peer.commitment.as_ref().ok()?.credentials.clone();
    let bucket = node.s3.reader(&node.endpoint, &creds);
    let got =
        bucket.get_capped(&node.key(ObjectKey::debug(window, uid)), signed::MAX_SIGNED_OBJECT as u64).await.ok()?;
    let slice: DebugSlice = signed::open(&got.bytes, &peer.hotkey).ok()?;
    (slice.uid == uid && slice.window == window && slice.netuid == node.netuid).then_some(slice)
}

/// Steps behind of a miner's debug slice against the validator's model (templar
/// `evaluate_miner_sync`), `None` without a usable slice.
pub fn steps_behind(gauntlet: &Gauntlet, own: &[(String, Vec<f32>)], theirs: Option<&DebugSlice>) -> Option<f64> {
    let theirs = theirs?;
    if theirs.params.len() != own.len() {
        return None;
    }
    // (name, the miner's slice, the validator's slice)
    let params = own
        .iter()
        .zip(&theirs.params)
        .filter(|((a, _), (b, _))| a == b)
        .map(|((name, mine), (_, miner))| (name.as_str(), miner.as_slice(), mine.as_slice()));
    gauntlet.steps_behind(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_list_in_force_or_every_active_miner() {
        let list = PeerList { netuid: 3, window: 4, first_effective_window: 5, gather: vec![1, 2], reserve: vec![7] };
        assert_eq!(gather_lists(Some(&list), &[1, 2, 3]), (vec![1, 2], vec![7]));
        assert_eq!(gather_lists(None, &[1, 2, 3]), (vec![1, 2, 3], vec![]));
    }

    #[test]
    fn every_needed_uid_is_downloaded_once() {
        assert_eq!(wanted(&[3, 1], &[7, 1], &[2, 3]), vec![1, 2, 3, 7]);
        assert_eq!(slice_uids(&[3, 1], &[2, 3, 5]), vec![3, 1, 2, 5]);
    }

    #[test]
    fn slices_of_another_shape_give_no_sync_value() {
        let g = Gauntlet::new(weights::GauntletConfig::default(), &protocol::ProtocolConfig::default()).unwrap();
        let own = vec![("a".to_string(), vec![1.0, 2.0])];
        let other = DebugSlice { netuid: 3, uid: 1, window: 4, global_step: 0, params: vec![] };
        assert_eq!(steps_behind(&g, &own, Some(&other)), None);
        assert_eq!(steps_behind(&g, &own, None), None);
    }
}
