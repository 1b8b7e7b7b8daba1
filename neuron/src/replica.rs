//! A peer's replica of the shared model, and the parts of a window that need neither the chain
//! nor a bucket: inner training on assigned samples, the pseudo-gradient and its error-feedback
//! compression, aggregation of peers' updates, the outer step, evaluation of one miner's update,
//! and the debug slice used for the sync check.

use compression::aggregate::{clip_factor, lower_median};
use compression::tensor_ops::DevicePlan;
use compression::{Aggregation, Codec, Manifest, ParamSpec, SparseParam};
use model::data::shards::Dataset;
use model::{LlamaConfig, StepStats, Trainer};
use tch::{Device, Kind, TchError, Tensor};

/// Positions of the two elements of every parameter a debug slice reports (templar's miner
/// slice `flatten()[10:12]`).
pub const DEBUG_POSITIONS: [i64; 2] = [10, 11];

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("torch: {0}")]
    Torch(#[from] TchError),
    #[error("codec: {0}")]
    Codec(#[from] compression::CodecError),
    #[error("manifest: {0}")]
    Manifest(#[from] compression::manifest::ManifestError),
    #[error("data: {0}")]
    Data(#[from] model::data::shards::DataError),
    #[error("update has {found} parameters, the model has {expected}")]
    ParameterCount { expected: usize, found: usize },
    #[error("parameter {index}: update geometry does not match the model")]
    Geometry { index: usize },
    #[error("no peers to aggregate")]
    NoPeers,
}

/// The payload manifest of a model: its parameters with the codec's chunking constants.
pub fn payload_manifest(config: &LlamaConfig, codec: &Codec) -> Result<Manifest, ReplicaError> {
    let params = config.parameters().into_iter().map(|(name, shape)| ParamSpec { name, shape }).collect();
    Ok(Manifest::with_codec(params, codec.target_chunk, codec.topk)?)
}

/// A peer's model, its inner optimizer, and its error-feedback buffer.
#[derive(Debug)]
pub struct Replica {
    pub trainer: Trainer,
    pub manifest: Manifest,
    pub codec: Codec,
    /// The batched codec for models on a GPU (CPU models use the native per-parameter kernels).
    plan: Option<DevicePlan>,
    /// Error feedback, laid out like the masters.
    ef: Tensor,
}

/// What a window's inner loop did.
#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    pub steps: Vec<StepStats>,
    /// True when the loop stopped before its step count (the chain left the window).
    pub interrupted: bool,
}

impl TrainReport {
    pub fn mean_loss(&self) -> Option<f64> {
        (!self.steps.is_empty()).then(|| self.steps.iter().map(|s| s.loss).sum::<f64>() / self.steps.len() as f64)
    }

    pub fn tokens(&self) -> u64 {
        self.steps.iter().map(|s| s.tokens).sum()
    }
}

impl Replica {
    pub fn new(trainer: Trainer, codec: Codec) -> Result<Self, ReplicaError> {
        let manifest = payload_manifest(trainer.model.config(), &codec)?;
        let device = trainer.model.device();
        let plan = if device == Device::Cpu { None } else { Some(DevicePlan::new(manifest.geometry(), device)?) };
        let ef = trainer.model.params().master().f_zeros_like()?;
        Ok(Self { trainer, manifest, codec, plan, ef })
    }

    pub fn device(&self) -> Device {
        self.trainer.model.device()
    }

    /// The error-feedback buffer (flat).
    pub fn error_feedback(&self) -> &Tensor {
        &self.ef
    }

    /// Replaces the error-feedback buffer (after a restart).
    pub fn set_error_feedback(&mut self, ef: Tensor) -> Result<(), ReplicaError> {
        self.ef.f_copy_(&ef)?;
        Ok(())
    }

    /// Puts an update that was compressed but never sent back into the error feedback
    /// (`e ← e + transmitted`), undoing [`Replica::compress`]'s subtraction, so nothing the
    /// miner computed is lost when it cannot publish in time.
    pub fn return_unsent(&mut self, update: &[SparseParam]) -> Result<(), ReplicaError> {
        let sent = self.clipped_update(update, &[])?;
        let _ = self.ef.f_add_(&sent)?;
        Ok(())
    }

    /// Zeroes the error-feedback buffer (templar does in null rounds).
    pub fn clear_error_feedback(&mut self) -> Result<(), ReplicaError> {
        let _ = self.ef.f_zero_()?;
        Ok(())
    }

    /// Trains on `samples` of `data`, `batch_size` per step, as long as `keep_going` says so
    /// before each step.
    pub fn train(
        &mut self,
        data: &Dataset,
        samples: &[u64],
        batch_size: usize,
        mut keep_going: impl FnMut() -> bool,
    ) -> Result<TrainReport, ReplicaError> {
        let mut report = TrainReport::default();
        for batch in samples.chunks(batch_size.max(1)) {
            if !keep_going() {
                report.interrupted = true;
                break;
            }
            let tokens = data.batch(batch, self.device())?;
            report.steps.push(self.trainer.step(&tokens)?);
        }
        Ok(report)
    }

    /// One error-feedback step on the pseudo-gradient `delta` (flat, like the masters):
    /// `e ← β·e + Δ`, compress, `e ← e − transmitted`. Returns one compressed update per parameter.
    pub fn compress(&mut self, delta: &Tensor) -> Result<Vec<SparseParam>, ReplicaError> {
        let params = self.trainer.model.params();
        let n = params.len();
        let deltas = (0..n).map(|i| params.view_of(delta, i)).collect::<Result<Vec<_>, _>>()?;
        let mut efs = (0..n).map(|i| params.view_of(&self.ef, i)).collect::<Result<Vec<_>, _>>()?;
        match &self.plan {
            Some(plan) => {
                let refs: Vec<&Tensor> = deltas.iter().collect();
                let batch = plan.compress(&refs, &mut efs, self.codec.decay)?;
                Ok(plan.download(&batch)?)
            }
            None => deltas
                .iter()
                .zip(efs.iter_mut())
                .map(|(d, e)| self.codec.compress(d, e).map_err(ReplicaError::from))
                .collect(),
        }
    }

    fn check_update(&self, update: &[SparseParam]) -> Result<(), ReplicaError> {
        if update.len() != self.manifest.len() {
            return Err(ReplicaError::ParameterCount { expected: self.manifest.len(), found: update.len() });
        }
        match update.iter().zip(self.manifest.geometry()).position(|(u, g)| u.geometry != *g) {
            Some(index) => Err(ReplicaError::Geometry { index }),
            None => Ok(()),
        }
    }

    /// Aggregates peers' updates (each one per parameter, in model order) into a flat update
    /// laid out like the masters.
    pub fn aggregate(&self, peers: &[&[SparseParam]], mode: Aggregation) -> Result<Tensor, ReplicaError> {
        if peers.is_empty() {
            return Err(ReplicaError::NoPeers);
        }
        for p in peers {
            self.check_update(p)?;
        }
        let params = self.trainer.model.params();
        let out = Tensor::f_zeros([params.numel()], (Kind::Float, self.device()))?;
        match &self.plan {
            Some(plan) => {
                let uploaded =
                    peers.iter().map(|p| plan.upload(&p.iter().collect::<Vec<_>>())).collect::<Result<Vec<_>, _>>()?;
                let refs: Vec<_> = uploaded.iter().collect();
                for (i, dense) in plan.aggregate(&refs, mode)?.iter().enumerate() {
                    params.view_of(&out, i)?.f_view([-1])?.f_copy_(dense)?;
                }
            }
            None => {
                for i in 0..params.len() {
                    let of_param: Vec<&SparseParam> = peers.iter().map(|p| &p[i]).collect();
                    let dense = self.codec.aggregate(&of_param, mode, &params.shapes()[i], Device::Cpu)?;
                    params.view_of(&out, i)?.f_copy_(&dense)?;
                }
            }
        }
        Ok(out)
    }

    /// The outer step `θ ← θ − α·G`.
    pub fn outer_step(&mut self, aggregate: &Tensor, alpha: f64) -> Result<(), ReplicaError> {
        Ok(self.trainer.apply_outer_step(aggregate, alpha)?)
    }

    /// Per parameter, the lower median over `peers` of the norm of their dequantized values: the
    /// clipping reference for evaluating one miner's update (templar `med_norm_gather`).
    pub fn median_norms(peers: &[&[SparseParam]]) -> Vec<f32> {
        let n = peers.first().map_or(0, |p| p.len());
        (0..n)
            .map(|i| {
                let norms: Vec<f32> = peers.iter().map(|p| compression::native::value_norm(&p[i])).collect();
                lower_median(&norms)
            })
            .collect()
    }

    /// How many times bigger than the window's medians `update` is: per parameter with a positive
    /// median, `‖v‖ / median`, and the median of that over parameters (one outsized parameter
    /// does not decide). `None` when no parameter has a usable median.
    pub fn norm_ratio(update: &[SparseParam], medians: &[f32]) -> Option<f64> {
        let ratios: Vec<f32> = update
            .iter()
            .zip(medians)
            .filter(|(_, m)| m.is_finite() && **m > 0.0)
            .map(|(u, m)| compression::native::value_norm(u) / m)
            .collect();
        (!ratios.is_empty()).then(|| lower_median(&ratios) as f64)
    }

    /// The dense update `clip(v)` of one miner, flat: each parameter's values scaled by
    /// `min(1, median/(‖v‖ + 1e-8))` (no clipping where `medians` is empty).
    pub fn clipped_update(&self, update: &[SparseParam], medians: &[f32]) -> Result<Tensor, ReplicaError> {
        self.check_update(update)?;
        let params = self.trainer.model.params();
        let out = Tensor::f_zeros([params.numel()], (Kind::Float, self.device()))?;
        for (i, u) in update.iter().enumerate() {
            let dense = self.codec.decompress(u, &params.shapes()[i], self.device())?;
            let factor = match medians.get(i) {
                Some(&m) if m.is_finite() => clip_factor(compression::native::value_norm(u), m),
                _ => 1.0,
            };
            params.view_of(&out, i)?.f_copy_(&dense.f_mul_scalar(factor as f64)?)?;
        }
        Ok(out)
    }

    /// Runs `f` on the model with `θ ← θ − scale·update` applied, then restores θ exactly.
    pub fn with_update<T>(
        &mut self,
        update: &Tensor,
        scale: f64,
        f: impl FnOnce(&Self) -> Result<T, ReplicaError>,
    ) -> Result<T, ReplicaError> {
        let saved = self.trainer.snapshot()?;
        self.trainer.apply_outer_step(update, scale)?;
        let result = f(self);
        let _guard = tch::no_grad_guard();
        self.trainer.model.params_mut().master_mut().f_copy_(&saved)?;
        self.trainer.model.params_mut().sync_compute()?;
        result
    }

    /// Mean loss over `batches` of sample indices of `data`.
    pub fn eval_loss(&self, data: &Dataset, batches: &[Vec<u64>]) -> Result<f64, ReplicaError> {
        let tensors = batches.iter().map(|b| data.batch(b, self.device())).collect::<Result<Vec<_>, _>>()?;
        Ok(self.trainer.eval_loss(&tensors)?)
    }

    /// The debug slice: elements [`DEBUG_POSITIONS`] of every parameter of the masters.
    pub fn debug_slice(&self) -> Result<Vec<(String, Vec<f32>)>, ReplicaError> {
        let params = self.trainer.model.params();
        let host = params.master().f_to_device(Device::Cpu)?;
        (0..params.len())
            .map(|i| {
                let flat = params.view_of(&host, i)?.f_flatten(0, -1)?;
                let n = flat.numel() as i64;
                let values = DEBUG_POSITIONS
                    .iter()
                    .map(|&p| flat.f_double_value(&[p.min(n - 1)]).map(|v| v as f32))
                    .collect::<Result<_, _>>()?;
                Ok((params.names()[i].clone(), values))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Llama, TrainConfig};

    fn replica(seed: u64) -> Replica {
        let mut config = LlamaConfig::preset("tiny").unwrap();
        config.vocab_size = 256;
        let trainer = Trainer::new(Llama::new(config, Device::Cpu, seed).unwrap(), TrainConfig::default()).unwrap();
        Replica::new(trainer, Codec::default()).unwrap()
    }

    #[test]
    fn compress_conserves_the_pseudo_gradient_in_error_feedback() {
        let mut r = replica(1);
        let delta = Tensor::randn([r.trainer.model.params().numel()], (Kind::Float, Device::Cpu)) * 1e-3;
        let update = r.compress(&delta).unwrap();
        assert_eq!(update.len(), r.manifest.len());
        // Δ = transmitted + e (EF started at zero).
        let sent = r.clipped_update(&update, &[]).unwrap();
        let diff = (&delta - (&sent + r.error_feedback())).abs().max().double_value(&[]);
        assert!(diff < 1e-7, "{diff}");
        // Against itself an update is 1× the median; scaled by 100 it is 100×.
        let medians = Replica::median_norms(&[&update]);
        assert!((Replica::norm_ratio(&update, &medians).unwrap() - 1.0).abs() < 1e-6);
        let scaled: Vec<SparseParam> = update
            .iter()
            .map(|u| {
                let mut u = u.clone();
                u.quant.shift *= 100.0;
                u.quant.lookup.iter_mut().for_each(|v| *v *= 100.0);
                u
            })
            .collect();
        let ratio = Replica::norm_ratio(&scaled, &medians).unwrap();
        assert!((ratio - 100.0).abs() < 1e-3, "{ratio}");
        assert_eq!(Replica::norm_ratio(&update, &[]), None);
        // An update that could not be sent goes back: the buffer holds all of Δ again.
        r.return_unsent(&update).unwrap();
        let diff = (&delta - r.error_feedback()).abs().max().double_value(&[]);
        assert!(diff < 1e-7, "{diff}");
    }

    #[test]
    fn aggregate_of_one_peer_is_its_update_and_evaluation_restores_weights() {
        let mut r = replica(2);
        let delta = Tensor::randn([r.trainer.model.params().numel()], (Kind::Float, Device::Cpu)) * 1e-3;
        let update = r.compress(&delta).unwrap();
        let g = r.aggregate(&[&update], Aggregation::MedianClippedMean).unwrap();
        let sent = r.clipped_update(&update, &[]).unwrap();
        assert!((&g - &sent).abs().max().double_value(&[]) < 1e-6);
        let before = r.trainer.snapshot().unwrap();
        let moved = r
            .with_update(&sent, 0.08, |r| {
                Ok((r.trainer.model.params().master() - &before).abs().max().double_value(&[]))
            })
            .unwrap();
        assert!(moved > 0.0);
        assert!(r.trainer.model.params().master().equal(&before));
        let slice = r.debug_slice().unwrap();
        assert_eq!(slice.len(), r.manifest.len());
        assert!(slice.iter().all(|(_, v)| v.len() == 2));
    }
}
