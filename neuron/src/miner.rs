//! The miner (PROTOCOL.md §2): per window, train on the assigned samples, compress the
//! pseudo-gradient with error feedback, upload it and commit its hash in the put window, gather
//! the peers' updates, apply the outer step, publish a debug slice.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use model::data::pool::sample_pool;
use tokio::time::Instant;

use crate::adversary::{self, Adversary};
use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::node::{outer_step_peers, Node};
use crate::storage::{GatherOptions, PeerBook, PublishError, WindowView};

/// What one window did, for logs and metrics.
#[derive(Debug, Clone, Default)]
pub struct MinerWindow {
    pub window: u64,
    pub steps: usize,
    pub loss: Option<f64>,
    pub tokens_per_s: f64,
    pub uploaded_bytes: usize,
    pub gathered: usize,
    pub rejected: usize,
}

/// Runs the miner until `stop` resolves.
pub async fn run(config: NodeConfig, metrics: Metrics, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut node = Node::start(config).await?;
    metrics.uid.set(i64::from(node.uid));
    tokio::select! {
        r = miner_loop(&mut node, &metrics) => r,
        () = stop => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

async fn miner_loop(node: &mut Node, metrics: &Metrics) -> Result<()> {
    let mut clock = node.clock().await?;
    let bpw = node.timing.blocks_per_window;
    let mut window = clock.window(bpw);
    // Signed payloads of earlier windows (the `stale` adversary re-uploads them).
    let mut memory: Vec<(u64, Vec<u8>)> = Vec::new();
    if let Some(last) = node.last_window {
        window = window.max(last + 1);
    }
    loop {
        // Never train for a window that is already over.
        window = window.max(clock.window(bpw));
        // A model that misses outer steps (a restart, a late start) replays them first.
        if node.last_window.is_none_or(|l| l + 1 < window) {
            if let Err(e) = node.catch_up(window.saturating_sub(1)).await {
                tracing::warn!(window, "catching up failed: {e:#}");
            }
        }
        let report = match train_and_publish(node, &mut clock, window, metrics, &mut memory).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(window, "window failed: {e:#}");
                metrics.window_failures.inc();
                window += 1;
                continue;
            }
        };
        tracing::info!(
            window,
            steps = report.steps,
            loss = report.loss,
            tokens_per_s = report.tokens_per_s as u64,
            uploaded = report.uploaded_bytes,
            gathered = report.gathered,
            rejected = report.rejected,
            global_step = node.global_step,
            "window done"
        );
        window += 1;
    }
}

