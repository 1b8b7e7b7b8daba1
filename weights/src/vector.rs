//! The weight vector a validator sets on chain (templar `update_weights`,
//! `reference/templar-protocol.md` §4.5) and its `u16` form (bittensor SDK
//! `convert_weights_and_uids_for_emit`, 9.10.1).
//!
//! Uids with a positive final score are ranked (best first; ties by uid). The first
//! `gather_count` (20) share `(1 − burn)·gather_share` (0.375) in proportion to
//! `linspace(gather_top_ratio, 1, n)` (2 → 1); the next `reserve_count` (10) share
//! `(1 − burn)·(1 − gather_share)` (0.125) in proportion to `decay^i` (0.5^i). If the best reserve
//! weight then exceeds the smallest gather weight, every reserve weight is multiplied by
//! `min_gather / max_reserve · decay`. The non-burned weights are rescaled to sum to `1 − burn` and
//! the burn uid gets `burn` (0.5); with no positive score at all the burn uid gets 1.
//! Computed in `f64` (templar: `f32` tensors).

use serde::{Deserialize, Serialize};

use crate::Uid;

/// The shape of the vector; [`crate::GauntletConfig`] holds the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightShape {
    /// Who receives the burned share; `None`: nobody (the share goes to the miners).
    pub burn_uid: Option<Uid>,
    pub burn_rate: f64,
    pub gather_share: f64,
    pub gather_count: usize,
    pub reserve_count: usize,
    pub gather_top_ratio: f64,
    pub reserve_decay_ratio: f64,
}

/// `torch.linspace(start, end, steps)` in f64: the first half counted from `start`, the second
/// from `end`, as ATen does.
pub fn linspace(start: f64, end: f64, steps: usize) -> Vec<f64> {
    match steps {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (steps - 1) as f64;
            let half = steps / 2;
            (0..steps)
                .map(|i| if i < half { start + step * i as f64 } else { end - step * (steps - 1 - i) as f64 })
                .collect()
        }
    }
}

/// The weight of every uid that gets one, sorted by uid, all positive. `scores` are final scores
/// (non-finite and non-positive ones get nothing; the burn uid is never ranked as a miner).
pub fn weight_vector(scores: &[(Uid, f64)], shape: &WeightShape) -> Vec<(Uid, f64)> {
    let burn = match shape.burn_uid {
        Some(_) if shape.burn_rate.is_finite() => shape.burn_rate.clamp(0.0, 1.0),
        _ => 0.0,
    };
    let mut ranked: Vec<(Uid, f64)> =
        scores.iter().copied().filter(|&(u, s)| s.is_finite() && s > 0.0 && Some(u) != shape.burn_uid).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.dedup_by_key(|x| x.0);
    let gather: Vec<Uid> = ranked.iter().take(shape.gather_count).map(|x| x.0).collect();
    let reserve: Vec<Uid> = ranked.iter().skip(shape.gather_count).take(shape.reserve_count).map(|x| x.0).collect();

    let mut gather_w = Vec::new();
    if !gather.is_empty() {
        let profile = linspace(shape.gather_top_ratio, 1.0, gather.len());
        let sum: f64 = profile.iter().sum();
        let total = (1.0 - burn) * shape.gather_share;
        gather_w = profile.iter().map(|p| total * (p / sum)).collect();
    }
    let mut reserve_w = Vec::new();
    if !reserve.is_empty() {
        let profile: Vec<f64> = (0..reserve.len()).map(|i| shape.reserve_decay_ratio.powi(i as i32)).collect();
        let sum: f64 = profile.iter().sum();
        let total = (1.0 - burn) * (1.0 - shape.gather_share);
        reserve_w = profile.iter().map(|p| total * (p / sum)).collect();
    }
    if !gather_w.is_empty() && !reserve_w.is_empty() {
        let min_gather = gather_w.iter().copied().fold(f64::INFINITY, f64::min);
        let max_reserve = reserve_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max_reserve > min_gather {
            let factor = min_gather / max_reserve * shape.reserve_decay_ratio;
            reserve_w.iter_mut().for_each(|w| *w *= factor);
        }
    }

    let mut out: Vec<(Uid, f64)> = gather.into_iter().zip(gather_w).chain(reserve.into_iter().zip(reserve_w)).collect();
    let non_burn: f64 = out.iter().map(|x| x.1).sum();
    if non_burn > 0.0 && non_burn.is_finite() {
        let scale = (1.0 - burn) / non_burn;
        out.iter_mut().for_each(|x| x.1 *= scale);
        out.extend(shape.burn_uid.map(|u| (u, burn)));
    } else {
        out.clear();
        out.extend(shape.burn_uid.map(|u| (u, 1.0)));
    }
    out.retain(|x| x.1 > 0.0);
    out.sort_by_key(|x| x.0);
    out
}

