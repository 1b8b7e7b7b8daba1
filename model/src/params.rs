//! Parameter storage: fp32 master weights in one flat buffer, the tensors the forward pass uses,
//! and a flat fp32 gradient accumulator.
//!
//! Keeping every parameter as a view into one buffer makes the optimizer, gradient clipping, the
//! pseudo-gradient `θ_start − θ_end`, the outer step and checkpoint snapshots one kernel each
//! instead of one per tensor. On CUDA the forward pass runs on a bf16 copy of the buffer
//! (refreshed by one copy after every optimizer step), whose gradients are accumulated into the
//! fp32 buffer after each backward pass: bf16 compute, fp32 master weights and optimizer state.
//! On the CPU the forward pass uses the fp32 masters directly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tch::{Device, Kind, TchError, Tensor};

use crate::config::LlamaConfig;
use crate::ops;

/// The model's parameters, flat, on one device.
#[derive(Debug)]
pub struct ParamStore {
    names: Vec<String>,
    shapes: Vec<Vec<i64>>,
    offsets: Vec<i64>,
    numel: i64,
    device: Device,
    compute_kind: Kind,
    /// fp32 master weights, all parameters back to back in [`LlamaConfig::parameters`] order.
    master: Tensor,
    /// bf16 copy of `master` the forward pass reads (CUDA only).
    compute_flat: Option<Tensor>,
    /// Leaf tensors that the forward pass uses and autograd differentiates: one per group of
    /// consecutive parameters (see [`LlamaConfig::leaf_groups`]), shaped `(Σ rows, cols)`.
    leaves: Vec<Tensor>,
    /// The parameter range of each leaf.
    groups: Vec<std::ops::Range<usize>>,
    /// For each parameter, its leaf and its first row within it.
    place: Vec<(usize, i64)>,
    /// fp32 gradient accumulator, same layout as `master`.
    grad: Tensor,
}

impl ParamStore {
    /// Zero-initialised storage for `config` on `device`; bf16 compute on CUDA, fp32 on CPU.
    pub fn new(config: &LlamaConfig, device: Device) -> Result<Self, TchError> {
        let compute_kind = if device.is_cuda() { Kind::BFloat16 } else { Kind::Float };
        Self::with_compute_kind(config, device, compute_kind)
    }

    pub fn with_compute_kind(config: &LlamaConfig, device: Device, compute_kind: Kind) -> Result<Self, TchError> {
        let params = config.parameters();
        let mut offsets = Vec::with_capacity(params.len());
        let mut numel = 0i64;
        for (_, shape) in &params {
            offsets.push(numel);
            numel += shape.iter().product::<usize>() as i64;
        }
        let master = Tensor::f_zeros([numel], (Kind::Float, device))?;
        let grad = Tensor::f_zeros([numel], (Kind::Float, device))?;
        let compute_flat = if compute_kind == Kind::Float { None } else { Some(master.f_to_kind(compute_kind)?) };
        let names: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
        let shapes: Vec<Vec<i64>> = params.iter().map(|(_, s)| s.iter().map(|&d| d as i64).collect()).collect();
        let backing = compute_flat.as_ref().unwrap_or(&master);
        let groups = config.leaf_groups();
        let mut place = vec![(0usize, 0i64); shapes.len()];
        let mut leaves = Vec::with_capacity(groups.len());
        for (leaf, range) in groups.iter().enumerate() {
            let mut rows = 0i64;
            for p in range.clone() {
                place[p] = (leaf, rows);
                rows += shapes[p].first().copied().unwrap_or(1);
            }
            let first = &shapes[range.start];
            let shape: Vec<i64> = if range.len() == 1 { first.clone() } else { vec![rows, first[1]] };
            let n: i64 = shape.iter().product();
            let t = backing.f_narrow(0, offsets[range.start], n)?.f_view(shape.as_slice())?;
            leaves.push(t.f_detach()?.set_requires_grad(true));
        }
        Ok(Self {
            names,
            shapes,
            offsets,
            numel,
            device,
            compute_kind,
            master,
            compute_flat,
            leaves,
            groups,
            place,
            grad,
        })
    }

