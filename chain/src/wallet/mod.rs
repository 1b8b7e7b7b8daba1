//! Bittensor-compatible wallets: `<path>/<name>/{coldkey, coldkeypub.txt, hotkeys/<hotkey>,
//! hotkeys/<hotkey>pub.txt}` as the PyPI `bittensor-wallet` (btwallet) writes them.
//!
//! Defaults follow btcli: name `default`, hotkey `default`, path `~/.bittensor/wallets`, each
//! overridden by `BT_WALLET_NAME`, `BT_WALLET_HOTKEY` and `BT_WALLET_PATH`. Files are written
//! atomically with mode 0600. Coldkeys are `$NACL`-encrypted unless asked otherwise; hotkeys are
//! plain (a neuron signs with its hotkey unattended).

pub mod keyfile;
pub mod keypair;
pub mod nacl;
pub mod password;

pub use keyfile::{Encryption, KeyfileJson, Loaded};
pub use keypair::{Keypair, PublicKey};
pub use password::PasswordSource;

use serde::Serialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_NAME: &str = "default";
pub const DEFAULT_HOTKEY: &str = "default";
pub const DEFAULT_PATH: &str = "~/.bittensor/wallets";

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{0} already exists (pass --overwrite to replace it)")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    InKeyfile { path: PathBuf, source: Box<WalletError> },
    #[error("malformed keyfile: {0}")]
    BadKeyfile(String),
    #[error("invalid {what}: {reason}")]
    BadSecret { what: &'static str, reason: String },
    #[error("invalid address {address:?}: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("the keyfile states address {stated} but its secret gives {derived}")]
    KeyMismatch { stated: String, derived: String },
    #[error("cryptoType {0} is not supported (only sr25519, cryptoType 1)")]
    UnsupportedCryptoType(u8),
    #[error("{path} uses the old {kind:?} encryption; re-encrypt it with `btcli wallet update` first")]
    UnsupportedEncryption { path: PathBuf, kind: Encryption },
    #[error("wrong password (or a corrupted keyfile)")]
    WrongPassword,
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error("the two passwords differ")]
    PasswordsDiffer,
    #[error("{keyfile} is encrypted: give --password-file, set {env_var}, or run interactively")]
    PasswordNeeded { keyfile: PathBuf, env_var: String },
    #[error("password file {path}: {reason}")]
    BadPasswordFile { path: PathBuf, reason: String },
    #[error("environment variable {var}: {reason}")]
    BadPasswordEnv { var: String, reason: String },
    #[error("could not read a password from the terminal: {0}")]
    Prompt(String),
    #[error("{0}")]
    Crypto(String),
    #[error("{0} words: a phrase has 12, 15, 18, 21 or 24")]
    BadWordCount(usize),
    #[error("{0} holds only a public key; signing needs the secret key file")]
    PublicOnly(PathBuf),
    #[error("invalid wallet or hotkey name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadName(String),
}

/// One wallet (coldkey) with one selected hotkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub name: String,
    pub hotkey: String,
    /// The folder holding wallets (`~/.bittensor/wallets`), already expanded.
    pub path: PathBuf,
}

impl Wallet {
    /// The wallet `name`/`hotkey` under `path` (`~` is expanded). Names are checked so that they
    /// stay inside the wallet folder.
    pub fn new(name: &str, hotkey: &str, path: impl AsRef<Path>) -> Result<Self, WalletError> {
        check_name(name)?;
        check_name(hotkey)?;
        Ok(Self { name: name.to_string(), hotkey: hotkey.to_string(), path: expand_home(path.as_ref()) })
    }

