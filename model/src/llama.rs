//! The LLaMA-3 decoder: token embedding, `n_layers` pre-norm blocks (RMSNorm → grouped-query
//! attention with RoPE → residual; RMSNorm → SwiGLU → residual), final RMSNorm, output head.

use tch::{Device, Kind, Reduction, TchError, Tensor};

use crate::config::LlamaConfig;
use crate::ops;
use crate::params::ParamStore;

/// Label value that the loss ignores.
pub const IGNORE_INDEX: i64 = -100;

/// Indices of one block's parameters in the store. `wq` names the fused `[wq; wk; wv]` leaf and
/// `w1` the fused `[w1; w3]` leaf (see [`LlamaConfig::leaf_groups`]).
#[derive(Debug, Clone, Copy)]
struct Block {
    wq: usize,
    wo: usize,
    w1: usize,
    w2: usize,
    attention_norm: usize,
    ffn_norm: usize,
}

/// A LLaMA model over a [`ParamStore`].
#[derive(Debug)]
pub struct Llama {
    config: LlamaConfig,
    params: ParamStore,
    embedding: usize,
    blocks: Vec<Block>,
    norm: usize,
    output: usize,
}

impl Llama {
    /// A model of `config` on `device`, initialised from `seed` (see [`ParamStore::init`]).
    pub fn new(config: LlamaConfig, device: Device, seed: u64) -> Result<Self, TchError> {
        let mut params = ParamStore::new(&config, device)?;
        params.init(&config, seed)?;
        Ok(Self::from_params(config, params))
    }

