//! The model's parameter manifest: which parameters a payload must carry, in which order, with
//! which shapes and chunk geometry. A decoder trusts nothing in a payload that the manifest does
//! not confirm, and sizes every allocation from the manifest, never from the payload.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use serde::{Deserialize, Serialize};

use crate::geometry::{ChunkGeometry, GeometryError, DEFAULT_TARGET_CHUNK, DEFAULT_TOPK};

/// blake2b with a 256-bit output.
pub type Blake2b256 = Blake2b<U32>;

/// Longest parameter name the wire format accepts, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Highest tensor rank the wire format accepts.
pub const MAX_RANK: usize = 8;
/// Most elements a model may have (2^48, ~281 trillion): keeps every size derived from a manifest
/// far from overflow, whatever a payload's parameter table declares.
pub const MAX_MODEL_ELEMENTS: usize = 1 << 48;

/// One parameter: its stable name and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// Why a manifest cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("parameter `{0}`: {1}")]
    Geometry(String, GeometryError),
    #[error("parameter `{0}` appears twice")]
    Duplicate(String),
    #[error("parameter name of {0} bytes is longer than {MAX_NAME_LEN}")]
    NameTooLong(usize),
    #[error("parameter `{0}` has rank {1}, more than {MAX_RANK}")]
    RankTooHigh(String, usize),
    #[error("parameter `{0}` has a dimension above u32::MAX")]
    DimensionTooLarge(String),
    #[error("the manifest has no parameters")]
    Empty,
    #[error("the model has more than {MAX_MODEL_ELEMENTS} elements")]
    TooLarge,
}

/// The ordered parameters of a model plus the codec constants that fix their chunk geometry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    params: Vec<ParamSpec>,
    geometry: Vec<ChunkGeometry>,
    target_chunk: usize,
    topk: usize,
}

impl Manifest {
    /// A manifest with the production codec constants (64-wide chunks, top-64).
    pub fn new(params: Vec<ParamSpec>) -> Result<Self, ManifestError> {
        Self::with_codec(params, DEFAULT_TARGET_CHUNK, DEFAULT_TOPK)
    }

    /// A manifest with explicit chunk target and top-k.
    pub fn with_codec(params: Vec<ParamSpec>, target_chunk: usize, topk: usize) -> Result<Self, ManifestError> {
        if params.is_empty() {
            return Err(ManifestError::Empty);
        }
        let mut names = std::collections::HashSet::new();
        let mut geometry = Vec::with_capacity(params.len());
        let mut total = 0usize;
        for p in &params {
            if p.name.len() > MAX_NAME_LEN {
                return Err(ManifestError::NameTooLong(p.name.len()));
            }
            if p.shape.len() > MAX_RANK {
                return Err(ManifestError::RankTooHigh(p.name.clone(), p.shape.len()));
            }
            if p.shape.iter().any(|&d| d > u32::MAX as usize) {
                return Err(ManifestError::DimensionTooLarge(p.name.clone()));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ManifestError::Duplicate(p.name.clone()));
            }
            let g = ChunkGeometry::new(&p.shape, target_chunk, topk)
                .map_err(|e| ManifestError::Geometry(p.name.clone(), e))?;
            total = total.checked_add(g.numel()).filter(|&t| t <= MAX_MODEL_ELEMENTS).ok_or(ManifestError::TooLarge)?;
            geometry.push(g);
        }
        Ok(Self { params, geometry, target_chunk, topk })
    }

    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    pub fn geometry(&self) -> &[ChunkGeometry] {
        &self.geometry
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    pub fn target_chunk(&self) -> usize {
        self.target_chunk
    }

    pub fn topk(&self) -> usize {
        self.topk
    }

    /// Position of the parameter called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// Total number of elements of the model.
    pub fn numel(&self) -> usize {
        self.geometry.iter().map(ChunkGeometry::numel).sum()
    }

    /// Total number of values a payload keeps.
    pub fn kept(&self) -> usize {
        self.geometry.iter().map(ChunkGeometry::kept).sum()
    }

    /// blake2b-256 of the canonical encoding of the manifest: the model identity every payload
    /// header carries, so peers training different architectures never mix updates.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Blake2b256::new();
        h.update(b"covenant-rs/manifest/v1");
        h.update((self.target_chunk as u32).to_le_bytes());
        h.update((self.topk as u32).to_le_bytes());
        h.update((self.params.len() as u32).to_le_bytes());
        for p in &self.params {
            h.update((p.name.len() as u32).to_le_bytes());
            h.update(p.name.as_bytes());
            h.update([p.shape.len() as u8]);
            for &d in &p.shape {
                h.update((d as u64).to_le_bytes());
            }
        }
        h.finalize().into()
    }
}
