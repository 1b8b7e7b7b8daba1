//! The validator's window, as the Gauntlet sees it (`PROTOCOL.md` §6; templar `Validator.run`).
//!
//! ```text
//! select_peers(…)            (when peers_due) the gather/reserve lists to publish
//! begin_window(WindowStart)  hotkeys → inactivity → copycats/naughty → out of sync → gather misses
//!                            → the uids to evaluate (EvalPlan)
//! record_evaluation(uid, …)  for each evaluated uid: scores, BMA, sync, or the missing/invalid rule
//! finish_window()            sampling counters → mostly-negative rule → OpenSkill match →
//!                            final scores → weight vector (WindowSummary)
//! ```
//! The order is templar's. Everything is deterministic given the inputs; randomness comes only
//! from the seed the caller passes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::copycat::CopycatFinding;
use crate::exact::ExactF64;
use crate::openskill::{OpenSkillError, PlackettLuce, Rating};
use crate::state::{GauntletState, Hotkey, PeerState, PenaltyEvent, StateError, WindowProgress};
use crate::sync::{sync_score, ParamChangeTracker};
use crate::vector::{to_u16_weights, weight_vector, U16WeightsError, WeightShape};
use crate::{selection, ConfigError, GauntletConfig, Uid};
use protocol::ProtocolConfig;

/// What the gather of this window did (templar `gather_with_reserve`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatherReport {
    /// The gather list in force (its size is the denominator of the success rate).
    pub intended: Vec<Uid>,
    /// Peers whose payload was gathered (gather or reserve).
    pub gathered: Vec<Uid>,
    /// Peers tried and not gathered (gather, and reserves tried as replacements).
    pub skipped: Vec<Uid>,
}

/// The start of window `window`'s processing.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowStart {
    /// The subnet owner's uid as the chain has it (the burned share goes there unless
    /// `burn_uid` is configured); `None` if the chain names none.
    pub owner_uid: Option<Uid>,
    /// The window being processed (the chain is in `window + 1`).
    pub window: u64,
    /// Outer steps applied so far (copycat penalties start at `copycat_start_global_step`).
    pub global_step: u64,
    /// The metagraph's hotkeys; a changed hotkey resets the uid.
    pub hotkeys: Vec<(Uid, Hotkey)>,
    /// Miners active this window (uploading gradients; validators already filtered out by stake).
    pub active: Vec<Uid>,
    /// The gather's outcome; `None` when there was none (then no gather rule runs).
    pub gather: Option<GatherReport>,
    /// This window's copycat findings ([`crate::copycat::detect`] over the gathered peers).
    pub copycats: Vec<CopycatFinding>,
    /// Steps behind of every peer of the gather list in force (`None`: no usable debug slice).
    pub gather_sync: Vec<(Uid, Option<f64>)>,
    /// Public randomness for the evaluation sample (the hash of the first block after the window's put window closed).
    pub seed: [u8; 32],
}

/// The uids to evaluate in a window, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalPlan {
    pub window: u64,
    pub uids: Vec<Uid>,
    /// Rules applied while starting the window.
    pub events: Vec<PenaltyEvent>,
}

/// The validator's measurements for one uid (`PROTOCOL.md` §6.2, §6.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Loss on the miner's own data before and after applying its update.
    pub own_before: f64,
    pub own_after: f64,
    /// Loss on random data before and after.
    pub random_before: f64,
    pub random_after: f64,
    /// [`crate::sync::steps_behind`] of the miner's debug slice; `None` if it had none usable.
    pub steps_behind: Option<f64>,
    /// The same measurement with the window's consensus update (the aggregate of the gathered
    /// peers, at the same scale) in place of the miner's: the control of the own-data test when
    /// [`crate::GauntletConfig::own_data_margin`] is set.
    pub consensus: Option<ConsensusLosses>,
}

/// Losses after applying the window's consensus update instead of the miner's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConsensusLosses {
    /// On the miner's own data.
    pub own_after: f64,
    /// On the window's random data.
    pub random_after: f64,
}

