//! Every constant of the Gauntlet, named after templar's hyper-parameters and defaulted to the values
//! of the Covenant-72B run (`hparams/hparams.json` and `neurons/validator.py` of templar at
//! `142666f0`, see `reference/templar-protocol.md` §1 and §4).
//!
//! The struct deserializes from the validator's TOML/JSON configuration: every field is optional
//! there (a missing field keeps its default) and an unknown field is an error, so a typo cannot
//! silently fall back to a default.

use serde::{Deserialize, Serialize};

use crate::Uid;

/// The Gauntlet's constants. `Default` gives the original run's values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GauntletConfig {
    // ── OpenSkill (templar: `openskill_beta`, `openskill_tau`; the rest are openskill defaults) ──
    /// Performance noise β of the Plackett–Luce model (`openskill_beta` = 7).
    pub openskill_beta: f64,
    /// Additive dynamics τ, added in quadrature to σ before every update (`openskill_tau` = 0.1).
    pub openskill_tau: f64,
    /// Prior mean of a new rating (openskill default 25).
    pub openskill_mu: f64,
    /// Prior standard deviation of a new rating (openskill default 25/3).
    pub openskill_sigma: f64,
    /// Floor of the σ shrink factor (openskill default κ = 1e-4).
    pub openskill_kappa: f64,
    /// Score entered in the OpenSkill match for a missing or invalid gradient
    /// (`missing_gradient_penalty_score` = −99).
    pub missing_gradient_penalty_score: f64,

    // ── Binary moving average ──
    /// EMA weight of the binary indicator (`binary_score_ma_alpha` = 0.05).
    pub binary_score_ma_alpha: f64,
    /// Below this the BMA counts as 0 in the final score, after the warm-up (`bma_threshold` = 0.10).
    pub bma_threshold: f64,
    /// Windows after the start window before `bma_threshold` applies (`bma_warmup_windows` = 10).
    pub bma_warmup_windows: u64,
    /// The own-data test behind the binary indicator. `None` (the default) is templar's: +1 when
    /// the miner's update improves its own data relatively more than random data. `Some(margin)`
    /// is ours, controlled by the window's consensus update: +1 only when the miner's update helps
    /// its own data more than a generic good update would (the consensus' own-vs-random ratio on
    /// the same batches), by more than `margin` in units of the consensus' random improvement.
    /// Templar's test is a fair coin for an update that did not train on the miner's data (noise,
    /// a freeloader), so only the BMA's long average catches it; the controlled one says −1 to
    /// such an update in nearly every window. See the crate's README for the measurements.
    pub own_data_margin: Option<f64>,

    // ── Sync score ──
    /// Steps behind at which the sync score reaches 0: `sync = max(0, 1 − min(x, cap)/cap)^exp`
    /// (templar hard-codes 3 in `evaluate_miner_sync`).
    pub sync_score_cap_steps: f64,
    /// Exponent of the sync curve (templar hard-codes 2.5).
    pub sync_score_exponent: f64,
    /// A gather peer more than this many steps behind (or without a usable debug slice) is slashed
    /// (`sync_max_steps_behind` = 2).
    pub sync_max_steps_behind: f64,
    /// Multiplier of that slash (templar `sync_score_slash_rate` = 0.75).
    pub sync_score_slash_rate: f64,
    /// EMA weight of the per-parameter `|Δθ|` the steps-behind ratio divides by
    /// (templar `param_change_alpha` = 0.2).
    pub param_change_alpha: f32,
    /// Smallest divisor of a steps-behind ratio (templar `min_step_size` = 1e-9).
    pub sync_min_step_size: f32,

    // ── Penalties ──
    /// Multiplier for an evaluated uid whose gradient is missing or late
    /// (templar `missing_gradient_slash_rate` = 0.75).
    pub missing_gradient_slash_rate: f64,
    /// A positive final score that a slash brings below this becomes 0 (templar
    /// `score_zero_threshold` = 1e-4).
    pub score_zero_threshold: f64,
    /// Below this gather success rate every skipped gather peer is slashed to 0
    /// (`gather_peers_slash_threshold` = 0.4).
    pub gather_peers_slash_threshold: f64,
    /// Multipliers for the 1st, 2nd, … consecutive gather miss; later misses use 0
    /// (templar: 0.75, 0.5, then 0).
    pub gather_miss_multipliers: Vec<f64>,
    /// Length of the gather miss history (templar `missing_gradient_history_limit` = 8).
    pub missing_gradient_history_limit: usize,
    /// With a full miss history, a miss ratio at or above this puts the peer on the naughty list
    /// (templar: 0.5).
    pub missing_gradient_naughty_ratio: f64,
    /// Windows a peer stays on the naughty list (templar `naughty_peer_timeout` = 20).
    pub naughty_peer_timeout: u32,
    /// Multiplier applied each window to a peer that stopped uploading (templar hard-codes 0.75;
    /// its `inactivity_slash_rate` = 0.25 is the complement and is unused).
    pub inactivity_slash_rate: f64,
    /// Windows of inactivity after which the peer is reset (`reset_inactivity_windows` = 3).
    pub reset_inactivity_windows: u64,
    /// Evaluations kept per peer for the negative-score rules (templar `eval_history_limit` = 20).
    pub eval_history_limit: usize,
    /// The "mostly negative" rule looks at this many latest evaluations (templar: 8).
    pub negative_eval_window: usize,
    /// … and fires when the negative share is strictly above this (templar: 0.5).
    pub negative_eval_ratio: f64,
    /// Multiplier of that slash (templar: 0.25).
    pub negative_eval_slash_rate: f64,
    /// The negative rules are skipped in a window whose `negative_skip_rank`-th best score
    /// (1-based; the worst if fewer were scored) is negative (templar: 5).
    pub negative_skip_rank: usize,
    /// Consecutive negative evaluations that exclude a peer from the gather list until a positive
    /// one (`consecutive_negative_threshold` = 3).
    pub consecutive_negative_threshold: u32,
    /// Whether that exclusion is enabled (`exclude_negative_peers` = true).
    pub exclude_negative_peers: bool,
    /// Two gathered peers whose top-k indices overlap at least this much are flagged; the later
    /// committer is the copycat (`idx_overlap_threshold` = 0.4).
    pub idx_overlap_threshold: f64,
    /// Overlap from which the copycat is reset ("max", templar: 0.5).
    pub idx_overlap_max: f64,
    /// Overlap from which the copycat is also put on the naughty list ("mega", templar: 0.6).
    pub idx_overlap_mega: f64,
    /// Multiplier for a "high" overlap (templar `idx_similarity_slashing_rate["high"]` = 0.5).
    pub idx_overlap_high_slash_rate: f64,
    /// Copycat penalties start at this outer step (templar: 20).
    pub copycat_start_global_step: u64,

    // ── Evaluation sampling ──
    /// Uids evaluated per window (`uids_per_window` = 20).
    pub uids_per_window: usize,
    /// Ordinal bins once there are at least `bins × uids_per_window` candidates
    /// (`num_evaluation_bins` = 5).
    pub num_evaluation_bins: usize,

    // ── Peer lists ──
    /// Gather peers (`gather_peer_count` = 20).
    pub gather_peer_count: usize,
    /// Reserve peers (`reserve_peer_count` = 10).
    pub reserve_peer_count: usize,
    /// Fewest peers a list may have (`minimum_peers` = 1).
    pub minimum_peers: usize,
    /// Windows between two peer lists (`peer_replacement_frequency` = 2).
    pub peer_replacement_frequency: u64,
    /// A list takes effect this many windows after the chain's current window
    /// (`peer_list_window_margin` = 1).
    pub peer_list_window_margin: u64,

    // ── Weights ──
    /// The uid that receives the burned share. Unset (the default): the subnet owner's uid, which
    /// the validator reads from the chain every window (`SubnetOwnerHotkey`). Templar fixed it at
    /// 1, the owner's uid on its own subnet; on any other subnet that would pay whoever holds
    /// uid 1.
    pub burn_uid: Option<Uid>,
    /// Share of the weight burned (`burn_rate` = 0.5).
    pub burn_rate: f64,
    /// Share of the non-burned weight that goes to the gather ranks (`gather_share` = 0.75).
    pub gather_share: f64,
    /// Ratio of the first to the last gather rank's weight (`gather_top_ratio` = 2).
    pub gather_top_ratio: f64,
    /// Ratio between consecutive reserve ranks (`reserve_decay_ratio` = 0.5).
    pub reserve_decay_ratio: f64,
    /// Weights are set on chain when `window % windows_per_weights == 0` (`windows_per_weights` = 3).
    pub windows_per_weights: u64,
}

