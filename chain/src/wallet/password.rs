//! Where a keyfile password comes from: a file named on the command line, bittensor's
//! `BT_PW_<PATH>` environment convention, or an interactive prompt.
//!
//! The environment convention (btwallet `save_password_to_env`): the variable is `BT_PW_` followed
//! by the keyfile's path with `/` and `.` replaced by `_`, upper-cased; its value is the base64 of
//! the password's UTF-8 bytes XOR-ed with the variable name's bytes (repeated). It obscures, it does
//! not protect.

use super::WalletError;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// How to obtain a password when one is needed.
#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    /// Read the password from this file (first line, trailing newline stripped).
    pub file: Option<PathBuf>,
    /// Never prompt (for services and tests): fail instead.
    pub no_prompt: bool,
}

impl PasswordSource {
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self { file: Some(path.into()), no_prompt: true }
    }

    /// Neither a file nor a prompt: only the `BT_PW_…` environment variable.
    pub fn env_only() -> Self {
        Self { file: None, no_prompt: true }
    }

    /// The password to unlock `keyfile`: the file if given, else its `BT_PW_…` variable, else a
    /// prompt on the terminal (unless `no_prompt`).
    pub fn unlock_password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        if let Some(file) = &self.file {
            return read_password_file(file);
        }
        if let Some(pw) = password_from_env(keyfile)? {
            return Ok(pw);
        }
        if self.no_prompt {
            return Err(WalletError::PasswordNeeded { keyfile: keyfile.to_path_buf(), env_var: env_var_name(keyfile) });
        }
        prompt(&format!("Password to unlock {}: ", keyfile.display()))
    }

    /// A new password to encrypt `keyfile` with: the file if given, else the `BT_PW_…` variable,
    /// else a prompt asked twice.
    pub fn new_password(&self, keyfile: &Path) -> Result<Zeroizing<String>, WalletError> {
        if let Some(file) = &self.file {
            return read_password_file(file);
        }
        if let Some(pw) = password_from_env(keyfile)? {
            return Ok(pw);
        }
        if self.no_prompt {
            return Err(WalletError::PasswordNeeded { keyfile: keyfile.to_path_buf(), env_var: env_var_name(keyfile) });
        }
        let first = prompt(&format!("New password for {}: ", keyfile.display()))?;
        let second = prompt("Repeat it: ")?;
        if *first != *second {
            return Err(WalletError::PasswordsDiffer);
        }
        Ok(first)
    }
}

fn prompt(text: &str) -> Result<Zeroizing<String>, WalletError> {
    let pw = rpassword::prompt_password(text).map_err(|e| WalletError::Prompt(e.to_string()))?;
    let pw = Zeroizing::new(pw);
    if pw.is_empty() {
        return Err(WalletError::EmptyPassword);
    }
    Ok(pw)
}

fn read_password_file(path: &Path) -> Result<Zeroizing<String>, WalletError> {
    let raw =
        Zeroizing::new(std::fs::read(path).map_err(|source| WalletError::Io { path: path.to_path_buf(), source })?);
    let text = std::str::from_utf8(&raw)
        .map_err(|_| WalletError::BadPasswordFile { path: path.to_path_buf(), reason: "not UTF-8".into() })?;
    let line = text.split(['\n', '\r']).next().unwrap_or("");
    if line.is_empty() {
        return Err(WalletError::BadPasswordFile { path: path.to_path_buf(), reason: "empty first line".into() });
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// `BT_PW_<PATH>` for a keyfile (its absolute path, as btwallet names it).
pub fn env_var_name(keyfile: &Path) -> String {
    let abs = if keyfile.is_absolute() {
        keyfile.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(keyfile)).unwrap_or_else(|_| keyfile.to_path_buf())
    };
    let s = abs.to_string_lossy().replace(['/', '.'], "_").to_uppercase();
    format!("BT_PW_{s}")
}

fn xor_with(data: &[u8], key: &str) -> Vec<u8> {
    let k = key.as_bytes();
    data.iter().zip(k.iter().cycle()).map(|(d, k)| d ^ k).collect()
}

/// The value to put in `env_var_name(keyfile)` so that bittensor tools (and this one) find `password`.
pub fn env_value(keyfile: &Path, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xor_with(password.as_bytes(), &env_var_name(keyfile)))
}

/// The password stored for `keyfile` in the environment, if any.
pub fn password_from_env(keyfile: &Path) -> Result<Option<Zeroizing<String>>, WalletError> {
    let name = env_var_name(keyfile);
    let Some(value) = std::env::var_os(&name) else { return Ok(None) };
    let bad = |reason: &str| WalletError::BadPasswordEnv { var: name.clone(), reason: reason.to_string() };
    let value = value.into_string().map_err(|_| bad("not UTF-8"))?;
    let obscured = base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|_| bad("not base64"))?;
    let plain = Zeroizing::new(xor_with(&obscured, &name));
    let pw = std::str::from_utf8(&plain).map_err(|_| bad("does not decode to UTF-8"))?;
    if pw.is_empty() {
        return Err(bad("empty password"));
    }
    Ok(Some(Zeroizing::new(pw.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_name_and_value_match_btwallet() {
        // Reference values printed by the PyPI bittensor-wallet 4.1.1 (Keyfile.env_var_name and
        // save_password_to_env) for this path and the password "Test1234!pw".
        let path = Path::new("/tmp/btwtest/pyw/coldkey");
        assert_eq!(env_var_name(path), "BT_PW__TMP_BTWTEST_PYW_COLDKEY");
        assert_eq!(env_value(path, "Test1234!pw"), "FjEsJGZtbGBsICg=");
        assert_eq!(
            env_var_name(Path::new("/root/.bittensor/wallets/a.b/coldkey")),
            "BT_PW__ROOT__BITTENSOR_WALLETS_A_B_COLDKEY"
        );
    }

    #[test]
    fn password_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\nignored\n").unwrap();
        assert_eq!(PasswordSource::from_file(&f).unlock_password(Path::new("/x")).unwrap().as_str(), "s3cret");
        std::fs::write(&f, "\n").unwrap();
        assert!(matches!(
            PasswordSource::from_file(&f).unlock_password(Path::new("/x")),
            Err(WalletError::BadPasswordFile { .. })
        ));
    }

    #[test]
    fn no_prompt_without_a_source_is_a_clear_error() {
        let err = PasswordSource::env_only().unlock_password(Path::new("/nonexistent/wallet/coldkey")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("BT_PW__NONEXISTENT_WALLET_COLDKEY"), "{msg}");
    }
}
