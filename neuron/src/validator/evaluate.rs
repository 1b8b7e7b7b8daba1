//! Phase 2 of a validator's window (PROTOCOL.md §6.2): loss on random batches once, the
//! window's consensus update, then for each uid the Gauntlet planned: a [`Verdict`] from what the
//! gather found, and for a usable update the loss before and after applying it on the uid's own
//! samples and on the random batches. Ends with the Gauntlet's window summary.

use anyhow::Result;
use chain::client::BlockClock;
use compression::SparseParam;
use model::data::pool::{eval_batch, random_pool, sample_pool};
use model::data::shards::Dataset;
use tch::Tensor;
use weights::{ConsensusLosses, EvalOutcome, Evaluation, Gauntlet, WindowSummary};

use super::gather::WindowGather;
use super::status::WindowEvent;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::replica::Replica;
use crate::storage::Fault;

/// What the evaluation phase produced.
pub struct Evaluated {
    /// The window's consensus update (the outer step applies it); `None` without peers.
    pub consensus: Option<Tensor>,
    /// The random batches every evaluation used (the loss after the outer step is on them too).
    pub random: Vec<Vec<u64>>,
    pub evaluated: Vec<u16>,
    /// This validator's own rules applied (the Gauntlet's are in `summary`).
    pub events: Vec<WindowEvent>,
    pub summary: WindowSummary,
}

/// What to do with a planned uid, from what the gather found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// A usable update: measure it.
    Evaluate,
    /// Its norm is this many times the window's median, over the limit: invalid.
    Oversized(f64),
    Missing,
    Invalid,
}

/// The verdict for one uid: `accepted` whether its payload was accepted, `norm_ratio` its update's
/// norm against the window's median, `rejected` the fault of a rejected payload. The size rule
/// applies from the second outer step on: before it, every update starts from the same weights
/// and one that took a single warm-up step is near zero, which can make the median meaningless.
pub fn verdict(
    accepted: bool,
    norm_ratio: Option<f64>,
    max_norm_ratio: f64,
    global_step: u64,
    rejected: Option<Fault>,
) -> Verdict {
    if accepted {
        match norm_ratio {
            Some(r) if max_norm_ratio > 0.0 && global_step >= 1 && r > max_norm_ratio => Verdict::Oversized(r),
            _ => Verdict::Evaluate,
        }
    } else {
        match rejected {
            Some(Fault::Invalid) => Verdict::Invalid,
            Some(Fault::Missing) | None => Verdict::Missing,
        }
    }
}

/// The batches and constants every evaluation of the window shares.
struct Bench<'a> {
    netuid: u16,
    global_step: u64,
    pool_size: u64,
    max_norm_ratio: f64,
    random: &'a [Vec<u64>],
    random_before: f64,
    medians: Vec<f32>,
    scale: f64,
    consensus: Option<&'a Tensor>,
    consensus_random_after: Option<f64>,
}

/// Evaluates the Gauntlet's `planned` uids of window `g.window`.
pub fn evaluate(
    node: &mut Node,
    gauntlet: &mut Gauntlet,
    clock: &BlockClock,
    g: &WindowGather,
    planned: &[u16],
    _metrics: &Metrics,
) -> Result<Evaluated> {
    let vc = node.config.validator.clone();
    let per_batch = vc.eval_batch_size.max(1);
    let n_eval = vc.eval_batches.max(1) * per_batch;
    let random: Vec<Vec<u64>> = random_pool(node.netuid, g.window, g.seed, node.data.len(), n_eval as u64)
        .chunks(per_batch)
        .map(|c| c.to_vec())
        .collect();
    let updates = g.used_updates();
    let consensus = if updates.is_empty() {
        None
    } else {
        Some(tokio::task::block_in_place(|| node.replica.aggregate(&updates, node.aggregation))?)
    };
    let scale = node.config.protocol.outer_learning_rate * vc.eval_lr_factor;
    let random_before = tokio::task::block_in_place(|| node.replica.eval_loss(&node.data, &random))?;
    // The own-data test's control: the consensus update on the same batches.
    let consensus_random_after = match &consensus {
        Some(c) if gauntlet.config().own_data_margin.is_some() => Some(tokio::task::block_in_place(|| {
            node.replica.with_update(c, scale, |r| r.eval_loss(&node.data, &random))
        })?),
        _ => None,
    };
    let bench = Bench {
        netuid: node.netuid,
        global_step: node.global_step,
        pool_size: node.config.train.pool_size,
        max_norm_ratio: vc.max_norm_ratio,
        random: &random,
        random_before,
        medians: Replica::median_norms(&updates),
        scale,
        consensus: consensus.as_ref(),
        consensus_random_after,
    };
    let (mut evaluated, mut events) = (Vec::new(), Vec::new());
    let bar = crate::progress::bar(planned.len() as u64, format!("window {}: evaluating", g.window));
    for &uid in planned {
        bar.inc(1);
        if node.current_window(clock) > g.window + 1 {
            tracing::warn!(window = g.window, "the chain moved on; stopping evaluation");
            break;
        }
        let outcome = match judge(&bench, g, uid) {
            Verdict::Evaluate => measure(&mut node.replica, &node.data, &bench, gauntlet, g, uid, (n_eval, per_batch)),
            Verdict::Oversized(ratio) => {
                events.push(WindowEvent::OversizedUpdate { uid, ratio, limit: vc.max_norm_ratio });
                EvalOutcome::Invalid
            }
            Verdict::Missing => EvalOutcome::Missing,
            Verdict::Invalid => EvalOutcome::Invalid,
        };
        let recorded = gauntlet.record_evaluation(uid, outcome)?;
        log_outcome(g.window, uid, &outcome, &recorded);
        evaluated.push(uid);
    }
    bar.finish_and_clear();
    let summary = gauntlet.finish_window()?;
    Ok(Evaluated { consensus, random, evaluated, events, summary })
}

