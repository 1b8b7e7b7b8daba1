//! Tokenized datasets in a bucket (PROTOCOL.md §5): `neuron data prepare --output s3://…` uploads
//! one, and a node whose `model.data_source` names one mirrors it into its local data folder
//! before it starts.
//!
//! Layout under the prefix: the shard files and `manifest.json` (`model::data::shards`). The
//! manifest goes up last, so a reader never sees a manifest whose shards are not all there; a
//! reader checks every shard against the size and blake2b-256 the manifest gives, and keeps
//! shards it already has with the right hash, so a restart downloads nothing again.

use std::path::{Path, PathBuf};

use model::data::shards::{DataManifest, FORMAT, MANIFEST};

use super::client::{Bucket, StorageError};

/// Largest manifest accepted (a manifest lists shards; a million shards is ~100 MB).
const MAX_MANIFEST: u64 = 64 << 20;

/// `s3://bucket/prefix`: where a dataset lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl DatasetUrl {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(s: &str) -> Result<Self, DatasetError> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| DatasetError::Url(s.into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(valid) {
            return Err(DatasetError::Url(s.into()));
        }
        Ok(Self { bucket: bucket.into(), prefix: prefix.trim_matches('/').into() })
    }

    fn key(&self, file: &str) -> String {
        if self.prefix.is_empty() {
            file.to_string()
        } else {
            format!("{}/{file}", self.prefix)
        }
    }
}

impl std::fmt::Display for DatasetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{0:?} is not an s3://bucket/prefix address")]
    Url(String),
    #[error("storage: {0}")]
    Storage(Box<StorageError>),
    #[error("the dataset's manifest: {0}")]
    Manifest(String),
    #[error("shard {file}: hash {found}, the manifest says {expected}")]
    Hash { file: String, expected: String, found: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl From<StorageError> for DatasetError {
    fn from(e: StorageError) -> Self {
        Self::Storage(Box::new(e))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io { path: path.to_path_buf(), source }
}

fn read_manifest(bytes: &[u8]) -> Result<DataManifest, DatasetError> {
    let m: DataManifest = serde_json::from_slice(bytes).map_err(|e| DatasetError::Manifest(e.to_string()))?;
    if m.format != FORMAT {
        return Err(DatasetError::Manifest(format!("format `{}`, expected `{FORMAT}`", m.format)));
    }
    if let Some(bad) = m.shards.iter().find(|s| s.file.is_empty() || s.file.contains('/') || s.file.starts_with('.')) {
        return Err(DatasetError::Manifest(format!("shard name `{}` leaves the folder", bad.file)));
    }
    Ok(m)
}

/// Uploads the prepared dataset in `dir` to `url`: every shard, then the manifest.
pub async fn upload(bucket: &Bucket, url: &DatasetUrl, dir: &Path) -> Result<DataManifest, DatasetError> {
    let path = dir.join(MANIFEST);
    let manifest_bytes = std::fs::read(&path).map_err(io(&path))?;
    let manifest = read_manifest(&manifest_bytes)?;
    for shard in &manifest.shards {
        let path = dir.join(&shard.file);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        bucket.put(&url.key(&shard.file), bytes.into()).await?;
    }
    bucket.put(&url.key(MANIFEST), manifest_bytes.into()).await?;
    Ok(manifest)
}

/// What [`mirror`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrored {
    pub downloaded: Vec<String>,
    pub kept: Vec<String>,
}

/// Makes `dir` a verified copy of the dataset at `url`: downloads the manifest, each shard it
/// lacks or holds with another hash (capped at the size the manifest gives, checked against
/// its blake2b-256 before it is renamed into place), then writes the manifest. Shards of other
/// names in `dir` are left alone; `Dataset::open(dir)` then reads exactly the manifest's.
pub async fn mirror(bucket: &Bucket, url: &DatasetUrl, dir: &Path) -> Result<Mirrored, DatasetError> {
    let got = bucket.get_capped(&url.key(MANIFEST), MAX_MANIFEST).await?;
    let manifest = read_manifest(&got.bytes)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut done = Mirrored::default();
    for shard in &manifest.shards {
        let path = dir.join(&shard.file);
        if std::fs::read(&path).is_ok_and(|b| hex::encode(compression::signature::content_hash(&b)) == shard.blake2b) {
            done.kept.push(shard.file.clone());
            continue;
        }
        let size = shard.samples * manifest.seq_len as u64 * 4;
        let data = bucket.get_capped(&url.key(&shard.file), size).await?;
        let found = hex::encode(data.hash);
        if found != shard.blake2b {
            return Err(DatasetError::Hash { file: shard.file.clone(), expected: shard.blake2b.clone(), found });
        }
        write_atomic(&path, &data.bytes)?;
        done.downloaded.push(shard.file.clone());
    }
    write_atomic(&dir.join(MANIFEST), &got.bytes)?;
    Ok(done)
}

/// [`crate::fsutil::write_atomic`] with this module's error type.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    crate::fsutil::write_atomic(path, bytes)
        .map_err(|e| DatasetError::Io { path: path.to_path_buf(), source: std::io::Error::other(format!("{e:#}")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_bad_ones_are_refused() {
        let u = DatasetUrl::parse("s3://tokens/dclm/v1/").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("tokens", "dclm/v1"));
        assert_eq!(u.key("manifest.json"), "dclm/v1/manifest.json");
        let root = DatasetUrl::parse("s3://tokens").unwrap();
        assert_eq!(root.key("manifest.json"), "manifest.json");
        for bad in ["tokens/x", "s3://", "s3://A_B/x", "s3://ab/x", "http://tokens/x"] {
            assert!(DatasetUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifests_naming_files_outside_the_folder_are_refused() {
        let m = serde_json::json!({
            "format": FORMAT,
            "tokenizer": {"name": "gpt2", "vocab_size": 50257, "eos": 50256, "hash": "00"},
            "seq_len": 4, "samples": 1, "tokens": 4,
            "shards": [{"file": "../etc/passwd", "samples": 1, "blake2b": "00"}],
            "sources": []
        });
        let err = read_manifest(&serde_json::to_vec(&m).unwrap()).unwrap_err();
        assert!(matches!(err, DatasetError::Manifest(_)), "{err}");
        assert!(read_manifest(b"not json").is_err());
    }
}
