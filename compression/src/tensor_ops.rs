//! The codec as torch tensor operations, batched over a whole model, for parameters on any device
//! (CUDA in production).
//!
//! Kernel launches, not bandwidth, dominate a per-parameter implementation on a GPU: a 1B model has
//! ~150 tensors and the algorithm ~35 small operations per tensor. Here parameters that share a chunk
//! shape form a *group*: each group's chunks of `|e|` are written into one buffer and go through one
//! top-k, one sort and one set of statistics kernels (segment sums keyed by a per-row member index);
//! only the error-feedback update, the `|e|` copy, the gather of kept values and the EF correction run
//! per parameter. The error-feedback buffers stay in the parameters' layout and are corrected only at
//! the kept offsets (`put_` with accumulation, i.e. exactly `e − deq` there).
//!
//! On CUDA three steps run as this crate's own kernels ([`crate::cuda_kernels`]: the error
//! feedback with the `|e|` copy, the top-k, the aggregation's mean); elsewhere, or when they cannot
//! load, ATen's operators do the same work.
//!
//! The same math as [`crate::native`]; statistics accumulate in f64 as there.

use tch::{Device, Kind, TchError, Tensor};

use crate::aggregate::{Aggregation, CLIP_EPSILON};
use crate::geometry::ChunkGeometry;
use crate::quant::{QuantParams, LEVELS};
use crate::sparse::SparseParam;

/// Parameters that share chunk shape `(h, w)` and `k`, processed together.
#[derive(Debug)]
struct Group {
    h: usize,
    w: usize,
    k: usize,
    /// Parameter indices (into the plan's geometry) of the members, in order.
    members: Vec<usize>,
    /// First chunk row of each member in the group's row space.
    row_start: Vec<usize>,
    /// First element of each member in the group's dense output.
    elem_start: Vec<usize>,
    rows: usize,
    elems: usize,
    /// Per chunk row: member index (0..members), int64.
    row_member: Tensor,
    /// Per chunk row: offset of the chunk's first element within its parameter, int64.
    row_origin: Tensor,
    /// Per chunk row: offset of the chunk's first element within the group's dense output, in
    /// `offset_kind`.
    row_out: Tensor,
    /// Per chunk row: the parameter's row length (columns), in `offset_kind`.
    row_cols: Tensor,
    /// int32 when every offset into the group's dense output fits (halving the traffic of the
    /// aggregation's index arithmetic), else int64.
    offset_kind: Kind,
    /// Kept values per member, f64.
    kept: Tensor,
}

impl Group {
    fn totalk(&self) -> usize {
        self.h * self.w
    }

    fn keeps_all(&self) -> bool {
        self.k == self.totalk()
    }

    /// Offsets of `local` indices `(…, rows, k)` relative to per-row `origin`s.
    fn offsets(&self, local: &Tensor, origin: &Tensor) -> Result<Tensor, TchError> {
        let w = self.w as i64;
        local
            .f_floor_divide_scalar(w)?
            .f_mul(&self.row_cols.f_unsqueeze(1)?)?
            .f_add(&local.f_remainder(w)?)?
            .f_add(&origin.f_unsqueeze(-1)?)
    }
}

/// The static part of the batched codec for one model on one device: the grouping of its
/// parameters and the per-row index tensors, built once and reused every window.
#[derive(Debug)]
pub struct DevicePlan {
    device: Device,
    geometry: Vec<ChunkGeometry>,
    groups: Vec<Group>,
}

/// A model's compressed update with its indices and codes on a device.
#[derive(Debug)]
pub struct DeviceBatch {
    groups: Vec<GroupData>,
}

#[derive(Debug)]
struct GroupData {
    /// `(rows, k)` int16 local indices (a chunk has at most 4096 elements), increasing within each
    /// row (chunk).
    local: Tensor,
    /// `(rows, k)` uint8 codes.
    codes: Tensor,
    /// Per member, f32.
    shift: Tensor,
    scale: Tensor,
    /// `(members, 4)` f32.
    lookup: Tensor,
}

/// `e ← decay·e + d` as two rounded ops, as templar's `mul_(decay).add_(grad)`.
fn error_feedback(e: &mut Tensor, d: &Tensor, decay: f32) -> Result<(), TchError> {
    let _ = e.f_mul_scalar_(decay as f64)?;
    let _ = e.f_add_(&d.f_view_as(e)?)?;
    Ok(())
}