    /// LLaMA-style initialisation, deterministic in `seed` on every machine and device: each
    /// parameter is drawn from its own ChaCha8 stream (keyed by `seed` and the parameter's index,
    /// normal deviates by `rand_distr`'s ziggurat) on the CPU, then copied to the device. It does
    /// not touch libtorch's global generator, so concurrent initialisations cannot interleave. Norm weights are ones; embeddings N(0, 1) (N(0, 0.02²) when tied to the
    /// output head, which keeps the initial logits near zero); `wq, wk, wv, w1` N(0, 0.02²);
    /// the residual-branch outputs `wo, w2, w3` N(0, (0.02/√(2·(layer+1)))²) (torchtitan's depth
    /// init); the untied output head N(0, 1/dim).
    pub fn init(&mut self, config: &LlamaConfig, seed: u64) -> Result<(), TchError> {
        let _guard = tch::no_grad_guard();
        for i in 0..self.names.len() {
            let name = self.names[i].clone();
            let shape = self.shapes[i].clone();
            let values = if name.ends_with("norm.weight") {
                Tensor::f_ones(shape.as_slice(), (Kind::Float, Device::Cpu))?
            } else {
                let std = if name == "tok_embeddings.weight" {
                    if config.tie_embeddings {
                        0.02
                    } else {
                        1.0
                    }
                } else if name == "output.weight" {
                    (config.dim as f64).powf(-0.5)
                } else if name.ends_with("wo.weight") || name.ends_with("w2.weight") || name.ends_with("w3.weight") {
                    let layer: f64 = name.split('.').nth(1).and_then(|l| l.parse().ok()).unwrap_or(0.0);
                    0.02 / (2.0 * (layer + 1.0)).sqrt()
                } else {
                    0.02
                };
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64);
                let n: i64 = shape.iter().product();
                let values: Vec<f32> = (0..n).map(|_| (rng.sample::<f64, _>(StandardNormal) * std) as f32).collect();
                Tensor::f_from_slice(&values)?.f_view(shape.as_slice())?
            };
            self.master_view(i)?.f_copy_(&values.f_to_device(self.device)?)?;
        }
        self.sync_compute()
    }

    /// Refreshes the compute copy from the masters (after every change to the masters).
    pub fn sync_compute(&mut self) -> Result<(), TchError> {
        if let Some(c) = &mut self.compute_flat {
            let _guard = tch::no_grad_guard();
            c.f_copy_(&self.master)?;
        }
        Ok(())
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn compute_kind(&self) -> Kind {
        self.compute_kind
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn shapes(&self) -> &[Vec<i64>] {
        &self.shapes
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn numel(&self) -> i64 {
        self.numel
    }

    /// Index of the parameter called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The leaf tensor that holds parameter `i` (shared with the other members of its group),
    /// and the parameter's first row in it.
    pub fn leaf_of(&self, i: usize) -> (&Tensor, i64) {
        let (leaf, row) = self.place[i];
        (&self.leaves[leaf], row)
    }

    /// The leaf tensor of parameter `i` when the parameter is a leaf of its own.
    pub fn leaf(&self, i: usize) -> &Tensor {
        let (leaf, _) = self.place[i];
        debug_assert_eq!(self.groups[leaf].len(), 1, "parameter {} is part of a fused leaf", self.names[i]);
        &self.leaves[leaf]
    }

    /// The flat fp32 master buffer.
    pub fn master(&self) -> &Tensor {
        &self.master
    }

    /// Mutable access to the masters; call [`ParamStore::sync_compute`] after changing them.
    pub fn master_mut(&mut self) -> &mut Tensor {
        &mut self.master
    }

    /// Parameter `i` of the masters, shaped (a view: writes go to the masters).
    pub fn master_view(&self, i: usize) -> Result<Tensor, TchError> {
        let n: i64 = self.shapes[i].iter().product();
        self.master.f_narrow(0, self.offsets[i], n)?.f_view(self.shapes[i].as_slice())
    }

    /// Parameter `i` of a flat tensor laid out like the masters.
    pub fn view_of(&self, flat: &Tensor, i: usize) -> Result<Tensor, TchError> {
        let n: i64 = self.shapes[i].iter().product();
        flat.f_narrow(0, self.offsets[i], n)?.f_view(self.shapes[i].as_slice())
    }

    /// The flat fp32 gradient accumulator.
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }

    /// Moves the leaves' gradients (from the last backward pass) into the fp32 accumulator,
    /// replacing or adding to what it holds, and releases them. A leaf without a gradient counts
    /// as zero.
    ///
    /// Replacing is one conversion per leaf where zeroing first and adding would be three passes
    /// over the accumulator; releasing lets the next backward pass store its gradients instead of
    /// adding them into zeroed buffers, and frees their memory in the meantime.
    pub fn collect_grads(&mut self, mode: Collect) -> Result<(), TchError> {
        let _guard = tch::no_grad_guard();
        for (leaf, range) in self.leaves.iter().zip(&self.groups) {
            let n = leaf.numel() as i64;
            let mut slot = self.grad.f_narrow(0, self.offsets[range.start], n)?;
            let g = leaf.grad();
            match (g.defined(), mode) {
                (true, Collect::Replace) => {
                    slot.f_copy_(&g.f_view([n])?)?;
                }
                (true, Collect::Add) => {
                    let _ = slot.f_add_(&g.f_view([n])?)?;
                }
                (false, Collect::Replace) => {
                    let _ = slot.f_zero_()?;
                }
                (false, Collect::Add) => {}
            }
            if g.defined() {
                ops::clear_grad(leaf)?;
            }
        }
        Ok(())
    }
}

/// How [`ParamStore::collect_grads`] combines new gradients with the accumulator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collect {
    /// The first micro-batch of a step: the accumulator takes the new gradients.
    Replace,
    /// A later micro-batch: the new gradients are added.
    Add,
}
