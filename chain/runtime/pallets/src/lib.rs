//! The dev chain's own pallets: `SubtensorModule`, `Commitments` and `AdminUtils` with subtensor's
//! interface (call, argument, storage and type names, SCALE encodings, storage hashers), plus the
//! runtime API the neuron reads the metagraph through.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod admin_utils;
pub mod commitments;
pub mod runtime_api;
pub mod subtensor;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
