//! How far behind a miner's model is, from the debug slices it publishes (templar
//! `compare_model_with_debug_dict` and `evaluate_miner_sync`, `reference/templar-protocol.md` §4.3).
//!
//! After each outer step a miner publishes two elements of every parameter (`flatten()[10:12]`).
//! The validator compares them with the same elements of its own model: per element,
//! `ratio = |θ_val − θ_miner| / max(EMA|Δθ|, min_step)`, where `EMA|Δθ|` is the exponential moving
//! average (α = 0.2) of how much that element moved per outer step on the validator
//! ([`ParamChangeTracker`]); a parameter with no history divides by the outer learning rate.
//! "Steps behind" is the inter-quartile mean of all ratios (the mean of the values within
//! `[Q1, Q3]`, quantiles by linear interpolation as `torch.quantile`), and
//! `sync = max(0, 1 − min(x, 3)/3)^2.5`.
//!
//! Ratios and quantiles are computed in `f32` as torch does on `f32` tensors; the final mean is
//! accumulated in `f64` (torch's `f32` mean may differ in the last bits).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One parameter's slices: the validator's own elements, the miner's published ones, and the
/// validator's `EMA|Δθ|` for those elements, if it has any yet.
#[derive(Clone, Copy, Debug)]
pub struct SliceComparison<'a> {
    pub validator: &'a [f32],
    pub miner: &'a [f32],
    pub avg_change: Option<&'a [f32]>,
}

/// Why steps-behind cannot be computed; the Gauntlet treats every such case as "no usable debug
/// slice": sync score 0 and, for a gather peer, the out-of-sync penalty.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SyncError {
    #[error("no parameter could be compared")]
    NothingCompared,
    #[error("parameter {param}: validator slice has {validator} elements, miner slice {miner}")]
    LengthMismatch { param: usize, validator: usize, miner: usize },
    #[error("parameter {param}: a slice value is not finite")]
    NonFinite { param: usize },
}

/// The per-element ratios `|θ_val − θ_miner| / step` of every comparison, in order.
///
/// `fallback_step` is the divisor for a parameter without (or with a wrongly sized) `EMA|Δθ|`;
/// `min_step` bounds the EMA from below. Empty comparisons are skipped.
pub fn step_ratios(params: &[SliceComparison<'_>], fallback_step: f32, min_step: f32) -> Result<Vec<f32>, SyncError> {
    let mut ratios = Vec::new();
    for (param, p) in params.iter().enumerate() {
        if p.validator.len() != p.miner.len() {
            return Err(SyncError::LengthMismatch { param, validator: p.validator.len(), miner: p.miner.len() });
        }
        if p.validator.iter().chain(p.miner).any(|v| !v.is_finite()) {
            return Err(SyncError::NonFinite { param });
        }
        let avg = p.avg_change.filter(|a| a.len() == p.validator.len() && a.iter().all(|v| v.is_finite()));
        for (i, (&v, &m)) in p.validator.iter().zip(p.miner).enumerate() {
            let step = match avg {
                Some(a) => a[i].max(min_step),
                None => fallback_step,
            };
            ratios.push((v - m).abs() / step);
        }
    }
    Ok(ratios)
}

/// `torch.quantile(x, q)` with linear interpolation, on sorted values.
fn quantile_sorted(sorted: &[f32], q: f32) -> f32 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let pos = q * (n - 1) as f32;
    let below = pos.floor();
    let lo = sorted[below as usize];
    let hi = sorted[(pos.ceil() as usize).min(n - 1)];
    let w = pos - below;
    if lo == hi || w == 0.0 {
        return lo;
    }
    if hi.is_infinite() {
        // lerp(lo, ∞, w > 0) = ∞ (the formula would give ∞ − ∞).
        return hi;
    }
    // ATen's lerp: start + w·(end − start) for w < ½, else end − (end − start)·(1 − w).
    if w < 0.5 {
        lo + w * (hi - lo)
    } else {
        hi - (hi - lo) * (1.0 - w)
    }
}