impl Default for GauntletConfig {
    fn default() -> Self {
        Self {
            openskill_beta: 7.0,
            openskill_tau: 0.1,
            openskill_mu: 25.0,
            openskill_sigma: 25.0 / 3.0,
            openskill_kappa: 1e-4,
            missing_gradient_penalty_score: -99.0,
            binary_score_ma_alpha: 0.05,
            bma_threshold: 0.10,
            bma_warmup_windows: 10,
            own_data_margin: None,
            sync_score_cap_steps: 3.0,
            sync_score_exponent: 2.5,
            sync_max_steps_behind: 2.0,
            sync_score_slash_rate: 0.75,
            param_change_alpha: 0.2,
            sync_min_step_size: 1e-9,
            missing_gradient_slash_rate: 0.75,
            score_zero_threshold: 1e-4,
            gather_peers_slash_threshold: 0.4,
            gather_miss_multipliers: vec![0.75, 0.5],
            missing_gradient_history_limit: 8,
            missing_gradient_naughty_ratio: 0.5,
            naughty_peer_timeout: 20,
            inactivity_slash_rate: 0.75,
            reset_inactivity_windows: 3,
            eval_history_limit: 20,
            negative_eval_window: 8,
            negative_eval_ratio: 0.5,
            negative_eval_slash_rate: 0.25,
            negative_skip_rank: 5,
            consecutive_negative_threshold: 3,
            exclude_negative_peers: true,
            idx_overlap_threshold: 0.4,
            idx_overlap_max: 0.5,
            idx_overlap_mega: 0.6,
            idx_overlap_high_slash_rate: 0.5,
            copycat_start_global_step: 20,
            uids_per_window: 20,
            num_evaluation_bins: 5,
            gather_peer_count: 20,
            reserve_peer_count: 10,
            minimum_peers: 1,
            peer_replacement_frequency: 2,
            peer_list_window_margin: 1,
            burn_uid: None,
            burn_rate: 0.5,
            gather_share: 0.75,
            gather_top_ratio: 2.0,
            reserve_decay_ratio: 0.5,
            windows_per_weights: 3,
        }
    }
}