/// The verdict for `uid` in this window.
fn judge(bench: &Bench<'_>, g: &WindowGather, uid: u16) -> Verdict {
    let accepted = g.accepted(uid);
    let ratio = accepted.and_then(|a| Replica::norm_ratio(&a.payload.params, &bench.medians));
    let rejected = g.gathered.rejected.get(&uid).map(|r| r.fault());
    verdict(accepted.is_some(), ratio, bench.max_norm_ratio, bench.global_step, rejected)
}

/// Loss before and after `uid`'s update on its own samples and on the random batches; a
/// failure to apply it makes it invalid.
fn measure(
    replica: &mut Replica,
    data: &Dataset,
    bench: &Bench<'_>,
    gauntlet: &Gauntlet,
    g: &WindowGather,
    uid: u16,
    (n_eval, per_batch): (usize, usize),
) -> EvalOutcome {
    let Some(accepted) = g.accepted(uid) else { return EvalOutcome::Missing };
    let pool = sample_pool(bench.netuid, uid, g.window, data.len(), bench.pool_size);
    let own: Vec<Vec<u64>> = eval_batch(&pool, g.seed, n_eval).chunks(per_batch).map(|c| c.to_vec()).collect();
    let result = tokio::task::block_in_place(|| own_and_random(replica, data, bench, &accepted.payload.params, &own));
    match result {
        Ok((own_before, own_after, random_after, consensus)) => EvalOutcome::Evaluated(Evaluation {
            own_before,
            own_after,
            random_before: bench.random_before,
            random_after,
            steps_behind: g.steps_behind(gauntlet, uid),
            consensus,
        }),
        Err(e) => {
            tracing::warn!(uid, "applying the update failed: {e:#}");
            EvalOutcome::Invalid
        }
    }
}

/// `(own before, own after, random after, the consensus control)` for one update.
fn own_and_random(
    replica: &mut Replica,
    data: &Dataset,
    bench: &Bench<'_>,
    update: &[SparseParam],
    own: &[Vec<u64>],
) -> Result<(f64, f64, f64, Option<ConsensusLosses>)> {
    let own_before = replica.eval_loss(data, own)?;
    let clipped = replica.clipped_update(update, &bench.medians)?;
    let (own_after, random_after) = replica
        .with_update(&clipped, bench.scale, |r| Ok((r.eval_loss(data, own)?, r.eval_loss(data, bench.random)?)))?;
    let consensus = match (bench.consensus, bench.consensus_random_after) {
        (Some(c), Some(random_after)) => {
            let own_after = replica.with_update(c, bench.scale, |r| r.eval_loss(data, own))?;
            Some(ConsensusLosses { own_after, random_after })
        }
        _ => None,
    };
    Ok((own_before, own_after, random_after, consensus))
}

fn log_outcome(window: u64, uid: u16, outcome: &EvalOutcome, recorded: &weights::Recorded) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        // Accepted and within the limit, or no median yet.
        assert_eq!(verdict(true, Some(3.0), 10.0, 5, None), Verdict::Evaluate);
        assert_eq!(verdict(true, None, 10.0, 5, None), Verdict::Evaluate);
        // Oversized, from the second outer step on, and only while the rule is on.
        assert_eq!(verdict(true, Some(12.0), 10.0, 5, None), Verdict::Oversized(12.0));
        assert_eq!(verdict(true, Some(12.0), 10.0, 0, None), Verdict::Evaluate);
        assert_eq!(verdict(true, Some(12.0), 0.0, 5, None), Verdict::Evaluate);
        // Not accepted: by the rejection's fault, missing when nothing was even tried.
        assert_eq!(verdict(false, None, 10.0, 5, Some(Fault::Invalid)), Verdict::Invalid);
        assert_eq!(verdict(false, None, 10.0, 5, Some(Fault::Missing)), Verdict::Missing);
        assert_eq!(verdict(false, None, 10.0, 5, None), Verdict::Missing);
    }
}
