//! Phase 3 of a validator's window: the Gauntlet's weight vector on chain, when the window is one
//! that sets weights and the validator is configured to (commit-reveal or direct, as the subnet
//! requires: [`chain::client`]'s weights façade decides).

use std::time::Duration;

use weights::{Gauntlet, WindowSummary};

use crate::node::Node;

/// How long a commit-reveal may wait for its reveal epoch.
const REVEAL_TIMEOUT: Duration = Duration::from_secs(600);

/// Sets the weights when due; the block they were set in, or `None` (not due, nothing to set, or
/// the chain refused: logged, and the next due window tries again).
pub async fn set_weights(node: &Node, gauntlet: &Gauntlet, summary: &WindowSummary, window: u64) -> Option<u64> {
    if !(summary.set_weights && node.config.validator.set_weights) {
        return None;
    }
    let (uids, values): (Vec<u16>, Vec<u16>) = match gauntlet.u16_weights() {
        Ok(w) if !w.is_empty() => w.into_iter().unzip(),
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(window, "no weights to set: {e}");
            return None;
        }
    };
    let version_key = node.chain.weights().version_key(node.netuid).await.unwrap_or(0);
    match node
        .chain
        .weights()
        .set_weights_auto(&node.hotkey, node.netuid, &uids, &values, version_key, REVEAL_TIMEOUT)
        .await
    {
        Ok(set) => Some(set.block),
        Err(e) => {
            tracing::warn!(window, "setting weights failed: {e}");
            None
        }
    }
}
