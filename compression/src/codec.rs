//! The codec on tensors: one entry point per operation, running on the parameter's device.
//!
//! CPU tensors go through the fused kernels of [`crate::native`]; tensors on other devices (CUDA)
//! through the torch operations of [`crate::tensor_ops`] (whose [`DevicePlan`] also batches a
//! whole model, which is what GPU miners and validators use). Both implement the same math and agree
//! with templar's reference vectors; [`Backend`] can force one for testing and benchmarking.

use tch::{Device, Kind, TchError, Tensor};

use crate::aggregate::Aggregation;
use crate::geometry::{ChunkGeometry, GeometryError, DEFAULT_TARGET_CHUNK, DEFAULT_TOPK};
use crate::native;
use crate::sparse::SparseParam;
use crate::tensor_ops::{DeviceBatch, DevicePlan};

/// Production error-feedback decay (templar `momentum_decay`).
pub const DEFAULT_DECAY: f32 = 0.95;

/// Which implementation runs the dense math.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Native kernels for CPU tensors, torch operations elsewhere.
    #[default]
    Auto,
    /// Torch operations on every device.
    Torch,
}

/// Why a codec operation was refused. Nothing is modified when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{what} has shape {found:?}, expected {expected:?}")]
    Shape { what: &'static str, expected: Vec<i64>, found: Vec<i64> },
    #[error("{what} is {found:?}, expected float32")]
    Kind { what: &'static str, found: Kind },
    #[error("{what} is on {found:?}, expected {expected:?}")]
    Device { what: &'static str, expected: Device, found: Device },
    #[error("{0} must be contiguous")]
    NotContiguous(&'static str),
    #[error("{0} contains NaN or infinite values")]
    NonFinite(&'static str),
    #[error(transparent)]
    Geometry(#[from] GeometryError),
    #[error("peer {peer}: geometry {found:?} differs from the parameter's {expected:?}")]
    PeerGeometry { peer: usize, expected: ChunkGeometry, found: ChunkGeometry },
    #[error("aggregation needs at least one peer")]
    NoPeers,
    #[error("torch: {0}")]
    Torch(#[from] TchError),
}

/// The SparseLoCo codec with its constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Codec {
    /// Error-feedback decay β in `e ← β·e + Δ`.
    pub decay: f32,
    /// Largest chunk edge.
    pub target_chunk: usize,
    /// Values kept per chunk.
    pub topk: usize,
    pub backend: Backend,
}

impl Default for Codec {
    fn default() -> Self {
        Self { decay: DEFAULT_DECAY, target_chunk: DEFAULT_TARGET_CHUNK, topk: DEFAULT_TOPK, backend: Backend::Auto }
    }
}

fn to_usize(shape: &[i64]) -> Vec<usize> {
    shape.iter().map(|&d| d.max(0) as usize).collect()
}

/// A CPU float32 contiguous tensor's elements.
fn host_slice<'a>(t: &'a Tensor, what: &'static str) -> Result<&'a [f32], CodecError> {
    check_host_f32(t, what)?;
    // SAFETY: the tensor is a contiguous f32 CPU tensor (checked above) with `numel` elements
    // starting at `data_ptr`; the borrow of `t` keeps its storage alive for 'a.
    Ok(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) })
}

/// A CPU float32 contiguous tensor's elements, mutably. The caller must not hold another view of
/// the same storage while the slice lives.
fn host_slice_mut<'a>(t: &'a mut Tensor, what: &'static str) -> Result<&'a mut [f32], CodecError> {
    check_host_f32(t, what)?;
    // SAFETY: as in `host_slice`; the exclusive borrow of `t` stands for exclusive access to its
    // storage (tensors this crate hands out are never aliased).
    Ok(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) })
}

fn check_host_f32(t: &Tensor, what: &'static str) -> Result<(), CodecError> {
    if t.kind() != Kind::Float {
        return Err(CodecError::Kind { what, found: t.kind() });
    }
    if t.device() != Device::Cpu {
        return Err(CodecError::Device { what, expected: Device::Cpu, found: t.device() });
    }
    if !t.is_contiguous() {
        return Err(CodecError::NotContiguous(what));
    }
    Ok(())
}

fn all_finite(t: &Tensor) -> Result<bool, CodecError> {
    if t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() {
        return Ok(host_slice(t, "tensor")?.iter().all(|v| v.is_finite()));
    }
    Ok(t.f_isfinite()?.f_all()?.f_int64_value(&[])? != 0)
}

impl Codec {
    /// Chunk geometry of a parameter of `shape`.
    pub fn geometry(&self, shape: &[i64]) -> Result<ChunkGeometry, CodecError> {
        Ok(ChunkGeometry::new(&to_usize(shape), self.target_chunk, self.topk)?)
    }

    fn native(&self, device: Device) -> bool {
        self.backend == Backend::Auto && device == Device::Cpu
    }

    /// One error-feedback step and compression of a parameter's pseudo-gradient `delta`:
    /// `ef ← decay·ef + delta`, compress `ef`, `ef ← ef − transmitted`. Returns the compressed
    /// update; `ef` (float32, contiguous, same shape and device) is updated in place, and left
    /// untouched when an error is returned.
    pub fn compress(&self, delta: &Tensor, ef: &mut Tensor) -> Result<SparseParam, CodecError> {
        let shape = ef.size();
        if delta.size() != shape {
            return Err(CodecError::Shape { what: "delta", expected: shape, found: delta.size() });
        }
        for (t, what) in [(delta, "delta"), (&*ef, "error feedback")] {
            if t.kind() != Kind::Float {
                return Err(CodecError::Kind { what, found: t.kind() });
            }
        }
        if delta.device() != ef.device() {
            return Err(CodecError::Device { what: "delta", expected: ef.device(), found: delta.device() });
        }
        if !ef.is_contiguous() {
            return Err(CodecError::NotContiguous("error feedback"));
        }
        let g = self.geometry(&shape)?;
        if !all_finite(delta)? {
            return Err(CodecError::NonFinite("delta"));
        }
        if !all_finite(ef)? {
            return Err(CodecError::NonFinite("error feedback"));
        }
        if self.native(ef.device()) {
            let delta = delta.f_contiguous()?;
            let delta = host_slice(&delta, "delta")?;
            Ok(native::compress(delta, host_slice_mut(ef, "error feedback")?, g, self.decay))
        } else {
            let plan = DevicePlan::new(&[g], ef.device())?;
            let batch = plan.compress(&[delta], std::slice::from_mut(ef), self.decay)?;
            Ok(plan.download(&batch)?.remove(0))
        }
    }

    /// The dense transmitted update of `sparse` as a float32 tensor of `shape` on `device`.
    pub fn decompress(&self, sparse: &SparseParam, shape: &[i64], device: Device) -> Result<Tensor, CodecError> {
        let g = self.geometry(shape)?;
        if sparse.geometry != g {
            return Err(CodecError::PeerGeometry { peer: 0, expected: g, found: sparse.geometry });
        }
        if self.native(device) {
            let mut out = Tensor::f_zeros(shape, (Kind::Float, Device::Cpu))?;
            native::decompress(sparse, host_slice_mut(&mut out, "output")?);
            Ok(out)
        } else {
            let plan = DevicePlan::new(&[g], device)?;
            Ok(plan.decompress(&plan.upload(&[sparse])?)?.remove(0).f_view(shape)?)
        }
    }

    /// Aggregates the peers' updates of one parameter of `shape` into a float32 tensor on `device`.
    pub fn aggregate(
        &self,
        peers: &[&SparseParam],
        mode: Aggregation,
        shape: &[i64],
        device: Device,
    ) -> Result<Tensor, CodecError> {
        let g = self.geometry(shape)?;
        if peers.is_empty() {
            return Err(CodecError::NoPeers);
        }
        if let Some((peer, p)) = peers.iter().enumerate().find(|(_, p)| p.geometry != g) {
            return Err(CodecError::PeerGeometry { peer, expected: g, found: p.geometry });
        }
        if self.native(device) {
            let mut out = Tensor::f_zeros(shape, (Kind::Float, Device::Cpu))?;
            native::aggregate(peers, mode, host_slice_mut(&mut out, "output")?);
            Ok(out)
        } else {
            let plan = DevicePlan::new(&[g], device)?;
            let uploaded = peers.iter().map(|p| plan.upload(&[p])).collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&DeviceBatch> = uploaded.iter().collect();
            Ok(plan.aggregate(&refs, mode)?.remove(0).f_view(shape)?)
        }
    }
}