fn index_tensor(v: &[i64], kind: Kind, device: Device) -> Result<Tensor, TchError> {
    Tensor::f_from_slice(v)?.f_to_kind(kind)?.f_to_device(device)
}

impl DevicePlan {
    /// A plan for parameters of `geometry` (in model order) on `device`.
    pub fn new(geometry: &[ChunkGeometry], device: Device) -> Result<Self, TchError> {
        let mut keys: Vec<(usize, usize, usize)> = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (p, g) in geometry.iter().enumerate() {
            let key = (g.h, g.w, g.k);
            let gi = keys.iter().position(|&k| k == key).unwrap_or_else(|| {
                keys.push(key);
                members.push(Vec::new());
                keys.len() - 1
            });
            members[gi].push(p);
        }
        let mut groups = Vec::with_capacity(keys.len());
        for ((h, w, k), members) in keys.into_iter().zip(members) {
            let (mut row_member, mut row_origin, mut row_out, mut row_cols) = (vec![], vec![], vec![], vec![]);
            let (mut row_start, mut elem_start, mut kept) = (vec![], vec![], vec![]);
            let (mut rows, mut elems) = (0usize, 0usize);
            for (m, &p) in members.iter().enumerate() {
                let g = &geometry[p];
                row_start.push(rows);
                elem_start.push(elems);
                kept.push(g.kept() as f64);
                for c in 0..g.num_chunks() {
                    let origin = g.chunk_origin(c);
                    row_member.push(m as i64);
                    row_origin.push(origin as i64);
                    row_out.push((elems + origin) as i64);
                    row_cols.push(g.cols as i64);
                }
                rows += g.num_chunks();
                elems += g.numel();
            }
            let offset_kind = if elems <= i32::MAX as usize { Kind::Int } else { Kind::Int64 };
            groups.push(Group {
                h,
                w,
                k,
                row_start,
                elem_start,
                rows,
                elems,
                row_member: index_tensor(&row_member, Kind::Int64, device)?,
                row_origin: index_tensor(&row_origin, Kind::Int64, device)?,
                row_out: index_tensor(&row_out, offset_kind, device)?,
                row_cols: index_tensor(&row_cols, offset_kind, device)?,
                offset_kind,
                kept: Tensor::f_from_slice(&kept)?.f_to_device(device)?,
                members,
            });
        }
        Ok(Self { device, geometry: geometry.to_vec(), groups })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn geometry(&self) -> &[ChunkGeometry] {
        &self.geometry
    }

    /// Error feedback and compression of every parameter (see [`crate::native::compress`]):
    /// `efs[p] ← decay·efs[p] + deltas[p]`, select and quantize, `efs[p] ← efs[p] − transmitted`.
    ///
    /// `efs` must be contiguous f32 tensors on the plan's device with the parameters' shapes; the
    /// caller has checked shapes, kinds and finiteness.
    pub fn compress(&self, deltas: &[&Tensor], efs: &mut [Tensor], decay: f32) -> Result<DeviceBatch, TchError> {
        let mut out = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            out.push(self.compress_group(group, deltas, efs, decay)?);
        }
        Ok(DeviceBatch { groups: out })
    }

