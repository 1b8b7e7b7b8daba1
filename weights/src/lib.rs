//! The Gauntlet: how a covenant-rs validator scores miners and sets weights (`PROTOCOL.md` §6),
//! reproducing the validator of templar, the code of the Covenant-72B run
//! (`reference/templar-protocol.md` §4), in pure, deterministic Rust.
//!
//! Per uid the Gauntlet keeps a gradient score, a binary indicator and its moving average (BMA),
//! a sync score, an OpenSkill Plackett–Luce rating, a final score
//! `(μ − 3σ)·max(0, BMA)·sync` and the counters of the penalty rules. Each window the validator
//! drives it through [`Gauntlet::begin_window`], [`Gauntlet::record_evaluation`] and
//! [`Gauntlet::finish_window`], publishes [`Gauntlet::select_peers`]'s lists, sets
//! [`Gauntlet::u16_weights`] when [`Gauntlet::weights_due`], and saves the state with
//! [`persist::save`].
//!
//! Modules, by job:
//! - [`config`]: every constant, named after templar's hyper-parameters, with the run's defaults;
//! - [`openskill`]: the rating update, matching the PyPI `openskill` 6.1.3 package;
//! - [`sync`]: steps behind from debug slices (inter-quartile mean) and the sync score;
//! - [`copycat`]: top-k index overlap and commit order;
//! - [`selection`]: evaluation sampling and peer lists, from a public seed (ChaCha20);
//! - [`vector`]: the weight vector and its `u16` form;
//! - [`penalties`], [`gauntlet`], [`state`]: the rules, the window flow and what is remembered;
//! - [`persist`]: atomic save and checked load.

pub mod config;
pub mod copycat;
pub mod exact;
pub mod gauntlet;
pub mod openskill;
pub mod penalties;
pub mod persist;
pub mod selection;
pub mod state;
pub mod sync;
pub mod vector;

/// A uid on the subnet (subtensor's `u16`).
pub type Uid = u16;

pub use config::{ConfigError, GauntletConfig};
pub use copycat::{CommitPosition, CopycatFinding, OverlapLevel, ParamIndices, PeerUpdate};
pub use gauntlet::{
    ConsensusLosses, EvalOutcome, EvalPlan, Evaluation, GatherReport, Gauntlet, GauntletError, PeerLists,
    PeerSelection, Recorded, WindowStart, WindowSummary,
};
pub use openskill::{PlackettLuce, Rating};
pub use state::{GauntletState, Hotkey, PeerState, PenaltyEvent, PenaltyKind};
