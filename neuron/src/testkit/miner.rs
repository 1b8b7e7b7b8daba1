//! A dishonest miner (`neuron adversary --kind K`): the honest miner's phases
//! ([`crate::miner`]), with the one step its kind breaks replaced.

use std::time::Duration;

use anyhow::Result;
use chain::client::BlockClock;

use super::adversary::{self, Adversary};
use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::miner::{self, train, MinerWindow, MinerWindows};
use crate::node::Node;

/// Runs a miner of kind `kind` until `stop` resolves.
pub async fn run(
    config: NodeConfig,
    kind: Adversary,
    metrics: Metrics,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let mut node = Node::start(config).await?;
    metrics.uid.set(i64::from(node.uid));
    tracing::info!(adversary = kind.name(), "running as a dishonest miner (testkit)");
    let dishonest = Dishonest { kind, memory: Vec::new() };
    tokio::select! {
        r = miner::run_windows(&mut node, &metrics, dishonest) => r,
        () = stop => Ok(()),
    }
}

/// A dishonest miner's state: its signed payloads of earlier windows (`stale` re-uploads them).
pub struct Dishonest {
    pub kind: Adversary,
    pub memory: Vec<(u64, Vec<u8>)>,
}

impl MinerWindows for Dishonest {
    async fn window(
        &mut self,
        node: &mut Node,
        clock: &mut BlockClock,
        window: u64,
        metrics: &Metrics,
    ) -> Result<MinerWindow> {
        let assignment = train::Assignment {
            sample_uid: self.kind.training_uid(node.uid),
            steps: self.kind.inner_steps(node.config.train.inner_steps),
        };
        let trained = train::train(node, clock, window, assignment, metrics).await?;
        let delta = self.kind.distort(&trained.delta)?;
        let compressed = train::compress(node, window, &delta)?;
        let mut out = trained.report(window, &compressed);
        if self.kind.publishes_honestly() {
            miner::publish::publish(node, clock, window, compressed, metrics).await?;
        } else {
            node.wait_for_put_window(clock, window).await?;
            self.misbehave(node, clock, window, compressed.object).await?;
        }
        if self.kind == Adversary::SyncSpoof {
            // The validators read this window's predecessor's slices once this put window closes;
            // the leader published its own while processing that window.
            if let Some(prev) = window.checked_sub(1) {
                let spoofed = adversary::spoof_debug(node, prev).await?;
                tracing::info!(window = prev, spoofed, "debug slice replaced by the leader's (adversarially)");
            }
        }
        miner::finish_window(node, clock, window, metrics, &mut out).await?;
        Ok(out)
    }
}

impl Dishonest {
    /// The dishonest publishing of the kinds that break a publishing rule.
    async fn misbehave(&mut self, node: &Node, clock: &mut BlockClock, window: u64, mut object: Vec<u8>) -> Result<()> {
        adversary::sign(node, &mut object)?;
        self.memory.push((window, object.clone()));
        if self.memory.len() > 3 {
            self.memory.remove(0);
        }
        let bytes = match self.kind {
            // An earlier window's payload, if there is one yet.
            Adversary::Stale => match self.memory.iter().find(|(w, _)| *w + 2 <= window) {
                Some((_, old)) => old.clone(),
                None => object,
            },
            Adversary::Malformed => adversary::malformed(object.len(), window),
            Adversary::Late => {
                // One block after the put window closed.
                clock.wait_for_block(node.timing.processable_from(protocol::Window(window)).0 + 1).await?;
                object
            }
            Adversary::Copycat => copy_first_miner(node, clock, window).await?.unwrap_or(object),
            _ => object,
        };
        let block = adversary::publish_raw(node, window, bytes).await?;
        tracing::info!(window, adversary = self.kind.name(), commit_block = block, "published (adversarially)");
        Ok(())
    }
}

/// Waits (within the put window) for the first other miner to upload, and returns its payload
/// re-signed as this node's.
async fn copy_first_miner(node: &Node, clock: &BlockClock, window: u64) -> Result<Option<Vec<u8>>> {
    let roster = node.roster().await?;
    let validators = node.validators(&roster);
    let victim = roster.metagraph.neurons.iter().map(|n| n.uid).find(|u| *u != node.uid && !validators.contains(u));
    let Some(victim) = victim else { return Ok(None) };
    let closes = node.timing.put_window(protocol::Window(window)).closes.0;
    let bucket = adversary::victim_bucket(node, victim).await?;
    while clock.block() <= closes {
        match adversary::copy_of(node, &bucket, window, victim).await {
            Ok(c) => return Ok(Some(c)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(None)
}
