//! The neuron library: what the `neuron` binary's miner, validator and local network are built
//! from. [`replica`]: a peer's model and the chain-free parts of a window; [`storage`]: gradient
//! exchange over S3 with on-chain hash commitments.

pub mod audit;
pub mod catchup;
pub mod config;
pub mod fsutil;
pub mod metrics;
pub mod miner;
pub mod node;
pub mod progress;
pub mod replica;
pub mod roster;
pub mod signed;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod validator;
