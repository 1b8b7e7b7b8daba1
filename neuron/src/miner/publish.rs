//! Phase 2 of a miner's window: once the chain is in `w + 1`, commit the payload's hash inside
//! the put window and upload it ([`crate::storage::Publisher`]). A payload that can no longer be
//! committed in time is not uploaded; what it carried goes back into the error feedback.

use anyhow::Result;
use chain::client::BlockClock;

use super::train::Compressed;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::storage::{PublishError, Published};

/// Publishes `compressed` as this node's gradient for `window`; `None` when it was too late.
pub async fn publish(
    node: &mut Node,
    clock: &mut BlockClock,
    window: u64,
    compressed: Compressed,
    metrics: &Metrics,
) -> Result<Option<Published>> {
    node.wait_for_put_window(clock, window).await?;
    let t = std::time::Instant::now();
    match node.publisher().publish_gradient(window, compressed.object).await {
        Ok(p) => {
            metrics.upload_bytes.inc_by(p.size as u64);
            metrics.upload_seconds.set(t.elapsed().as_secs_f64());
            Ok(Some(p))
        }
        Err(e @ (PublishError::Stale { .. } | PublishError::CommittedLate { .. })) => {
            // A stale upload would be rejected by everyone: skip it, and keep what it carried in
            // the error feedback for the next window.
            tracing::warn!(window, "not uploading: {e}");
            node.replica.return_unsent(&compressed.update)?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
