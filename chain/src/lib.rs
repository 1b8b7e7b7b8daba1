//! The chain side of covenant-rs.
pub mod devnet;
