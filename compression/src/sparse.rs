//! The compressed form of one parameter's update: what a peer transmits, independent of the wire
//! encoding.

use crate::geometry::ChunkGeometry;
use crate::quant::QuantParams;

/// One parameter's compressed update.
///
/// `indices` and `codes` hold `k` entries per chunk, chunk after chunk in row-major chunk order.
/// Within a chunk the indices are strictly increasing (the canonical order: the same selection
/// always yields the same bytes), each `< geometry.totalk()`, and `codes[i]` belongs to
/// `indices[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseParam {
    pub geometry: ChunkGeometry,
    pub indices: Vec<u16>,
    pub codes: Vec<u8>,
    pub quant: QuantParams,
}

/// A structural defect of a [`SparseParam`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    #[error("expected {expected} kept values, found {indices} indices and {codes} codes")]
    Length { expected: usize, indices: usize, codes: usize },
    #[error("chunk {chunk}: index {index} is out of range (chunk has {totalk} elements)")]
    IndexOutOfRange { chunk: usize, index: u16, totalk: usize },
    #[error("chunk {chunk}: index {index} appears twice")]
    DuplicateIndex { chunk: usize, index: u16 },
    #[error("chunk {chunk}: indices are not in increasing order")]
    Unsorted { chunk: usize },
    #[error("code {code} at position {position} is not in 0..=3")]
    Code { position: usize, code: u8 },
}

impl SparseParam {
    /// Checks the invariants documented on the type.
    pub fn validate(&self) -> Result<(), SparseError> {
        let g = &self.geometry;
        let expected = g.kept();
        if self.indices.len() != expected || self.codes.len() != expected {
            return Err(SparseError::Length { expected, indices: self.indices.len(), codes: self.codes.len() });
        }
        if let Some(position) = self.codes.iter().position(|&c| c > 3) {
            return Err(SparseError::Code { position, code: self.codes[position] });
        }
        for (chunk, idx) in self.indices.chunks_exact(g.k.max(1)).enumerate() {
            check_chunk_indices(chunk, idx, g.totalk())?;
        }
        Ok(())
    }

    /// Row-major offsets into the parameter of every kept value, in storage order.
    pub fn offsets(&self) -> impl Iterator<Item = usize> + '_ {
        let g = self.geometry;
        self.indices.chunks_exact(g.k.max(1)).enumerate().flat_map(move |(chunk, idx)| {
            let origin = g.chunk_origin(chunk);
            idx.iter().map(move |&l| g.offset(origin, l as usize))
        })
    }

    /// Dequantized values in storage order.
    pub fn values(&self) -> Vec<f32> {
        let levels = self.quant.levels();
        self.codes.iter().map(|&q| levels[q as usize & 3]).collect()
    }
}

/// Checks that one chunk's indices are strictly increasing and below `totalk`.
pub(crate) fn check_chunk_indices(chunk: usize, idx: &[u16], totalk: usize) -> Result<(), SparseError> {
    let mut prev: Option<u16> = None;
    for &index in idx {
        if index as usize >= totalk {
            return Err(SparseError::IndexOutOfRange { chunk, index, totalk });
        }
        if let Some(p) = prev {
            if index == p {
                return Err(SparseError::DuplicateIndex { chunk, index });
            }
            if index < p {
                return Err(SparseError::Unsorted { chunk });
            }
        }
        prev = Some(index);
    }
    Ok(())
}
