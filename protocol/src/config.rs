//! The settings every peer of a subnet must agree on: the `[protocol]` section of a node's
//! configuration, read by the node and by the Gauntlet (α is declared here and nowhere else).

use serde::{Deserialize, Serialize};

use crate::clock::WindowTiming;
use crate::keys::{KeyError, Version};

/// The shared protocol constants (defaults: the Covenant-72B run's, PROTOCOL.md §1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// In every object key; peers on other versions are ignored.
    pub version: String,
    /// `window = block / blocks_per_window` (115 ≈ 23 min at 12 s blocks).
    pub blocks_per_window: u64,
    /// Blocks after the start of `w + 1` in which window `w`'s hash must be committed (≈ 70 s).
    pub put_blocks: u64,
    /// α of the outer step `θ ← θ − α·G` (also the Gauntlet's step size for the sync score).
    pub outer_learning_rate: f64,
    /// Seconds a gather may take.
    pub gather_timeout_s: u64,
    /// Objects older than this many windows are deleted from the node's bucket.
    pub keep_windows: u64,
    /// Checkpoints every this many outer steps (leading validator).
    pub checkpoint_frequency: u64,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            version: "1".into(),
            blocks_per_window: 115,
            put_blocks: 6,
            outer_learning_rate: 0.4,
            gather_timeout_s: 90,
            keep_windows: 10,
            checkpoint_frequency: 10,
        }
    }
}

/// A protocol setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolConfigError {
    #[error("protocol.blocks_per_window must be at least 2, not {0}")]
    BlocksPerWindow(u64),
    #[error("protocol.put_blocks ({put}) must be less than protocol.blocks_per_window ({bpw})")]
    PutBlocks { put: u64, bpw: u64 },
    #[error("protocol.outer_learning_rate must be finite and positive, not {0}")]
    OuterLearningRate(f64),
    #[error(transparent)]
    Version(#[from] KeyError),
}

impl ProtocolConfig {
    /// Checks every setting; a node refuses to start with an invalid one.
    pub fn validate(&self) -> Result<(), ProtocolConfigError> {
        if self.blocks_per_window < 2 {
            return Err(ProtocolConfigError::BlocksPerWindow(self.blocks_per_window));
        }
        if self.put_blocks >= self.blocks_per_window {
            return Err(ProtocolConfigError::PutBlocks { put: self.put_blocks, bpw: self.blocks_per_window });
        }
        if !(self.outer_learning_rate.is_finite() && self.outer_learning_rate > 0.0) {
            return Err(ProtocolConfigError::OuterLearningRate(self.outer_learning_rate));
        }
        self.version()?;
        Ok(())
    }

    pub fn timing(&self) -> WindowTiming {
        WindowTiming { blocks_per_window: self.blocks_per_window, put_blocks: self.put_blocks }
    }

    pub fn version(&self) -> Result<Version, KeyError> {
        Version::new(self.version.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_runs_and_valid() {
        let c = ProtocolConfig::default();
        assert_eq!((c.blocks_per_window, c.put_blocks, c.outer_learning_rate), (115, 6, 0.4));
        c.validate().unwrap();
        let back: ProtocolConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let d = ProtocolConfig::default();
        for bad in [
            ProtocolConfig { blocks_per_window: 1, ..d.clone() },
            ProtocolConfig { put_blocks: 115, ..d.clone() },
            ProtocolConfig { outer_learning_rate: f64::NAN, ..d.clone() },
            ProtocolConfig { outer_learning_rate: 0.0, ..d.clone() },
            ProtocolConfig { version: "one".into(), ..d.clone() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(toml::from_str::<ProtocolConfig>("outer_learning_rat = 0.3").is_err());
    }
}
