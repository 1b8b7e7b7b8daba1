//! The penalty rules (`PROTOCOL.md` §6.5, `reference/templar-protocol.md` §4.6), each a method of
//! the [`Gauntlet`]. Unless said otherwise a rule multiplies a uid's final score, and its BMA, only
//! when the final score is positive; a rule "with the zero threshold" then sets a final score below
//! `score_zero_threshold` (1e-4) to 0. The constants are in [`crate::GauntletConfig`].
//!
//! Deliberate differences from templar, each for a reason given at the rule:
//! - the naughty list counts down every window (templar only in windows with a gather result after
//!   outer step 20, so a peer made naughty earlier stayed naughty until then);
//! - a uid flagged several times in one window gets its most severe level (templar kept whichever
//!   pair came last);
//! - a changed hotkey makes the uid a new peer: every score and counter is forgotten (templar only
//!   dropped it from the naughty list);
//! - a gather peer whose debug slice is unusable (non-finite, wrong size) is out of sync (templar's
//!   NaN comparison let a NaN slice through).

use std::collections::BTreeMap;

use crate::copycat::{CopycatFinding, OverlapLevel};
use crate::state::{Hotkey, PeerState, PenaltyEvent, PenaltyKind, PendingScore};
use crate::{GatherReport, Gauntlet, Uid};

impl Gauntlet {
    /// The final score of a uid (0 for an unknown one).
    pub fn final_score(&self, uid: Uid) -> f64 {
        self.state.peers.get(&uid).map_or(0.0, |p| p.final_score)
    }

    /// Forgets a uid's scores, rating and counters (templar `reset_peer`): final score, weight,
    /// gradient score, BMA, indicator, sync score, rating, sampling counter, inactivity entry,
    /// evaluation and gather-miss histories. The naughty list, the hotkey and the set of
    /// evaluated uids are kept.
    pub fn reset_peer(&mut self, uid: Uid) {
        self.state.peers.remove(&uid);
        self.state.weights.remove(&uid);
        self.state.eval_counters.remove(&uid);
        self.state.inactive_since.remove(&uid);
    }

    /// Multiplies a positive final score and the BMA by `multiplier`.
    pub(crate) fn slash(&mut self, uid: Uid, multiplier: f64, zero_threshold: bool, kind: PenaltyKind) {
        let threshold = self.config.score_zero_threshold;
        let Some(p) = self.state.peers.get_mut(&uid) else {
            self.event(uid, kind, 0.0, 0.0);
            return;
        };
        let before = p.final_score;
        if before > 0.0 {
            p.final_score *= multiplier;
            p.bma *= multiplier;
            if zero_threshold && p.final_score < threshold {
                p.final_score = 0.0;
            }
        }
        let after = p.final_score;
        self.event(uid, kind, before, after);
    }

    pub(crate) fn event(&mut self, uid: Uid, kind: PenaltyKind, final_before: f64, final_after: f64) {
        // Rules only run inside a window; the window's record collects what they did.
        if let Some(w) = self.state.in_progress.as_mut() {
            w.events.push(PenaltyEvent { uid, kind, final_before, final_after });
        }
    }

    /// Enters a score in the next OpenSkill match (replacing an earlier one of the same uid, at
    /// its place) and gives a new uid its prior rating.
    pub(crate) fn enter_score(&mut self, uid: Uid, score: f64) {
        match self.state.pending_scores.iter_mut().find(|p| p.uid == uid) {
            Some(p) => p.score = score,
            None => self.state.pending_scores.push(PendingScore { uid, score }),
        }
        let prior = self.model.rating();
        self.state.peers.entry(uid).or_default().rating.get_or_insert(prior);
    }

    /// A missing or invalid gradient enters the match with `missing_gradient_penalty_score`.
    fn enter_missing(&mut self, uid: Uid) {
        self.state.evaluated.insert(uid);
        self.enter_score(uid, self.config.missing_gradient_penalty_score);
    }