/// A configuration value outside its meaningful range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} = {value} must be a finite number in {range}")]
    OutOfRange { field: &'static str, value: f64, range: &'static str },
    #[error("{field} must be at least 1")]
    Zero { field: &'static str },
    #[error("overlap thresholds must satisfy 0 ≤ idx_overlap_threshold ≤ idx_overlap_max ≤ idx_overlap_mega ≤ 1")]
    OverlapOrder,
    #[error("negative_eval_window ({window}) must be between 1 and eval_history_limit ({limit})")]
    NegativeWindow { window: usize, limit: usize },
}

fn check(field: &'static str, value: f64, ok: bool, range: &'static str) -> Result<(), ConfigError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange { field, value, range })
    }
}

fn unit(field: &'static str, v: f64) -> Result<(), ConfigError> {
    check(field, v, (0.0..=1.0).contains(&v), "[0, 1]")
}

fn positive(field: &'static str, v: f64) -> Result<(), ConfigError> {
    check(field, v, v > 0.0, "(0, ∞)")
}

fn nonzero(field: &'static str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        Err(ConfigError::Zero { field })
    } else {
        Ok(())
    }
}

impl GauntletConfig {
    /// Checks every value; the Gauntlet refuses a configuration that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("openskill_beta", self.openskill_beta)?;
        check("openskill_tau", self.openskill_tau, self.openskill_tau >= 0.0, "[0, ∞)")?;
        check("openskill_mu", self.openskill_mu, true, "(−∞, ∞)")?;
        positive("openskill_sigma", self.openskill_sigma)?;
        check(
            "openskill_kappa",
            self.openskill_kappa,
            self.openskill_kappa > 0.0 && self.openskill_kappa <= 1.0,
            "(0, 1]",
        )?;
        check("missing_gradient_penalty_score", self.missing_gradient_penalty_score, true, "(−∞, ∞)")?;
        unit("binary_score_ma_alpha", self.binary_score_ma_alpha)?;
        unit("bma_threshold", self.bma_threshold)?;
        if let Some(m) = self.own_data_margin {
            check("own_data_margin", m, m.is_finite() && m >= 0.0, "[0, ∞)")?;
        }
        positive("sync_score_cap_steps", self.sync_score_cap_steps)?;
        positive("sync_score_exponent", self.sync_score_exponent)?;
        check("sync_max_steps_behind", self.sync_max_steps_behind, self.sync_max_steps_behind >= 0.0, "[0, ∞)")?;
        unit("sync_score_slash_rate", self.sync_score_slash_rate)?;
        unit("param_change_alpha", f64::from(self.param_change_alpha))?;
        positive("sync_min_step_size", f64::from(self.sync_min_step_size))?;
        unit("missing_gradient_slash_rate", self.missing_gradient_slash_rate)?;
        check("score_zero_threshold", self.score_zero_threshold, self.score_zero_threshold >= 0.0, "[0, ∞)")?;
        unit("gather_peers_slash_threshold", self.gather_peers_slash_threshold)?;
        for &m in &self.gather_miss_multipliers {
            unit("gather_miss_multipliers", m)?;
        }
        nonzero("missing_gradient_history_limit", self.missing_gradient_history_limit as u64)?;
        unit("missing_gradient_naughty_ratio", self.missing_gradient_naughty_ratio)?;
        nonzero("naughty_peer_timeout", u64::from(self.naughty_peer_timeout))?;
        unit("inactivity_slash_rate", self.inactivity_slash_rate)?;
        nonzero("eval_history_limit", self.eval_history_limit as u64)?;
        if self.negative_eval_window == 0 || self.negative_eval_window > self.eval_history_limit {
            return Err(ConfigError::NegativeWindow {
                window: self.negative_eval_window,
                limit: self.eval_history_limit,
            });
        }
        unit("negative_eval_ratio", self.negative_eval_ratio)?;
        unit("negative_eval_slash_rate", self.negative_eval_slash_rate)?;
        nonzero("negative_skip_rank", self.negative_skip_rank as u64)?;
        nonzero("consecutive_negative_threshold", u64::from(self.consecutive_negative_threshold))?;
        unit("idx_overlap_threshold", self.idx_overlap_threshold)?;
        unit("idx_overlap_max", self.idx_overlap_max)?;
        unit("idx_overlap_mega", self.idx_overlap_mega)?;
        if !(self.idx_overlap_threshold <= self.idx_overlap_max && self.idx_overlap_max <= self.idx_overlap_mega) {
            return Err(ConfigError::OverlapOrder);
        }
        unit("idx_overlap_high_slash_rate", self.idx_overlap_high_slash_rate)?;
        nonzero("uids_per_window", self.uids_per_window as u64)?;
        nonzero("num_evaluation_bins", self.num_evaluation_bins as u64)?;
        nonzero("gather_peer_count", self.gather_peer_count as u64)?;
        nonzero("peer_replacement_frequency", self.peer_replacement_frequency)?;
        unit("burn_rate", self.burn_rate)?;
        unit("gather_share", self.gather_share)?;
        check("gather_top_ratio", self.gather_top_ratio, self.gather_top_ratio > 0.0, "(0, ∞)")?;
        check("reserve_decay_ratio", self.reserve_decay_ratio, self.reserve_decay_ratio > 0.0, "(0, ∞)")?;
        nonzero("windows_per_weights", self.windows_per_weights)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_original_runs_values_and_valid() {
        let c = GauntletConfig::default();
        c.validate().unwrap();
        assert_eq!((c.openskill_beta, c.openskill_tau), (7.0, 0.1));
        assert_eq!((c.binary_score_ma_alpha, c.bma_threshold, c.bma_warmup_windows), (0.05, 0.10, 10));
        assert_eq!((c.gather_peer_count, c.reserve_peer_count, c.uids_per_window), (20, 10, 20));
        assert_eq!((c.burn_uid, c.burn_rate, c.gather_share, c.reserve_decay_ratio), (None, 0.5, 0.75, 0.5));
        assert_eq!(c.idx_overlap_threshold, 0.4);
    }

