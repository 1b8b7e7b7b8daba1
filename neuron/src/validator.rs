//! The validator (PROTOCOL.md §6): processes window `w` while the chain is in `w + 1` — gathers
//! the peers' payloads under the commitment rules, evaluates up to `uids_per_window` miners
//! (loss before and after applying each one's update, on its own data and on random data),
//! scores them with the Gauntlet, sets weights, applies the outer step, and, when it leads,
//! publishes the peer list, the window's payloads for late joiners, and checkpoints.
//!
//! All randomness comes from the hash of the first block of `w + 1`, so anyone can recompute
//! which uids were evaluated on which samples. State (model, error feedback unused, Gauntlet
//! scores) is saved after every window; a restart resumes where it stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use compression::bundle::Bundle;
use compression::SparseParam;
use model::data::pool::{eval_batch, random_pool, sample_pool};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use weights::{
    CommitPosition, ConsensusLosses, EvalOutcome, Evaluation, GatherReport, Gauntlet, Hotkey, ParamIndices,
    PeerSelection, PeerUpdate, WindowStart,
};

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::node::{outer_step_peers, Node};
use crate::replica::DEBUG_POSITIONS;
use crate::signed::{self, DebugSlice, PeerList};
use crate::storage::{Accepted, Fault, GatherOptions, Gathered, ObjectKey, PeerBook, WindowView};

/// One line of `status.jsonl` in the state folder: what the validator did in a window (the local
/// network's live view and report read it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStatus {
    pub window: u64,
    pub block: u64,
    pub global_step: u64,
    /// Loss on this window's random batches after the outer step.
    pub loss: Option<f64>,
    pub gathered: Vec<u16>,
    pub rejected: Vec<(u16, String)>,
    pub evaluated: Vec<u16>,
    /// Final scores after the window.
    pub scores: Vec<(u16, f64)>,
    /// The weight vector (share of 1).
    pub weights: Vec<(u16, f64)>,
    /// Block at which weights were set on chain, when they were.
    pub weights_block: Option<u64>,
    /// Rules applied this window, as sentences.
    pub events: Vec<String>,
    pub leader: bool,
}

/// The Gauntlet's state, saved inside the node's checkpoint.
const GAUNTLET_FILE: &str = "gauntlet.json";

/// The `status.jsonl` a validator with state folder `state_dir` appends to.
pub fn status_file(state_dir: &Path) -> PathBuf {
    state_dir.join("status.jsonl")
}

