//! How a parameter is cut into chunks, and how many values each chunk keeps.
//!
//! Every parameter is seen as a 2-D matrix `(rows, cols)`: 2-D parameters as they are, 1-D
//! parameters `(N,)` as `(1, N)`, and higher-rank tensors `(d0, d1, …, dn)` as `(d0, d1·…·dn)`
//! (the row-major flattening torch's `reshape(d0, -1)` gives; a convolution kernel keeps one row per
//! output channel). A 0-D scalar is `(1, 1)`. The chunk of a dimension of size `s` is the largest
//! divisor of `s` that is at most `target_chunk` (64), as templar's `_get_smaller_split`: chunks are
//! `h × w` tiles with `h = c(rows)` and `w = c(cols)`, except that a 1-D parameter (a single row) has
//! chunks of one row, `(N/w, w)`. Within a chunk the local index of element `(a, b)` is `a·w + b`,
//! so `totalk = h·w` and every index fits in 12 bits.

use serde::{Deserialize, Serialize};

/// The default chunk edge and number of values kept per chunk (templar `target_chunk`,
/// `topk_compression`).
pub const DEFAULT_TARGET_CHUNK: usize = 64;
pub const DEFAULT_TOPK: usize = 64;

/// Largest chunk edge the wire format can describe: local indices must fit in 12 bits.
pub const MAX_CHUNK_EDGE: usize = 64;

/// The chunk layout of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkGeometry {
    /// Rows of the 2-D view.
    pub rows: usize,
    /// Columns of the 2-D view.
    pub cols: usize,
    /// Chunk height (1 for 1-D parameters).
    pub h: usize,
    /// Chunk width.
    pub w: usize,
    /// Values kept per chunk.
    pub k: usize,
}

/// Why a shape cannot be chunked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("parameter has a zero-sized dimension in shape {0:?}")]
    Empty(Vec<usize>),
    #[error("shape {0:?} has more elements than this machine can address")]
    TooLarge(Vec<usize>),
    #[error("chunk target {0} is outside 1..={MAX_CHUNK_EDGE}")]
    BadTarget(usize),
}

/// Largest divisor of `s` that is at most `target`.
pub fn chunk_edge(s: usize, target: usize) -> usize {
    if s <= target {
        return s;
    }
    (1..=target).rev().find(|d| s.is_multiple_of(*d)).unwrap_or(1)
}

/// templar's k rule: `min(topk, totalk)`, at least 2, made even — and, where that exceeds a tiny
/// chunk (`totalk == 1`, a prime-length 1-D parameter), every element.
pub fn keep_count(topk: usize, totalk: usize) -> usize {
    let mut k = topk.min(totalk).max(2);
    k -= k % 2;
    k.min(totalk)
}