    /// Explicit values first, then `BT_WALLET_NAME` / `BT_WALLET_HOTKEY` / `BT_WALLET_PATH`, then
    /// the defaults (`default`, `default`, `~/.bittensor/wallets`).
    pub fn resolve(name: Option<&str>, hotkey: Option<&str>, path: Option<&Path>) -> Result<Self, WalletError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let name = name.map(str::to_string).or_else(|| env("BT_WALLET_NAME")).unwrap_or_else(|| DEFAULT_NAME.into());
        let hotkey =
            hotkey.map(str::to_string).or_else(|| env("BT_WALLET_HOTKEY")).unwrap_or_else(|| DEFAULT_HOTKEY.into());
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| env("BT_WALLET_PATH").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        Self::new(&name, &hotkey, path)
    }

    pub fn dir(&self) -> PathBuf {
        self.path.join(&self.name)
    }
    pub fn coldkey_path(&self) -> PathBuf {
        self.dir().join("coldkey")
    }
    pub fn coldkeypub_path(&self) -> PathBuf {
        self.dir().join("coldkeypub.txt")
    }
    pub fn hotkey_path(&self) -> PathBuf {
        self.dir().join("hotkeys").join(&self.hotkey)
    }
    pub fn hotkeypub_path(&self) -> PathBuf {
        self.dir().join("hotkeys").join(format!("{}pub.txt", self.hotkey))
    }

    /// The hotkey pair (decrypting it if it is encrypted).
    pub fn hotkey(&self, pw: &PasswordSource) -> Result<Keypair, WalletError> {
        require_pair(&self.hotkey_path(), load_keyfile(&self.hotkey_path(), pw)?)
    }

    /// The coldkey pair (usually encrypted: this can take ~10 s and may prompt).
    pub fn coldkey(&self, pw: &PasswordSource) -> Result<Keypair, WalletError> {
        require_pair(&self.coldkey_path(), load_keyfile(&self.coldkey_path(), pw)?)
    }

    /// The coldkey's public key from `coldkeypub.txt`.
    pub fn coldkey_public(&self) -> Result<PublicKey, WalletError> {
        Ok(load_keyfile(&self.coldkeypub_path(), &PasswordSource::env_only())?.public())
    }

    /// The hotkey's public key: from `<hotkey>pub.txt`, else from a plain hotkey file.
    pub fn hotkey_public(&self) -> Result<PublicKey, WalletError> {
        match load_keyfile(&self.hotkeypub_path(), &PasswordSource::env_only()) {
            Ok(l) => Ok(l.public()),
            Err(WalletError::Missing(_)) => {
                Ok(load_keyfile(&self.hotkey_path(), &PasswordSource::env_only())?.public())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the coldkey (encrypted with `password` when given, plain otherwise) and
    /// `coldkeypub.txt`.
    pub fn write_coldkey(&self, key: &Keypair, password: Option<&str>, overwrite: bool) -> Result<(), WalletError> {
        write_pair(&self.coldkey_path(), &self.coldkeypub_path(), key, password, overwrite)
    }

    /// Writes the hotkey (encrypted with `password` when given) and `<hotkey>pub.txt`.
    pub fn write_hotkey(&self, key: &Keypair, password: Option<&str>, overwrite: bool) -> Result<(), WalletError> {
        write_pair(&self.hotkey_path(), &self.hotkeypub_path(), key, password, overwrite)
    }

    /// Writes only `coldkeypub.txt` (a watch-only wallet).
    pub fn write_coldkeypub(&self, public: &PublicKey, overwrite: bool) -> Result<(), WalletError> {
        keyfile::write_private(&self.coldkeypub_path(), &KeyfileJson::public_only(public).to_bytes(), overwrite)
    }

    /// What is on disk for this wallet (no secrets are read, nothing is decrypted).
    pub fn info(&self) -> WalletInfo {
        let coldkey = file_info("coldkey", &self.coldkey_path(), Some(&self.coldkeypub_path()));
        let mut hotkeys = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.dir().join("hotkeys")) {
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.') && !n.ends_with("pub.txt"))
                .collect();
            names.sort();
            for n in names {
                let dir = self.dir().join("hotkeys");
                hotkeys.push(file_info(&n, &dir.join(&n), Some(&dir.join(format!("{n}pub.txt")))));
            }
        }
        WalletInfo { name: self.name.clone(), path: self.dir(), coldkey, hotkeys }
    }
}

/// A wallet as listed by `neuron wallet list`.
#[derive(Debug, Clone, Serialize)]
pub struct WalletInfo {
    pub name: String,
    pub path: PathBuf,
    pub coldkey: KeyInfo,
    pub hotkeys: Vec<KeyInfo>,
}

/// One key of a wallet: its address when it can be read without a password.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub name: String,
    pub ss58: Option<String>,
    /// `None` when the secret key file is absent (public-only).
    pub encryption: Option<Encryption>,
}