    fn compress_group(
        &self,
        g: &Group,
        deltas: &[&Tensor],
        efs: &mut [Tensor],
        decay: f32,
    ) -> Result<GroupData, TchError> {
        let (rows, k, totalk) = (g.rows as i64, g.k as i64, g.totalk() as i64);
        let local = if g.keeps_all() {
            for &p in &g.members {
                error_feedback(&mut efs[p], deltas[p], decay)?;
            }
            Tensor::f_arange(totalk, (Kind::Int64, self.device))?.f_expand([rows, k], false)?.f_contiguous()?
        } else {
            // |e| of every member's chunks, one chunk per row of a single buffer (on CUDA written
            // by the error-feedback kernel itself).
            let magnitude = Tensor::f_empty([rows, totalk], (Kind::Float, self.device))?;
            for (m, &p) in g.members.iter().enumerate() {
                let geo = &self.geometry[p];
                let (y, x) = (geo.chunk_rows() as i64, geo.chunk_cols() as i64);
                let (h, w) = (g.h as i64, g.w as i64);
                let layout = crate::cuda_kernels::ChunkLayout { cols: x * w, h, w, first_chunk: g.row_start[m] as i64 };
                let d = deltas[p].f_view_as(&efs[p])?;
                if crate::cuda_kernels::ef_update(&mut efs[p], &d, &magnitude, layout, decay)? {
                    continue;
                }
                error_feedback(&mut efs[p], &d, decay)?;
                let chunked = efs[p].f_view([y, h, x, w])?.f_permute([0, 2, 1, 3])?;
                let slot = magnitude.f_narrow(0, g.row_start[m] as i64, y * x)?.f_view([y, x, h, w])?;
                let _ = chunked.f_abs_out(&slot)?;
            }
            // On CUDA one kernel selects and orders; elsewhere ATen's top-k, then a sort.
            match crate::cuda_kernels::chunk_topk(&magnitude, k)? {
                Some(local) => local,
                None => magnitude.f_topk(k, -1, true, false)?.1.f_sort(-1, false)?.0,
            }
        };
        // take/put_ index with int64 (the int64 `local` promotes the arithmetic).
        let at = g.offsets(&local, &g.row_origin)?;
        let values = Tensor::f_cat(
            &g.members
                .iter()
                .enumerate()
                .map(|(m, &p)| efs[p].f_view([-1])?.f_take(&self.member_rows(g, m, &at)?))
                .collect::<Result<Vec<_>, _>>()?,
            0,
        )?;
        // Per-member statistics over all kept values, accumulated in f64.
        let members = g.members.len() as i64;
        let zeros = |n: i64| Tensor::f_zeros([n], (Kind::Double, self.device));
        let sum = zeros(members)?.f_index_add(0, &g.row_member, &values.f_sum_dim_intlist(-1, false, Kind::Double)?)?;
        let shift = sum.f_div(&g.kept)?.f_to_kind(Kind::Float)?;
        let centred = values.f_sub(&shift.f_index_select(0, &g.row_member)?.f_unsqueeze(1)?)?;
        let sq = centred.f_to_kind(Kind::Double)?.f_square()?.f_sum_dim_intlist(-1, false, Kind::Double)?;
        let norm = zeros(members)?.f_index_add(0, &g.row_member, &sq)?.f_sqrt()?.f_to_kind(Kind::Float)?;
        let std = norm.f_div(&g.kept.f_sub_scalar(1.0)?.f_sqrt()?.f_to_kind(Kind::Float)?)?;
        let scale = std.f_mul_scalar(6.0)?.f_div_scalar(LEVELS as f64)?;
        let usable = scale.f_isfinite()?.f_logical_and(&scale.f_ne(0.0)?)?;
        let scale = scale.f_where_scalarother(&usable, 1.0)?;
        let q = centred
            .f_div(&scale.f_index_select(0, &g.row_member)?.f_unsqueeze(1)?)?
            .f_add_scalar(2.0)?
            .f_round()?
            .f_clamp(0.0, (LEVELS - 1) as f64)?
            .f_to_kind(Kind::Int64)?;
        let bin = g.row_member.f_unsqueeze(1)?.f_mul_scalar(LEVELS as i64)?.f_add(&q)?.f_flatten(0, -1)?;
        let bin_sum = zeros(members * LEVELS as i64)?.f_index_add(
            0,
            &bin,
            &centred.f_flatten(0, -1)?.f_to_kind(Kind::Double)?,
        )?;
        let bin_count = zeros(members * LEVELS as i64)?.f_index_add(
            0,
            &bin,
            &Tensor::f_ones([bin.numel() as i64], (Kind::Double, self.device))?,
        )?;
        let lookup = bin_sum.f_div(&bin_count.f_clamp_min(1.0)?)?.f_to_kind(Kind::Float)?;
        // e ← e − transmitted at the kept offsets only.
        let deq =
            lookup.f_take(&bin)?.f_view([rows, k])?.f_add(&shift.f_index_select(0, &g.row_member)?.f_unsqueeze(1)?)?;
        let minus = deq.f_neg()?;
        for (m, &p) in g.members.iter().enumerate() {
            let mut flat = efs[p].f_view([-1])?;
            let _ = flat.f_put_(&self.member_rows(g, m, &at)?, &self.member_rows(g, m, &minus)?, true)?;
        }
        Ok(GroupData {
            local: local.f_to_kind(Kind::Int16)?,
            codes: q.f_to_kind(Kind::Uint8)?,
            shift,
            scale,
            lookup: lookup.f_view([members, LEVELS as i64])?,
        })
    }