    /// A new hotkey at a uid is a new peer (a re-registration): forget everything about the uid.
    pub(crate) fn observe_hotkeys(&mut self, hotkeys: &[(Uid, Hotkey)]) {
        for &(uid, hotkey) in hotkeys {
            match self.state.hotkeys.insert(uid, hotkey) {
                Some(old) if old != hotkey => {
                    let before = self.final_score(uid);
                    self.reset_peer(uid);
                    self.state.naughty.remove(&uid);
                    self.state.evaluated.remove(&uid);
                    self.state.active.remove(&uid);
                    self.state.pending_scores.retain(|p| p.uid != uid);
                    self.event(uid, PenaltyKind::HotkeyChanged, before, 0.0);
                }
                _ => {}
            }
        }
    }

    /// Inactivity (templar `penalize_inactive_peers`): a uid active last window and not now is
    /// inactive from this window; while inactive its positive final score is multiplied by
    /// `inactivity_slash_rate` (0.75) every window (no BMA change), and once it has been inactive
    /// for `reset_inactivity_windows` (3) windows it is reset. Becoming active again clears it.
    /// Also refreshes the sampling counters: active uids keep theirs, new ones start at 1.
    pub(crate) fn apply_activity(&mut self, window: u64, active: &[Uid]) {
        let now: std::collections::BTreeSet<Uid> = active.iter().copied().collect();
        let gone: Vec<Uid> = self.state.active.difference(&now).copied().collect();
        for uid in gone {
            self.state.inactive_since.entry(uid).or_insert(window);
        }
        let tracked: Vec<(Uid, u64)> = self.state.inactive_since.iter().map(|(&u, &s)| (u, s)).collect();
        for (uid, since) in tracked {
            if now.contains(&uid) {
                self.state.inactive_since.remove(&uid);
            } else if window.saturating_sub(since) >= self.config.reset_inactivity_windows {
                let before = self.final_score(uid);
                self.reset_peer(uid);
                self.event(uid, PenaltyKind::InactiveReset { since }, before, 0.0);
            } else {
                let rate = self.config.inactivity_slash_rate;
                let before = self.final_score(uid);
                if let Some(p) = self.state.peers.get_mut(&uid) {
                    if p.final_score > 0.0 {
                        p.final_score *= rate;
                    }
                }
                let after = self.final_score(uid);
                self.event(uid, PenaltyKind::Inactive { since }, before, after);
            }
        }
        self.state.eval_counters.retain(|u, _| now.contains(u));
        for &uid in &now {
            self.state.eval_counters.entry(uid).or_insert(1);
        }
        self.state.active = now;
    }