    /// A model over existing parameters (laid out by `config`).
    pub fn from_params(config: LlamaConfig, params: ParamStore) -> Self {
        let at =
            |name: &str| params.index(name).unwrap_or_else(|| panic!("parameter {name} is laid out by the config"));
        let blocks = (0..config.n_layers)
            .map(|l| {
                let p = |s: &str| at(&format!("layers.{l}.{s}"));
                Block {
                    wq: p("attention.wq.weight"),
                    wo: p("attention.wo.weight"),
                    w1: p("feed_forward.w1.weight"),
                    w2: p("feed_forward.w2.weight"),
                    attention_norm: p("attention_norm.weight"),
                    ffn_norm: p("ffn_norm.weight"),
                }
            })
            .collect();
        let embedding = at("tok_embeddings.weight");
        let output = if config.tie_embeddings { embedding } else { at("output.weight") };
        Self { embedding, norm: at("norm.weight"), output, blocks, config, params }
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut ParamStore {
        &mut self.params
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }

    /// RoPE tables for positions `0..t`, `(1, t, 1, head_dim)` each: `cos θ` repeated over each
    /// pair, and `sin θ` with the sign of the pair's rotated partner (`−sin` on even positions).
    fn rope(&self, t: i64) -> Result<(Tensor, Tensor), TchError> {
        let hd = self.config.head_dim() as i64;
        let device = self.device();
        let i = Tensor::f_arange(hd / 2, (Kind::Float, device))?;
        // θ_i = theta^(−2i/head_dim)
        let inv_freq = i.f_mul_scalar(-2.0 * self.config.rope_theta.ln() / hd as f64)?.f_exp()?;
        let pos = Tensor::f_arange(t, (Kind::Float, device))?;
        let angles = pos.f_unsqueeze(1)?.f_mul(&inv_freq.f_unsqueeze(0)?)?.f_unsqueeze(-1)?; // (t, hd/2, 1)
        let cos = Tensor::f_cat(&[angles.f_cos()?, angles.f_cos()?], -1)?;
        let sin = Tensor::f_cat(&[angles.f_sin()?.f_neg()?, angles.f_sin()?], -1)?;
        let kind = self.params.compute_kind();
        Ok((cos.f_view([1, t, 1, hd])?.f_to_kind(kind)?, sin.f_view([1, t, 1, hd])?.f_to_kind(kind)?))
    }

    /// Rotates consecutive pairs `(x₂ᵢ, x₂ᵢ₊₁)` of the last dimension of `x` `(b, t, heads, d)` by
    /// the angles of each position (torchtitan's complex-number convention):
    /// `x·cos + swap_pairs(x)·sin±`, three kernels.
    fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, TchError> {
        let size = x.size();
        let (b, t, h, d) = (size[0], size[1], size[2], size[3]);
        let swapped = x.f_view([b, t, h, d / 2, 2])?.f_flip([-1])?.f_view([b, t, h, d])?;
        x.f_mul(cos)?.f_addcmul(&swapped, sin)
    }

    /// Logits `(b, t, vocab)` in the compute dtype for token ids `(b, t)`.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor, TchError> {
        let c = &self.config;
        let p = |i: usize| self.params.leaf(i);
        let size = tokens.size();
        let (b, t) = (size[0], size[1]);
        let (heads, kv_heads, hd) = (c.n_heads as i64, c.n_kv_heads as i64, c.head_dim() as i64);
        let (cos, sin) = self.rope(t)?;
        let eps = c.norm_eps;
        let dim = [c.dim as i64];
        let (d, kv) = (c.dim as i64, c.kv_dim() as i64);
        let mut x = Tensor::f_embedding(p(self.embedding), tokens, -1, false, false)?;
        for blk in &self.blocks {
            let h = x.f_rms_norm(dim, Some(p(blk.attention_norm)), eps)?;
            // One projection to [q; k; v], split along the features (views, no copies).
            // (split's backward is one concatenation; narrow's would zero-fill the whole input
            // once per piece.)
            let qkv = h.f_linear::<Tensor>(self.params.leaf_of(blk.wq).0, None)?.f_split_with_sizes([d, kv, kv], -1)?;
            let q = qkv[0].f_view([b, t, heads, hd])?;
            let k = qkv[1].f_view([b, t, kv_heads, hd])?;
            let v = qkv[2].f_view([b, t, kv_heads, hd])?;
            let q = Self::apply_rope(&q, &cos, &sin)?.f_transpose(1, 2)?;
            let k = Self::apply_rope(&k, &cos, &sin)?.f_transpose(1, 2)?;
            let v = v.f_transpose(1, 2)?;
            let attn =
                Tensor::f_scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, true, None, kv_heads != heads)?;
            let attn = attn.f_transpose(1, 2)?.f_reshape([b, t, c.dim as i64])?;
            x = x.f_add(&attn.f_linear::<Tensor>(p(blk.wo), None)?)?;
            let h = x.f_rms_norm(dim, Some(p(blk.ffn_norm)), eps)?;
            x = x.f_add(&ops::swiglu_mlp(&h, self.params.leaf_of(blk.w1).0, p(blk.w2))?)?;
        }
        let x = x.f_rms_norm(dim, Some(p(self.norm)), eps)?;
        x.f_linear::<Tensor>(p(self.output), None)
    }

    /// Mean next-token cross-entropy of `tokens` `(b, t)`: position `i` predicts token `i + 1`;
    /// the last position has no label. Logits are upcast to f32 for the loss.
    pub fn loss(&self, tokens: &Tensor) -> Result<Tensor, TchError> {
        let logits = self.forward(tokens)?;
        let v = self.config.vocab_size as i64;
        let size = tokens.size();
        let labels = Tensor::f_cat(
            &[
                tokens.f_narrow(1, 1, size[1] - 1)?,
                Tensor::f_full([size[0], 1], IGNORE_INDEX, (Kind::Int64, tokens.device()))?,
            ],
            1,
        )?;
        logits.f_view([-1, v])?.f_to_kind(Kind::Float)?.f_cross_entropy_loss::<Tensor>(
            &labels.f_view([-1])?,
            None,
            Reduction::Mean,
            IGNORE_INDEX,
            0.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Llama {
        let mut c = LlamaConfig::preset("tiny").unwrap();
        c.vocab_size = 64;
        Llama::new(c, Device::Cpu, 1).unwrap()
    }

    #[test]
    fn rope_rotates_each_pair_by_its_angle() {
        let m = tiny();
        let (t, hd) = (5i64, m.config.head_dim() as i64);
        let x = Tensor::randn([1, t, 2, hd], (Kind::Float, Device::Cpu));
        let (cos, sin) = m.rope(t).unwrap();
        let got = Vec::<f32>::try_from(Llama::apply_rope(&x, &cos, &sin).unwrap().flatten(0, -1)).unwrap();
        let xs = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
        for pos in 0..t as usize {
            for h in 0..2usize {
                for i in 0..(hd / 2) as usize {
                    let theta = m.config.rope_theta.powf(-2.0 * i as f64 / hd as f64) * pos as f64;
                    let at = ((pos * 2 + h) * hd as usize) + 2 * i;
                    let (x0, x1) = (xs[at] as f64, xs[at + 1] as f64);
                    let (r0, r1) = (x0 * theta.cos() - x1 * theta.sin(), x0 * theta.sin() + x1 * theta.cos());
                    assert!((got[at] as f64 - r0).abs() < 1e-5 && (got[at + 1] as f64 - r1).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn attention_is_causal() {
        let m = tiny();
        let a = Tensor::from_slice(&[1i64, 2, 3, 4, 5, 6]).view([1, 6]);
        let b = Tensor::from_slice(&[1i64, 2, 3, 4, 9, 9]).view([1, 6]);
        let (la, lb) = (m.forward(&a).unwrap(), m.forward(&b).unwrap());
        // Positions 0..4 see only tokens 0..4, which agree.
        assert!(la.narrow(1, 0, 4).allclose(&lb.narrow(1, 0, 4), 1e-5, 1e-6, false));
        assert!(!la.narrow(1, 4, 2).allclose(&lb.narrow(1, 4, 2), 1e-5, 1e-6, false));
    }
}
