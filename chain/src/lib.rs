//! The chain side of covenant-rs: a subtensor client ([`client`]), bittensor-compatible wallets
//! ([`wallet`]) and the local dev chain ([`devnet`]).
pub mod client;
pub mod devnet;
pub mod wallet;
