//! The model side of covenant-rs: a LLaMA-3-style decoder on libtorch (`tch`), the data pipeline
//! (tokenized shards, deterministic sample pools), the inner AdamW loop, the pseudo-gradient and
//! outer step, and checkpoints. Runs on the CPU (fp32, tests and the local demo) and on CUDA (bf16
//! compute, fp32 master weights and optimizer state).
//!
//! Modules: [`config`] (shapes and presets), [`params`] (flat parameter storage), [`llama`]
//! (forward pass and loss), [`ops`] (fused operations
//! written against ATen), [`optim`] (AdamW, clipping, schedule, outer step), [`train`] (the
//! inner loop), [`checkpoint`], [`data`] (tokenizer, shards, sample pools).

pub mod checkpoint;
pub mod config;
pub mod data;
mod ffi;
pub mod llama;
pub mod ops;
pub mod optim;
pub mod params;
pub mod train;

pub use config::{LlamaConfig, Preset};
pub use llama::Llama;
pub use train::{PendingStats, StepStats, TrainConfig, Trainer};

/// blake2b with a 256-bit output.
pub type Blake2b256 = blake2::Blake2b<blake2::digest::consts::U32>;

/// The cache this project installs into: `$COVENANT_CACHE`, else `~/.cache/covenant-rs`.
pub fn cache_dir() -> std::path::PathBuf {
    match std::env::var_os("COVENANT_CACHE") {
        Some(dir) => dir.into(),
        None => {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache/covenant-rs")
        }
    }
}
