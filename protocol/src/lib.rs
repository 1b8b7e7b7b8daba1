//! The covenant-rs protocol as pure rules (PROTOCOL.md): no async runtime, no tensors, no chain
//! or S3 client. Every crate that needs a protocol fact takes it from here, so there is one
//! window clock, one namer of objects, one header check and one set of peer rules.
//!
//! - [`ids`]: `Uid`, `Window`, `Block`, `Hotkey`, `Hash32`;
//! - [`clock`]: windows, put windows and the put-window judgement;
//! - [`keys`]: every object key;
//! - [`commitment`]: what a neuron commits on chain, parsed and judged;
//! - [`header`]: the payload acceptance check;
//! - [`peers`]: leader, validators, active miners, the outer step's peers;
//! - [`objects`]: peer lists, debug slices, checkpoint pointers;
//! - [`config`]: the `[protocol]` settings every peer shares.

pub mod clock;
pub mod commitment;
pub mod config;
pub mod header;
pub mod ids;
pub mod keys;
pub mod objects;
pub mod peers;

pub use clock::{CommitTiming, PutWindow, WindowTiming};
pub use config::{ProtocolConfig, ProtocolConfigError};
pub use header::{HeaderField, HeaderMismatch, PayloadOrigin};
pub use ids::{Block, Hash32, Hotkey, Uid, Window};
pub use keys::{KeyError, ObjectKey, Version, PROTOCOL_VERSION};
pub use objects::{CheckpointPointer, DebugSlice, PeerList, MAX_SIGNED_OBJECT};
pub use peers::{Member, OuterStepPeers, ACTIVE_HORIZON_WINDOWS};
