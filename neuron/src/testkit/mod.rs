//! What only tests and the local network use (the `testkit` feature; the production binary is
//! built without it): dishonest miners, the in-process S3 server, and the local subnet harness
//! that launches the dev chain (chopsticks, [`chain::devnet`]), S3 and `neuron` processes.

pub mod adversary;
pub mod local_s3;
pub mod miner;
pub mod subnet;
