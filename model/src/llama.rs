//! The LLaMA-3 decoder: token embedding, `n_layers` pre-norm blocks (RMSNorm → grouped-query
//! attention with RoPE → residual; RMSNorm → SwiGLU → residual), final RMSNorm, output head.

use tch::{Device, Kind, Reduction, TchError, Tensor};

use crate::config::LlamaConfig;
use crate::params::ParamStore;

/// Label value that the loss ignores.
pub const IGNORE_INDEX: i64 = -100;

/// Indices of one block's parameters in the store.
#[derive(Debug, Clone, Copy)]
struct Block {
    wq: usize,
    wk: usize,
    wv: usize,
    wo: usize,
    w1: usize,
    w2: usize,
    w3: usize,
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
                    wk: p("attention.wk.weight"),
                    wv: p("attention.wv.weight"),
                    wo: p("attention.wo.weight"),
                    w1: p("feed_forward.w1.weight"),
                    w2: p("feed_forward.w2.weight"),
                    w3: p("feed_forward.w3.weight"),
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

    /// RoPE rotation tables for positions `0..t`: `(cos, sin)`, each `(t, head_dim/2)`.
    fn rope(&self, t: i64) -> Result<(Tensor, Tensor), TchError> {
        let half = (self.config.head_dim() / 2) as i64;
        let device = self.device();
        let i = Tensor::f_arange(half, (Kind::Float, device))?;
        // θ_i = theta^(−2i/head_dim)
        let inv_freq = i.f_mul_scalar(-2.0 * self.config.rope_theta.ln() / self.config.head_dim() as f64)?.f_exp()?;
        let pos = Tensor::f_arange(t, (Kind::Float, device))?;
        let angles = pos.f_unsqueeze(1)?.f_mul(&inv_freq.f_unsqueeze(0)?)?;
        let kind = self.params.compute_kind();
        Ok((angles.f_cos()?.f_to_kind(kind)?, angles.f_sin()?.f_to_kind(kind)?))
    }

    /// Rotates consecutive pairs `(x₂ᵢ, x₂ᵢ₊₁)` of the last dimension of `x` `(b, t, heads, d)`
    /// by the angles of each position (torchtitan's complex-number convention).
    fn apply_rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, TchError> {
        let size = x.size();
        let (b, t, h, d) = (size[0], size[1], size[2], size[3]);
        let pairs = x.f_view([b, t, h, d / 2, 2])?;
        let (x0, x1) = (pairs.f_select(-1, 0)?, pairs.f_select(-1, 1)?);
        let cos = cos.f_view([1, t, 1, d / 2])?;
        let sin = sin.f_view([1, t, 1, d / 2])?;
        let r0 = x0.f_mul(&cos)?.f_sub(&x1.f_mul(&sin)?)?;
        let r1 = x0.f_mul(&sin)?.f_add(&x1.f_mul(&cos)?)?;
        Tensor::f_stack(&[r0, r1], -1)?.f_view([b, t, h, d])
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
        let mut x = Tensor::f_embedding(p(self.embedding), tokens, -1, false, false)?;
        for blk in &self.blocks {
            let h = x.f_rms_norm(dim, Some(p(blk.attention_norm)), eps)?;
            let q = h.f_linear::<Tensor>(p(blk.wq), None)?.f_view([b, t, heads, hd])?;
            let k = h.f_linear::<Tensor>(p(blk.wk), None)?.f_view([b, t, kv_heads, hd])?;
            let v = h.f_linear::<Tensor>(p(blk.wv), None)?.f_view([b, t, kv_heads, hd])?;
            let q = Self::apply_rope(&q, &cos, &sin)?.f_transpose(1, 2)?;
            let k = Self::apply_rope(&k, &cos, &sin)?.f_transpose(1, 2)?;
            let v = v.f_transpose(1, 2)?;
            let attn =
                Tensor::f_scaled_dot_product_attention::<Tensor>(&q, &k, &v, None, 0.0, true, None, kv_heads != heads)?;
            let attn = attn.f_transpose(1, 2)?.f_reshape([b, t, c.dim as i64])?;
            x = x.f_add(&attn.f_linear::<Tensor>(p(blk.wo), None)?)?;
            let h = x.f_rms_norm(dim, Some(p(blk.ffn_norm)), eps)?;
            let gate = h.f_linear::<Tensor>(p(blk.w1), None)?.f_silu()?;
            let up = h.f_linear::<Tensor>(p(blk.w3), None)?;
            x = x.f_add(&gate.f_mul(&up)?.f_linear::<Tensor>(p(blk.w2), None)?)?;
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
