//! Pre-tokenized datasets: shards of fixed-length sequences of u32 token ids plus a manifest.
//!
//! Layout of a dataset folder:
//! - `shard-00000.bin`, `shard-00001.bin`, …: samples back to back, each `seq_len` little-endian
//!   u32 token ids;
//! - `manifest.json`: format tag, tokenizer (name, vocabulary size, end-of-text id, blake2b-256 of
//!   its files), `seq_len`, sample counts, and each shard's blake2b-256. Written last: a folder
//!   without a manifest is not a dataset.
//!
//! Sample `i` of the dataset is sample `i − first(shard)` of the shard that holds it, in shard order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use blake2::Digest;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::tokenizer::{TextTokenizer, TokenizerError};
use crate::Blake2b256;

pub const MANIFEST: &str = "manifest.json";
pub const FORMAT: &str = "covenant-rs/tokens/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    pub name: String,
    pub vocab_size: usize,
    pub eos: u32,
    /// blake2b-256 of the tokenizer's files, hex.
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub file: String,
    pub samples: u64,
    /// blake2b-256 of the file, hex.
    pub blake2b: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataManifest {
    pub format: String,
    pub tokenizer: TokenizerInfo,
    pub seq_len: usize,
    pub samples: u64,
    pub tokens: u64,
    pub shards: Vec<ShardInfo>,
    /// The input files, by name, with their token counts.
    pub sources: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("{0}: not a dataset manifest: {1}")]
    Manifest(PathBuf, String),
    #[error("{file}: hash {found} differs from the manifest's {expected}")]
    Hash { file: String, expected: String, found: String },
    #[error("{file}: {found} bytes, the manifest implies {expected}")]
    Size { file: String, expected: u64, found: u64 },
    #[error("the inputs hold {tokens} tokens, fewer than one sequence of {seq_len}")]
    TooLittleText { tokens: usize, seq_len: usize },
    #[error("sample {index} is out of range (the dataset has {len})")]
    OutOfRange { index: u64, len: u64 },
    #[error("token id {id} in {file} is outside the vocabulary of {vocab}")]
    Token { file: String, id: u32, vocab: usize },
    #[error("sequence length must be at least 2, got {0}")]
    SeqLen(usize),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Tokenizes `inputs` (each file one document, separated by the end-of-text token), cuts the
