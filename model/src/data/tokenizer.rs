//! Text → token ids. GPT-2's byte-level BPE (from the `encoder.json` + `vocab.bpe` pair that
//! `scripts/setup-data.sh` installs) or any Hugging Face `tokenizer.json`.

use std::path::{Path, PathBuf};

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::Tokenizer;

/// GPT-2's end-of-text token, used between documents.
pub const GPT2_EOS: u32 = 50256;

/// Where the GPT-2 vocabulary is installed: `$COVENANT_CACHE/data/gpt2` (default
/// `~/.cache/covenant-rs/data/gpt2`).
pub fn gpt2_dir() -> PathBuf {
    crate::cache_dir().join("data/gpt2")
}

/// Why a tokenizer could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("GPT-2 vocabulary not found in {0} (run `make setup`, which installs it)")]
    MissingGpt2(PathBuf),
    #[error("loading tokenizer {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("tokenizing: {0}")]
    Encode(String),
    #[error("tokenizer has no end-of-text token; name one")]
    NoEos,
}

/// A loaded tokenizer with the identity a dataset manifest records.
pub struct TextTokenizer {
    inner: Tokenizer,
    /// `gpt2` or the tokenizer file's name.
    pub name: String,
    pub vocab_size: usize,
    pub eos: u32,
    /// blake2b-256 of the vocabulary files, so datasets record exactly which tokenizer made them.
    pub hash: [u8; 32],
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("name", &self.name).field("vocab_size", &self.vocab_size).finish()
    }
}

fn load_error(path: &Path, e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Load { path: path.to_path_buf(), message: e.to_string() }
}

impl TextTokenizer {
    /// `gpt2` (the installed GPT-2 vocabulary) or a path to a `tokenizer.json`.
    pub fn load(spec: &str) -> Result<Self, TokenizerError> {
        if spec == "gpt2" {
            Self::gpt2(&gpt2_dir())
        } else {
            Self::from_file(Path::new(spec))
        }
    }

    /// GPT-2's byte-level BPE from `dir/encoder.json` and `dir/vocab.bpe`.
    pub fn gpt2(dir: &Path) -> Result<Self, TokenizerError> {
        let (vocab, merges) = (dir.join("encoder.json"), dir.join("vocab.bpe"));
        if !vocab.is_file() || !merges.is_file() {
            return Err(TokenizerError::MissingGpt2(dir.to_path_buf()));
        }
        let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
            .build()
            .map_err(|e| load_error(&vocab, e))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let hash = hash_files(&[&vocab, &merges])?;
        Ok(Self { vocab_size: inner.get_vocab_size(true), inner, name: "gpt2".into(), eos: GPT2_EOS, hash })
    }

    /// A Hugging Face `tokenizer.json`; the end-of-text token is the first of `<|endoftext|>`,
    /// `</s>`, `<eos>` it knows.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_file(path).map_err(|e| load_error(path, e))?;
        let eos = ["<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .ok_or(TokenizerError::NoEos)?;
        let hash = hash_files(&[path])?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self { vocab_size: inner.get_vocab_size(true), inner, name, eos, hash })
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self.inner.encode(text, false).map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids, false).map_err(|e| TokenizerError::Encode(e.to_string()))
    }
}

fn hash_files(paths: &[&Path]) -> Result<[u8; 32], TokenizerError> {
    use blake2::Digest;
    let mut h = crate::Blake2b256::new();
    for p in paths {
        h.update(std::fs::read(p).map_err(|e| load_error(p, e))?);
    }
    Ok(h.finalize().into())
}