    /// Member `m`'s rows of a `(rows, k)` group tensor.
    fn member_rows(&self, g: &Group, m: usize, t: &Tensor) -> Result<Tensor, TchError> {
        let rows = self.geometry[g.members[m]].num_chunks() as i64;
        t.f_narrow(0, g.row_start[m] as i64, rows)
    }

    /// Copies host [`SparseParam`]s (one per parameter, in model order) to the device.
    pub fn upload(&self, params: &[&SparseParam]) -> Result<DeviceBatch, TchError> {
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let mut local: Vec<i16> = Vec::with_capacity(g.rows * g.k);
            let mut codes: Vec<u8> = Vec::with_capacity(g.rows * g.k);
            let (mut shift, mut scale, mut lookup) = (vec![], vec![], vec![]);
            for &p in &g.members {
                let s = params[p];
                local.extend(s.indices.iter().map(|&i| i as i16));
                codes.extend_from_slice(&s.codes);
                shift.push(s.quant.shift);
                scale.push(s.quant.scale);
                lookup.extend_from_slice(&s.quant.lookup);
            }
            let shape = [g.rows as i64, g.k as i64];
            groups.push(GroupData {
                local: Tensor::f_from_slice(&local)?.f_to_device(self.device)?.f_view(shape)?,
                codes: Tensor::f_from_slice(&codes)?.f_to_device(self.device)?.f_view(shape)?,
                shift: Tensor::f_from_slice(&shift)?.f_to_device(self.device)?,
                scale: Tensor::f_from_slice(&scale)?.f_to_device(self.device)?,
                lookup: Tensor::f_from_slice(&lookup)?.f_to_device(self.device)?.f_view([-1, LEVELS as i64])?,
            });
        }
        Ok(DeviceBatch { groups })
    }

    /// Copies a batch to host memory, one [`SparseParam`] per parameter in model order.
    pub fn download(&self, batch: &DeviceBatch) -> Result<Vec<SparseParam>, TchError> {
        let mut out: Vec<Option<SparseParam>> = (0..self.geometry.len()).map(|_| None).collect();
        for (g, data) in self.groups.iter().zip(&batch.groups) {
            let cpu = |t: &Tensor| t.f_to_device(Device::Cpu)?.f_contiguous()?.f_flatten(0, -1);
            let local: Vec<i16> = Vec::try_from(cpu(&data.local)?)?;
            let codes: Vec<u8> = Vec::try_from(cpu(&data.codes)?)?;
            let shift: Vec<f32> = Vec::try_from(cpu(&data.shift)?)?;
            let scale: Vec<f32> = Vec::try_from(cpu(&data.scale)?)?;
            let lookup: Vec<f32> = Vec::try_from(cpu(&data.lookup)?)?;
            for (m, &p) in g.members.iter().enumerate() {
                let geo = self.geometry[p];
                let span = g.row_start[m] * g.k..g.row_start[m] * g.k + geo.kept();
                out[p] = Some(SparseParam {
                    geometry: geo,
                    indices: local[span.clone()].iter().map(|&i| i as u16).collect(),
                    codes: codes[span].to_vec(),
                    quant: QuantParams {
                        shift: shift[m],
                        scale: scale[m],
                        lookup: [lookup[4 * m], lookup[4 * m + 1], lookup[4 * m + 2], lookup[4 * m + 3]],
                    },
                });
            }
        }
        Ok(out.into_iter().map(|p| p.expect("every parameter belongs to a group")).collect())
    }

    /// Dequantized values `(…, rows, k)` of stacked codes `q` with per-member `lookup`/`shift`
    /// stacked the same way.
    fn dequantize(&self, g: &Group, q: &Tensor, lookup: &Tensor, shift: &Tensor) -> Result<Tensor, TchError> {
        let peers = q.size()[0];
        let bin = g.row_member.f_unsqueeze(1)?.f_mul_scalar(LEVELS as i64)?.f_add(&q.f_to_kind(Kind::Int64)?)?;
        let values = lookup.f_view([peers, -1])?.f_gather(1, &bin.f_view([peers, -1])?, false)?.f_view_as(q)?;
        values.f_add(&shift.f_index_select(1, &g.row_member)?.f_unsqueeze(2)?)
    }

    /// Aggregates peers' batches into one dense f32 update per parameter (flat, row-major), on
    /// the plan's device. Returned tensors of one group are views of one buffer.
    pub fn aggregate(&self, peers: &[&DeviceBatch], mode: Aggregation) -> Result<Vec<Tensor>, TchError> {
        if peers.is_empty() {
            return Err(TchError::Kind("aggregate of no peers".into()));
        }
        let r = peers.len() as i64;
        let mut out: Vec<Option<Tensor>> = (0..self.geometry.len()).map(|_| None).collect();
        for (gi, g) in self.groups.iter().enumerate() {
            let stack = |f: &dyn Fn(&GroupData) -> &Tensor| {
                Tensor::f_stack(&peers.iter().map(|b| f(&b.groups[gi])).collect::<Vec<_>>(), 0)
            };
            let local16 = stack(&|d| &d.local)?;
            let offsets = || -> Result<Tensor, TchError> {
                let local = local16.f_to_kind(g.offset_kind)?;
                let at = g.offsets(&local, &g.row_out.f_unsqueeze(0)?.f_expand([r, g.rows as i64], false)?)?;
                at.f_flatten(0, -1)
            };
            let values = self.dequantize(g, &stack(&|d| &d.codes)?, &stack(&|d| &d.lookup)?, &stack(&|d| &d.shift)?)?;
            let dense = match mode {
                Aggregation::MedianClippedMean => {
                    let members = g.members.len() as i64;
                    let sq = values.f_to_kind(Kind::Double)?.f_square()?.f_sum_dim_intlist(-1, false, Kind::Double)?;
                    let norms = Tensor::f_zeros([r, members], (Kind::Double, self.device))?
                        .f_index_add(1, &g.row_member, &sq)?
                        .f_sqrt()?
                        .f_to_kind(Kind::Float)?;
                    // torch.median: the lower median for an even count.
                    let median = norms.f_sort(0, false)?.0.f_select(0, (r - 1) / 2)?;
                    let clip =
                        median.f_unsqueeze(0)?.f_div(&norms.f_add_scalar(CLIP_EPSILON as f64)?)?.f_clamp_max(1.0)?;
                    let clipped = values.f_mul(&clip.f_index_select(1, &g.row_member)?.f_unsqueeze(2)?)?;
                    let (row_out, row_cols) = (g.row_out.f_to_kind(Kind::Int64)?, g.row_cols.f_to_kind(Kind::Int64)?);
                    let (elems, h, w) = (g.elems as i64, g.h as i64, g.w as i64);
                    match crate::cuda_kernels::chunk_mean(&local16, &clipped, &row_out, &row_cols, elems, h, w)? {
                        Some(dense) => dense,
                        None => {
                            // Sum and count of the values at each offset in one scatter of
                            // (value, 1) pairs: the scatter's atomics, not bandwidth, bound it.
                            let at = offsets()?;
                            let pairs = Tensor::f_empty([at.numel() as i64, 2], (Kind::Float, self.device))?;
                            pairs.f_select(1, 0)?.f_copy_(&clipped.f_flatten(0, -1)?)?;
                            let _ = pairs.f_select(1, 1)?.f_fill_(1.0)?;
                            let acc =
                                Tensor::f_zeros([elems, 2], (Kind::Float, self.device))?.f_index_add(0, &at, &pairs)?;
                            acc.f_select(1, 0)?.f_div(&acc.f_select(1, 1)?.f_clamp_min(1.0)?)?
                        }
                    }
                }
                Aggregation::Mean => Tensor::f_zeros([g.elems as i64], (Kind::Double, self.device))?
                    .f_index_add(0, &offsets()?, &values.f_flatten(0, -1)?.f_to_kind(Kind::Double)?)?
                    .f_div_scalar(r as f64)?
                    .f_to_kind(Kind::Float)?,
            };
            for (m, &p) in g.members.iter().enumerate() {
                out[p] = Some(dense.f_narrow(0, g.elem_start[m] as i64, self.geometry[p].numel() as i64)?);
            }
        }
        Ok(out.into_iter().map(|t| t.expect("every parameter belongs to a group")).collect())
    }

    /// The dense transmitted update of every parameter (flat, row-major).
    pub fn decompress(&self, batch: &DeviceBatch) -> Result<Vec<Tensor>, TchError> {
        self.aggregate(&[batch], Aggregation::Mean)
    }
}
