//! SparseLoCo: the gradient codec of covenant-rs.
//!
//! A miner's pseudo-gradient `Δ = θ_start − θ_end` goes through error feedback
//! (`e ← β·e + Δ`), is cut into chunks of at most 64×64 elements, keeps the 64 largest-magnitude
//! values of every chunk (1.56 %), quantizes them to 2-bit codes with per-parameter lookup means,
//! and leaves what it did not send in the error-feedback buffer (`e ← e − transmitted`).
//! Validators and miners aggregate many peers' updates by clipping each to the median norm and
//! averaging each element over the peers that sent it.
//!
//! The math reproduces templar's `compress.py` / `neurons.py` (the reference of the Covenant-72B
//! run) to the last bit where torch itself is deterministic; `tests/golden.rs` checks it against
//! vectors produced by templar's own code. The [`wire`] format is ours: 2-bit codes and 12-bit or
//! Rice-coded indices, a signed self-describing header, and a decoder that is safe on hostile
//! input.
//!
//! Modules, by job:
//! - [`geometry`]: chunk layout and the k rule;
//! - [`quant`]: 4-level quantization;
//! - [`sparse`]: the compressed form of one parameter;
//! - [`codec`]: compress / decompress / aggregate on `tch` tensors (CPU or CUDA);
//! - [`native`], [`tensor_ops`], [`cuda_kernels`]: the CPU kernels, the torch-op implementation
//!   behind it, and the CUDA kernels that implementation uses on GPUs;
//! - [`aggregate`]: median clipping rules;
//! - [`manifest`]: the model's parameters and fingerprint;
//! - [`wire`], [`signature`]: bytes on the wire and their authentication;
//! - [`bundle`]: a window's accepted payloads, republished for late joiners.

pub mod aggregate;
pub mod bundle;
#[cfg(feature = "torch")]
pub mod codec;
#[cfg(feature = "torch")]
pub mod cuda_kernels;
#[doc(hidden)]
pub mod fuzzing;
pub mod geometry;
pub mod manifest;
pub mod native;
pub mod quant;
pub mod signature;
pub mod sparse;
#[cfg(feature = "torch")]
pub mod tensor_ops;
pub mod wire;

pub use aggregate::Aggregation;
#[cfg(feature = "torch")]
pub use codec::{Backend, Codec, CodecError};
pub use geometry::ChunkGeometry;
pub use manifest::{Manifest, ParamSpec};
pub use quant::QuantParams;
pub use sparse::SparseParam;
pub use wire::{decode, encode, DecodeError, Header, IndexCoding, Payload};
