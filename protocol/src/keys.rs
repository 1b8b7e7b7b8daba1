//! Object keys: the one place that names what lives in a bucket (PROTOCOL.md §1, §2, §6, §7).
//!
//! Every key carries the protocol version, so peers on different versions never read each other's
//! objects:
//!
//! | key | writer | bucket |
//! |---|---|---|
//! | `gradient-{w}-{uid}-v{ver}` | miner, window `w` | the miner's |
//! | `debug-{w}-{uid}-v{ver}` | miner and validator | the writer's |
//! | `peers_{w}-v{ver}` | leading validator; `w` = first effective window | the validator's |
//! | `aggregator-{w}-v{ver}` | leading validator | the validator's |
//! | `checkpoints/v{ver}/{w}/{file}` | leading validator | the validator's |
//! | `checkpoints/v{ver}/LATEST` | leading validator | the validator's |
//!
//! Unlike the original there is no `.pt`/`.json` suffix: the contents are covenant-rs' own formats.
//! [`ObjectKey::parse`] reads every key back (for cleanup and listings); anything else in a bucket
//! is not ours and is left alone.

use std::fmt;

/// The protocol version this build speaks (the `v{ver}` of every key).
pub const PROTOCOL_VERSION: &str = "1";

/// Longest version string accepted.
const MAX_VERSION_LEN: usize = 32;
/// Longest checkpoint file name accepted.
const MAX_FILE_LEN: usize = 128;

/// A malformed version or file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("protocol version {0:?} must be dot-separated numbers (like `1` or `2.1`), at most {MAX_VERSION_LEN} characters")]
    BadVersion(String),
    #[error(
        "checkpoint file name {0:?} must be 1 to {MAX_FILE_LEN} characters of [A-Za-z0-9._-], not starting with `.`"
    )]
    BadFileName(String),
}

/// A validated protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(String);

impl Version {
    pub fn new(v: impl Into<String>) -> Result<Self, KeyError> {
        let v = v.into();
        let ok = v.len() <= MAX_VERSION_LEN
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && v.split('.').all(|part| !part.is_empty());
        if ok {
            Ok(Self(v))
        } else {
            Err(KeyError::BadVersion(v))
        }
    }