/// token stream into sequences of `seq_len`, and writes shards of at most `samples_per_shard`
/// sequences plus the manifest into `out` (created if needed).
pub fn prepare(
    inputs: &[PathBuf],
    tokenizer: &TextTokenizer,
    seq_len: usize,
    samples_per_shard: u64,
    out: &Path,
) -> Result<DataManifest, DataError> {
    if seq_len < 2 {
        return Err(DataError::SeqLen(seq_len));
    }
    let mut tokens: Vec<u32> = Vec::new();
    let mut sources = Vec::with_capacity(inputs.len());
    for path in inputs {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let ids = tokenizer.encode(&text)?;
        sources.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), ids.len() as u64));
        tokens.extend_from_slice(&ids);
        tokens.push(tokenizer.eos);
    }
    let samples = (tokens.len() / seq_len) as u64;
    if samples == 0 {
        return Err(DataError::TooLittleText { tokens: tokens.len(), seq_len });
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let per_shard = samples_per_shard.max(1);
    let mut shards = Vec::new();
    for (n, chunk) in tokens[..samples as usize * seq_len].chunks(per_shard as usize * seq_len).enumerate() {
        let file = format!("shard-{n:05}.bin");
        let path = out.join(&file);
        let tmp = out.join(format!(".{file}.tmp"));
        let mut hasher = Blake2b256::new();
        {
            let mut w = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
            for id in chunk {
                let b = id.to_le_bytes();
                hasher.update(b);
                w.write_all(&b).map_err(io(&tmp))?;
            }
            w.into_inner()
                .map_err(|e| DataError::Io { path: tmp.clone(), source: e.into_error() })?
                .sync_all()
                .map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        shards.push(ShardInfo { file, samples: (chunk.len() / seq_len) as u64, blake2b: hex(&hasher.finalize()) });
    }
    let manifest = DataManifest {
        format: FORMAT.into(),
        tokenizer: TokenizerInfo {
            name: tokenizer.name.clone(),
            vocab_size: tokenizer.vocab_size,
            eos: tokenizer.eos,
            hash: hex(&tokenizer.hash),
        },
        seq_len,
        samples,
        tokens: samples * seq_len as u64,
        shards,
        sources,
    };
    let path = out.join(MANIFEST);
    let tmp = out.join(format!(".{MANIFEST}.tmp"));
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    std::fs::write(&tmp, json).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(manifest)
}

/// A dataset folder opened for reading samples.
#[derive(Debug)]
pub struct Dataset {
    pub manifest: DataManifest,
    files: Vec<File>,
    /// First sample of each shard.
    starts: Vec<u64>,
    dir: PathBuf,
}

impl Dataset {
    /// Opens `dir`, checking every shard's size against the manifest, and with `verify` also its
    /// hash and that every token is inside the vocabulary.
    pub fn open(dir: &Path, verify: bool) -> Result<Self, DataError> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let manifest: DataManifest =
            serde_json::from_slice(&bytes).map_err(|e| DataError::Manifest(path.clone(), e.to_string()))?;
        if manifest.format != FORMAT {
            return Err(DataError::Manifest(path, format!("format `{}`, expected `{FORMAT}`", manifest.format)));
        }
        if manifest.seq_len < 2 {
            return Err(DataError::SeqLen(manifest.seq_len));
        }
        let mut files = Vec::with_capacity(manifest.shards.len());
        let mut starts = Vec::with_capacity(manifest.shards.len());
        let mut total = 0u64;
        for shard in &manifest.shards {
            if shard.file.contains('/') || shard.file.starts_with('.') {
                return Err(DataError::Manifest(path, format!("shard name `{}` leaves the folder", shard.file)));
            }
            let p = dir.join(&shard.file);
            let f = File::open(&p).map_err(io(&p))?;
            let len = f.metadata().map_err(io(&p))?.len();
            let expected = shard.samples * manifest.seq_len as u64 * 4;
            if len != expected {
                return Err(DataError::Size { file: shard.file.clone(), expected, found: len });
            }
            if verify {
                let data = std::fs::read(&p).map_err(io(&p))?;
                let found = hex(&Blake2b256::digest(&data));
                if found != shard.blake2b {
                    return Err(DataError::Hash { file: shard.file.clone(), expected: shard.blake2b.clone(), found });
                }
                if let Some(id) = data
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .find(|&id| id as usize >= manifest.tokenizer.vocab_size)
                {
                    return Err(DataError::Token {
                        file: shard.file.clone(),
                        id,
                        vocab: manifest.tokenizer.vocab_size,
                    });
                }
            }
            starts.push(total);
            total += shard.samples;
            files.push(f);
        }
        if total != manifest.samples {
            return Err(DataError::Manifest(
                path,
                format!("shards hold {total} samples, manifest says {}", manifest.samples),
            ));
        }
        Ok(Self { manifest, files, starts, dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn len(&self) -> u64 {
        self.manifest.samples
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.samples == 0
    }

    pub fn seq_len(&self) -> usize {
        self.manifest.seq_len
    }

    /// The token ids of sample `index`.
    pub fn sample(&self, index: u64) -> Result<Vec<u32>, DataError> {
        if index >= self.len() {
            return Err(DataError::OutOfRange { index, len: self.len() });
        }
        let shard = self.starts.partition_point(|&s| s <= index) - 1;
        let bytes_per = self.seq_len() as u64 * 4;
        let mut buf = vec![0u8; bytes_per as usize];
        let path = self.dir.join(&self.manifest.shards[shard].file);
        self.files[shard].read_exact_at(&mut buf, (index - self.starts[shard]) * bytes_per).map_err(io(&path))?;
        Ok(buf.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// Samples `indices` as an int64 tensor `(len(indices), seq_len)` on `device`.
    pub fn batch(&self, indices: &[u64], device: Device) -> Result<Tensor, DataError> {
        let mut ids: Vec<i64> = Vec::with_capacity(indices.len() * self.seq_len());
        for &i in indices {
            ids.extend(self.sample(i)?.into_iter().map(|t| t as i64));
        }
        Ok(Tensor::from_slice(&ids)
            .view([indices.len() as i64, self.seq_len() as i64])
            .to_kind(Kind::Int64)
            .to_device(device))
    }
}
