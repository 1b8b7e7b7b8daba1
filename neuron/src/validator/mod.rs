//! The validator (PROTOCOL.md §6): processes window `w` while the chain is in `w + 1`. Each
//! window is four phases, each a function from the previous phase's output to its own:
//!
//! 1. [`gather`]: who is who, the gather list in force, the window's accepted payloads, the
//!    outer step's peers, copy-cats and debug slices → the Gauntlet's plan for the window;
//! 2. [`evaluate`]: loss before and after applying each planned uid's update, on its own data
//!    and on random data → the Gauntlet's scores and weight vector;
//! 3. [`weights`]: the weight vector on chain, when due;
//! 4. [`publish`]: the outer step, and as the leader the bundle, the peer list and checkpoints;
//!    the debug slice, the saved state and the window's status line.
//!
//! All randomness comes from the hash of the first block after the put window of `w` closed
//! ([`protocol::WindowTiming::seed_block`]): public, so anyone can recompute which uids were
//! evaluated on which samples, and unknown to every miner until its commitment is final. State (model and Gauntlet scores) is saved after
//! every window; a restart resumes where it stopped.

pub mod evaluate;
pub mod gather;
pub mod publish;
pub mod status;
pub mod weights;

use ::weights::{Gauntlet, GauntletState};
use anyhow::{Context, Result};
use chain::client::BlockClock;

use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::node::Node;
pub use status::{read_statuses, status_file, WindowEvent, WindowStatus};

/// The Gauntlet's state, saved inside the node's checkpoint.
pub const GAUNTLET_FILE: &str = "gauntlet.json";

/// Runs the validator until `stop` resolves.
pub async fn run(config: NodeConfig, metrics: Metrics, stop: impl std::future::Future<Output = ()>) -> Result<()> {
    let mut node = Node::start(config).await?;
    metrics.uid.set(i64::from(node.uid));
    let mut gauntlet = restore_gauntlet(&node)?;
    tokio::select! {
        r = validator_loop(&mut node, &mut gauntlet, &metrics) => r,
        () = stop => {
            tracing::info!("stopping");
            Ok(())
        }
    }
}

/// The Gauntlet saved with the node's state, or a fresh one.
fn restore_gauntlet(node: &Node) -> Result<Gauntlet> {
    let (config, protocol) = (node.config.gauntlet.clone(), &node.config.protocol);
    let Some(bytes) = node.saved_extra(GAUNTLET_FILE)? else { return Ok(Gauntlet::new(config, protocol)?) };
    let state: GauntletState = serde_json::from_slice(&bytes).context("the saved scores do not parse")?;
    let g = Gauntlet::from_state(config, protocol, state).context("the saved scores are invalid")?;
    // The digest lets an operator (and the restart test) check that these are the scores that
    // were saved: blake2b-256 of the saved file.
    let digest = hex::encode(compression::signature::content_hash(&bytes));
    tracing::info!(last_window = g.state().last_window, scores_digest = digest, "scores restored");
    Ok(g)
}

async fn validator_loop(node: &mut Node, gauntlet: &mut Gauntlet, metrics: &Metrics) -> Result<()> {
    let mut clock = node.clock().await?;
    let mut window = match node.last_window {
        Some(last) => last + 1,
        None => node.current_window(&clock).saturating_sub(1),
    };
    if gauntlet.state().start_window.is_none() {
        gauntlet.set_start_window(window);
    }
    loop {
        node.wait_until_processable(&mut clock, window).await?;
        // Too far behind (e.g. after a long stop): skip to the window just finished.
        let now = node.current_window(&clock);
        if now > window + 2 {
            tracing::warn!(window, now, "skipping to the latest window");
            window = now - 1;
            continue;
        }
        node.catch_up_before(window).await;
        // A window whose processing failed half-way is closed with what it recorded, so that its
        // penalties stand and the next window can start.
        if let Some(stale) = gauntlet.state().in_progress.as_ref().map(|p| p.window).filter(|w| *w < window) {
            tracing::warn!(window = stale, "closing the window left unfinished");
            gauntlet.finish_window().context("closing an unfinished window")?;
        }
        match process_window(node, gauntlet, &mut clock, window, metrics).await {
            Ok(status) => tracing::info!(
                window,
                loss = status.loss,
                gathered = status.gathered.len(),
                rejected = status.rejected.len(),
                evaluated = status.evaluated.len(),
                weights_block = status.weights_block,
                "window processed"
            ),
            Err(e) => {
                metrics.window_failures.inc();
                tracing::warn!(window, "window failed: {e:#}");
            }
        }
        window += 1;
    }
}

/// Processes window `window` (the chain is in `window + 1`, its put window over): the four
/// phases in order.
pub async fn process_window(
    node: &mut Node,
    gauntlet: &mut Gauntlet,
    clock: &mut BlockClock,
    window: u64,
    metrics: &Metrics,
) -> Result<WindowStatus> {
    metrics.window.set(window as i64);
    let gathered = gather::gather(node, gauntlet, window, metrics).await?;
    let plan = gauntlet.begin_window(&gathered.window_start(node, gauntlet))?;
    let evaluated = evaluate::evaluate(node, gauntlet, clock, &gathered, &plan.uids, metrics)?;
    let weights_block = weights::set_weights(node, gauntlet, &evaluated.summary, window).await;
    publish::publish(node, gauntlet, clock, gathered, evaluated, weights_block, metrics).await
}
