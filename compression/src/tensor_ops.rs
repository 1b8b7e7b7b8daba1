//! The codec as torch tensor operations, for parameters on any device (CUDA in production).
//!
//! Same algorithm as [`crate::native`], expressed so that the dense work stays on the parameter's
//! device and no chunked copy of the parameter is kept: the error-feedback buffer stays in the
//! parameter's layout, kept values are addressed by their row-major offset, and the buffer is
//! corrected only at those offsets (`put_` with accumulation, which is exactly `e − deq` there).

use tch::{Device, Kind, TchError, Tensor};

use crate::aggregate::{Aggregation, CLIP_EPSILON};
use crate::geometry::ChunkGeometry;
use crate::quant::{QuantParams, LEVELS};
use crate::sparse::SparseParam;

/// A compressed parameter whose indices and codes live on a device.
#[derive(Debug)]
pub struct DeviceSparse {
    pub geometry: ChunkGeometry,
    /// `(num_chunks, k)` int64 local indices, increasing within each chunk.
    pub local: Tensor,
    /// `(num_chunks, k)` uint8 codes.
    pub codes: Tensor,
    /// f32 scalars (0-d) and the f32[4] lookup table.
    pub shift: Tensor,
    pub scale: Tensor,
    pub lookup: Tensor,
}

fn dims(g: &ChunkGeometry) -> [i64; 4] {
    [g.chunk_rows() as i64, g.h as i64, g.chunk_cols() as i64, g.w as i64]
}

/// Row-major offsets into the parameter of `local` indices, shape `(num_chunks, k)`.
fn offsets(g: &ChunkGeometry, local: &Tensor) -> Result<Tensor, TchError> {
    let device = local.device();
    let chunk = Tensor::f_arange(g.num_chunks() as i64, (Kind::Int64, device))?;
    let row = chunk.f_floor_divide_scalar(g.chunk_cols() as i64)?;
    let col = chunk.f_remainder(g.chunk_cols() as i64)?;
    let origin = row.f_mul_scalar((g.h * g.cols) as i64)?.f_add(&col.f_mul_scalar(g.w as i64)?)?.f_unsqueeze(1)?;
    let within =
        local.f_floor_divide_scalar(g.w as i64)?.f_mul_scalar(g.cols as i64)?.f_add(&local.f_remainder(g.w as i64)?)?;
    origin.f_add(&within)
}

impl DeviceSparse {
    /// Dequantized values, `(num_chunks, k)` f32: `lookup[q] + shift`.
    pub fn values(&self) -> Result<Tensor, TchError> {
        let q = self.codes.f_to_kind(Kind::Int64)?;
        self.lookup.f_take(&q)?.f_add(&self.shift)
    }

    /// Copies a host [`SparseParam`] to `device`.
    pub fn upload(sparse: &SparseParam, device: Device) -> Result<Self, TchError> {
        let g = sparse.geometry;
        let shape = [g.num_chunks() as i64, g.k as i64];
        let local: Vec<i16> = sparse.indices.iter().map(|&i| i as i16).collect();
        let local = Tensor::f_from_slice(&local)?.f_to_device(device)?.f_to_kind(Kind::Int64)?.f_view(shape)?;
        let codes = Tensor::f_from_slice(&sparse.codes)?.f_to_device(device)?.f_view(shape)?;
        let q = sparse.quant;
        Ok(Self {
            geometry: g,
            local,
            codes,
            shift: Tensor::f_from_slice(&[q.shift])?.f_to_device(device)?.f_squeeze()?,
            scale: Tensor::f_from_slice(&[q.scale])?.f_to_device(device)?.f_squeeze()?,
            lookup: Tensor::f_from_slice(&q.lookup)?.f_to_device(device)?,
        })
    }

    /// Copies to host memory.
    pub fn download(&self) -> Result<SparseParam, TchError> {
        let to_vec_u16 = |t: &Tensor| -> Result<Vec<u16>, TchError> {
            let t = t.f_to_kind(Kind::Int16)?.f_to_device(Device::Cpu)?.f_contiguous()?;
            let v: Vec<i16> = Vec::try_from(t.f_flatten(0, -1)?)?;
            Ok(v.into_iter().map(|i| i as u16).collect())
        };
        let scalar =
            |t: &Tensor| -> Result<f32, TchError> { t.f_to_device(Device::Cpu)?.f_double_value(&[]).map(|v| v as f32) };
        let lookup: Vec<f32> = Vec::try_from(self.lookup.f_to_device(Device::Cpu)?)?;
        let codes: Vec<u8> = Vec::try_from(self.codes.f_to_device(Device::Cpu)?.f_contiguous()?.f_flatten(0, -1)?)?;
        Ok(SparseParam {
            geometry: self.geometry,
            indices: to_vec_u16(&self.local)?,
            codes,
            quant: QuantParams {
                shift: scalar(&self.shift)?,
                scale: scalar(&self.scale)?,
                lookup: [lookup[0], lookup[1], lookup[2], lookup[3]],
            },
        })
    }
}

