//! Writing files so that a crash never leaves a partial one behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::Tensor;

/// A temporary path in the same directory as `path` (so the final rename is atomic).
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `write`'s output to `path` through a temporary file that is synced and renamed.
fn replace_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temporary(path);
    let result = write(&tmp).and_then(|()| {
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// Atomically replaces `path` with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        Ok(())
    })
}

/// Atomically replaces `path` with a safetensors file of `tensors`.
pub fn write_safetensors_atomic(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    replace_with(path, |tmp| Ok(Tensor::write_safetensors(tensors, tmp)?))
}
