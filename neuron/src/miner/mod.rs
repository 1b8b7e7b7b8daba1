//! The miner (PROTOCOL.md §2). Each window is four phases, each a function from the previous
//! phase's output to its own:
//!
//! 1. [`train`]: `H` inner steps on the window's sample pool → the pseudo-gradient;
//!    [`train::compress`]: error feedback and SparseLoCo compression → the signed-to-be payload;
//! 2. [`publish`]: in the put window, commit the payload's hash, then upload it;
//! 3. [`gather`]: once the put window is over, the window's accepted peer payloads;
//! 4. [`step`]: the outer step with them, the debug slice, the saved state.
//!
//! The local network's dishonest miners (`testkit`) run the same phases with their own publishing.

pub mod gather;
pub mod publish;
pub mod step;
pub mod train;

use anyhow::Result;
use chain::client::BlockClock;

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::node::Node;

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

/// Runs the honest miner until `stop` resolves.
pub async fn run(config: NodeConfig, metrics: Metrics, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut node = Node::start(config).await?;
    metrics.uid.set(i64::from(node.uid));
    tokio::select! {
        r = run_windows(&mut node, &metrics, Honest) => r,
        () = stop => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

/// How a miner spends one window. The honest miner is [`Honest`]; the testkit's dishonest
/// miners are others, built from the same phases.
pub trait MinerWindows {
    fn window(
        &mut self,
        node: &mut Node,
        clock: &mut BlockClock,
        window: u64,
        metrics: &Metrics,
    ) -> impl std::future::Future<Output = Result<MinerWindow>>;
}

/// The miner's loop: one window after another, never training for a window that is already
/// over, catching up on missed outer steps first. A failed window is logged and counted; the
/// next one starts.
pub async fn run_windows(node: &mut Node, metrics: &Metrics, mut miner: impl MinerWindows) -> Result<()> {
    let mut clock = node.clock().await?;
    let mut window = node.current_window(&clock);
    if let Some(last) = node.last_window {
        window = window.max(last + 1);
    }
    loop {
        window = window.max(node.current_window(&clock));
        node.catch_up_before(window).await;
        match miner.window(node, &mut clock, window, metrics).await {
            Ok(report) => tracing::info!(
                window,
                steps = report.steps,
                loss = report.loss,
                tokens_per_s = report.tokens_per_s as u64,
                uploaded = report.uploaded_bytes,
                gathered = report.gathered,
                rejected = report.rejected,
                global_step = node.global_step,
                "window done"
            ),
            Err(e) => {
                tracing::warn!(window, "window failed: {e:#}");
                metrics.window_failures.inc();
            }
        }
        window += 1;
    }
}

/// The honest miner: train → compress → publish → gather → step.
pub struct Honest;

impl MinerWindows for Honest {
    async fn window(
        &mut self,
        node: &mut Node,
        clock: &mut BlockClock,
        window: u64,
        metrics: &Metrics,
    ) -> Result<MinerWindow> {
        let trained = train::train(node, clock, window, train::Assignment::honest(node), metrics).await?;
        let compressed = train::compress(node, window, &trained.delta)?;
        let mut out = trained.report(window, &compressed);
        publish::publish(node, clock, window, compressed, metrics).await?;
        finish_window(node, clock, window, metrics, &mut out).await?;
        Ok(out)
    }
}

/// The phases after publishing, the same for every miner: gather, then the outer step.
pub async fn finish_window(
    node: &mut Node,
    clock: &mut BlockClock,
    window: u64,
    metrics: &Metrics,
    out: &mut MinerWindow,
) -> Result<()> {
    let gathered = gather::gather(node, clock, window, metrics).await?;
    (out.gathered, out.rejected) = (gathered.peers.used.len(), gathered.peers.skipped.len());
    step::step(node, window, &gathered, metrics).await
}