    /// [`PROTOCOL_VERSION`].
    pub fn current() -> Self {
        Self(PROTOCOL_VERSION.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Version {
    fn default() -> Self {
        Self::current()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every object covenant-rs stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    /// A miner's compressed pseudo-gradient for window `window`.
    Gradient { window: u64, uid: u16, version: Version },
    /// Sampled parameters after the outer step of `window` (sync check).
    Debug { window: u64, uid: u16, version: Version },
    /// The peer list effective from `window`.
    Peers { window: u64, version: Version },
    /// The payloads aggregated in `window` (a [`compression::bundle::Bundle`]).
    Aggregator { window: u64, version: Version },
    /// One file of the checkpoint taken after `window`.
    Checkpoint { window: u64, file: String, version: Version },
    /// The pointer to the latest checkpoint.
    CheckpointLatest { version: Version },
}

impl ObjectKey {
    pub fn gradient(window: u64, uid: u16) -> Self {
        Self::Gradient { window, uid, version: Version::current() }
    }

    pub fn debug(window: u64, uid: u16) -> Self {
        Self::Debug { window, uid, version: Version::current() }
    }

    pub fn peers(window: u64) -> Self {
        Self::Peers { window, version: Version::current() }
    }

    pub fn aggregator(window: u64) -> Self {
        Self::Aggregator { window, version: Version::current() }
    }

    pub fn checkpoint(window: u64, file: &str) -> Result<Self, KeyError> {
        check_file(file)?;
        Ok(Self::Checkpoint { window, file: file.to_string(), version: Version::current() })
    }

    pub fn checkpoint_latest() -> Self {
        Self::CheckpointLatest { version: Version::current() }
    }

    /// The same key for another protocol version.
    pub fn with_version(mut self, v: Version) -> Self {
        match &mut self {
            Self::Gradient { version, .. }
            | Self::Debug { version, .. }
            | Self::Peers { version, .. }
            | Self::Aggregator { version, .. }
            | Self::Checkpoint { version, .. }
            | Self::CheckpointLatest { version } => *version = v,
        }
        self
    }

    pub fn version(&self) -> &Version {
        match self {
            Self::Gradient { version, .. }
            | Self::Debug { version, .. }
            | Self::Peers { version, .. }
            | Self::Aggregator { version, .. }
            | Self::Checkpoint { version, .. }
            | Self::CheckpointLatest { version } => version,
        }
    }

    /// The window the object belongs to, when it has one.
    pub fn window(&self) -> Option<u64> {
        match self {
            Self::Gradient { window, .. }
            | Self::Debug { window, .. }
            | Self::Peers { window, .. }
            | Self::Aggregator { window, .. }
            | Self::Checkpoint { window, .. } => Some(*window),
            Self::CheckpointLatest { .. } => None,
        }
    }

    /// The prefix under which all of one checkpoint's files live: `checkpoints/v{ver}/{w}/`.
    pub fn checkpoint_prefix(window: u64, version: &Version) -> String {
        format!("checkpoints/v{version}/{window}/")
    }

    /// Reads a key back; `None` for anything that is not a covenant-rs key.
    pub fn parse(key: &str) -> Option<Self> {
        if let Some(rest) = key.strip_prefix("checkpoints/v") {
            let (version, rest) = rest.split_once('/')?;
            let version = Version::new(version).ok()?;
            if rest == "LATEST" {
                return Some(Self::CheckpointLatest { version });
            }
            let (window, file) = rest.split_once('/')?;
            let window = parse_u64(window)?;
            check_file(file).ok()?;
            return Some(Self::Checkpoint { window, file: file.to_string(), version });
        }
        // `{name}-{numbers}-v{ver}`: the version is after the last "-v".
        let (head, version) = key.rsplit_once("-v")?;
        let version = Version::new(version).ok()?;
        if let Some(w) = head.strip_prefix("peers_") {
            return Some(Self::Peers { window: parse_u64(w)?, version });
        }
        if let Some(w) = head.strip_prefix("aggregator-") {
            return Some(Self::Aggregator { window: parse_u64(w)?, version });
        }
        let (kind, rest) = head.split_once('-')?;
        let (window, uid) = rest.split_once('-')?;
        let (window, uid) = (parse_u64(window)?, parse_u16(uid)?);
        match kind {
            "gradient" => Some(Self::Gradient { window, uid, version }),
            "debug" => Some(Self::Debug { window, uid, version }),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gradient { window, uid, version } => write!(f, "gradient-{window}-{uid}-v{version}"),
            Self::Debug { window, uid, version } => write!(f, "debug-{window}-{uid}-v{version}"),
            Self::Peers { window, version } => write!(f, "peers_{window}-v{version}"),
            Self::Aggregator { window, version } => write!(f, "aggregator-{window}-v{version}"),
            Self::Checkpoint { window, file, version } => write!(f, "checkpoints/v{version}/{window}/{file}"),
            Self::CheckpointLatest { version } => write!(f, "checkpoints/v{version}/LATEST"),
        }
    }
}

/// Decimal without sign, leading zeros or overflow (one spelling per number).
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

fn parse_u16(s: &str) -> Option<u16> {
    parse_u64(s).and_then(|n| u16::try_from(n).ok())
}

fn check_file(file: &str) -> Result<(), KeyError> {
    let ok = !file.is_empty()
        && file.len() <= MAX_FILE_LEN
        && !file.starts_with('.')
        && file.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadFileName(file.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_as_the_protocol_says() {
        assert_eq!(ObjectKey::gradient(12, 3).to_string(), "gradient-12-3-v1");
        assert_eq!(ObjectKey::debug(12, 3).to_string(), "debug-12-3-v1");
        assert_eq!(ObjectKey::peers(40).to_string(), "peers_40-v1");
        assert_eq!(ObjectKey::aggregator(7).to_string(), "aggregator-7-v1");
        assert_eq!(
            ObjectKey::checkpoint(9, "model.safetensors").unwrap().to_string(),
            "checkpoints/v1/9/model.safetensors"
        );
        assert_eq!(ObjectKey::checkpoint_latest().to_string(), "checkpoints/v1/LATEST");
        let v2 = Version::new("2.1").unwrap();
        assert_eq!(ObjectKey::gradient(1, 2).with_version(v2.clone()).to_string(), "gradient-1-2-v2.1");
        assert_eq!(ObjectKey::checkpoint_prefix(5, &v2), "checkpoints/v2.1/5/");
    }

    #[test]
    fn every_key_parses_back() {
        let v = Version::new("3.0.1").unwrap();
        let keys = [
            ObjectKey::gradient(0, 0),
            ObjectKey::gradient(u64::MAX, u16::MAX),
            ObjectKey::debug(77, 5).with_version(v.clone()),
            ObjectKey::peers(123),
            ObjectKey::aggregator(9).with_version(v.clone()),
            ObjectKey::checkpoint(4, "optimizer-0.bin").unwrap(),
            ObjectKey::checkpoint_latest().with_version(v),
        ];
        for k in keys {
            assert_eq!(ObjectKey::parse(&k.to_string()), Some(k.clone()), "{k}");
        }
    }

    #[test]
    fn foreign_and_malformed_keys_are_not_ours() {
        for k in [
            "",
            "gradient-1-2",
            "gradient-1-2-v",
            "gradient-01-2-v1",
            "gradient-1-70000-v1",
            "gradient-1-2-3-v1",
            "gradient--2-v1",
            "gradient-1-2-v1.pt",
            "gradient-1-2-v1/x",
            "gradient-18446744073709551616-1-v1",
            "other-1-2-v1",
            "peers_-v1",
            "peers_1_v1.json",
            "aggregator-x-v1",
            "checkpoints/v1/5",
            "checkpoints/v1/5/.hidden",
            "checkpoints/v1/5/a/b",
            "checkpoints/v1/x/file",
            "start_window_v1.json",
        ] {
            assert_eq!(ObjectKey::parse(k), None, "{k:?}");
        }
        assert!(Version::new("1-2").is_err());
        assert!(Version::new("").is_err());
        assert!(Version::new("1.").is_err());
        assert!(Version::new("a1").is_err());
        assert!(ObjectKey::checkpoint(1, "../x").is_err());
    }
}
