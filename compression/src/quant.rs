//! 4-level quantization of the kept values of one parameter (templar `quantize`, 4 bins over a 6σ range).
//!
//! Statistics are pooled over all kept values of the parameter (all chunks together):
//! `shift = mean(v)`, `c = v − shift`, `scale = 1.5·‖c‖/√(n−1)` (1.0 when that is 0 or not finite),
//! `q = clamp(round_half_even(c/scale + 2), 0, 3)`, and `lookup[b]` = the mean of `c` over bin `b`
//! (0 for an empty bin). A code dequantizes to `lookup[q] + shift`. All per-value arithmetic is f32
//! in the order templar's torch code performs it, so codes match bit for bit; the three reductions
//! (mean, norm, bin means) accumulate in f64, which is within an ulp or two of torch's f32 reductions.

use serde::{Deserialize, Serialize};

/// Number of quantization levels (2-bit codes).
pub const LEVELS: usize = 4;
/// Quantization range in standard deviations.
const RANGE_SIGMAS: f32 = 6.0;
/// Offset of code 0 from the mean, in steps.
const OFFSET: f32 = (LEVELS / 2) as f32;

/// Bounds on a transmitted scale that templar's gather accepts (`1e-12 ≤ |scale| ≤ 1e4`).
pub const MIN_SCALE: f32 = 1e-12;
pub const MAX_SCALE: f32 = 1e4;
/// Bound on the magnitude of a transmitted shift or lookup value. Pseudo-gradients are many orders
/// of magnitude smaller; the bound keeps every dequantized level, its square summed over a whole
/// parameter, and the mean over peers finite, so no payload can poison an aggregate with `inf`
/// (and, through a zero clip factor, `NaN`).
pub const MAX_VALUE: f32 = 1e8;

/// Per-parameter quantization statistics, as sent on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    pub shift: f32,
    pub scale: f32,
    pub lookup: [f32; LEVELS],
}

/// Why transmitted quantization statistics are unacceptable.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum QuantError {
    #[error("shift {0} is not finite or exceeds {MAX_VALUE:e} in magnitude")]
    Shift(f32),
    #[error("scale {0} is not finite or outside [{MIN_SCALE:e}, {MAX_SCALE:e}]")]
    Scale(f32),
    #[error("lookup value {0} is not finite or exceeds {MAX_VALUE:e} in magnitude")]
    Lookup(f32),
}

impl QuantParams {
    /// Checks the statistics of an untrusted payload.
    pub fn validate(&self) -> Result<(), QuantError> {
        let bounded = |v: f32| v.is_finite() && v.abs() <= MAX_VALUE;
        if !bounded(self.shift) {
            return Err(QuantError::Shift(self.shift));
        }
        if !(self.scale.is_finite() && (MIN_SCALE..=MAX_SCALE).contains(&self.scale.abs())) {
            return Err(QuantError::Scale(self.scale));
        }
        match self.lookup.iter().find(|&&v| !bounded(v)) {
            Some(&v) => Err(QuantError::Lookup(v)),
            None => Ok(()),
        }
    }

    /// The dequantized value of `code` (0..=3).
    #[inline]
    pub fn dequantize(&self, code: u8) -> f32 {
        self.lookup[code as usize & (LEVELS - 1)] + self.shift
    }

    /// The four dequantized levels, indexed by code.
    pub fn levels(&self) -> [f32; LEVELS] {
        std::array::from_fn(|b| self.lookup[b] + self.shift)
    }
}

/// Mean and quantization step of `values`: templar's `shift` and `scale`.
pub fn statistics(values: &[f32]) -> (f32, f32) {
    let n = values.len();
    let shift = (values.iter().map(|&v| v as f64).sum::<f64>() / n.max(1) as f64) as f32;
    let sq: f64 = values
        .iter()
        .map(|&v| {
            let c = (v - shift) as f64;
            c * c
        })
        .sum();
    let norm = sq.sqrt() as f32;
    // torch: norm / sqrt(n − 1) with both in f32; n = 1 divides by zero and gives the 1.0 fallback.
    let std = norm / ((n as f32) - 1.0).sqrt();
    let scale = RANGE_SIGMAS * std / LEVELS as f32;
    let scale = if scale.is_finite() && scale != 0.0 { scale } else { 1.0 };
    (shift, scale)
}