/// Inter-quartile mean: the mean of the values `x` with `Q1 ≤ x ≤ Q3`. `None` for no values.
pub fn interquartile_mean(values: &[f32]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let q1 = quantile_sorted(&sorted, 0.25);
    let q3 = quantile_sorted(&sorted, 0.75);
    let (sum, count) =
        sorted.iter().filter(|&&v| v >= q1 && v <= q3).fold((0.0f64, 0usize), |(s, c), &v| (s + f64::from(v), c + 1));
    // Q1 and Q3 lie within [min, max] and Q1 ≤ Q3, so at least one value is in range.
    (count > 0).then(|| sum / count as f64)
}

/// Steps behind: the inter-quartile mean of [`step_ratios`].
pub fn steps_behind(params: &[SliceComparison<'_>], fallback_step: f32, min_step: f32) -> Result<f64, SyncError> {
    let ratios = step_ratios(params, fallback_step, min_step)?;
    interquartile_mean(&ratios).ok_or(SyncError::NothingCompared)
}

/// `max(0, 1 − min(x, cap)/cap)^exponent`; a NaN `x` scores 0.
pub fn sync_score(steps_behind: f64, cap: f64, exponent: f64) -> f64 {
    if steps_behind.is_nan() {
        return 0.0;
    }
    let x = steps_behind.min(cap);
    (1.0 - x / cap).max(0.0).powf(exponent)
}

/// The validator's `EMA|Δθ|` of the debug elements of each parameter, updated after every outer
/// step (templar `param_avg_change`, `prev_param_state`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParamChangeTracker {
    /// The slice seen after the previous outer step, per parameter name.
    previous: BTreeMap<String, Vec<f32>>,
    /// `EMA|Δθ|` per parameter name.
    average: BTreeMap<String, Vec<f32>>,
}

impl ParamChangeTracker {
    /// Records a parameter's debug slice after an outer step: the first `|Δθ|` initialises the
    /// average, later ones update it with weight `alpha`. A slice whose length changed, or with a
    /// non-finite value, restarts that parameter's history.
    pub fn observe(&mut self, name: &str, slice: &[f32], alpha: f32) {
        if slice.iter().any(|v| !v.is_finite()) {
            self.previous.remove(name);
            self.average.remove(name);
            return;
        }
        match self.previous.get(name) {
            Some(prev) if prev.len() == slice.len() => {
                let delta: Vec<f32> = slice.iter().zip(prev).map(|(c, p)| (c - p).abs()).collect();
                match self.average.get_mut(name) {
                    Some(avg) if avg.len() == delta.len() => {
                        for (a, d) in avg.iter_mut().zip(&delta) {
                            *a = *a * (1.0 - alpha) + d * alpha;
                        }
                    }
                    _ => {
                        self.average.insert(name.to_owned(), delta);
                    }
                }
            }
            _ => {
                self.average.remove(name);
            }
        }
        self.previous.insert(name.to_owned(), slice.to_vec());
    }

    /// The current `EMA|Δθ|` of a parameter, once it has moved at least once.
    pub fn avg_change(&self, name: &str) -> Option<&[f32]> {
        self.average.get(name).map(Vec::as_slice)
    }

    /// Whether every stored value is finite (used when loading a state file).
    pub(crate) fn is_valid(&self) -> bool {
        self.previous.values().chain(self.average.values()).flatten().all(|v| v.is_finite())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_torch_linear_interpolation() {
        // torch.quantile(torch.tensor([1., 2., 3., 4.]), 0.25) == 1.75, 0.75 → 3.25
        let s = [1.0f32, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&s, 0.25), 1.75);
        assert_eq!(quantile_sorted(&s, 0.75), 3.25);
        // Five values: Q1 and Q3 fall on elements.
        let s = [0.0f32, 1.0, 2.0, 10.0, 100.0];
        assert_eq!(quantile_sorted(&s, 0.25), 1.0);
        assert_eq!(quantile_sorted(&s, 0.75), 10.0);
    }