/// Weights that cannot be set on chain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum U16WeightsError {
    #[error("weight of uid {uid} is negative or not finite ({weight})")]
    BadWeight { uid: Uid, weight: f64 },
}

/// The `u16` weights `set_weights` sends, normalized as the bittensor SDK does: divided by the
/// largest weight, times 65535, rounded half to even (Python's `round`), zeros dropped. An empty or
/// all-zero vector gives an empty list (nothing to set).
pub fn to_u16_weights(weights: &[(Uid, f64)]) -> Result<Vec<(Uid, u16)>, U16WeightsError> {
    if let Some(&(uid, weight)) = weights.iter().find(|x| !(x.1.is_finite() && x.1 >= 0.0)) {
        return Err(U16WeightsError::BadWeight { uid, weight });
    }
    let max = weights.iter().map(|x| x.1).fold(0.0f64, f64::max);
    if max <= 0.0 {
        return Ok(Vec::new());
    }
    Ok(weights
        .iter()
        .map(|&(u, w)| (u, ((w / max) * f64::from(u16::MAX)).round_ties_even() as u16))
        .filter(|x| x.1 != 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> WeightShape {
        WeightShape {
            burn_uid: Some(1),
            burn_rate: 0.5,
            gather_share: 0.75,
            gather_count: 20,
            reserve_count: 10,
            gather_top_ratio: 2.0,
            reserve_decay_ratio: 0.5,
        }
    }

    fn get(v: &[(Uid, f64)], uid: Uid) -> f64 {
        v.iter().find(|x| x.0 == uid).map(|x| x.1).unwrap_or(0.0)
    }

    #[test]
    fn linspace_matches_torch() {
        assert_eq!(linspace(2.0, 1.0, 1), vec![2.0]);
        assert_eq!(linspace(2.0, 1.0, 2), vec![2.0, 1.0]);
        assert_eq!(linspace(2.0, 1.0, 5), vec![2.0, 1.75, 1.5, 1.25, 1.0]);
        let l = linspace(2.0, 1.0, 20);
        assert_eq!((l[0], l[19]), (2.0, 1.0));
        assert!((l.iter().sum::<f64>() - 30.0).abs() < 1e-12);
    }

    #[test]
    fn full_vector_shape() {
        // 40 miners with distinct positive scores: uid 100 + i has score 40 − i.
        let scores: Vec<(Uid, f64)> = (0..40).map(|i| (100 + i, f64::from(40 - i))).collect();
        let v = weight_vector(&scores, &shape());
        assert_eq!(v.len(), 31, "20 gather + 10 reserve + burn");
        assert!((v.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(get(&v, 1), 0.5);
        // Gather: linear ramp from 2 to 1 (ratio 2), consecutive differences equal.
        let g: Vec<f64> = (0..20).map(|i| get(&v, 100 + i)).collect();
        assert!((g[0] / g[19] - 2.0).abs() < 1e-12);
        for w in g.windows(3) {
            assert!(((w[0] - w[1]) - (w[1] - w[2])).abs() < 1e-15);
        }
        // Reserve: geometric with ratio 0.5, and capped: its best is half the worst gather weight.
        let r: Vec<f64> = (20..30).map(|i| get(&v, 100 + i)).collect();
        for w in r.windows(2) {
            assert!((w[1] / w[0] - 0.5).abs() < 1e-12);
        }
        assert!((r[0] - g[19] * 0.5).abs() < 1e-15);
        // Everyone else: nothing.
        assert!((30..40).all(|i| get(&v, 100 + i) == 0.0));
        // Shares after the cap and the rescale: gather / reserve.
        let (gs, rs): (f64, f64) = (g.iter().sum(), r.iter().sum());
        assert!((gs + rs - 0.5).abs() < 1e-12);
        // Before the rescale gather is 0.375 and reserve 0.125 · factor; factor = min_g/max_r · ½.
        let min_g = 0.375 / 30.0;
        let max_r = 0.125 / (2.0 - 0.5f64.powi(9));
        let reserve_before = 0.125 * (min_g / max_r * 0.5);
        assert!((gs / rs - 0.375 / reserve_before).abs() < 1e-9);
    }

    #[test]
    fn reserve_cap_applies_only_when_needed() {
        let s = WeightShape { gather_count: 2, reserve_count: 2, gather_share: 0.5, gather_top_ratio: 1.0, ..shape() };
        let scores = [(10, 4.0), (11, 3.0), (12, 2.0), (13, 1.0)];
        let v = weight_vector(&scores, &s);
        // Gather: 0.25 split evenly; reserve: 0.25 split 2:1 → 1/6 > 1/8 → capped by 1/8/(1/6)·½.
        assert!((get(&v, 10) - get(&v, 11)).abs() < 1e-15);
        let factor = (0.125 / (0.25 * 2.0 / 3.0)) * 0.5;
        let before = [0.125, 0.125, 0.25 * 2.0 / 3.0 * factor, 0.25 / 3.0 * factor];
        let total: f64 = before.iter().sum();
        assert!((get(&v, 12) - before[2] * 0.5 / total).abs() < 1e-15);
        // No cap when the reserve's best is small enough.
        let s = WeightShape { reserve_decay_ratio: 0.5, gather_share: 0.9, ..s };
        let v = weight_vector(&scores, &s);
        let g_min = get(&v, 11);
        assert!(get(&v, 12) <= g_min);
        assert!((get(&v, 12) / get(&v, 13) - 2.0).abs() < 1e-12);
        let reserve_share = get(&v, 12) + get(&v, 13);
        assert!((reserve_share - 0.05).abs() < 1e-12, "0.5 · (1 − 0.9), uncapped");
    }

    #[test]
    fn few_positive_scores_and_none() {
        let v = weight_vector(&[(5, 2.0), (6, -1.0), (7, 0.0), (8, f64::NAN)], &shape());
        assert_eq!(v, vec![(1, 0.5), (5, 0.5)]);
        assert_eq!(weight_vector(&[(5, -2.0)], &shape()), vec![(1, 1.0)]);
        assert_eq!(weight_vector(&[], &shape()), vec![(1, 1.0)]);
        // The burn uid is never ranked as a miner.
        assert_eq!(weight_vector(&[(1, 9.0), (3, 1.0)], &shape()), vec![(1, 0.5), (3, 0.5)]);
        // No burn: miners share everything.
        let v = weight_vector(&[(3, 1.0), (4, 0.5)], &WeightShape { burn_rate: 0.0, ..shape() });
        assert_eq!(v.len(), 2);
        assert!((get(&v, 3) - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn u16_normalization_as_the_sdk() {
        let v = to_u16_weights(&[(1, 0.5), (4, 0.25), (9, 0.0), (7, 1e-6)]).unwrap();
        // max-upscale: 0.5 → 65535, 0.25 → 32767.5 → 32768 (half to even), 1e-6/0.5·65535 → 0 dropped.
        assert_eq!(v, vec![(1, 65535), (4, 32768)]);
        assert_eq!(to_u16_weights(&[(1, 1.0), (2, 0.25)]).unwrap(), vec![(1, 65535), (2, 16384)]);
        assert_eq!(to_u16_weights(&[(2, 0.0)]).unwrap(), vec![]);
        assert!(to_u16_weights(&[(2, -0.1)]).is_err());
        assert!(to_u16_weights(&[(2, f64::NAN)]).is_err());
    }
}
