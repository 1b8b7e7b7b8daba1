//! How many peers' updates become one: median-norm clipping, then a per-index mean.

use serde::{Deserialize, Serialize};

/// Added to a peer's norm before dividing, as templar does (so the median peer itself is scaled by
/// `med/(med + 1e-8)`, a hair below 1).
pub const CLIP_EPSILON: f32 = 1e-8;

/// The rule that turns the gathered peers' updates of a parameter into one update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// Production (templar `outer_step`): scale each peer's values by
    /// `min(1, med/(‖v_p‖ + 1e-8))`, `med` the lower median of the peers' norms, then give each
    /// element the mean over the peers that selected it (not the sum over all peers / R).
    #[default]
    #[serde(rename = "median-mean", alias = "median-clipped-mean")]
    MedianClippedMean,
    /// The paper's plain mean `(1/R)·Σ_p transmitted_p`, without clipping.
    Mean,
}

impl std::str::FromStr for Aggregation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "median-mean" | "median-clipped-mean" => Ok(Self::MedianClippedMean),
            "mean" => Ok(Self::Mean),
            other => Err(format!("unknown aggregation `{other}` (expected `median-mean` or `mean`)")),
        }
    }
}

/// `torch.median` of the norms: the lower median for an even count. `NaN` for no norms.
pub fn lower_median(norms: &[f32]) -> f32 {
    if norms.is_empty() {
        return f32::NAN;
    }
    let mut sorted = norms.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted[(sorted.len() - 1) / 2]
}

/// Factor applied to a peer whose values have norm `norm` when the median norm is `median`.
#[inline]
pub fn clip_factor(norm: f32, median: f32) -> f32 {
    (median / (norm + CLIP_EPSILON)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_median_of_even_count() {
        assert_eq!(lower_median(&[3.0, 1.0, 2.0, 4.0]), 2.0);
        assert_eq!(lower_median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(lower_median(&[7.0]), 7.0);
        assert!(lower_median(&[]).is_nan());
    }

    #[test]
    fn clip_never_amplifies() {
        assert_eq!(clip_factor(1.0, 2.0), 1.0);
        assert!((clip_factor(4.0, 2.0) - 0.5).abs() < 1e-7);
        // The median peer itself is scaled a hair below 1 (golden aggregate3: 0.99999982).
        assert!(clip_factor(0.061495, 0.061495) < 1.0);
    }

    #[test]
    fn parses_cli_names() {
        assert_eq!("median-mean".parse::<Aggregation>().unwrap(), Aggregation::MedianClippedMean);
        assert_eq!("mean".parse::<Aggregation>().unwrap(), Aggregation::Mean);
        assert!("sum".parse::<Aggregation>().is_err());
    }
}
