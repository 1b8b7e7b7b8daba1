//! The inner optimizer (AdamW over the flat fp32 masters), gradient clipping, the learning-rate
//! schedule, and the outer step.

use serde::{Deserialize, Serialize};
use tch::{Kind, TchError, Tensor};

use crate::ffi;

/// AdamW hyper-parameters; defaults are the Covenant-72B run's (`PROTOCOL.md` §2).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 }
    }
}

/// AdamW (decoupled weight decay, bias-corrected moments) on one flat parameter buffer, through
/// ATen's fused kernel (`_fused_adamw_`, reached via `csrc/fused_adamw.cpp`): one pass over the
/// parameters, gradients and moments per step, on CUDA and on the CPU.
#[derive(Debug)]
pub struct AdamW {
    pub config: AdamWConfig,
    /// First and second moments, laid out like the parameters.
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    /// Steps taken.
    pub step: u64,
    /// `step` as the f32 tensor on the parameters' device that the fused kernel reads.
    step_tensor: Tensor,
}

impl AdamW {
    pub fn new(config: AdamWConfig, like: &Tensor) -> Result<Self, TchError> {
        Self::from_state(config, like.f_zeros_like()?, like.f_zeros_like()?, 0)
    }

    /// An optimizer resuming from saved moments after `step` steps.
    pub fn from_state(config: AdamWConfig, exp_avg: Tensor, exp_avg_sq: Tensor, step: u64) -> Result<Self, TchError> {
        let step_tensor = Tensor::f_full([], step as f64, (Kind::Float, exp_avg.device()))?;
        Ok(Self { config, exp_avg, exp_avg_sq, step, step_tensor })
    }

    /// One step: `params ← params·(1 − lr·wd) − lr·m̂/(√v̂ + ε)` with the moments updated from
    /// `grad / grad_scale` (the clipping divisor of [`clip_scale`]; `None` for 1).
    ///
    /// All tensors must be contiguous f32 of the same size on one device.
    pub fn step(
        &mut self,
        params: &mut Tensor,
        grad: &Tensor,
        lr: f64,
        grad_scale: Option<&Tensor>,
    ) -> Result<(), TchError> {
        let _guard = tch::no_grad_guard();
        let c = self.config;
        // The kernel reads the step count for bias correction; the caller advances it (as torch's
        // optimizer does before calling the kernel).
        self.step += 1;
        let _ = self.step_tensor.f_add_scalar_(1.0)?;
        let scale = grad_scale.map_or(std::ptr::null(), ffi::handle);
        // SAFETY: every pointer is a live `torch::Tensor*` owned by a tensor borrowed for the whole
        // call; the C++ side copies the handles and catches every exception.
        let result = ffi::check(unsafe {
            ffi::covenant_fused_adamw(
                ffi::handle(params),
                ffi::handle(grad),
                ffi::handle(&self.exp_avg),
                ffi::handle(&self.exp_avg_sq),
                ffi::handle(&self.step_tensor),
                lr,
                c.beta1,
                c.beta2,
                c.weight_decay,
                c.eps,
                scale,
            )
        });
        if result.is_err() {
            self.step -= 1;
            let _ = self.step_tensor.f_sub_scalar_(1.0)?;
        }
        result
    }
}

/// Gradient-norm clipping as a divisor for [`AdamW::step`]: returns `(norm, scale)` with
/// `scale = max(1, (norm + 1e-6)/max_norm)`, so that `grad/scale` is torch's `clip_grad_norm_`
/// result. Both are 0-d tensors: no device synchronisation, and no pass over the gradients
/// beyond computing the norm.
pub fn clip_scale(grad: &Tensor, max_norm: f64) -> Result<(Tensor, Tensor), TchError> {
    let _guard = tch::no_grad_guard();
    let norm = grad.f_norm()?;
    let scale = norm.f_add_scalar(1e-6)?.f_div_scalar(max_norm)?.f_clamp_min(1.0)?;
    Ok((norm, scale))
}