/// Error feedback and compression of one parameter (see [`crate::native::compress`]).
///
/// `ef` must be contiguous f32 on the same device as `delta`; it is updated in place.
pub fn compress(delta: &Tensor, ef: &mut Tensor, g: ChunkGeometry, decay: f32) -> Result<DeviceSparse, TchError> {
    let device = ef.device();
    // Two rounded ops, as templar's `mul_(decay).add_(grad)`.
    let _ = ef.f_mul_scalar_(decay as f64)?;
    let _ = ef.f_add_(&delta.f_view_as(ef)?)?;
    let flat = ef.f_view([-1])?;
    let rows = (g.num_chunks()) as i64;
    let local = if g.keeps_all() {
        Tensor::f_arange(g.totalk() as i64, (Kind::Int64, device))?.f_expand([rows, g.k as i64], false)?
    } else {
        // |e| in chunk layout (y, x, h, w), written once into a contiguous buffer.
        let [y, h, x, w] = dims(&g);
        let chunked = flat.f_view([y, h, x, w])?.f_permute([0, 2, 1, 3])?;
        let magnitude = Tensor::f_empty([y, x, h, w], (Kind::Float, device))?;
        let magnitude = chunked.f_abs_out(&magnitude)?;
        let (_, local) = magnitude.f_view([rows, g.totalk() as i64])?.f_topk(g.k as i64, -1, true, false)?;
        local.f_sort(-1, false)?.0
    };
    let at = offsets(&g, &local)?;
    let values = flat.f_take(&at)?;
    // Quantization statistics over all kept values (f32, as torch computes them in templar).
    let n = values.numel() as f64;
    let shift = values.f_mean(Kind::Float)?;
    let centred = values.f_sub(&shift)?;
    let std = centred.f_norm()?.f_div_scalar((n - 1.0).sqrt())?;
    let scale = std.f_mul_scalar(6.0)?.f_div_scalar(LEVELS as f64)?;
    let usable = scale.f_isfinite()?.f_logical_and(&scale.f_ne(0.0)?)?;
    let scale = scale.f_where_scalarother(&usable, 1.0)?;
    let q = centred
        .f_div(&scale)?
        .f_add_scalar(2.0)?
        .f_round()?
        .f_clamp(0.0, (LEVELS - 1) as f64)?
        .f_to_kind(Kind::Int64)?;
    let flat_q = q.f_flatten(0, -1)?;
    let sums =
        Tensor::f_zeros([LEVELS as i64], (Kind::Float, device))?.f_index_add(0, &flat_q, &centred.f_flatten(0, -1)?)?;
    let counts = flat_q.f_bincount::<Tensor>(None, LEVELS as i64)?.f_to_kind(Kind::Float)?;
    let lookup = sums.f_div(&counts.f_clamp_min(1.0)?)?;
    let sparse = DeviceSparse { geometry: g, local, codes: q.f_to_kind(Kind::Uint8)?, shift, scale, lookup };
    // e ← e − transmitted, only where something was transmitted.
    let mut flat = flat;
    let _ = flat.f_put_(&at.f_flatten(0, -1)?, &sparse.values()?.f_neg()?.f_flatten(0, -1)?, true)?;
    Ok(sparse)
}

/// The dense transmitted update of one parameter, as a `(rows·cols)` f32 vector on its device.
pub fn decompress(sparse: &DeviceSparse) -> Result<Tensor, TchError> {
    let g = sparse.geometry;
    let mut out = Tensor::f_zeros([g.numel() as i64], (Kind::Float, sparse.local.device()))?;
    let at = offsets(&g, &sparse.local)?.f_flatten(0, -1)?;
    let _ = out.f_put_(&at, &sparse.values()?.f_flatten(0, -1)?, false)?;
    Ok(out)
}

/// Aggregates peers' updates of one parameter into a `(rows·cols)` f32 vector on their device.
pub fn aggregate(peers: &[&DeviceSparse], mode: Aggregation) -> Result<Tensor, TchError> {
    let first = peers.first().ok_or_else(|| TchError::Kind("aggregate of no peers".into()))?;
    let g = first.geometry;
    let device = first.local.device();
    let mut at = Vec::with_capacity(peers.len());
    let mut values = Vec::with_capacity(peers.len());
    for p in peers {
        at.push(offsets(&g, &p.local)?.f_flatten(0, -1)?);
        values.push(p.values()?.f_flatten(0, -1)?);
    }
    let at = Tensor::f_cat(&at, 0)?;
    match mode {
        Aggregation::MedianClippedMean => {
            let norms = Tensor::f_stack(&values.iter().map(|v| v.f_norm()).collect::<Result<Vec<_>, _>>()?, 0)?;
            let median = norms.f_median()?;
            let clip = median.f_div(&norms.f_add_scalar(CLIP_EPSILON as f64)?)?.f_clamp_max(1.0)?;
            let clipped = values
                .iter()
                .enumerate()
                .map(|(i, v)| v.f_mul(&clip.f_get(i as i64)?))
                .collect::<Result<Vec<_>, _>>()?;
            let clipped = Tensor::f_cat(&clipped, 0)?;
            let mut out = Tensor::f_zeros([g.numel() as i64], (Kind::Float, device))?;
            let _ = out.f_internal_scatter_reduce_(0, &at, &clipped, "mean", false)?;
            Ok(out)
        }
        Aggregation::Mean => {
            let all = Tensor::f_cat(&values, 0)?.f_to_kind(Kind::Double)?;
            let sum = Tensor::f_zeros([g.numel() as i64], (Kind::Double, device))?.f_index_add(0, &at, &all)?;
            sum.f_div_scalar(peers.len() as f64)?.f_to_kind(Kind::Float)
        }
    }
}
