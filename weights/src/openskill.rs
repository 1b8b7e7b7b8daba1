//! Weng–Lin Bayesian rating with the Plackett–Luce model, as the PyPI `openskill` package computes
//! it (version 6.1.3, the one templar's `uv.lock` pins), for games of one-player teams — the only
//! kind the Gauntlet plays: every evaluated uid is a team of one, ranked by its gradient score.
//!
//! `PlackettLuce.rate(teams, scores=…)` of openskill 6.1.3, step by step (default options: no
//! margin, no weights, no `limit_sigma`, no `balance`):
//! 1. every σ becomes `sqrt(σ² + τ²)` (the dynamics term is added *before* the update);
//! 2. scores become ranks: `v_i = −score_i`, except that a falsy `v_i` (a score of exactly 0) is
//!    replaced by the player's position `i` (Python's `ranks[i] or i`); the rank of `i` is the
//!    position of the first occurrence of `v_i` in `sorted(v)`, i.e. the number of strictly
//!    smaller values — ties share a rank and the next rank skips (competition ranking);
//! 3. players are stably sorted by rank and, in that order, `c = sqrt(Σ (σ_i² + β²))`,
//!    `sum_q = Σ_{i: r_i ≥ r_q} exp(μ_i / c)`, `A_q = |{i: r_i = r_q}|`;
//! 4. for each player `i`, over all `q` with `r_q ≤ r_i`, with `t = exp(μ_i/c) / sum_q`:
//!    `δ += t(1 − t)/A_q`, and `ω += (1 − t)/A_q` if `r_q = r_i`, else `ω −= t/A_q`;
//!    then `ω ·= σ_i²/c`, `δ ·= σ_i²/c²`, `δ ·= γ` with `γ = sqrt(σ_i²)/c`;
//! 5. `μ_i += ω` and `σ_i ·= sqrt(max(1 − δ, κ))` (the per-player share `σ²/σ_team²` is exactly 1
//!    for a team of one);
//! 6. the library then averages the μ change over tied players, but it subtracts each player's
//!    μ from *the same, already updated* object, so the average is 0 and the step changes nothing
//!    in 6.1.3 — reproduced here by not doing it (the test vectors include ties to prove it).
//!
//! Floating-point operations are done in the same order as the library, so results agree to the
//! last few ulps (the committed vectors are checked to 1e-9).

use serde::{Deserialize, Serialize};

/// A player's skill belief: a Gaussian `N(μ, σ²)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    #[serde(with = "crate::exact")]
    pub mu: f64,
    #[serde(with = "crate::exact")]
    pub sigma: f64,
}

impl Rating {
    /// The conservative skill estimate `μ − 3σ` (openskill's `ordinal()` with its defaults).
    pub fn ordinal(&self) -> f64 {
        self.mu - 3.0 * self.sigma
    }

    /// Whether μ is finite and σ finite and positive.
    pub fn is_valid(&self) -> bool {
        self.mu.is_finite() && self.sigma.is_finite() && self.sigma > 0.0
    }
}

/// Why a match cannot be rated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenSkillError {
    #[error("a match needs at least 2 players, got {0}")]
    TooFewPlayers(usize),
    #[error("{ratings} ratings but {scores} scores")]
    LengthMismatch { ratings: usize, scores: usize },
    #[error("score of player {index} is not finite ({value})")]
    NonFiniteScore { index: usize, value: f64 },
    #[error("rating of player {index} is not valid (mu {mu}, sigma {sigma})")]
    InvalidRating { index: usize, mu: f64, sigma: f64 },
    #[error("the update of player {index} is not finite (mu {mu}, sigma {sigma})")]
    NonFiniteResult { index: usize, mu: f64, sigma: f64 },
}

/// The model's constants. `Default` is openskill's `PlackettLuce()` with templar's β = 7, τ = 0.1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlackettLuce {
    pub mu: f64,
    pub sigma: f64,
    pub beta: f64,
    pub kappa: f64,
    pub tau: f64,
}

impl Default for PlackettLuce {
    fn default() -> Self {
        Self { mu: 25.0, sigma: 25.0 / 3.0, beta: 7.0, kappa: 1e-4, tau: 0.1 }
    }
}