/// The windows a validator has recorded in its `status.jsonl`, oldest first: every line that
/// parses (a line still being appended does not, and is read next time). Empty while the file
/// does not exist.
pub fn read_statuses(state_dir: &Path) -> Vec<WindowStatus> {
    let Ok(text) = std::fs::read_to_string(status_file(state_dir)) else { return Vec::new() };
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// Runs the validator until `stop` resolves.
pub async fn run(config: NodeConfig, metrics: Metrics, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut node = Node::start(config).await?;
    metrics.uid.set(i64::from(node.uid));
    let mut gauntlet = match node.saved_extra(GAUNTLET_FILE)? {
        Some(bytes) => {
            let state = serde_json::from_slice(&bytes).context("the saved scores do not parse")?;
            let g =
                Gauntlet::from_state(node.config.gauntlet.clone(), state).context("the saved scores are invalid")?;
            // The digest lets an operator (and the restart test) check that these are the scores
            // that were saved: blake2b-256 of the saved file.
            let digest = hex::encode(compression::signature::content_hash(&bytes));
            tracing::info!(last_window = g.state().last_window, scores_digest = digest, "scores restored");
            g
        }
        None => Gauntlet::new(node.config.gauntlet.clone())?,
    };
    tokio::select! {
        r = validator_loop(&mut node, &mut gauntlet, &metrics) => r,
        () = stop => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

async fn validator_loop(node: &mut Node, gauntlet: &mut Gauntlet, metrics: &Metrics) -> Result<()> {
    let mut clock = node.clock().await?;
    let bpw = node.timing.blocks_per_window;
    let chain_window = clock.window(bpw);
    let mut window = match node.last_window {
        Some(last) => last + 1,
        None => chain_window.saturating_sub(1),
    };
    if gauntlet.state().start_window.is_none() {
        gauntlet.set_start_window(window);
    }
    loop {
        // Window w is processed once its put window (in w + 1) is over.
        clock.wait_for_block(node.put_window_end(window) + 1).await?;
        // Too far behind (e.g. after a long stop): skip to the window just finished.
        let now = clock.window(bpw);
        if now > window + 2 {
            tracing::warn!(window, now, "skipping to the latest window");
            window = now - 1;
            continue;
        }
        // A model that misses outer steps (a restart, a late start) replays them first.
        if node.last_window.is_none_or(|l| l + 1 < window) {
            if let Err(e) = node.catch_up(window.saturating_sub(1)).await {
                tracing::warn!(window, "catching up failed: {e:#}");
            }
        }
        // A window whose processing failed half-way is closed with what it recorded, so that its
        // penalties stand and the next window can start.
        if let Some(stale) = gauntlet.state().in_progress.as_ref().map(|p| p.window).filter(|w| *w < window) {
            tracing::warn!(window = stale, "closing the window left unfinished");
            gauntlet.finish_window().context("closing an unfinished window")?;
        }
        match process_window(node, gauntlet, &mut clock, window, metrics).await {
            Ok(status) => {
                tracing::info!(
                    window,
                    loss = status.loss,
                    gathered = status.gathered.len(),
                    rejected = status.rejected.len(),
                    evaluated = status.evaluated.len(),
                    weights_block = status.weights_block,
                    "window processed"
                );
            }
            Err(e) => {
                metrics.window_failures.inc();
                tracing::warn!(window, "window failed: {e:#}");
            }
        }
        window += 1;
    }
}

/// The uids that uploaded anything recently: their latest window commitment is for `window` or
/// one of the two before.
fn active_miners(book: &PeerBook, validators: &[u16], own: u16, window: u64) -> Vec<u16> {
    book.peers
        .values()
        .filter(|p| p.uid != own && !validators.contains(&p.uid))
        .filter(|p| p.commitment.as_ref().ok().and_then(|c| c.window.as_ref()).is_some_and(|w| w.window + 2 >= window))
        .map(|p| p.uid)
        .collect()
}

/// Reads a peer's debug slice for `window`, verified against its hotkey.
async fn read_debug(node: &Node, book: &PeerBook, uid: u16, window: u64) -> Option<DebugSlice> {
    let peer = book.get(uid)?;
    let creds = peer.commitment.as_ref().ok()?.credentials.clone();
    let bucket = node.s3.reader(&node.endpoint, &creds);
    let got =
        bucket.get_capped(&node.key(ObjectKey::debug(window, uid)), signed::MAX_SIGNED_OBJECT as u64).await.ok()?;
    let slice: DebugSlice = signed::open(&got.bytes, &peer.hotkey).ok()?;
    (slice.uid == uid && slice.window == window && slice.netuid == node.netuid).then_some(slice)
}

/// Steps behind of a miner's debug slice against the validator's model (templar
/// `evaluate_miner_sync`), `None` without a usable slice.
fn steps_behind(gauntlet: &Gauntlet, own: &[(String, Vec<f32>)], theirs: Option<&DebugSlice>) -> Option<f64> {
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

/// Processes window `window` (the chain is in `window + 1`, its put window over).
pub async fn process_window(
    node: &mut Node,
    gauntlet: &mut Gauntlet,
    clock: &mut chain::client::BlockClock,
    window: u64,
    metrics: &Metrics,
) -> Result<WindowStatus> {
    let bpw = node.timing.blocks_per_window;
    let netuid = node.netuid;
    metrics.window.set(window as i64);
    let metagraph = node.chain.metagraph(netuid).await?;
    let book = PeerBook::from_parts(&metagraph, metagraph.block, &node.chain.commitments(netuid).await?);
    let validators = node.validators(&metagraph);
    let active = active_miners(&book, &validators, node.uid, window);
    let leader = node.leader(&book, &metagraph);
    let is_leader = leader.as_ref().is_some_and(|l| l.0 == node.uid);
    let seed = node.chain.block_hash(node.window_start(window + 1)).await?;

    // The gather list in force: the leader's peer list, or every active miner.
    let list = match &leader {
        Some(l) => node.peer_list(l, window).await,
        None => None,
    };
    let (gather_list, reserve) = match &list {
        Some(p) => (p.gather.clone(), p.reserve.clone()),
        None => (active.clone(), Vec::new()),
    };

    // Which uids to evaluate is known before the gather: fetch their payloads in the same pass.
    let hotkeys: Vec<(u16, Hotkey)> = metagraph.neurons.iter().map(|n| (n.uid, Hotkey(n.hotkey.0))).collect();
    let view = WindowView::read(&node.chain, netuid, window, node.timing).await?;
    let mut wanted: Vec<u16> = gather_list.iter().chain(&reserve).chain(&active).copied().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let deadline = Instant::now() + Duration::from_secs(node.config.protocol.gather_timeout_s);
    let opts = GatherOptions { keep_bytes: is_leader, version: node.version.clone(), ..GatherOptions::default() };
    let gathered: Gathered = node.gatherer.gather(netuid, &view, &wanted, &node.manifest, deadline, &opts).await;
    metrics.download_bytes.inc_by(gathered.stats.bytes);
    metrics.download_seconds.set(gathered.stats.wall.as_secs_f64());
    let accepted: BTreeMap<u16, &Accepted> = gathered.accepted.iter().map(|a| (a.uid, a)).collect();

    // The aggregate's peers: the gather list, with reserves filling the gaps in order.
    let (used, skipped) = outer_step_peers(&gather_list, &reserve, |u| accepted.contains_key(&u));
    metrics.accepted.set(used.len() as i64);
    metrics.rejected.set(gathered.rejected.len() as i64);

    // Copy-cats among the gathered: the chain's commit order says who was first.
    let updates: Vec<PeerUpdate<'_>> = used
        .iter()
        .map(|u| {
            let a = accepted[u];
            PeerUpdate {
                uid: *u,
                commit: CommitPosition { block: a.commit_block, extrinsic_index: 0 },
                params: a.payload.params.iter().map(ParamIndices::from).collect(),
            }
        })
        .collect();
    let c = gauntlet.config().clone();
    let (copycats, copy_errors) =
        weights::copycat::detect(&updates, c.idx_overlap_threshold, c.idx_overlap_max, c.idx_overlap_mega);
    for (a, b, e) in copy_errors {
        tracing::warn!(a, b, "overlap not computable: {e}");
    }

    // Sync: every gather peer's debug slice of w − 1 against the model (which includes w − 1).
    let own_slice = node.replica.debug_slice()?;
    let mut slices: BTreeMap<u16, Option<DebugSlice>> = BTreeMap::new();
    for uid in gather_list.iter().chain(&active) {
        if !slices.contains_key(uid) {
            let s = match window.checked_sub(1) {
                Some(prev) => read_debug(node, &book, *uid, prev).await,
                None => None,
            };
            slices.insert(*uid, s);
        }
    }
    let gather_sync: Vec<(u16, Option<f64>)> =
        gather_list.iter().map(|u| (*u, steps_behind(gauntlet, &own_slice, slices[u].as_ref()))).collect();

    let plan = gauntlet.begin_window(&WindowStart {
        window,
        global_step: node.global_step,
        hotkeys,
        active: active.clone(),
        gather: Some(GatherReport { intended: gather_list.clone(), gathered: used.clone(), skipped }),
        copycats,
        gather_sync,
        seed,
    })?;

    // Evaluation (PROTOCOL.md §6.2): random batches once, then each planned uid.
    let vc = node.config.validator.clone();
    let per_batch = vc.eval_batch_size.max(1);
    let n_eval = vc.eval_batches.max(1) * per_batch;
    let len = node.data.len();
    let pool_size = node.config.train.pool_size;
    let random: Vec<Vec<u64>> =
        random_pool(netuid, window, seed, len, n_eval as u64).chunks(per_batch).map(|c| c.to_vec()).collect();
    let gathered_updates: Vec<&[SparseParam]> = used.iter().map(|u| accepted[u].payload.params.as_slice()).collect();
    let medians = crate::replica::Replica::median_norms(&gathered_updates);
    let eval_scale = node.config.protocol.outer_learning_rate * vc.eval_lr_factor;
    let random_before = tokio::task::block_in_place(|| node.replica.eval_loss(&node.data, &random))?;
    // The window's consensus update: the outer step below applies it, and the own-data test
    // uses it as its control (a generic good update, evaluated on the same batches).
    let consensus = if gathered_updates.is_empty() {
        None
    } else {
        Some(tokio::task::block_in_place(|| node.replica.aggregate(&gathered_updates, node.aggregation))?)
    };
    let consensus_random_after = match &consensus {
        Some(g) if gauntlet.config().own_data_margin.is_some() => Some(tokio::task::block_in_place(|| {
            node.replica.with_update(g, eval_scale, |r| r.eval_loss(&node.data, &random))
        })?),
        _ => None,
    };
    let mut evaluated = Vec::new();
    // Rules of this validator's own (not the Gauntlet's) applied this window, as sentences.
    let mut notes: Vec<String> = Vec::new();
    let bar = crate::progress::bar(plan.uids.len() as u64, format!("window {window}: evaluating"));
    for uid in &plan.uids {
        bar.inc(1);
        if clock.window(bpw) > window + 1 {
            tracing::warn!(window, "the chain moved on; stopping evaluation");
            break;
        }
        // From the second outer step on: before it, every update starts from the same initial
        // weights and one that took a single warm-up step is near zero, which can make the
        // window's median meaningless.
        let oversized = accepted
            .get(uid)
            .filter(|_| vc.max_norm_ratio > 0.0 && node.global_step >= 1)
            .and_then(|a| crate::replica::Replica::norm_ratio(&a.payload.params, &medians))
            .filter(|r| *r > vc.max_norm_ratio);
        let outcome = match (accepted.get(uid), gathered.rejected.get(uid)) {
            (Some(_), _) if oversized.is_some() => {
                let ratio = oversized.unwrap_or_default();
                notes.push(format!(
                    "uid {uid}: update norm {ratio:.1}x the window's median (limit {}): invalid",
                    vc.max_norm_ratio
                ));
                EvalOutcome::Invalid
            }
            (Some(a), _) => {
                let pool = sample_pool(netuid, *uid, window, len, pool_size);
                let own: Vec<Vec<u64>> =
                    eval_batch(&pool, seed, n_eval).chunks(per_batch).map(|c| c.to_vec()).collect();
                let result = tokio::task::block_in_place(|| -> Result<Evaluation> {
                    let own_before = node.replica.eval_loss(&node.data, &own)?;
                    let update = node.replica.clipped_update(&a.payload.params, &medians)?;
                    let (own_after, random_after) = node.replica.with_update(&update, eval_scale, |r| {
                        Ok((r.eval_loss(&node.data, &own)?, r.eval_loss(&node.data, &random)?))
                    })?;
                    let consensus = match (&consensus, consensus_random_after) {
                        (Some(g), Some(random_after)) => {
                            let own_after =
                                node.replica.with_update(g, eval_scale, |r| r.eval_loss(&node.data, &own))?;
                            Some(ConsensusLosses { own_after, random_after })
                        }
                        _ => None,
                    };
                    Ok(Evaluation {
                        own_before,
                        own_after,
                        random_before,
                        random_after,
                        steps_behind: steps_behind(gauntlet, &own_slice, slices.get(uid).and_then(|s| s.as_ref())),
                        consensus,
                    })
                });
                match result {
                    Ok(e) => EvalOutcome::Evaluated(e),
                    Err(e) => {
                        tracing::warn!(uid, "applying the update failed: {e:#}");
                        EvalOutcome::Invalid
                    }
                }
            }
            (None, Some(why)) => match why.fault() {
                Fault::Missing => EvalOutcome::Missing,
                Fault::Invalid => EvalOutcome::Invalid,
            },
            (None, None) => EvalOutcome::Missing,
        };
        let recorded = gauntlet.record_evaluation(*uid, outcome)?;
        match outcome {
            EvalOutcome::Evaluated(e) => tracing::info!(
                window,
                uid,
                own_improvement = e.own_improvement(),
                random_improvement = e.random_improvement(),
                steps_behind = e.steps_behind,
                ?recorded,
                "evaluated"
            ),
            _ => tracing::info!(window, uid, ?recorded, "evaluated"),
        }
        evaluated.push(*uid);
    }
    bar.finish_and_clear();
    let summary = gauntlet.finish_window()?;
    for (uid, w) in &summary.weights {
        metrics.weight.with_label_values(&[&uid.to_string()]).set(*w);
    }

    // Weights on chain.
    let mut weights_block = None;
    if summary.set_weights && vc.set_weights {
        match gauntlet.u16_weights() {
            Ok(w) if !w.is_empty() => {
                let (uids, values): (Vec<u16>, Vec<u16>) = w.into_iter().unzip();
                let version_key = node.chain.weights_version_key(netuid).await.unwrap_or(0);
                match node
                    .chain
                    .set_weights_auto(&node.hotkey, netuid, &uids, &values, version_key, Duration::from_secs(600))
                    .await
                {
                    Ok(set) => weights_block = Some(set.block),
                    Err(e) => tracing::warn!(window, "setting weights failed: {e}"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(window, "no weights to set: {e}"),
        }
    }

    // The outer step with the gathered updates (the same every peer applies).
    if let Some(g) = &consensus {
        tokio::task::block_in_place(|| node.apply_aggregate(g))?;
    }
    let after = node.replica.debug_slice()?;
    gauntlet.observe_outer_step(after.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
    let loss = tokio::task::block_in_place(|| node.replica.eval_loss(&node.data, &random)).ok();
    if let Some(l) = loss {
        metrics.eval_loss.set(l);
    }
    metrics.global_step.set(node.global_step as i64);

    // Leader duties: the window's payloads for late joiners, the next peer list, checkpoints.
    if is_leader {
        let bundle = Bundle {
            window,
            entries: used.iter().filter_map(|u| accepted[u].bytes.clone().map(|b| (*u, b))).collect(),
        };
        node.bucket.put(&node.key(ObjectKey::aggregator(window)), bundle.encode().into()).await?;
        let chain_window = clock.window(bpw);
        if gauntlet.peers_due(chain_window) {
            let incentive: Vec<(u16, f64)> =
                metagraph.neurons.iter().map(|n| (n.uid, n.incentive as f64 / u16::MAX as f64)).collect();
            if let Some(lists) =
                gauntlet.select_peers(&PeerSelection { window, chain_window, active: active.clone(), incentive, seed })
            {
                let list = PeerList {
                    netuid,
                    window,
                    first_effective_window: lists.first_effective_window,
                    gather: lists.gather,
                    reserve: lists.reserve,
                };
                let bytes = signed::sign(&list, &node.hotkey)?;
                node.bucket.put(&node.key(ObjectKey::peers(list.first_effective_window)), bytes.into()).await?;
                tracing::info!(window, first = list.first_effective_window, gather = ?list.gather, "peer list published");
            }
        }
    }
    node.publish_debug(window).await?;

    // Persist the model and the scores together: one folder, replaced atomically.
    let scores_json = serde_json::to_vec(gauntlet.state())?;
    tokio::task::block_in_place(|| node.save(window, &[(GAUNTLET_FILE, scores_json)]))?;
    if is_leader {
        if let Err(e) = node.publish_checkpoint_if_due().await {
            tracing::warn!(window, "publishing the checkpoint failed: {e:#}");
        }
    }
    let replay_from = if is_leader { node.published_checkpoint.map(|(w, _)| w) } else { None };
    if let Err(e) = node.bucket.cleanup(window, node.config.protocol.keep_windows, replay_from).await {
        tracing::warn!("bucket cleanup failed: {e}");
    }

    let mut scores: Vec<(u16, f64)> = gauntlet.state().peers.iter().map(|(uid, p)| (*uid, p.final_score)).collect();
    scores.sort_by_key(|s| s.0);
    for (uid, s) in &scores {
        metrics.score.with_label_values(&[&uid.to_string()]).set(*s);
    }
    let status = WindowStatus {
        window,
        block: clock.block(),
        global_step: node.global_step,
        loss,
        gathered: used,
        rejected: gathered.rejected.iter().map(|(u, r)| (*u, r.to_string())).collect(),
        evaluated,
        scores,
        weights: summary.weights,
        weights_block,
        events: summary.events.iter().map(|e| format!("{e:?}")).chain(notes).collect(),
        leader: is_leader,
    };
    append_status(node, &status)?;
    Ok(status)
}

fn append_status(node: &Node, status: &WindowStatus) -> Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_vec(status)?;
    line.push(b'\n');
    let mut f =
        std::fs::OpenOptions::new().create(true).append(true).open(status_file(&node.config.model.state_dir))?;
    f.write_all(&line)?;
    Ok(())
}

/// Positions the debug slices report, for documentation and tests.
pub const SLICE_POSITIONS: [i64; 2] = DEBUG_POSITIONS;
