//! A block clock driven by finalized heads: it follows the chain's finalized block stream in a
//! background task and re-subscribes with back-off when the stream breaks. Windows are the
//! protocol's arithmetic ([`protocol::WindowTiming`]), not the clock's.

use super::Client;
use std::time::Duration;
use subxt::ext::futures::StreamExt;
use tokio::sync::watch;

const POLL_INTERVAL: Duration = Duration::from_millis(250);
const POLL_BEFORE_RESUBSCRIBE: Duration = Duration::from_secs(10);

/// Follows finalized blocks. Dropping it stops the background task.
#[derive(Debug)]
pub struct BlockClock {
    rx: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BlockClock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BlockClock {
    /// Starts following `client`'s finalized blocks, starting from the current finalized block.
    ///
    /// It subscribes to `chain_subscribeFinalizedHeads` (served by every substrate node and by
    /// chopsticks); while no subscription delivers, it polls the finalized head instead.
    pub async fn start(client: &Client) -> Result<Self, super::ChainError> {
        let first = client.finalized_block().await?;
        let (tx, rx) = watch::channel(first);
        let client = client.clone();
        let task = tokio::spawn(async move {
            let advance = |n: u64| {
                // Never go backwards (a re-subscription may replay).
                tx.send_if_modified(|cur| {
                    if n > *cur {
                        *cur = n;
                        true
                    } else {
                        false
                    }
                });
            };
            loop {
                match client.finalized_heads().await {
                    Ok(mut heads) => {
                        while let Some(next) = heads.next().await {
                            match next {
                                Ok(n) => advance(n),
                                Err(e) => {
                                    tracing::debug!(error = %e, "finalized head subscription broke");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot subscribe to finalized heads"),
                }
                // Poll for a while before subscribing again.
                let until = tokio::time::Instant::now() + POLL_BEFORE_RESUBSCRIBE;
                while tokio::time::Instant::now() < until {
                    if tx.is_closed() {
                        return;
                    }
                    match client.finalized_block().await {
                        Ok(n) => advance(n),
                        Err(e) => tracing::warn!(error = %e, "cannot read the finalized block"),
                    }
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        });
        Ok(Self { rx, task })
    }

    /// The latest finalized block seen.
    pub fn block(&self) -> u64 {
        *self.rx.borrow()
    }

    /// Waits until the finalized block is at least `block`.
    pub async fn wait_for_block(&mut self, block: u64) -> Result<u64, super::ChainError> {
        let seen = self
            .rx
            .wait_for(|b| *b >= block)
            .await
            .map_err(|_| super::ChainError::rpc("block clock", "the block stream stopped"))?;
        Ok(*seen)
    }

    /// A receiver that sees every new finalized block number.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.rx.clone()
    }
}