/// One window: train, compress, publish, gather, outer step, debug slice, save.
pub async fn train_and_publish(
    node: &mut Node,
    clock: &mut chain::client::BlockClock,
    window: u64,
    metrics: &Metrics,
    memory: &mut Vec<(u64, Vec<u8>)>,
) -> Result<MinerWindow> {
    let bpw = node.timing.blocks_per_window;
    let train = &node.config.train;
    let (steps, batch) = (train.inner_steps, train.batch_size);
    let adversary = node.config.miner.adversary;
    let training_uid = adversary.map_or(node.uid, |a| a.training_uid(node.uid));
    let pool =
        sample_pool(node.netuid, training_uid, window, node.data.len(), train.pool_size.max((steps * batch) as u64));
    let samples = &pool[..(steps * batch).min(pool.len())];
    metrics.window.set(window as i64);

    // Inner loop: stops early if the chain leaves the window.
    let started = std::time::Instant::now();
    let start = node.replica.trainer.snapshot()?;
    let watch = clock.subscribe();
    let bar = crate::progress::bar((samples.len() / batch.max(1)) as u64, format!("window {window}: training"));
    let report = tokio::task::block_in_place(|| {
        node.replica.train(&node.data, samples, batch, || {
            bar.inc(1);
            (*watch.borrow()) / bpw == window
        })
    })?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut delta = node.replica.trainer.take_pseudo_gradient(&start)?;
    if let Some(a) = adversary {
        delta = a.distort(&delta)?;
    }
    let update = tokio::task::block_in_place(|| node.replica.compress(&delta))?;
    let object = node.encode_payload(window, update.clone())?;
    let mut out = MinerWindow {
        window,
        steps: report.steps.len(),
        loss: report.mean_loss(),
        tokens_per_s: report.tokens() as f64 / elapsed.max(1e-9),
        uploaded_bytes: object.len(),
        ..Default::default()
    };
    if let Some(loss) = out.loss {
        metrics.loss.set(loss);
    }
    metrics.tokens_per_s.set(out.tokens_per_s);

    // Upload in the put window of w (blocks [start(w+1), start(w+1) + put_blocks]).
    clock.wait_for_window(window + 1, bpw).await?;
    let t = std::time::Instant::now();
    match adversary {
        None | Some(Adversary::Noise | Adversary::Scaled | Adversary::Freeloader) => {
            match node.publisher().publish_gradient(window, object).await {
                Ok(p) => {
                    metrics.upload_bytes.inc_by(p.size as u64);
                    metrics.upload_seconds.set(t.elapsed().as_secs_f64());
                }
                Err(e @ (PublishError::Stale { .. } | PublishError::CommittedLate { .. })) => {
                    // A stale upload would be rejected by everyone: skip it, and keep what it
                    // carried in the error feedback for the next window.
                    tracing::warn!(window, "not uploading: {e}");
                    node.replica.return_unsent(&update)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Some(kind) => misbehave(node, clock, kind, window, object, memory).await?,
    }

    // Gather once the put window is over.
    let close = node.put_window_end(window);
    clock.wait_for_block(close + 1).await?;
    // A node that joined late, or missed windows, replays the outer steps it lacks before taking
    // this window's: by now the leader has published the bundle of the window before.
    if node.last_window.is_none_or(|l| l + 1 < window) {
        if let Err(e) = node.catch_up(window.saturating_sub(1)).await {
            tracing::warn!(window, "catching up failed: {e:#}");
        }
    }
    let metagraph = node.chain.metagraph(node.netuid).await?;
    let book = PeerBook::from_parts(&metagraph, metagraph.block, &node.chain.commitments(node.netuid).await?);
    let leader = node.leader(&book, &metagraph);
    let list = match &leader {
        Some(l) => node.peer_list(l, window).await,
        None => None,
    };
    let (gather, reserve) = match list {
        Some(p) => (p.gather, p.reserve),
        None => {
            // No peer list yet: everyone who is not a validator.
            let validators = node.validators(&metagraph);
            (metagraph.neurons.iter().map(|n| n.uid).filter(|u| !validators.contains(u)).collect(), Vec::new())
        }
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
    // The same peers, in the same order, as the validators' outer step.
    let accepted: BTreeMap<u16, &compression::wire::Payload> =
        gathered.accepted.iter().map(|a| (a.uid, &a.payload)).collect();
    let (used, skipped) = outer_step_peers(&gather, &reserve, |u| accepted.contains_key(&u));
    out.gathered = used.len();
    out.rejected = skipped.len();
    let updates: Vec<&[compression::SparseParam]> = used.iter().map(|u| accepted[u].params.as_slice()).collect();
    tokio::task::block_in_place(|| node.apply_gathered(&updates))?;
    metrics.global_step.set(node.global_step as i64);
    node.publish_debug(window).await?;
    tokio::task::block_in_place(|| node.save(window, &[]))?;
    if let Err(e) = node.bucket.cleanup(window, node.config.protocol.keep_windows, None).await {
        tracing::warn!("bucket cleanup failed: {e}");
    }
    Ok(out)
}

/// The dishonest publishing of the adversaries that break a publishing rule.
async fn misbehave(
    node: &Node,
    clock: &mut chain::client::BlockClock,
    kind: Adversary,
    window: u64,
    mut object: Vec<u8>,
    memory: &mut Vec<(u64, Vec<u8>)>,
) -> Result<()> {
    adversary::sign(node, &mut object)?;
    memory.push((window, object.clone()));
    if memory.len() > 3 {
        memory.remove(0);
    }
    let bytes = match kind {
        // An earlier window's payload, if there is one yet.
        Adversary::Stale => match memory.iter().find(|(w, _)| *w + 2 <= window) {
            Some((_, old)) => old.clone(),
            None => object,
        },
        Adversary::Malformed => adversary::malformed(object.len(), window),
        Adversary::Late => {
            clock.wait_for_block(node.put_window_end(window) + 2).await?;
            object
        }
        Adversary::Copycat => {
            // Wait for the victim (the first other miner) to commit its hash, then copy it.
            let metagraph = node.chain.metagraph(node.netuid).await?;
            let validators = node.validators(&metagraph);
            let victim = metagraph.neurons.iter().map(|n| n.uid).find(|u| *u != node.uid && !validators.contains(u));
            let (_, end) = node.timing.put_window(window);
            let mut copy = None;
            if let Some(v) = victim {
                let bucket = adversary::victim_bucket(node, v).await?;
                while copy.is_none() && clock.block() <= end {
                    match adversary::copy_of(node, &bucket, window, v).await {
                        Ok(c) => copy = Some(c),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            copy.unwrap_or(object)
        }
        Adversary::Noise | Adversary::Scaled | Adversary::Freeloader => object,
    };
    let block = adversary::publish_raw(node, window, bytes).await?;
    tracing::info!(window, adversary = kind.name(), commit_block = block, "published (adversarially)");
    Ok(())
}