/// The code of one value given the statistics.
#[inline]
pub fn code(value: f32, shift: f32, scale: f32) -> u8 {
    let c = value - shift;
    (c / scale + OFFSET).round_ties_even().clamp(0.0, (LEVELS - 1) as f32) as u8
}

/// Quantizes `values`: returns the statistics and writes one code per value into `codes`.
pub fn quantize(values: &[f32], codes: &mut Vec<u8>) -> QuantParams {
    let (shift, scale) = statistics(values);
    codes.clear();
    codes.reserve(values.len());
    let mut sums = [0f64; LEVELS];
    let mut counts = [0u64; LEVELS];
    for &v in values {
        let q = code(v, shift, scale);
        codes.push(q);
        sums[q as usize] += (v - shift) as f64;
        counts[q as usize] += 1;
    }
    let lookup = std::array::from_fn(|b| if counts[b] == 0 { 0.0 } else { (sums[b] / counts[b] as f64) as f32 });
    QuantParams { shift, scale, lookup }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_asymmetric_bin_edges() {
        // scale 1: edges at c = -1.5, -0.5, 0.5, 1.5 (c/scale + 2 rounded half to even).
        assert_eq!(code(-3.0, 0.0, 1.0), 0);
        assert_eq!(code(-1.5, 0.0, 1.0), 0); // 0.5 rounds to 0
        assert_eq!(code(-0.5, 0.0, 1.0), 2); // 1.5 rounds to 2
        assert_eq!(code(0.49, 0.0, 1.0), 2);
        assert_eq!(code(0.5, 0.0, 1.0), 2); // 2.5 rounds to 2
        assert_eq!(code(1.5, 0.0, 1.0), 3); // 3.5 rounds to 4, clamped to 3
        assert_eq!(code(100.0, 0.0, 1.0), 3);
    }

    #[test]
    fn degenerate_statistics_fall_back_to_unit_scale() {
        assert_eq!(statistics(&[3.0]).1, 1.0);
        assert_eq!(statistics(&[2.0, 2.0, 2.0]), (2.0, 1.0));
    }

    #[test]
    fn lookup_is_the_bin_mean() {
        let v = [-1.0f32, -1.0, 1.0, 1.0, 1.0, -1.0];
        let mut q = Vec::new();
        let p = quantize(&v, &mut q);
        assert_eq!(p.shift, 0.0);
        assert_eq!(q, [1, 1, 3, 3, 3, 1]);
        assert_eq!(p.lookup, [0.0, -1.0, 0.0, 1.0]);
        assert_eq!(p.dequantize(3), 1.0);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn validation_rejects_non_finite_and_out_of_range() {
        let ok = QuantParams { shift: 0.0, scale: 1.0, lookup: [0.0; 4] };
        assert!(matches!(QuantParams { shift: f32::NAN, ..ok }.validate(), Err(QuantError::Shift(_))));
        assert!(matches!(QuantParams { scale: 0.0, ..ok }.validate(), Err(QuantError::Scale(_))));
        assert!(matches!(QuantParams { scale: 1e5, ..ok }.validate(), Err(QuantError::Scale(_))));
        let mut bad = ok;
        bad.lookup[2] = f32::INFINITY;
        assert!(matches!(bad.validate(), Err(QuantError::Lookup(_))));
    }

    #[test]
    fn validation_bounds_shift_and_lookup_so_levels_stay_finite() {
        let edge = QuantParams { shift: MAX_VALUE, scale: 1.0, lookup: [MAX_VALUE; 4] };
        assert_eq!(edge.validate(), Ok(()));
        // The largest accepted level, squared and summed over a 70B model's worth of kept values,
        // is still finite in f32: the clip factor of such a peer is a number, not 0·inf.
        let level = edge.levels()[0];
        assert!((level * level * 2e9).is_finite());
        let huge = 3e38f32;
        assert!(matches!(QuantParams { shift: huge, ..edge }.validate(), Err(QuantError::Shift(_))));
        assert!(matches!(QuantParams { shift: -1.5e8, ..edge }.validate(), Err(QuantError::Shift(_))));
        let mut bad = edge;
        bad.lookup[0] = -huge;
        assert!(matches!(bad.validate(), Err(QuantError::Lookup(_))));
    }
}
