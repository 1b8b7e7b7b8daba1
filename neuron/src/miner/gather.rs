//! Phase 3 of a miner's window: once the put window is over, the peers of the outer step (the
//! leader's peer list, or every non-validator before there is one) and their accepted payloads,
//! in the order every peer aggregates them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use chain::client::BlockClock;
use compression::SparseParam;
use protocol::{OuterStepPeers, Uid};
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::node::Node;
use crate::storage::{GatherOptions, Gathered, WindowView};

/// The window's outer-step peers and their payloads.
pub struct MinerGathered {
    pub peers: OuterStepPeers,
    pub gathered: Gathered,
}

impl MinerGathered {
    /// The used peers' updates, in aggregation order.
    pub fn updates(&self) -> Vec<&[SparseParam]> {
        let by_uid: BTreeMap<u16, &[SparseParam]> =
            self.gathered.accepted.iter().map(|a| (a.uid, a.payload.params.as_slice())).collect();
        self.peers.used.iter().map(|u| by_uid[&u.0]).collect()
    }
}

/// Gathers window `window` once its put window is over.
pub async fn gather(node: &mut Node, clock: &mut BlockClock, window: u64, metrics: &Metrics) -> Result<MinerGathered> {
    node.wait_until_processable(clock, window).await?;
    // A node that joined late, or missed windows, replays the outer steps it lacks before taking
    // this window's: by now the leader has published the bundle of the window before.
    node.catch_up_before(window).await;
    let roster = node.roster().await?;
    let list = match roster.leader() {
        Some(l) => node.peer_list(&l, window).await,
        None => None,
    };
    let (gather, reserve) = match list {
        Some(p) => (p.gather, p.reserve),
        // No peer list yet: everyone who is not a validator.
        None => (roster.non_validators(&node.validators(&roster)), Vec::new()),
    };
    let wanted: Vec<u16> = gather.iter().chain(&reserve).copied().collect();
    let view = WindowView::read(&node.chain, node.netuid, window, node.timing).await?;
    let deadline = Instant::now() + Duration::from_secs(node.config.protocol.gather_timeout_s);
    let opts = GatherOptions { version: node.version.clone(), ..GatherOptions::default() };
    let gathered = node.gatherer.gather(node.netuid, &view, &wanted, &node.manifest, deadline, &opts).await;
    metrics.download_bytes.inc_by(gathered.stats.bytes);
    metrics.download_seconds.set(gathered.stats.wall.as_secs_f64());
    for (uid, why) in &gathered.rejected {
        tracing::debug!(window, uid, "peer rejected: {why}");
    }
    let accepted: Vec<u16> = gathered.accepted.iter().map(|a| a.uid).collect();
    let peers = outer_step(&gather, &reserve, &accepted);
    Ok(MinerGathered { peers, gathered })
}

/// The outer step's peers from the lists in force and the accepted uids (the same rule as the
/// validators').
pub fn outer_step(gather: &[u16], reserve: &[u16], accepted: &[u16]) -> OuterStepPeers {
    let to_uids = |v: &[u16]| v.iter().map(|&u| Uid(u)).collect::<Vec<_>>();
    protocol::peers::outer_step_peers(&to_uids(gather), &to_uids(reserve), |u| accepted.contains(&u.0))
}
