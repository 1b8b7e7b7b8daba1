//! Everything the Gauntlet remembers between windows, serializable as a whole (see [`crate::persist`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::copycat::OverlapLevel;
use crate::exact::ExactF64;
use crate::openskill::Rating;
use crate::sync::ParamChangeTracker;
use crate::{GauntletConfig, Uid};

/// A hotkey: the protocol's (hex in JSON).
pub use protocol::Hotkey;

/// Per-uid scores and the counters of the penalty rules (templar's per-uid tensors and dicts,
/// `validator.py:457-562`). A uid that was never seen, or was reset, has the default state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerState {
    /// Latest `(L_rand_before − L_rand_after) / L_rand_before`.
    #[serde(with = "crate::exact")]
    pub gradient_score: f64,
    /// Latest binary indicator: +1 if the update helped the miner's own data more than random data.
    #[serde(with = "crate::exact")]
    pub binary_indicator: f64,
    /// Binary moving average of the indicator.
    #[serde(with = "crate::exact")]
    pub bma: f64,
    /// Latest sync score.
    #[serde(with = "crate::exact")]
    pub sync_score: f64,
    /// `(μ − 3σ)·max(0, BMA)·sync`, then penalties.
    #[serde(with = "crate::exact")]
    pub final_score: f64,
    /// OpenSkill rating, once the uid played a match (or got a −99).
    pub rating: Option<Rating>,
    /// Latest evaluations, oldest first: `true` = negative gradient score.
    pub eval_history: VecDeque<bool>,
    /// Negative evaluations in a row.
    pub consecutive_negative: u32,
    /// Latest gather attempts, oldest first: `true` = missed.
    pub missing_history: VecDeque<bool>,
    /// Gather misses in a row.
    pub consecutive_missing: u32,
    /// The window of the latest evaluation attempt.
    pub last_eval_window: Option<u64>,
}

/// A score waiting for the next OpenSkill match, in insertion order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingScore {
    pub uid: Uid,
    #[serde(with = "crate::exact")]
    pub score: f64,
}

/// What happened to a uid's score, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PenaltyKind {
    /// The uid's hotkey changed (a new registration): everything about the uid was forgotten.
    HotkeyChanged,
    /// Not active this window: final score × `inactivity_slash_rate`.
    Inactive { since: u64 },
    /// Inactive for `reset_inactivity_windows`: reset.
    InactiveReset { since: u64 },
    /// Copycat (or still on the naughty list, which counts as `Max`).
    Copycat { level: OverlapLevel },
    /// Gather peer without a usable debug slice or too many steps behind.
    OutOfSync {
        #[serde(with = "crate::exact::option")]
        steps_behind: Option<f64>,
    },
    /// Gather peer whose gradient was not gathered.
    GatherMiss {
        consecutive: u32,
        #[serde(with = "crate::exact")]
        multiplier: f64,
    },
    /// Half or more of the last gather attempts missed: naughty list (and reset if it had a
    /// positive score).
    GatherMissNaughty { missed: usize, of: usize },
    /// Evaluated uid without a gradient in the put window.
    MissingGradient,
    /// Evaluated uid whose gradient failed validation.
    InvalidGradient,
    /// More than half of the latest evaluations were negative.
    MostlyNegative { negatives: usize, of: usize },
}

/// One applied rule: the uid's final score before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PenaltyEvent {
    pub uid: Uid,
    #[serde(flatten)]
    pub kind: PenaltyKind,
    #[serde(with = "crate::exact")]
    pub final_before: f64,
    #[serde(with = "crate::exact")]
    pub final_after: f64,
}

/// A window between [`crate::Gauntlet::begin_window`] and [`crate::Gauntlet::finish_window`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowProgress {
    pub window: u64,
    /// Uids that could have been sampled (their counters move at the end of the window).
    pub candidates: Vec<Uid>,
    /// Uids to evaluate, in order.
    pub planned: Vec<Uid>,
    /// Uids recorded so far.
    pub attempted: Vec<Uid>,
    /// Rules applied so far this window.
    pub events: Vec<PenaltyEvent>,
    /// The subnet owner's uid in this window, from the chain (the burn goes there unless
    /// configured otherwise).
    #[serde(default)]
    pub owner_uid: Option<Uid>,
}