fn file_info(name: &str, secret: &Path, public: Option<&Path>) -> KeyInfo {
    let raw = std::fs::read(secret).ok();
    let encryption = raw.as_deref().map(Encryption::detect);
    let from_public = public
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|d| KeyfileJson::parse(&d).ok())
        .and_then(|j| j.load().ok())
        .map(|l| l.public());
    let from_secret = || {
        raw.as_deref()
            .filter(|d| Encryption::detect(d) == Encryption::None)
            .and_then(|d| KeyfileJson::parse(d).ok())
            .and_then(|j| j.load().ok())
            .map(|l| l.public())
    };
    KeyInfo { name: name.to_string(), ss58: from_public.or_else(from_secret).map(|p| p.ss58()), encryption }
}

/// Every wallet under `root` (folders holding a coldkey, a coldkeypub.txt or a hotkeys folder).
pub fn list_wallets(root: &Path) -> Result<Vec<WalletInfo>, WalletError> {
    let root = expand_home(root);
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(WalletError::Io { path: root, source }),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            let d = root.join(n);
            d.join("coldkey").exists() || d.join("coldkeypub.txt").exists() || d.join("hotkeys").is_dir()
        })
        .collect();
    names.sort();
    Ok(names.iter().filter_map(|n| Wallet::new(n, DEFAULT_HOTKEY, &root).ok()).map(|w| w.info()).collect())
}

/// Reads and, if needed, decrypts a keyfile. Errors name the file.
pub fn load_keyfile(path: &Path, pw: &PasswordSource) -> Result<Loaded, WalletError> {
    let raw = keyfile::read_raw(path)?;
    let in_file = |e: WalletError| WalletError::InKeyfile { path: path.to_path_buf(), source: Box::new(e) };
    match Encryption::detect(&raw) {
        Encryption::None => KeyfileJson::parse(&raw).and_then(|j| j.load()).map_err(in_file),
        Encryption::Nacl => {
            let password = pw.unlock_password(path)?;
            let started = std::time::Instant::now();
            let plain = nacl::decrypt(&raw, &password).map_err(in_file)?;
            tracing::debug!(path = %path.display(), ms = started.elapsed().as_millis() as u64, "keyfile unlocked");
            KeyfileJson::parse(&plain).and_then(|j| j.load()).map_err(in_file)
        }
        kind => Err(WalletError::UnsupportedEncryption { path: path.to_path_buf(), kind }),
    }
}

fn require_pair(path: &Path, loaded: Loaded) -> Result<Keypair, WalletError> {
    match loaded {
        Loaded::Pair(k) => Ok(*k),
        Loaded::Public(_) => Err(WalletError::PublicOnly(path.to_path_buf())),
    }
}

fn write_pair(
    secret: &Path,
    public: &Path,
    key: &Keypair,
    password: Option<&str>,
    overwrite: bool,
) -> Result<(), WalletError> {
    if !overwrite {
        for p in [secret, public] {
            if p.exists() {
                return Err(WalletError::Exists(p.to_path_buf()));
            }
        }
    }
    let plain = KeyfileJson::from_keypair(key).to_bytes();
    let data = match password {
        Some(pw) => nacl::encrypt(&plain, pw)?,
        None => plain.to_vec(),
    };
    keyfile::write_private(secret, &data, overwrite)?;
    keyfile::write_private(public, &KeyfileJson::public_only(&key.public()).to_bytes(), overwrite)
}