impl Evaluation {
    /// Relative improvement of the loss on the miner's own data.
    pub fn own_improvement(&self) -> f64 {
        (self.own_before - self.own_after) / self.own_before
    }

    /// Relative improvement of the loss on random data: the gradient score.
    pub fn random_improvement(&self) -> f64 {
        (self.random_before - self.random_after) / self.random_before
    }

    /// How much more the update helps the miner's own data than the consensus update predicts
    /// for an update of its random improvement, in units of the consensus' random improvement:
    /// `(own − ρ·random) / random_G` with `ρ = own_G / random_G` (`_G`: the consensus update's
    /// relative improvements on the same batches). `None` without a usable control (none given,
    /// or a consensus update that did not improve the random loss).
    pub fn own_advantage(&self) -> Option<f64> {
        let c = self.consensus?;
        let own_g = (self.own_before - c.own_after) / self.own_before;
        let random_g = (self.random_before - c.random_after) / self.random_before;
        if !(random_g > 0.0 && own_g.is_finite()) {
            return None;
        }
        let expected = own_g / random_g * self.random_improvement();
        let advantage = (self.own_improvement() - expected) / random_g;
        advantage.is_finite().then_some(advantage)
    }
}

/// How an evaluation attempt ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EvalOutcome {
    /// No gradient committed and uploaded within the put window.
    Missing,
    /// The gradient failed validation (decode, signature, indices, non-finite values…).
    Invalid,
    /// Evaluated.
    Evaluated(Evaluation),
}

/// What [`Gauntlet::record_evaluation`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Recorded {
    Scored {
        gradient_score: f64,
        binary_indicator: f64,
        sync_score: f64,
        /// [`Evaluation::own_advantage`], when the controlled own-data test decided the indicator.
        own_advantage: Option<f64>,
    },
    /// The missing-gradient rule was applied.
    Missing,
    /// The invalid-gradient rule was applied (also for an update whose losses are not finite).
    Invalid,
}

/// The end of a window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowSummary {
    pub window: u64,
    /// Uids recorded this window.
    pub attempted: Vec<Uid>,
    /// Uids whose rating and final score were updated by this window's match.
    pub rated: Vec<Uid>,
    /// The weight vector (positive entries, by uid).
    pub weights: Vec<(Uid, f64)>,
    /// Whether this window sets weights on chain (`window % windows_per_weights == 0`).
    pub set_weights: bool,
    /// Whether the negative-evaluation rules were skipped this window.
    pub negative_rules_skipped: bool,
    /// A match that could not be rated (non-finite ratings): the scores were dropped.
    pub rating_error: Option<OpenSkillError>,
    /// Every rule applied this window.
    pub events: Vec<PenaltyEvent>,
}

/// Inputs of a peer-list selection (`PROTOCOL.md` §6.7, templar `create_and_post_peers`).
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSelection {
    /// The window being processed.
    pub window: u64,
    /// The chain's current window: the list takes effect `peer_list_window_margin` after it.
    pub chain_window: u64,
    /// Active miners.
    pub active: Vec<Uid>,
    /// Metagraph incentive per uid (used for the first list only).
    pub incentive: Vec<(Uid, f64)>,
    /// Public randomness for the first list's random fill.
    pub seed: [u8; 32],
}

/// A peer list to publish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerLists {
    pub gather: Vec<Uid>,
    pub reserve: Vec<Uid>,
    pub first_effective_window: u64,
    pub initial_selection: bool,
}