/// The whole Gauntlet state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GauntletState {
    /// First window of the run as this validator counts it (BMA warm-up starts here).
    pub start_window: Option<u64>,
    /// Latest finished window.
    pub last_window: Option<u64>,
    pub peers: BTreeMap<Uid, PeerState>,
    /// Latest hotkey seen at each uid.
    pub hotkeys: BTreeMap<Uid, Hotkey>,
    /// Naughty list: windows left.
    pub naughty: BTreeMap<Uid, u32>,
    /// Evaluation sampling weights: windows since last attempted, from 1 (active uids only).
    pub eval_counters: BTreeMap<Uid, u64>,
    /// Uids active in the latest window.
    pub active: BTreeSet<Uid>,
    /// Uids that stopped being active, and the window they were first seen inactive.
    pub inactive_since: BTreeMap<Uid, u64>,
    /// Uids that were ever scored or penalized as evaluated (weights are drawn from these).
    pub evaluated: BTreeSet<Uid>,
    /// The latest weight vector (positive entries only).
    pub weights: BTreeMap<Uid, ExactF64>,
    /// Scores waiting for the next OpenSkill match (a match needs two players).
    pub pending_scores: Vec<PendingScore>,
    /// Whether the latest finished window skipped the negative-evaluation rules (its
    /// `negative_skip_rank`-th best score was negative); gather exclusion follows it.
    pub skip_negative_penalties: bool,
    /// Window of the latest peer list.
    pub last_peer_update_window: Option<u64>,
    /// `EMA|Δθ|` of the debug elements, for the sync score.
    pub param_change: ParamChangeTracker,
    pub in_progress: Option<WindowProgress>,
}

/// A state that cannot be resumed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    #[error("uid {uid}: {field} = {value} is not finite or out of range")]
    PeerValue { uid: Uid, field: &'static str, value: f64 },
    #[error("uid {uid}: invalid OpenSkill rating (mu {mu}, sigma {sigma})")]
    Rating { uid: Uid, mu: f64, sigma: f64 },
    #[error("uid {uid}: weight {value} is not finite and positive")]
    Weight { uid: Uid, value: f64 },
    #[error("uid {uid}: pending score {value} is not finite")]
    PendingScore { uid: Uid, value: f64 },
    #[error("uid {uid} has two pending scores")]
    DuplicatePending { uid: Uid },
    #[error("window in progress is inconsistent: {0}")]
    Progress(&'static str),
    #[error("window {in_progress} is in progress but window {last} already finished")]
    ProgressOrder { in_progress: u64, last: u64 },
    #[error("the sync tracker holds a non-finite value")]
    ParamChange,
}

fn in_range(uid: Uid, field: &'static str, value: f64, lo: f64, hi: f64) -> Result<(), StateError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(StateError::PeerValue { uid, field, value })
    }
}

impl GauntletState {
    /// Checks a loaded state and brings it within `config` (histories longer than the configured
    /// limits keep their latest entries; expired naughty entries are dropped).
    pub fn validate_and_normalize(&mut self, config: &GauntletConfig) -> Result<(), StateError> {
        for (&uid, p) in &mut self.peers {
            in_range(uid, "gradient_score", p.gradient_score, f64::MIN, f64::MAX)?;
            in_range(uid, "binary_indicator", p.binary_indicator, -1.0, 1.0)?;
            in_range(uid, "bma", p.bma, -1.0, 1.0)?;
            in_range(uid, "sync_score", p.sync_score, 0.0, 1.0)?;
            in_range(uid, "final_score", p.final_score, f64::MIN, f64::MAX)?;
            if let Some(r) = p.rating {
                if !r.is_valid() {
                    return Err(StateError::Rating { uid, mu: r.mu, sigma: r.sigma });
                }
            }
            while p.eval_history.len() > config.eval_history_limit {
                p.eval_history.pop_front();
            }
            while p.missing_history.len() > config.missing_gradient_history_limit {
                p.missing_history.pop_front();
            }
        }
        for (&uid, w) in &self.weights {
            if !(w.0.is_finite() && w.0 > 0.0) {
                return Err(StateError::Weight { uid, value: w.0 });
            }
        }
        let mut seen = BTreeSet::new();
        for p in &self.pending_scores {
            if !p.score.is_finite() {
                return Err(StateError::PendingScore { uid: p.uid, value: p.score });
            }
            if !seen.insert(p.uid) {
                return Err(StateError::DuplicatePending { uid: p.uid });
            }
        }
        self.naughty.retain(|_, left| *left > 0);
        if !self.param_change.is_valid() {
            return Err(StateError::ParamChange);
        }
        if let Some(w) = &self.in_progress {
            if let Some(last) = self.last_window {
                if w.window <= last {
                    return Err(StateError::ProgressOrder { in_progress: w.window, last });
                }
            }
            if !w.planned.iter().all(|u| w.candidates.contains(u)) {
                return Err(StateError::Progress("a planned uid is not a candidate"));
            }
            if !w.attempted.iter().all(|u| w.planned.contains(u)) {
                return Err(StateError::Progress("an attempted uid was not planned"));
            }
            let distinct: BTreeSet<&Uid> = w.attempted.iter().collect();
            if distinct.len() != w.attempted.len() {
                return Err(StateError::Progress("a uid was attempted twice"));
            }
        }
        Ok(())
    }
}