fn check_name(name: &str) -> Result<(), WalletError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(WalletError::BadName(name.to_string()))
    }
}

/// Expands a leading `~` to `$HOME`.
pub fn expand_home(p: &Path) -> PathBuf {
    let Ok(rest) = p.strip_prefix("~") else { return p.to_path_buf() };
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(rest),
        None => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_names() {
        let w = Wallet::new("miner", "hk1", "/w").unwrap();
        assert_eq!(w.coldkey_path(), Path::new("/w/miner/coldkey"));
        assert_eq!(w.coldkeypub_path(), Path::new("/w/miner/coldkeypub.txt"));
        assert_eq!(w.hotkey_path(), Path::new("/w/miner/hotkeys/hk1"));
        assert_eq!(w.hotkeypub_path(), Path::new("/w/miner/hotkeys/hk1pub.txt"));
        for bad in ["", "..", "a/b", "a b", "x\0"] {
            assert!(Wallet::new(bad, "h", "/w").is_err(), "{bad:?} accepted");
            assert!(Wallet::new("w", bad, "/w").is_err(), "{bad:?} accepted");
        }
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(expand_home(Path::new("~/.bittensor")), PathBuf::from(home).join(".bittensor"));
        }
    }

    #[test]
    fn plain_wallet_round_trip_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wallet::new("w1", "hk", dir.path()).unwrap();
        let cold = Keypair::generate(12).unwrap();
        let hot = Keypair::generate(12).unwrap();
        w.write_coldkey(&cold, None, false).unwrap();
        w.write_hotkey(&hot, None, false).unwrap();
        assert!(matches!(w.write_hotkey(&hot, None, false), Err(WalletError::Exists(_))));
        let pw = PasswordSource::env_only();
        assert_eq!(w.coldkey(&pw).unwrap().public(), cold.public());
        assert_eq!(w.hotkey(&pw).unwrap().public(), hot.public());
        assert_eq!(w.coldkey_public().unwrap(), cold.public());
        assert_eq!(w.hotkey_public().unwrap(), hot.public());
        // A watch-only wallet: coldkeypub.txt only.
        let watch = Wallet::new("watch", "hk", dir.path()).unwrap();
        watch.write_coldkeypub(&cold.public(), false).unwrap();
        assert!(matches!(watch.coldkey(&pw), Err(WalletError::Missing(_))));
        assert_eq!(watch.coldkey_public().unwrap(), cold.public());
        let listed = list_wallets(dir.path()).unwrap();
        assert_eq!(listed.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["w1", "watch"]);
        assert_eq!(listed[0].coldkey.ss58.as_deref(), Some(cold.ss58().as_str()));
        assert_eq!(listed[0].hotkeys.len(), 1);
        assert_eq!(listed[0].hotkeys[0].ss58.as_deref(), Some(hot.ss58().as_str()));
        assert_eq!(listed[1].coldkey.encryption, None);
        // Public-only files cannot sign.
        std::fs::remove_file(w.hotkey_path()).unwrap();
        std::fs::copy(w.hotkeypub_path(), w.hotkey_path()).unwrap();
        assert!(matches!(w.hotkey(&pw), Err(WalletError::PublicOnly(_))));
    }

    #[test]
    fn legacy_encryption_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wallet::new("old", "hk", dir.path()).unwrap();
        keyfile::write_private(&w.coldkey_path(), b"gAAAAABlegacy", false).unwrap();
        let err = w.coldkey(&PasswordSource::env_only()).unwrap_err();
        assert!(err.to_string().contains("btcli wallet update"), "{err}");
    }
}