impl ChunkGeometry {
    /// The geometry of a parameter of `shape` with the given chunk target and top-k.
    pub fn new(shape: &[usize], target_chunk: usize, topk: usize) -> Result<Self, GeometryError> {
        if target_chunk == 0 || target_chunk > MAX_CHUNK_EDGE {
            return Err(GeometryError::BadTarget(target_chunk));
        }
        if shape.contains(&0) {
            return Err(GeometryError::Empty(shape.to_vec()));
        }
        let numel = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| GeometryError::TooLarge(shape.to_vec()))?;
        let (rows, cols, h) = match shape {
            [] => (1, 1, 1),
            [n] => (1, *n, 1),
            [r, ..] => (*r, numel / r, chunk_edge(*r, target_chunk)),
        };
        let w = chunk_edge(cols, target_chunk);
        let k = keep_count(topk, h * w);
        Ok(Self { rows, cols, h, w, k })
    }

    /// Geometry with the production constants (64-wide chunks, top-64).
    pub fn standard(shape: &[usize]) -> Result<Self, GeometryError> {
        Self::new(shape, DEFAULT_TARGET_CHUNK, DEFAULT_TOPK)
    }

    /// Elements per chunk.
    pub fn totalk(&self) -> usize {
        self.h * self.w
    }

    /// Chunks along the rows.
    pub fn chunk_rows(&self) -> usize {
        self.rows / self.h
    }

    /// Chunks along the columns.
    pub fn chunk_cols(&self) -> usize {
        self.cols / self.w
    }

    /// Number of chunks.
    pub fn num_chunks(&self) -> usize {
        self.chunk_rows() * self.chunk_cols()
    }

    /// Number of elements of the parameter.
    pub fn numel(&self) -> usize {
        self.rows * self.cols
    }

    /// Number of kept values over all chunks.
    pub fn kept(&self) -> usize {
        self.num_chunks() * self.k
    }

    /// Whether every element is kept (then indices carry no information).
    pub fn keeps_all(&self) -> bool {
        self.k == self.totalk()
    }

    /// Row-major offset in the parameter of the first element of chunk `chunk`.
    pub fn chunk_origin(&self, chunk: usize) -> usize {
        let (i, j) = (chunk / self.chunk_cols(), chunk % self.chunk_cols());
        i * self.h * self.cols + j * self.w
    }

    /// Row-major offset in the parameter of local index `local` of the chunk at `origin`.
    #[inline]
    pub fn offset(&self, origin: usize, local: usize) -> usize {
        origin + (local / self.w) * self.cols + local % self.w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_edges_follow_templar() {
        assert_eq!(chunk_edge(4096, 64), 64);
        assert_eq!(chunk_edge(64, 64), 64);
        assert_eq!(chunk_edge(35, 64), 35);
        assert_eq!(chunk_edge(96, 64), 48);
        assert_eq!(chunk_edge(67, 64), 1); // prime
        assert_eq!(chunk_edge(2688, 64), 64);
        assert_eq!(chunk_edge(100, 64), 50);
    }

    #[test]
    fn k_rule() {
        assert_eq!(keep_count(64, 4096), 64);
        assert_eq!(keep_count(64, 64), 64);
        assert_eq!(keep_count(64, 35), 34);
        assert_eq!(keep_count(64, 3), 2);
        assert_eq!(keep_count(64, 2), 2);
        assert_eq!(keep_count(64, 1), 1);
        assert_eq!(keep_count(1, 4096), 2);
        assert_eq!(keep_count(7, 4096), 6);
    }

    #[test]
    fn shapes() {
        let g = ChunkGeometry::standard(&[256, 512]).unwrap();
        assert_eq!((g.h, g.w, g.k, g.num_chunks(), g.totalk()), (64, 64, 64, 32, 4096));
        let g = ChunkGeometry::standard(&[512]).unwrap();
        assert_eq!((g.rows, g.cols, g.h, g.w, g.k, g.num_chunks()), (1, 512, 1, 64, 64, 8));
        assert!(g.keeps_all());
        let g = ChunkGeometry::standard(&[8, 3, 5, 5]).unwrap();
        assert_eq!((g.rows, g.cols, g.h, g.w), (8, 75, 8, 25));
        let g = ChunkGeometry::standard(&[]).unwrap();
        assert_eq!((g.rows, g.cols, g.k), (1, 1, 1));
        assert!(ChunkGeometry::standard(&[0, 3]).is_err());
        assert!(ChunkGeometry::standard(&[usize::MAX, 3]).is_err());
    }

    #[test]
    fn offsets_cover_the_parameter_exactly_once() {
        for shape in [vec![96, 40], vec![130], vec![3, 4, 5], vec![64, 128]] {
            let g = ChunkGeometry::standard(&shape).unwrap();
            let mut seen = vec![0u8; g.numel()];
            for c in 0..g.num_chunks() {
                let o = g.chunk_origin(c);
                for l in 0..g.totalk() {
                    seen[g.offset(o, l)] += 1;
                }
            }
            assert!(seen.iter().all(|&s| s == 1), "{shape:?}");
        }
    }
}
