//! Model shapes: the LLaMA-3 architecture's hyper-parameters and the named presets.

use serde::{Deserialize, Serialize};

/// Hyper-parameters of a LLaMA-style decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Preset name, or `custom`.
    pub name: String,
    pub vocab_size: usize,
    /// Model width.
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_heads`).
    pub n_kv_heads: usize,
    /// Hidden width of the SwiGLU feed-forward block.
    pub ffn_hidden: usize,
    pub rope_theta: f64,
    pub norm_eps: f64,
    /// Output projection shares the token embedding.
    pub tie_embeddings: bool,
}

/// Why a configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown preset `{0}` (known: {known})", known = PRESETS.join(", "))]
    UnknownPreset(String),
    #[error("dim {dim} is not a multiple of n_heads {heads}")]
    HeadDim { dim: usize, heads: usize },
    #[error("n_heads {heads} is not a multiple of n_kv_heads {kv}")]
    KvHeads { heads: usize, kv: usize },
    #[error("head dimension {0} must be even (RoPE rotates pairs)")]
    OddHeadDim(usize),
    #[error("{0} must be positive")]
    Zero(&'static str),
}

/// Names accepted by [`LlamaConfig::preset`].
pub const PRESETS: [&str; 5] = ["tiny", "150m", "1b", "8b", "70b"];

/// A named model shape (see [`LlamaConfig::of`]); `tiny`, `150m`, `1b`, `8b` or `70b` in text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Preset {
    #[serde(rename = "tiny")]
    Tiny,
    #[serde(rename = "150m")]
    M150,
    #[serde(rename = "1b")]
    B1,
    #[serde(rename = "8b")]
    B8,
    #[serde(rename = "70b")]
    B70,
}

impl Preset {
    pub const ALL: [Preset; 5] = [Preset::Tiny, Preset::M150, Preset::B1, Preset::B8, Preset::B70];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::M150 => "150m",
            Self::B1 => "1b",
            Self::B8 => "8b",
            Self::B70 => "70b",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| ConfigError::UnknownPreset(s.to_string()))
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// GPT-2's 50,257 tokens padded to a multiple of 64, so the embedding chunks as 64×64 tiles.
pub const GPT2_VOCAB_PADDED: usize = 50_304;
/// LLaMA-2's tokenizer (templar's 150M/1.2B/8B runs).
pub const LLAMA2_VOCAB: usize = 32_000;
/// Gemma-3's tokenizer (the Covenant-72B run).
pub const GEMMA3_VOCAB: usize = 262_144;

impl LlamaConfig {
    /// A named preset:
    /// - `tiny`: ≈ 6.8M parameters (mostly the GPT-2 embedding), for CPU tests and the local demo;
    /// - `150m`, `1b`, `8b`: templar's earlier runs (LLaMA-2 vocabulary);
    /// - `70b`: the Covenant-72B shape (dim 8192, 80 layers, 64 heads, 8 KV heads, FFN 28672,
    ///   Gemma-3 vocabulary, tied embeddings: 70.6B unique parameters).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        Ok(Self::of(name.parse()?))
    }

    /// The shape of `preset`.
    pub fn of(preset: Preset) -> Self {
        let name = preset.name();
        let c = |vocab, dim, layers, heads, kv, ffn, theta, tie| Self {
            name: name.to_string(),
            vocab_size: vocab,
            dim,
            n_layers: layers,
            n_heads: heads,
            n_kv_heads: kv,
            ffn_hidden: ffn,
            rope_theta: theta,
            norm_eps: 1e-5,
            tie_embeddings: tie,
        };
        match preset {
            Preset::Tiny => c(GPT2_VOCAB_PADDED, 128, 2, 4, 2, 384, 10_000.0, true),
            Preset::M150 => c(LLAMA2_VOCAB, 1024, 12, 16, 16, 2688, 10_000.0, false),
            Preset::B1 => c(LLAMA2_VOCAB, 2048, 16, 8, 8, 8192, 10_000.0, false),
            Preset::B8 => c(LLAMA2_VOCAB, 4096, 32, 32, 8, 14336, 500_000.0, false),
            Preset::B70 => c(GEMMA3_VOCAB, 8192, 80, 64, 8, 28672, 500_000.0, true),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (v, what) in [
            (self.vocab_size, "vocab_size"),
            (self.dim, "dim"),
            (self.n_layers, "n_layers"),
            (self.n_heads, "n_heads"),
            (self.n_kv_heads, "n_kv_heads"),
            (self.ffn_hidden, "ffn_hidden"),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(what));
            }
        }
        if !self.dim.is_multiple_of(self.n_heads) {
            return Err(ConfigError::HeadDim { dim: self.dim, heads: self.n_heads });
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(ConfigError::KvHeads { heads: self.n_heads, kv: self.n_kv_heads });
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(ConfigError::OddHeadDim(self.head_dim()));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }

    /// Width of the key and value projections.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim()
    }

    /// The model's parameters in their stable order, with torchtitan's names. Within a layer:
    /// `wq, wk, wv, wo, w1, w3, w2, attention_norm, ffn_norm` (so that the projections the forward
    /// pass fuses are adjacent).
    pub fn parameters(&self) -> Vec<(String, Vec<usize>)> {
        let (d, kv, f) = (self.dim, self.kv_dim(), self.ffn_hidden);
        let mut p = vec![("tok_embeddings.weight".to_string(), vec![self.vocab_size, d])];
        for l in 0..self.n_layers {
            let name = |s: &str| format!("layers.{l}.{s}");
            p.push((name("attention.wq.weight"), vec![d, d]));
            p.push((name("attention.wk.weight"), vec![kv, d]));
            p.push((name("attention.wv.weight"), vec![kv, d]));
            p.push((name("attention.wo.weight"), vec![d, d]));
            p.push((name("feed_forward.w1.weight"), vec![f, d]));
            p.push((name("feed_forward.w3.weight"), vec![f, d]));
            p.push((name("feed_forward.w2.weight"), vec![d, f]));
            p.push((name("attention_norm.weight"), vec![d]));
            p.push((name("ffn_norm.weight"), vec![d]));
        }
        p.push(("norm.weight".to_string(), vec![d]));
        if !self.tie_embeddings {
            p.push(("output.weight".to_string(), vec![self.vocab_size, d]));
        }
        p
    }

    /// How the forward pass groups consecutive parameters into one tensor: per layer `wq, wk, wv`
    /// (one projection to queries, keys and values) and `w1, w3` (one projection to the SwiGLU
    /// gate and value); every other parameter alone. Ranges index [`LlamaConfig::parameters`].
    pub fn leaf_groups(&self) -> Vec<std::ops::Range<usize>> {
        let mut groups: Vec<std::ops::Range<usize>> = Vec::with_capacity(2 + 6 * self.n_layers);
        groups.push(0..1);
        for l in 0..self.n_layers {
            let base = 1 + 9 * l;
            groups.extend([base..base + 3, base + 3..base + 4, base + 4..base + 6]);
            groups.extend((base + 6..base + 9).map(|i| i..i + 1));
        }
        let rest = 1 + 9 * self.n_layers;
        groups.extend((rest..self.parameters().len()).map(|i| i..i + 1));
        groups
    }

    /// Number of parameters (unique tensors: a tied output head counts once).
    pub fn num_params(&self) -> usize {
        self.parameters().iter().map(|(_, s)| s.iter().product::<usize>()).sum()
    }

    /// Parameters that take part in matrix multiplications: all but the input embedding table,
    /// which is a lookup (unless tied, when the same matrix is the output projection). This is the
    /// `N` of the `6·N` FLOPs-per-token estimate used for MFU.
    pub fn num_matmul_params(&self) -> usize {
        if self.tie_embeddings {
            self.num_params()
        } else {
            self.num_params() - self.vocab_size * self.dim
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_sizes() {
        for p in Preset::ALL {
            LlamaConfig::of(p).validate().unwrap();
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        let tiny = LlamaConfig::preset("tiny").unwrap();
        assert!((6_000_000..8_000_000).contains(&tiny.num_params()), "{}", tiny.num_params());
        let b1 = LlamaConfig::preset("1b").unwrap();
        assert_eq!(b1.num_params(), 1_073_809_408 + 2 * 32_000 * 2048);
        // The Covenant-72B shape: 70.60B unique parameters with tied embeddings.
        let big = LlamaConfig::preset("70b").unwrap();
        assert_eq!(big.num_params(), 70_599_843_840);
        assert!(LlamaConfig::preset("3b").is_err());
    }

    #[test]
    fn names_are_torchtitan_names() {
        let names: Vec<String> = LlamaConfig::preset("tiny").unwrap().parameters().into_iter().map(|p| p.0).collect();
        assert_eq!(names[0], "tok_embeddings.weight");
        assert!(names.contains(&"layers.1.feed_forward.w2.weight".to_string()));
        assert_eq!(names.last().unwrap(), "norm.weight");
    }
}
