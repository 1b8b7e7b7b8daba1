//! Training: the inner loop of a window, the pseudo-gradient, the outer step, evaluation.

use serde::{Deserialize, Serialize};
use tch::{TchError, Tensor};

use crate::llama::Llama;
use crate::optim::{clip_scale, outer_step, AdamW, AdamWConfig, LrSchedule};
use crate::params::Collect;

/// Inner-loop settings. Defaults are the Covenant-72B run's (`PROTOCOL.md` §2) except the batch,
/// which depends on the hardware.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub adamw: AdamWConfig,
    pub schedule: LrSchedule,
    /// Gradient-norm clip.
    pub grad_clip: f64,
    /// Sequences per optimizer step.
    pub batch_size: usize,
    /// Sequences per forward/backward pass (the batch is accumulated from micro-batches).
    pub micro_batch_size: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            adamw: AdamWConfig::default(),
            schedule: LrSchedule::default(),
            grad_clip: 1.0,
            batch_size: 8,
            micro_batch_size: 8,
        }
    }
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Inner step index (0-based, over the trainer's lifetime).
    pub step: u64,
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens: u64,
}

/// [`StepStats`] whose loss and gradient norm are still on the device.
#[derive(Debug)]
pub struct PendingStats {
    pub step: u64,
    pub loss: Tensor,
    pub grad_norm: Tensor,
    pub lr: f64,
    pub tokens: u64,
}

impl PendingStats {
    /// Waits for the step and reads its statistics.
    pub fn resolve(self) -> Result<StepStats, TchError> {
        Ok(StepStats {
            step: self.step,
            loss: self.loss.f_double_value(&[])?,
            grad_norm: self.grad_norm.f_double_value(&[])?,
            lr: self.lr,
            tokens: self.tokens,
        })
    }
}

/// A model with its inner optimizer.
#[derive(Debug)]
pub struct Trainer {
    pub model: Llama,
    pub optimizer: AdamW,
    pub config: TrainConfig,
}

impl Trainer {
    pub fn new(model: Llama, config: TrainConfig) -> Result<Self, TchError> {
        let optimizer = AdamW::new(config.adamw, model.params().master())?;
        Ok(Self { model, optimizer, config })
    }

    /// Inner steps taken so far (the scheduler's position).
    pub fn inner_step(&self) -> u64 {
        self.optimizer.step
    }

    /// One optimizer step on `batch` `(batch_size, seq_len)` token ids, accumulated over
    /// micro-batches: forward/backward each, average the gradients, clip, AdamW.
    pub fn step(&mut self, batch: &Tensor) -> Result<StepStats, TchError> {
        self.step_async(batch)?.resolve()
    }

    /// [`Trainer::step`] without waiting for the device: the loss and gradient norm stay on the
    /// device until [`PendingStats::resolve`], so the host can queue the next step's kernels while
    /// the device still runs this one.
    pub fn step_async(&mut self, batch: &Tensor) -> Result<PendingStats, TchError> {
        let rows = batch.size()[0];
        if rows == 0 {
            return Err(TchError::Shape("a training batch needs at least one sequence".into()));
        }
        let micro = (self.config.micro_batch_size as i64).clamp(1, rows.max(1));
        let micro_batches = (rows + micro - 1) / micro;
        let mut loss_sum = Tensor::f_zeros([], (tch::Kind::Float, self.model.device()))?;
        for m in 0..micro_batches {
            let start = m * micro;
            let len = micro.min(rows - start);
            let tokens = batch.f_narrow(0, start, len)?;
            // Each micro-batch's mean loss, weighted by its share of the batch.
            let loss = self.model.loss(&tokens)?;
            let scaled = loss.f_mul_scalar(len as f64 / rows as f64)?;
            scaled.f_backward()?;
            loss_sum = loss_sum.f_add(&scaled.f_detach()?)?;
            let mode = if m == 0 { Collect::Replace } else { Collect::Add };
            self.model.params_mut().collect_grads(mode)?;
        }
        // Clipping is folded into the optimizer kernel as a gradient divisor.
        let (norm, scale) = clip_scale(self.model.params().grad(), self.config.grad_clip)?;
        let lr = self.config.schedule.lr(self.optimizer.step);
        let step = self.optimizer.step;
        {
            let params = self.model.params_mut();
            let grad = params.grad().shallow_clone();
            self.optimizer.step(params.master_mut(), &grad, lr, Some(&scale))?;
            params.sync_compute()?;
        }
        Ok(PendingStats { step, loss: loss_sum, grad_norm: norm, lr, tokens: (rows * batch.size()[1]) as u64 })
    }

    /// A copy of the fp32 masters (θ at the start of a window).
    pub fn snapshot(&self) -> Result<Tensor, TchError> {
        self.model.params().master().f_detach_copy()
    }

    /// `θ_start − θ_end`, and θ restored to `start`.
    pub fn take_pseudo_gradient(&mut self, start: &Tensor) -> Result<Tensor, TchError> {
        let _guard = tch::no_grad_guard();
        let delta = start.f_sub(self.model.params().master())?;
        self.model.params_mut().master_mut().f_copy_(start)?;
        self.model.params_mut().sync_compute()?;
        Ok(delta)
    }

    /// The outer step `θ ← θ − α·G` with `aggregate` laid out like the masters.
    pub fn apply_outer_step(&mut self, aggregate: &Tensor, alpha: f64) -> Result<(), TchError> {
        outer_step(self.model.params_mut().master_mut(), aggregate, alpha)?;
        self.model.params_mut().sync_compute()
    }

    /// Mean loss over `batches` without gradients.
    pub fn eval_loss(&self, batches: &[Tensor]) -> Result<f64, TchError> {
        evaluate(&self.model, batches)
    }
}

/// Mean loss of `model` over `batches` without gradients.
pub fn evaluate(model: &Llama, batches: &[Tensor]) -> Result<f64, TchError> {
    let _guard = tch::no_grad_guard();
    let mut total = 0.0;
    for b in batches {
        total += model.loss(b)?.f_double_value(&[])?;
    }
    Ok(total / batches.len().max(1) as f64)
}