impl PlackettLuce {
    /// A new player's rating (`model.rating()`).
    pub fn rating(&self) -> Rating {
        Rating { mu: self.mu, sigma: self.sigma }
    }

    /// Ranks as openskill derives them from scores (step 2 of the module documentation).
    pub fn ranks_from_scores(scores: &[f64]) -> Vec<usize> {
        let values: Vec<f64> = scores.iter().enumerate().map(|(i, &s)| if -s == 0.0 { i as f64 } else { -s }).collect();
        values.iter().map(|&v| values.iter().filter(|&&w| w < v).count()).collect()
    }

    /// One match: `ratings[i]` scored `scores[i]` (higher is better). Returns the updated ratings
    /// in the same order. Errors leave nothing half-done: the inputs are not modified.
    pub fn rate(&self, ratings: &[Rating], scores: &[f64]) -> Result<Vec<Rating>, OpenSkillError> {
        let n = ratings.len();
        if n != scores.len() {
            return Err(OpenSkillError::LengthMismatch { ratings: n, scores: scores.len() });
        }
        if n < 2 {
            return Err(OpenSkillError::TooFewPlayers(n));
        }
        if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
            return Err(OpenSkillError::NonFiniteScore { index, value });
        }
        if let Some((index, r)) = ratings.iter().enumerate().find(|(_, r)| !r.is_valid()) {
            return Err(OpenSkillError::InvalidRating { index, mu: r.mu, sigma: r.sigma });
        }