    /// Copycats and the naughty list (templar `slash_from_overlap`). Every naughty uid counts as a
    /// `Max` offender; from outer step `copycat_start_global_step` (20) on, this window's findings
    /// are added (a uid keeps its most severe level). `High`: × `idx_overlap_high_slash_rate`
    /// (0.5). `Max`: reset. `Mega`: reset and naughty for `naughty_peer_timeout` (20) windows.
    /// Then every naughty entry counts down one window.
    pub(crate) fn apply_copycats(&mut self, global_step: u64, findings: &[CopycatFinding]) {
        let mut levels: BTreeMap<Uid, OverlapLevel> =
            self.state.naughty.keys().map(|&u| (u, OverlapLevel::Max)).collect();
        if global_step >= self.config.copycat_start_global_step {
            for f in findings {
                let level = levels.entry(f.offender).or_insert(f.level);
                *level = (*level).max(f.level);
            }
        }
        for (uid, level) in levels {
            let before = self.final_score(uid);
            let multiplier = match level {
                OverlapLevel::High => self.config.idx_overlap_high_slash_rate,
                OverlapLevel::Max | OverlapLevel::Mega => 0.0,
            };
            if level >= OverlapLevel::Max {
                self.reset_peer(uid);
            }
            if level == OverlapLevel::Mega {
                self.state.naughty.insert(uid, self.config.naughty_peer_timeout);
            }
            if let Some(left) = self.state.naughty.get_mut(&uid) {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    self.state.naughty.remove(&uid);
                }
            }
            if let Some(p) = self.state.peers.get_mut(&uid) {
                if before > 0.0 {
                    p.final_score *= multiplier;
                    p.bma *= multiplier;
                }
            }
            let after = self.final_score(uid);
            self.event(uid, PenaltyKind::Copycat { level }, before, after);
        }
    }

    /// Out of sync (templar `slash_for_poor_sync`): each gather peer without a usable debug slice
    /// (`None`, NaN) or more than `sync_max_steps_behind` (2) steps behind: × 0.75.
    pub(crate) fn apply_sync(&mut self, gather_sync: &[(Uid, Option<f64>)]) {
        for &(uid, steps) in gather_sync {
            let bad = match steps {
                Some(x) => x.is_nan() || x > self.config.sync_max_steps_behind,
                None => true,
            };
            if bad {
                let rate = self.config.sync_score_slash_rate;
                self.slash(uid, rate, false, PenaltyKind::OutOfSync { steps_behind: steps.filter(|x| !x.is_nan()) });
            }
        }
    }

    /// Gather misses (templar `slash_for_missing_gradients`). For each skipped gather peer the miss
    /// enters its history (last `missing_gradient_history_limit` = 8). With a full history and at
    /// least `missing_gradient_naughty_ratio` (½) of it missed: naughty list for 20 windows, and a
    /// reset if its final score was positive. Otherwise: × 0 when the gather's success rate
    /// (`gathered / intended`) is below `gather_peers_slash_threshold` (0.4), else × 0.75 for the
    /// first miss in a row, × 0.5 for the second, × 0 from the third (zero threshold). Either way
    /// the uid counts as evaluated and enters the match with −99. Gathered peers record a success
    /// and their run of misses ends.
    pub(crate) fn apply_gather(&mut self, gather: &GatherReport) {
        let success_rate =
            if gather.intended.is_empty() { 0.0 } else { gather.gathered.len() as f64 / gather.intended.len() as f64 };
        let limit = self.config.missing_gradient_history_limit;
        let mut skipped = gather.skipped.clone();
        skipped.sort_unstable();
        skipped.dedup();
        for uid in skipped {
            let p = self.state.peers.entry(uid).or_default();
            p.missing_history.push_back(true);
            while p.missing_history.len() > limit {
                p.missing_history.pop_front();
            }
            p.consecutive_missing = p.consecutive_missing.saturating_add(1);
            let consecutive = p.consecutive_missing;
            let missed = p.missing_history.iter().filter(|&&m| m).count();
            let of = p.missing_history.len();
            if of >= limit && missed as f64 / of as f64 >= self.config.missing_gradient_naughty_ratio {
                let before = p.final_score;
                self.state.naughty.insert(uid, self.config.naughty_peer_timeout);
                if before > 0.0 {
                    self.reset_peer(uid);
                }
                let after = self.final_score(uid);
                self.event(uid, PenaltyKind::GatherMissNaughty { missed, of }, before, after);
            } else {
                let multiplier = if success_rate < self.config.gather_peers_slash_threshold {
                    0.0
                } else {
                    let i = consecutive.saturating_sub(1) as usize;
                    self.config.gather_miss_multipliers.get(i).copied().unwrap_or(0.0)
                };
                self.slash(uid, multiplier, true, PenaltyKind::GatherMiss { consecutive, multiplier });
            }
            self.enter_missing(uid);
        }
        for &uid in &gather.gathered {
            let p = self.state.peers.entry(uid).or_default();
            p.missing_history.push_back(false);
            while p.missing_history.len() > limit {
                p.missing_history.pop_front();
            }
            p.consecutive_missing = 0;
        }
    }

    /// An evaluated uid's gradient was missing or outside the put window (templar
    /// `slash_for_missing_gradient`): × `missing_gradient_slash_rate` (0.75), zero threshold;
    /// −99 in the match.
    pub(crate) fn apply_missing_gradient(&mut self, uid: Uid) {
        let rate = self.config.missing_gradient_slash_rate;
        self.slash(uid, rate, true, PenaltyKind::MissingGradient);
        self.enter_missing(uid);
    }

    /// An evaluated uid's gradient was invalid (templar `slash_for_invalid_gradient`): a positive
    /// final score becomes 0 (the BMA is kept); −99 in the match.
    pub(crate) fn apply_invalid_gradient(&mut self, uid: Uid) {
        let p = self.state.peers.entry(uid).or_default();
        let before = p.final_score;
        if before > 0.0 {
            p.final_score = 0.0;
        }
        let after = p.final_score;
        self.event(uid, PenaltyKind::InvalidGradient, before, after);
        self.enter_missing(uid);
    }

    /// Records whether an evaluation was negative (templar `track_negative_evaluation`).
    pub(crate) fn track_negative(&mut self, uid: Uid, negative: bool) {
        let limit = self.config.eval_history_limit;
        let p: &mut PeerState = self.state.peers.entry(uid).or_default();
        p.eval_history.push_back(negative);
        while p.eval_history.len() > limit {
            p.eval_history.pop_front();
        }
        p.consecutive_negative = if negative { p.consecutive_negative.saturating_add(1) } else { 0 };
    }

    /// Whether the negative-evaluation rules are skipped for the scores of a window: true when its
    /// `negative_skip_rank`-th best score (5th; the worst if fewer) is negative — the whole field
    /// did badly, so a negative score says little about one peer (templar
    /// `should_skip_negative_penalty`).
    pub fn skip_negative_rules(&self, scores: &[PendingScore]) -> bool {
        if scores.is_empty() {
            return false;
        }
        let mut s: Vec<f64> = scores.iter().map(|p| p.score).collect();
        s.sort_by(|a, b| b.total_cmp(a));
        let i = (self.config.negative_skip_rank - 1).min(s.len() - 1);
        s[i] < 0.0
    }

    /// Mostly negative (templar `apply_negative_evaluation_penalties`): every uid with at least
    /// `negative_eval_window` (8) evaluations, more than `negative_eval_ratio` (½) of the latest 8
    /// negative: × `negative_eval_slash_rate` (0.25), zero threshold — unless `skip`.
    pub(crate) fn apply_mostly_negative(&mut self, skip: bool) {
        if skip {
            return;
        }
        let n = self.config.negative_eval_window;
        let flagged: Vec<(Uid, usize)> = self
            .state
            .peers
            .iter()
            .filter(|(_, p)| p.eval_history.len() >= n)
            .map(|(&u, p)| (u, p.eval_history.iter().rev().take(n).filter(|&&neg| neg).count()))
            .filter(|&(_, negatives)| negatives as f64 / n as f64 > self.config.negative_eval_ratio)
            .collect();
        for (uid, negatives) in flagged {
            if self.final_score(uid) > 0.0 {
                let rate = self.config.negative_eval_slash_rate;
                self.slash(uid, rate, true, PenaltyKind::MostlyNegative { negatives, of: n });
            }
        }
    }

    /// Whether a uid is kept out of the gather list for negative evaluations: at least
    /// `consecutive_negative_threshold` (3) in a row, unless the latest window skipped the
    /// negative rules. It ends with the next positive evaluation.
    pub fn excluded_from_gather(&self, uid: Uid) -> bool {
        self.config.exclude_negative_peers
            && !self.state.skip_negative_penalties
            && self
                .state
                .peers
                .get(&uid)
                .is_some_and(|p| p.consecutive_negative >= self.config.consecutive_negative_threshold)
    }

    /// Whether a uid is on the naughty list.
    pub fn is_naughty(&self, uid: Uid) -> bool {
        self.state.naughty.contains_key(&uid)
    }
}
