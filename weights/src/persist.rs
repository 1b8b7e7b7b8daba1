//! Saving and loading the Gauntlet state.
//!
//! The file is JSON: `{"format": "covenant-rs/gauntlet-state", "version": 1, "state": {…}}`, with
//! every `f64` written exactly (see [`crate::exact`]) so that a reload resumes with identical
//! scores. Saving is atomic: the bytes go to a temporary file in the same directory, which is
//! flushed to disk (`fsync`), renamed over the target, and the directory is synced — a crash
//! leaves either the old file or the new one, never a torn one. The file is untrusted on load:
//! size-limited, parsed strictly (unknown fields are errors) and checked before use.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::GauntletState;
use crate::{Gauntlet, GauntletConfig, GauntletError};
use protocol::ProtocolConfig;

/// Value of the `format` field.
pub const FORMAT: &str = "covenant-rs/gauntlet-state";
/// Current version of the file layout.
pub const VERSION: u32 = 1;
/// Largest state file accepted (a state of 65 536 uids with full histories is a few tens of MB).
pub const MAX_STATE_BYTES: u64 = 256 << 20;

#[derive(Serialize)]
struct FileOut<'a> {
    format: &'a str,
    version: u32,
    state: &'a GauntletState,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIn {
    format: String,
    version: u32,
    state: GauntletState,
}

/// Why a state file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: io::Error },
    #[error("{path}: {size} bytes is more than the {MAX_STATE_BYTES} accepted")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path}: not a Gauntlet state file: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("{path}: format {format:?} version {version} is not {FORMAT:?} version {VERSION}")]
    Format { path: PathBuf, format: String, version: u32 },
    #[error("{path}: {source}")]
    Invalid { path: PathBuf, source: GauntletError },
    #[error("serializing the state: {0}")]
    Serialize(serde_json::Error),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |source| PersistError::Io { op, path: path.to_path_buf(), source }
}

/// Writes `state` to `path` atomically.
pub fn save_state(path: &Path, state: &GauntletState) -> Result<(), PersistError> {
    let bytes =
        serde_json::to_vec(&FileOut { format: FORMAT, version: VERSION, state }).map_err(PersistError::Serialize)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err("rename into", path))?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", &dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a state file (not yet checked against a configuration; [`load`] does that).
pub fn load_state(path: &Path) -> Result<GauntletState, PersistError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let size = f.metadata().map_err(io_err("stat", path))?.len();
    if size > MAX_STATE_BYTES {
        return Err(PersistError::TooLarge { path: path.to_path_buf(), size });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(MAX_STATE_BYTES + 1).read_to_end(&mut bytes).map_err(io_err("read", path))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(PersistError::TooLarge { path: path.to_path_buf(), size: bytes.len() as u64 });
    }
    let file: FileIn =
        serde_json::from_slice(&bytes).map_err(|source| PersistError::Parse { path: path.to_path_buf(), source })?;
    if file.format != FORMAT || file.version != VERSION {
        return Err(PersistError::Format { path: path.to_path_buf(), format: file.format, version: file.version });
    }
    Ok(file.state)
}

/// Saves a Gauntlet's state to `path` atomically.
pub fn save(path: &Path, gauntlet: &Gauntlet) -> Result<(), PersistError> {
    save_state(path, gauntlet.state())
}

/// Loads a Gauntlet from `path` with `config`; the state is checked and brought within the
/// configuration's limits.
pub fn load(path: &Path, config: GauntletConfig, protocol: &ProtocolConfig) -> Result<Gauntlet, PersistError> {
    let state = load_state(path)?;
    Gauntlet::from_state(config, protocol, state)
        .map_err(|source| PersistError::Invalid { path: path.to_path_buf(), source })
}

/// Loads `path` if it exists, else starts a fresh Gauntlet. A file that exists but cannot be used
/// is an error, never silently replaced.
pub fn load_or_new(path: &Path, config: GauntletConfig, protocol: &ProtocolConfig) -> Result<Gauntlet, PersistError> {
    match fs::metadata(path) {
        Ok(_) => load(path, config, protocol),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Gauntlet::new(config, protocol).map_err(|source| PersistError::Invalid { path: path.to_path_buf(), source })
        }
        Err(e) => Err(PersistError::Io { op: "stat", path: path.to_path_buf(), source: e }),
    }
}