    #[test]
    fn partial_json_overrides_only_named_fields_and_rejects_typos() {
        let c: GauntletConfig = serde_json::from_str(r#"{"uids_per_window": 4, "burn_rate": 0.25}"#).unwrap();
        assert_eq!(c.uids_per_window, 4);
        assert_eq!(c.burn_rate, 0.25);
        assert_eq!(c.openskill_beta, 7.0);
        assert!(serde_json::from_str::<GauntletConfig>(r#"{"uids_per_windw": 4}"#).is_err());
    }

    #[test]
    fn validation_rejects_out_of_range_values() {
        let mut c = GauntletConfig { burn_rate: 1.5, ..GauntletConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::OutOfRange { field: "burn_rate", .. })));
        c.burn_rate = f64::NAN;
        assert!(c.validate().is_err());
        let c = GauntletConfig { idx_overlap_max: 0.3, ..GauntletConfig::default() };
        assert_eq!(c.validate(), Err(ConfigError::OverlapOrder));
        let c = GauntletConfig { windows_per_weights: 0, ..GauntletConfig::default() };
        assert_eq!(c.validate(), Err(ConfigError::Zero { field: "windows_per_weights" }));
        let c = GauntletConfig { negative_eval_window: 21, ..GauntletConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::NegativeWindow { .. })));
    }
}
