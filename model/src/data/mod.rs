//! Data: tokenizer, pre-tokenized shards, and the deterministic assignment of samples to miners.

pub mod pool;
pub mod shards;
pub mod tokenizer;
