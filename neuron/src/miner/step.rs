//! Phase 4 of a miner's window: the outer step with the gathered updates (the same every peer
//! applies), the debug slice for the validators' sync check, the saved state and bucket cleanup.

use anyhow::Result;

use super::gather::MinerGathered;
use crate::metrics::Metrics;
use crate::node::Node;

pub async fn step(node: &mut Node, window: u64, gathered: &MinerGathered, metrics: &Metrics) -> Result<()> {
    let updates = gathered.updates();
    tokio::task::block_in_place(|| node.apply_gathered(&updates))?;
    metrics.global_step.set(node.global_step as i64);
    node.publish_debug(window).await?;
    tokio::task::block_in_place(|| node.save(window, &[]))?;
    if let Err(e) = node.bucket.cleanup(window, node.config.protocol.keep_windows, None).await {
        tracing::warn!("bucket cleanup failed: {e}");
    }
    Ok(())
}
