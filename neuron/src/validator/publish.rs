//! Phase 4 of a validator's window: the outer step with the window's consensus update (the same
//! every peer applies); as the leader, the window's payloads for late joiners, the next peer list
//! when due, and checkpoints; then the debug slice, the model and scores saved together, bucket
//! cleanup, and the window's status line.

use anyhow::Result;
use chain::client::BlockClock;
use compression::bundle::Bundle;
use weights::{Gauntlet, PeerSelection};

use super::evaluate::Evaluated;
use super::gather::WindowGather;
use super::status::{append_status, WindowEvent, WindowStatus};
use super::GAUNTLET_FILE;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::signed::{self, PeerList};
use crate::storage::ObjectKey;

pub async fn publish(
    node: &mut Node,
    gauntlet: &mut Gauntlet,
    clock: &BlockClock,
    g: WindowGather,
    e: Evaluated,
    weights_block: Option<u64>,
    metrics: &Metrics,
) -> Result<WindowStatus> {
    for (uid, w) in &e.summary.weights {
        metrics.weight.with_label_values(&[&uid.to_string()]).set(*w);
    }
    if let Some(c) = &e.consensus {
        tokio::task::block_in_place(|| node.apply_aggregate(c))?;
    }
    let after = node.replica.debug_slice()?;
    gauntlet.observe_outer_step(after.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
    let loss = tokio::task::block_in_place(|| node.replica.eval_loss(&node.data, &e.random)).ok();
    if let Some(l) = loss {
        metrics.eval_loss.set(l);
    }
    metrics.global_step.set(node.global_step as i64);

    if g.is_leader {
        lead(node, gauntlet, clock, &g).await?;
    }
    node.publish_debug(g.window).await?;
    persist(node, gauntlet, &g).await?;

    let scores = scores(gauntlet);
    for (uid, s) in &scores {
        metrics.score.with_label_values(&[&uid.to_string()]).set(*s);
    }
    let events = e.summary.events.iter().cloned().map(WindowEvent::Gauntlet).chain(e.events).collect();
    let status = WindowStatus {
        window: g.window,
        block: clock.block(),
        global_step: node.global_step,
        loss,
        gathered: g.used,
        rejected: g.gathered.rejected.iter().map(|(u, r)| (*u, r.to_string())).collect(),
        evaluated: e.evaluated,
        scores,
        weights: e.summary.weights,
        weights_block,
        events,
        leader: g.is_leader,
    };
    append_status(&node.config.model.state_dir, &status)?;
    Ok(status)
}

/// The leader's duties: the window's accepted payloads as a bundle, and the next peer list when
/// due.
async fn lead(node: &Node, gauntlet: &mut Gauntlet, clock: &BlockClock, g: &WindowGather) -> Result<()> {
    let entries = g.used.iter().filter_map(|u| g.accepted(*u)).filter_map(|a| a.bytes.clone().map(|b| (a.uid, b)));
    let bundle = Bundle { window: g.window, entries: entries.collect() };
    node.bucket.put(&node.key(ObjectKey::aggregator(g.window)), bundle.encode().into()).await?;
    let chain_window = node.current_window(clock);
    if !gauntlet.peers_due(chain_window) {
        return Ok(());
    }
    let incentive: Vec<(u16, f64)> =
        g.roster.metagraph.neurons.iter().map(|n| (n.uid, n.incentive as f64 / u16::MAX as f64)).collect();
    let selection = PeerSelection { window: g.window, chain_window, active: g.active.clone(), incentive, seed: g.seed };
    let Some(lists) = gauntlet.select_peers(&selection) else { return Ok(()) };
    let list = PeerList {
        netuid: node.netuid,
        window: g.window,
        first_effective_window: lists.first_effective_window,
        gather: lists.gather,
        reserve: lists.reserve,
    };
    let bytes = signed::sign(&list, &node.hotkey)?;
    node.bucket.put(&node.key(ObjectKey::peers(list.first_effective_window)), bytes.into()).await?;
    tracing::info!(window = g.window, first = list.first_effective_window, gather = ?list.gather, "peer list published");
    Ok(())
}

/// The model and the scores saved together (one folder, replaced atomically); as the leader the
/// checkpoint when due; then bucket cleanup.
async fn persist(node: &mut Node, gauntlet: &Gauntlet, g: &WindowGather) -> Result<()> {
    let scores_json = serde_json::to_vec(gauntlet.state())?;
    tokio::task::block_in_place(|| node.save(g.window, &[(GAUNTLET_FILE, scores_json)]))?;
    if g.is_leader {
        if let Err(e) = node.publish_checkpoint_if_due().await {
            tracing::warn!(window = g.window, "publishing the checkpoint failed: {e:#}");
        }
    }
    let replay_from = if g.is_leader { node.published_checkpoint.map(|(w, _)| w) } else { None };
    if let Err(e) = node.bucket.cleanup(g.window, node.config.protocol.keep_windows, replay_from).await {
        tracing::warn!("bucket cleanup failed: {e}");
    }
    Ok(())
}

/// Every uid's final score, by uid.
fn scores(gauntlet: &Gauntlet) -> Vec<(u16, f64)> {
    let mut scores: Vec<(u16, f64)> = gauntlet.state().peers.iter().map(|(uid, p)| (*uid, p.final_score)).collect();
    scores.sort_by_key(|s| s.0);
    scores
}