/// Scales `grad` in place so that its L2 norm is at most `max_norm` (torch's
/// `clip_grad_norm_`). Returns the norm before clipping as a 0-d tensor.
pub fn clip_grad_norm(grad: &mut Tensor, max_norm: f64) -> Result<Tensor, TchError> {
    let (norm, scale) = clip_scale(grad, max_norm)?;
    let _ = grad.f_div_(&scale)?;
    Ok(norm)
}

/// Linear warm-up to the peak rate, then cosine decay to `min_factor·peak` at `total_steps`
/// (flat afterwards): templar's `LinearLR` + `CosineAnnealingLR` sequence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub peak: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub min_factor: f64,
}

impl Default for LrSchedule {
    /// The Covenant-72B run: peak 1.17e-4, 1500 warm-up steps, cosine over 140,000 to 10 %.
    fn default() -> Self {
        Self { peak: 1.17e-4, warmup_steps: 1500, total_steps: 140_000, min_factor: 0.1 }
    }
}

impl LrSchedule {
    /// Learning rate of inner step `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            // torch LinearLR from 1e-6 of the peak.
            let start = 1e-6;
            return self.peak * (start + (1.0 - start) * step as f64 / self.warmup_steps as f64);
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        let min = self.peak * self.min_factor;
        min + (self.peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// The outer step `θ ← θ − α·G` on the flat masters (plain SGD, no momentum: the error-feedback
/// buffer plays that role).
pub fn outer_step(params: &mut Tensor, aggregate: &Tensor, alpha: f64) -> Result<(), TchError> {
    let _guard = tch::no_grad_guard();
    let g =
        if aggregate.kind() == Kind::Float { aggregate.shallow_clone() } else { aggregate.f_to_kind(Kind::Float)? };
    let _ = params.f_sub_(&g.f_mul_scalar(alpha)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn schedule_shape() {
        let s = LrSchedule { peak: 1.0, warmup_steps: 10, total_steps: 110, min_factor: 0.1 };
        assert!(s.lr(0) < 1e-5);
        assert!((s.lr(5) - 0.5).abs() < 1e-5);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(60) - 0.55).abs() < 1e-12);
        assert!((s.lr(110) - 0.1).abs() < 1e-12);
        assert!((s.lr(1000) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn adamw_matches_the_reference_update() {
        // One parameter, two steps, computed by hand.
        let mut p = Tensor::from_slice(&[1.0f32, -2.0]);
        let c = AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };
        let mut opt = AdamW::new(c, &p).unwrap();
        let g = Tensor::from_slice(&[0.5f32, -1.0]);
        opt.step(&mut p, &g, 0.01, None).unwrap();
        // Step 1: m̂ = g, v̂ = g², update = g/|g| = ±1; p ← p·(1 − 0.001) − 0.01·sign(g).
        let got = Vec::<f32>::try_from(&p).unwrap();
        assert!((got[0] - (1.0 * 0.999 - 0.01)).abs() < 1e-6, "{got:?}");
        assert!((got[1] - (-2.0 * 0.999 + 0.01)).abs() < 1e-6, "{got:?}");
        let v = Vec::<f32>::try_from(&opt.exp_avg_sq).unwrap();
        assert!((v[0] - 0.05 * 0.25).abs() < 1e-7, "second moment {v:?}");
    }

    #[test]
    fn clipping_and_outer_step() {
        let mut g = Tensor::from_slice(&[3.0f32, 4.0]);
        let norm = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((norm.double_value(&[]) - 5.0).abs() < 1e-6);
        assert!((g.norm().double_value(&[]) - 1.0).abs() < 1e-5);
        let mut small = Tensor::from_slice(&[0.3f32, 0.4]);
        let _ = clip_grad_norm(&mut small, 1.0).unwrap();
        assert_eq!(Vec::<f32>::try_from(&small).unwrap(), [0.3, 0.4]);
        let mut p = Tensor::from_slice(&[1.0f32, 1.0]).to_device(Device::Cpu);
        outer_step(&mut p, &Tensor::from_slice(&[0.5f32, -0.5]), 0.4).unwrap();
        assert_eq!(Vec::<f32>::try_from(&p).unwrap(), [0.8, 1.2]);
    }
}