        let tau_squared = self.tau * self.tau;
        let ranks = Self::ranks_from_scores(scores);
        // Stable sort by rank, as `_unwind` does (Python's sort is stable).
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| ranks[i]);

        // Sorted teams: (μ, σ after τ, σ², rank).
        struct Team {
            mu: f64,
            sigma: f64,
            sigma_sq: f64,
            rank: usize,
        }
        let teams: Vec<Team> = order
            .iter()
            .map(|&i| {
                let r = ratings[i];
                let sigma = (r.sigma * r.sigma + tau_squared).sqrt();
                let s = sigma * 1.0;
                Team { mu: r.mu, sigma, sigma_sq: s * s, rank: ranks[i] }
            })
            .collect();

        let beta_squared = self.beta * self.beta;
        let c = teams.iter().fold(0.0, |acc, t| acc + (t.sigma_sq + beta_squared)).sqrt();
        let exps: Vec<f64> = teams.iter().map(|t| (t.mu / c).exp()).collect();
        let mut sum_q = vec![0.0f64; n];
        for (i, ti) in teams.iter().enumerate() {
            for (q, tq) in teams.iter().enumerate() {
                if ti.rank >= tq.rank {
                    sum_q[q] += exps[i];
                }
            }
        }
        let a: Vec<f64> = teams.iter().map(|t| teams.iter().filter(|u| u.rank == t.rank).count() as f64).collect();

        let mut out = vec![Rating { mu: 0.0, sigma: 0.0 }; n];
        for (i, ti) in teams.iter().enumerate() {
            let mut omega = 0.0f64;
            let mut delta = 0.0f64;
            for (q, tq) in teams.iter().enumerate() {
                let t = exps[i] / sum_q[q];
                if tq.rank <= ti.rank {
                    delta += t * (1.0 - t) / a[q];
                    if tq.rank == ti.rank {
                        omega += (1.0 - t) / a[q];
                    } else {
                        omega -= t / a[q];
                    }
                }
            }
            omega *= ti.sigma_sq / c;
            delta *= ti.sigma_sq / (c * c);
            let gamma = ti.sigma_sq.sqrt() / c;
            delta *= gamma;

            let share = (ti.sigma * ti.sigma) / ti.sigma_sq;
            let mu = ti.mu + share * omega;
            let sigma = ti.sigma * (1.0 - share * delta).max(self.kappa).sqrt();
            let index = order[i];
            if !(mu.is_finite() && sigma.is_finite() && sigma > 0.0) {
                return Err(OpenSkillError::NonFiniteResult { index, mu, sigma });
            }
            out[index] = Rating { mu, sigma };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_openskill_including_the_zero_score_quirk() {
        // Higher score = better = lower rank; ties share a rank, the next rank skips.
        assert_eq!(PlackettLuce::ranks_from_scores(&[0.3, 0.1, 0.3, -99.0]), vec![0, 2, 0, 3]);
        // A score of exactly 0 at position i is ranked as if it were −i (`ranks[i] or i`): here −2,
        // below −1.5…
        assert_eq!(PlackettLuce::ranks_from_scores(&[0.5, -0.5, 0.0, -1.5]), vec![0, 1, 3, 2]);
        // …and above −2.5.
        assert_eq!(PlackettLuce::ranks_from_scores(&[0.5, -2.5, 0.0, -1.5]), vec![0, 3, 2, 1]);
        // …so two zeros are not tied; a zero at position 0 stays 0.
        assert_eq!(PlackettLuce::ranks_from_scores(&[0.0, 0.0, -0.5]), vec![0, 2, 1]);
    }

    #[test]
    fn two_player_update_by_hand() {
        let m = PlackettLuce::default();
        let r = m.rating();
        let out = m.rate(&[r, r], &[1.0, 0.5]).unwrap();
        // By hand: σ' = sqrt(σ² + τ²), c = sqrt(2(σ'² + β²)), both exp(μ/c) equal → t = 1/2 at q=0,
        // t = 1 at q=1 for the loser.
        let s2 = r.sigma * r.sigma + 0.01;
        let c = (2.0 * (s2 + 49.0)).sqrt();
        let winner_omega = 0.5 * s2 / c;
        let winner_delta = 0.25 * s2 / (c * c) * (s2.sqrt() / c);
        assert!((out[0].mu - (25.0 + winner_omega)).abs() < 1e-12);
        assert!((out[0].sigma - s2.sqrt() * (1.0 - winner_delta).sqrt()).abs() < 1e-12);
        // Loser: q=0 (the winner's rank) gives ω −= 1/2; q=1 (its own rank, sum_q = its own exp) adds 0.
        let loser_omega = -0.5 * s2 / c;
        assert!((out[1].mu - (25.0 + loser_omega)).abs() < 1e-12);
        assert!(out[0].mu > 25.0 && out[1].mu < 25.0);
        assert!(out[0].sigma < s2.sqrt() && out[1].sigma < s2.sqrt());
    }

    #[test]
    fn order_of_players_does_not_change_their_updates() {
        let m = PlackettLuce::default();
        let rs = [
            Rating { mu: 27.0, sigma: 6.0 },
            Rating { mu: 22.0, sigma: 7.5 },
            Rating { mu: 25.0, sigma: 8.0 },
            Rating { mu: 30.0, sigma: 3.0 },
        ];
        let scores = [0.02, -0.01, 0.05, -99.0];
        let a = m.rate(&rs, &scores).unwrap();
        let perm = [2, 0, 3, 1];
        let b = m.rate(&perm.map(|i| rs[i]), &perm.map(|i| scores[i])).unwrap();
        for (k, &i) in perm.iter().enumerate() {
            assert!((a[i].mu - b[k].mu).abs() < 1e-12);
            assert!((a[i].sigma - b[k].sigma).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let m = PlackettLuce::default();
        let r = m.rating();
        assert_eq!(m.rate(&[r], &[1.0]), Err(OpenSkillError::TooFewPlayers(1)));
        assert_eq!(m.rate(&[r, r], &[1.0]), Err(OpenSkillError::LengthMismatch { ratings: 2, scores: 1 }));
        assert!(matches!(m.rate(&[r, r], &[1.0, f64::NAN]), Err(OpenSkillError::NonFiniteScore { index: 1, .. })));
        let bad = Rating { mu: 25.0, sigma: 0.0 };
        assert!(matches!(m.rate(&[r, bad], &[1.0, 0.5]), Err(OpenSkillError::InvalidRating { index: 1, .. })));
        let huge = Rating { mu: 1e300, sigma: 1.0 };
        assert!(matches!(m.rate(&[r, huge], &[1.0, 0.5]), Err(OpenSkillError::NonFiniteResult { .. })));
    }
}
