//! The chain side of covenant-rs: a subtensor client ([`client`]), bittensor-compatible wallets
//! ([`wallet`]) and the local dev chain (`devnet`, feature `devnet`).
pub mod client;
/// The local dev chain's launcher (chopsticks): for tests and local networks only.
#[cfg(feature = "devnet")]
pub mod devnet;
pub mod wallet;
