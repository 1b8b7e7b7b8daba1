//! Phase 1 of a miner's window: train `H` inner steps on the window's sample pool (stopping early
//! if the chain leaves the window), take the pseudo-gradient `Δ = θ_start − θ_end`, then compress
//! it with error feedback into this node's payload for the window.

use anyhow::Result;
use chain::client::BlockClock;
use compression::SparseParam;
use model::data::pool::sample_pool;
use tch::Tensor;

use super::MinerWindow;
use crate::metrics::Metrics;
use crate::node::Node;

/// The inner loop's result.
pub struct Trained {
    /// The pseudo-gradient, flat.
    pub delta: Tensor,
    pub steps: usize,
    pub loss: Option<f64>,
    pub tokens_per_s: f64,
}

/// The compressed update and its encoded (unsigned) payload.
pub struct Compressed {
    pub update: Vec<SparseParam>,
    pub object: Vec<u8>,
}

impl Trained {
    /// The window's report so far.
    pub fn report(&self, window: u64, compressed: &Compressed) -> MinerWindow {
        MinerWindow {
            window,
            steps: self.steps,
            loss: self.loss,
            tokens_per_s: self.tokens_per_s,
            uploaded_bytes: compressed.object.len(),
            ..MinerWindow::default()
        }
    }
}

/// What to train on: the sample pool of `(netuid, sample_uid, window)` (an honest miner's own
/// uid) for `steps` inner steps (an honest miner's `train.inner_steps`).
#[derive(Debug, Clone, Copy)]
pub struct Assignment {
    pub sample_uid: u16,
    pub steps: usize,
}

impl Assignment {
    /// An honest miner's assignment.
    pub fn honest(node: &Node) -> Self {
        Self { sample_uid: node.uid, steps: node.config.train.inner_steps }
    }
}

/// Trains on `assignment` in window `window`.
pub async fn train(
    node: &mut Node,
    clock: &BlockClock,
    window: u64,
    assignment: Assignment,
    metrics: &Metrics,
) -> Result<Trained> {
    let train = &node.config.train;
    let (steps, batch, sample_uid) = (assignment.steps, train.batch_size, assignment.sample_uid);
    let pool =
        sample_pool(node.netuid, sample_uid, window, node.data.len(), train.pool_size.max((steps * batch) as u64));
    let samples = &pool[..(steps * batch).min(pool.len())];
    metrics.window.set(window as i64);

    let started = std::time::Instant::now();
    let start = node.replica.trainer.snapshot()?;
    let watch = clock.subscribe();
    let timing = node.timing;
    let bar = crate::progress::bar((samples.len() / batch.max(1)) as u64, format!("window {window}: training"));
    let report = tokio::task::block_in_place(|| {
        node.replica.train(&node.data, samples, batch, || {
            bar.inc(1);
            timing.window_of(protocol::Block(*watch.borrow())).0 == window
        })
    })?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let delta = node.replica.trainer.take_pseudo_gradient(&start)?;
    let trained = Trained {
        delta,
        steps: report.steps.len(),
        loss: report.mean_loss(),
        tokens_per_s: report.tokens() as f64 / elapsed.max(1e-9),
    };
    if let Some(loss) = trained.loss {
        metrics.loss.set(loss);
    }
    metrics.tokens_per_s.set(trained.tokens_per_s);
    Ok(trained)
}

/// Error feedback and compression of `delta`, encoded as this node's payload for `window`.
pub fn compress(node: &mut Node, window: u64, delta: &Tensor) -> Result<Compressed> {
    let update = tokio::task::block_in_place(|| node.replica.compress(delta))?;
    let object = node.encode_payload(window, update.clone())?;
    Ok(Compressed { update, object })
}