/// A call out of order, or an input the Gauntlet cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GauntletError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("window {window} is not after the last finished window {last}")]
    StaleWindow { window: u64, last: u64 },
    #[error("window {in_progress} is in progress; finish it before starting window {requested}")]
    WindowInProgress { in_progress: u64, requested: u64 },
    #[error("no window is in progress")]
    NoWindowInProgress,
    #[error("uid {uid} is not in the evaluation plan of window {window}")]
    NotPlanned { uid: Uid, window: u64 },
    #[error("uid {uid} was already recorded in window {window}")]
    AlreadyRecorded { uid: Uid, window: u64 },
    #[error("uid {uid}: baseline losses must be finite and positive (own {own}, random {random})")]
    BadBaseline { uid: Uid, own: f64, random: f64 },
    #[error(transparent)]
    Weights(#[from] U16WeightsError),
    #[error(transparent)]
    Protocol(#[from] protocol::ProtocolConfigError),
}

/// The Gauntlet: configuration, rating model and state.
#[derive(Clone, Debug)]
pub struct Gauntlet {
    pub(crate) config: GauntletConfig,
    /// The protocol's outer learning rate α: the divisor of a steps-behind ratio for a parameter
    /// with no `|Δθ|` history yet (templar's `outer_learning_rate`).
    pub(crate) outer_learning_rate: f32,
    pub(crate) model: PlackettLuce,
    pub(crate) state: GauntletState,
}

impl Gauntlet {
    /// A fresh Gauntlet for a subnet running `protocol`.
    pub fn new(config: GauntletConfig, protocol: &ProtocolConfig) -> Result<Self, GauntletError> {
        Self::from_state(config, protocol, GauntletState::default())
    }

    /// Resumes from a saved state (checked, and brought within `config`'s limits).
    pub fn from_state(
        config: GauntletConfig,
        protocol: &ProtocolConfig,
        mut state: GauntletState,
    ) -> Result<Self, GauntletError> {
        config.validate()?;
        protocol.validate()?;
        state.validate_and_normalize(&config)?;
        let model = PlackettLuce {
            mu: config.openskill_mu,
            sigma: config.openskill_sigma,
            beta: config.openskill_beta,
            kappa: config.openskill_kappa,
            tau: config.openskill_tau,
        };
        Ok(Self { config, outer_learning_rate: protocol.outer_learning_rate as f32, model, state })
    }

    pub fn config(&self) -> &GauntletConfig {
        &self.config
    }

    /// The whole state (what [`crate::persist`] saves).
    pub fn state(&self) -> &GauntletState {
        &self.state
    }

    /// The rating model.
    pub fn model(&self) -> &PlackettLuce {
        &self.model
    }

    /// A uid's state, if it has any.
    pub fn peer(&self, uid: Uid) -> Option<&PeerState> {
        self.state.peers.get(&uid)
    }

    /// A uid's rating (the prior for a uid that never played).
    pub fn rating(&self, uid: Uid) -> Rating {
        self.peer(uid).and_then(|p| p.rating).unwrap_or_else(|| self.model.rating())
    }

    /// Sets the window BMA warm-up counts from (the run's start window). Without it, the first
    /// window this Gauntlet processes.
    pub fn set_start_window(&mut self, window: u64) {
        self.state.start_window = Some(window);
    }

    /// The validator's `EMA|Δθ|` tracker; feed it the debug slice of every parameter after each
    /// outer step, and pass its `avg_change` to [`crate::sync::steps_behind`].
    pub fn param_change(&self) -> &ParamChangeTracker {
        &self.state.param_change
    }

    /// Records the validator's own model after an outer step: for every parameter, the same
    /// elements miners publish in their debug slices (`flatten()[10..12]`, templar's
    /// `param_avg_change` update).
    pub fn observe_outer_step<'a>(&mut self, slices: impl IntoIterator<Item = (&'a str, &'a [f32])>) {
        let alpha = self.config.param_change_alpha;
        for (name, slice) in slices {
            self.state.param_change.observe(name, slice, alpha);
        }
    }

    /// Steps behind of a miner from its debug slices (`(name, miner slice, validator slice)`),
    /// with this Gauntlet's tracker and constants. `None` when nothing usable was published.
    pub fn steps_behind<'a>(&self, params: impl IntoIterator<Item = (&'a str, &'a [f32], &'a [f32])>) -> Option<f64> {
        let cmp: Vec<crate::sync::SliceComparison<'_>> = params
            .into_iter()
            .map(|(name, miner, validator)| crate::sync::SliceComparison {
                validator,
                miner,
                avg_change: self.state.param_change.avg_change(name),
            })
            .collect();
        crate::sync::steps_behind(&cmp, self.outer_learning_rate, self.config.sync_min_step_size).ok()
    }

    /// The sync score of a steps-behind value under this configuration.
    pub fn sync_score(&self, steps_behind: Option<f64>) -> f64 {
        steps_behind.map_or(0.0, |x| sync_score(x, self.config.sync_score_cap_steps, self.config.sync_score_exponent))
    }

    /// Starts processing `input.window`: applies the rules that do not need evaluations and
    /// returns the uids to evaluate. Calling it again for the window in progress returns the same
    /// plan without re-applying anything (a restart mid-window).
    pub fn begin_window(&mut self, input: &WindowStart) -> Result<EvalPlan, GauntletError> {
        let window = input.window;
        if let Some(p) = &self.state.in_progress {
            if p.window == window {
                return Ok(EvalPlan { window, uids: p.planned.clone(), events: p.events.clone() });
            }
            return Err(GauntletError::WindowInProgress { in_progress: p.window, requested: window });
        }
        if let Some(last) = self.state.last_window {
            if window <= last {
                return Err(GauntletError::StaleWindow { window, last });
            }
        }
        self.state.start_window.get_or_insert(window);
        self.state.in_progress = Some(WindowProgress {
            window,
            candidates: Vec::new(),
            planned: Vec::new(),
            attempted: Vec::new(),
            events: Vec::new(),
            owner_uid: input.owner_uid,
        });

        self.observe_hotkeys(&input.hotkeys);
        self.apply_activity(window, &input.active);
        self.apply_copycats(input.global_step, &input.copycats);
        self.apply_sync(&input.gather_sync);
        if let Some(g) = &input.gather {
            self.apply_gather(g);
        }

        let candidates: Vec<(Uid, f64, u64)> = self
            .state
            .eval_counters
            .iter()
            .filter(|(u, _)| !self.state.naughty.contains_key(u))
            .map(|(&u, &c)| (u, self.rating(u).ordinal(), c))
            .collect();
        let planned = selection::select_evaluation_uids(
            input.seed,
            &candidates,
            self.config.num_evaluation_bins,
            self.config.uids_per_window,
        );
        let progress = self.state.in_progress.as_mut().ok_or(GauntletError::NoWindowInProgress)?;
        progress.candidates = candidates.iter().map(|c| c.0).collect();
        progress.planned = planned.clone();
        Ok(EvalPlan { window, uids: planned, events: progress.events.clone() })
    }

    /// Records the evaluation of a planned uid.
    pub fn record_evaluation(&mut self, uid: Uid, outcome: EvalOutcome) -> Result<Recorded, GauntletError> {
        let progress = self.state.in_progress.as_ref().ok_or(GauntletError::NoWindowInProgress)?;
        let window = progress.window;
        if !progress.planned.contains(&uid) {
            return Err(GauntletError::NotPlanned { uid, window });
        }
        if progress.attempted.contains(&uid) {
            return Err(GauntletError::AlreadyRecorded { uid, window });
        }
        if let EvalOutcome::Evaluated(e) = &outcome {
            let ok = |x: f64| x.is_finite() && x > 0.0;
            if !(ok(e.own_before) && ok(e.random_before)) {
                return Err(GauntletError::BadBaseline { uid, own: e.own_before, random: e.random_before });
            }
        }
        if let Some(p) = self.state.in_progress.as_mut() {
            p.attempted.push(uid);
        }
        self.state.peers.entry(uid).or_default().last_eval_window = Some(window);

        let e = match outcome {
            EvalOutcome::Missing => {
                self.apply_missing_gradient(uid);
                return Ok(Recorded::Missing);
            }
            EvalOutcome::Invalid => {
                self.apply_invalid_gradient(uid);
                return Ok(Recorded::Invalid);
            }
            EvalOutcome::Evaluated(e) => e,
        };
        let gradient_score = e.random_improvement();
        let own_improvement = e.own_improvement();
        if !(gradient_score.is_finite() && own_improvement.is_finite()) {
            // An update that makes the loss infinite or NaN is not a usable gradient.
            self.apply_invalid_gradient(uid);
            return Ok(Recorded::Invalid);
        }
        self.track_negative(uid, gradient_score < 0.0);
        self.enter_score(uid, gradient_score);
        // The controlled test where configured and measurable, templar's otherwise.
        let own_advantage = self.config.own_data_margin.and_then(|m| e.own_advantage().map(|a| (a, m)));
        let helped_own_data = match own_advantage {
            Some((advantage, margin)) => advantage > margin,
            None => own_improvement > gradient_score,
        };
        let binary_indicator = if helped_own_data { 1.0 } else { -1.0 };
        let own_advantage = own_advantage.map(|(a, _)| a);
        let alpha = self.config.binary_score_ma_alpha;
        let sync = self.sync_score(e.steps_behind);
        let p = self.state.peers.entry(uid).or_default();
        p.gradient_score = gradient_score;
        p.binary_indicator = binary_indicator;
        p.bma = (1.0 - alpha) * p.bma + alpha * binary_indicator;
        p.sync_score = sync;
        self.state.evaluated.insert(uid);
        Ok(Recorded::Scored { gradient_score, binary_indicator, sync_score: sync, own_advantage })
    }

    /// `max(0, BMA)`, and 0 below `bma_threshold` once `bma_warmup_windows` have passed since the
    /// start window.
    pub fn effective_bma(&self, bma: f64, window: u64) -> f64 {
        let b = bma.max(0.0);
        let since = window.saturating_sub(self.state.start_window.unwrap_or(window));
        if since >= self.config.bma_warmup_windows && b < self.config.bma_threshold {
            0.0
        } else {
            b
        }
    }

    /// Ends the window in progress: sampling counters, the mostly-negative rule, the OpenSkill
    /// match of the window's scores (when there are at least two), final scores, and the weight
    /// vector.
    pub fn finish_window(&mut self) -> Result<WindowSummary, GauntletError> {
        let progress = self.state.in_progress.as_ref().ok_or(GauntletError::NoWindowInProgress)?;
        let window = progress.window;

        // Sampling counters: attempted uids start over at 1, the other candidates wait longer.
        let attempted = progress.attempted.clone();
        let candidates = progress.candidates.clone();
        for uid in &candidates {
            if let Some(c) = self.state.eval_counters.get_mut(uid) {
                *c = if attempted.contains(uid) { 1 } else { c.saturating_add(1) };
            }
        }

        let skip = self.skip_negative_rules(&self.state.pending_scores);
        self.apply_mostly_negative(skip);
        self.state.skip_negative_penalties = skip;

        let mut rated = Vec::new();
        let mut rating_error = None;
        if self.state.pending_scores.len() >= 2 {
            let pending = std::mem::take(&mut self.state.pending_scores);
            let uids: Vec<Uid> = pending.iter().map(|p| p.uid).collect();
            let ratings: Vec<Rating> = uids.iter().map(|&u| self.rating(u)).collect();
            let scores: Vec<f64> = pending.iter().map(|p| p.score).collect();
            match self.model.rate(&ratings, &scores) {
                Ok(new) => {
                    for (&uid, r) in uids.iter().zip(new) {
                        let evaluated = self.state.evaluated.contains(&uid);
                        let p = self.state.peers.entry(uid).or_default();
                        p.rating = Some(r);
                        let (bma, sync) = (p.bma, if evaluated { p.sync_score } else { 0.0 });
                        let bma = self.effective_bma(bma, window);
                        if let Some(p) = self.state.peers.get_mut(&uid) {
                            p.final_score = r.ordinal() * bma * sync;
                        }
                    }
                    rated = uids;
                }
                Err(e) => rating_error = Some(e),
            }
        }

        let scores: Vec<(Uid, f64)> = self.state.evaluated.iter().map(|&u| (u, self.final_score(u))).collect();
        let owner = self.state.in_progress.as_ref().and_then(|p| p.owner_uid);
        let weights = weight_vector(&scores, &self.weight_shape(owner));
        self.state.weights = weights.iter().map(|&(u, w)| (u, ExactF64(w))).collect();

        let events = self.state.in_progress.take().map(|p| p.events).unwrap_or_default();
        self.state.last_window = Some(window);
        Ok(WindowSummary {
            window,
            attempted,
            rated,
            weights,
            set_weights: self.weights_due(window),
            negative_rules_skipped: skip,
            rating_error,
            events,
        })
    }

    /// The shape of the weight vector under this configuration, in a window whose subnet owner
    /// is `owner_uid`.
    pub fn weight_shape(&self, owner_uid: Option<Uid>) -> WeightShape {
        WeightShape {
            burn_uid: self.config.burn_uid.or(owner_uid),
            burn_rate: self.config.burn_rate,
            gather_share: self.config.gather_share,
            gather_count: self.config.gather_peer_count,
            reserve_count: self.config.reserve_peer_count,
            gather_top_ratio: self.config.gather_top_ratio,
            reserve_decay_ratio: self.config.reserve_decay_ratio,
        }
    }

    /// The latest weight vector: `(uid, weight)`, positive weights, by uid, summing to 1.
    pub fn weights(&self) -> Vec<(Uid, f64)> {
        self.state.weights.iter().map(|(&u, w)| (u, w.0)).collect()
    }

    /// The latest weight vector as `set_weights` sends it (see [`crate::vector::to_u16_weights`]).
    pub fn u16_weights(&self) -> Result<Vec<(Uid, u16)>, GauntletError> {
        Ok(to_u16_weights(&self.weights())?)
    }

    /// Whether weights are set on chain after `window`.
    pub fn weights_due(&self, window: u64) -> bool {
        window.checked_rem(self.config.windows_per_weights) == Some(0)
    }

    /// Whether a new peer list is due in `window`.
    pub fn peers_due(&self, window: u64) -> bool {
        self.state
            .last_peer_update_window
            .is_none_or(|last| window.saturating_sub(last) >= self.config.peer_replacement_frequency)
    }

    /// The gather and reserve lists to publish, when due (templar `select_initial_peers` for the
    /// first list, then `select_next_peers`). Naughty peers and peers excluded for negative
    /// evaluations are left out — except that excluded ones (fewest negatives in a row first) fill
    /// up to `minimum_peers` if needed. `None` when not due or too few peers.
    pub fn select_peers(&mut self, sel: &PeerSelection) -> Option<PeerLists> {
        if !self.peers_due(sel.window) {
            return None;
        }
        let mut active = sel.active.clone();
        active.sort_unstable();
        active.dedup();
        active.retain(|u| !self.is_naughty(*u));
        let (mut eligible, mut excluded): (Vec<Uid>, Vec<Uid>) =
            active.into_iter().partition(|&u| !self.excluded_from_gather(u));
        if eligible.len() < self.config.minimum_peers {
            excluded.sort_by_key(|&u| (self.peer(u).map_or(0, |p| p.consecutive_negative), u));
            let need = self.config.minimum_peers - eligible.len();
            eligible.extend(excluded.into_iter().take(need));
        }
        let initial = self.state.last_peer_update_window.is_none();
        let (gather, reserve) = if initial {
            let incentive: BTreeMap<Uid, f64> = sel.incentive.iter().copied().collect();
            selection::initial_peers(
                sel.seed,
                &eligible,
                &incentive,
                self.config.gather_peer_count,
                self.config.reserve_peer_count,
            )
        } else {
            let weights: BTreeMap<Uid, f64> = self.weights().into_iter().collect();
            selection::peers_by_weight(
                &eligible,
                &weights,
                self.config.gather_peer_count,
                self.config.reserve_peer_count,
            )
        };
        if gather.len() + reserve.len() < self.config.minimum_peers || gather.is_empty() {
            return None;
        }
        self.state.last_peer_update_window = Some(sel.window);
        Some(PeerLists {
            gather,
            reserve,
            first_effective_window: sel.chain_window.saturating_add(self.config.peer_list_window_margin),
            initial_selection: initial,
        })
    }
}