    #[test]
    fn interquartile_mean_ignores_outliers() {
        // Values within [1.75, 3.25] of [1, 2, 3, 4] are 2 and 3.
        assert_eq!(interquartile_mean(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // [0, 1, 2, 10, 100]: Q1 = 1, Q3 = 10 (inclusive) → mean(1, 2, 10).
        assert_eq!(interquartile_mean(&[100.0, 0.0, 2.0, 1.0, 10.0]), Some(13.0 / 3.0));
        assert_eq!(interquartile_mean(&[7.0]), Some(7.0));
        assert_eq!(interquartile_mean(&[]), None);
        // Infinite ratios (a miner far away) make the mean infinite: sync 0.
        let x = interquartile_mean(&[f32::INFINITY, f32::INFINITY, f32::INFINITY, 1.0]).unwrap();
        assert!(x.is_infinite());
        assert_eq!(sync_score(x, 3.0, 2.5), 0.0);
    }

    #[test]
    fn step_ratios_use_the_ema_the_floor_and_the_fallback() {
        let v = [1.0f32, 2.0];
        let m = [0.9f32, 2.2];
        let avg = [0.05f32, 0.0];
        let with_avg = SliceComparison { validator: &v, miner: &m, avg_change: Some(&avg) };
        let r = step_ratios(&[with_avg], 0.4, 1e-3).unwrap();
        assert!((r[0] - 0.1 / 0.05).abs() < 1e-4);
        assert!((r[1] - 0.2 / 1e-3).abs() < 0.1);
        let no_avg = SliceComparison { validator: &v, miner: &m, avg_change: None };
        let r = step_ratios(&[no_avg], 0.4, 1e-9).unwrap();
        assert!((r[0] - 0.25).abs() < 1e-5 && (r[1] - 0.5).abs() < 1e-5);
        // A wrongly sized EMA falls back to the learning rate, as templar does.
        let short = [0.05f32];
        let bad_avg = SliceComparison { validator: &v, miner: &m, avg_change: Some(&short) };
        assert_eq!(step_ratios(&[bad_avg], 0.4, 1e-9).unwrap(), r);
    }

    #[test]
    fn untrusted_slices_are_typed_errors() {
        let v = [1.0f32, 2.0];
        let short = [1.0f32];
        let nan = [f32::NAN, 1.0];
        assert_eq!(
            steps_behind(&[SliceComparison { validator: &v, miner: &short, avg_change: None }], 0.4, 1e-9),
            Err(SyncError::LengthMismatch { param: 0, validator: 2, miner: 1 })
        );
        assert_eq!(
            steps_behind(&[SliceComparison { validator: &v, miner: &nan, avg_change: None }], 0.4, 1e-9),
            Err(SyncError::NonFinite { param: 0 })
        );
        assert_eq!(steps_behind(&[], 0.4, 1e-9), Err(SyncError::NothingCompared));
    }

    #[test]
    fn sync_curve() {
        assert_eq!(sync_score(0.0, 3.0, 2.5), 1.0);
        assert!((sync_score(1.0, 3.0, 2.5) - (2.0f64 / 3.0).powf(2.5)).abs() < 1e-15);
        assert!((sync_score(1.5, 3.0, 2.5) - 0.5f64.powf(2.5)).abs() < 1e-15);
        assert_eq!(sync_score(3.0, 3.0, 2.5), 0.0);
        assert_eq!(sync_score(50.0, 3.0, 2.5), 0.0);
        assert_eq!(sync_score(f64::NAN, 3.0, 2.5), 0.0);
    }

    #[test]
    fn identical_models_are_zero_steps_behind() {
        let v = [0.5f32, -0.25];
        let x = steps_behind(&[SliceComparison { validator: &v, miner: &v, avg_change: None }], 0.4, 1e-9).unwrap();
        assert_eq!(x, 0.0);
        assert_eq!(sync_score(x, 3.0, 2.5), 1.0);
    }

    #[test]
    fn tracker_is_an_ema_of_absolute_changes() {
        let mut t = ParamChangeTracker::default();
        t.observe("w", &[1.0, 1.0], 0.2);
        assert_eq!(t.avg_change("w"), None);
        t.observe("w", &[1.5, 0.0], 0.2);
        assert_eq!(t.avg_change("w"), Some(&[0.5f32, 1.0][..]));
        t.observe("w", &[1.5, 1.0], 0.2);
        let a = t.avg_change("w").unwrap();
        assert!((a[0] - 0.4).abs() < 1e-7 && (a[1] - 1.0).abs() < 1e-7);
        // A resized parameter starts over.
        t.observe("w", &[1.0, 2.0, 3.0], 0.2);
        assert_eq!(t.avg_change("w"), None);
    }
}
