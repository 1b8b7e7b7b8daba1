//! Bucket credentials and where a bucket lives.
//!
//! As in the original (templar), every neuron owns one bucket named exactly like its account id,
//! and publishes the bucket's **read** credentials on chain as one `Raw128` commitment field:
//! `account_id (32) ‖ access_key_id (32) ‖ secret_access_key (64)`, ASCII. Write credentials
//! ([`BucketKeys::write`]) never leave the machine.
//!
//! Where the bucket is reached is not on chain: it is the network's [`Endpoint`] — Cloudflare R2
//! (`https://{account_id}.r2.cloudflarestorage.com`, region `auto`) in production, one local S3
//! server on a local network.

use std::fmt;

/// Length of the account id (and bucket name) in the `Raw128` field.
pub const ACCOUNT_ID_LEN: usize = 32;
/// Length of the access key id in the `Raw128` field.
pub const ACCESS_KEY_ID_LEN: usize = 32;
/// Length of the secret access key in the `Raw128` field.
pub const SECRET_LEN: usize = 64;
/// Length of the whole `Raw128` field.
pub const CREDENTIALS_LEN: usize = ACCOUNT_ID_LEN + ACCESS_KEY_ID_LEN + SECRET_LEN;

/// Why credentials (from config or from chain) are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("the credentials field is {0} bytes, expected {CREDENTIALS_LEN} (account id 32 ‖ key id 32 ‖ secret 64)")]
    Length(usize),
    #[error("the {what} must be {expected} characters, not {found}")]
    FieldLength { what: &'static str, expected: usize, found: usize },
    #[error("the account id must be lowercase letters, digits and `-` (it names the bucket)")]
    BadAccountId,
    #[error("the {0} must be printable ASCII without spaces")]
    NotPrintable(&'static str),
}

/// An access key pair. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl AccessKey {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { id: id.into(), secret: secret.into() }
    }

    /// A random key pair of the widths the `Raw128` field carries (lowercase hex, as R2's).
    pub fn generate() -> Self {
        Self { id: random_hex(ACCESS_KEY_ID_LEN), secret: random_hex(SECRET_LEN) }
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey").field("id", &self.id).field("secret", &"<redacted>").finish()
    }
}

/// What a neuron commits on chain: its bucket and a key that can only read it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BucketCredentials {
    account_id: String,
    read: AccessKey,
}

impl BucketCredentials {
    /// Checks the fixed widths and characters of the `Raw128` layout.
    pub fn new(account_id: impl Into<String>, read: AccessKey) -> Result<Self, CredentialsError> {
        let account_id = account_id.into();
        check_width("account id", &account_id, ACCOUNT_ID_LEN)?;
        check_width("access key id", &read.id, ACCESS_KEY_ID_LEN)?;
        check_width("secret access key", &read.secret, SECRET_LEN)?;
        check_account_id(&account_id)?;
        check_printable("access key id", &read.id)?;
        check_printable("secret access key", &read.secret)?;
        Ok(Self { account_id, read })
    }

    /// Parses the `Raw128` field (untrusted bytes from chain).
    pub fn from_raw(raw: &[u8]) -> Result<Self, CredentialsError> {
        if raw.len() != CREDENTIALS_LEN {
            return Err(CredentialsError::Length(raw.len()));
        }
        let text = |what: &'static str, b: &[u8]| -> Result<String, CredentialsError> {
            if b.iter().all(|c| c.is_ascii_graphic()) {
                // ASCII graphic bytes are valid UTF-8.
                Ok(b.iter().map(|&c| c as char).collect())
            } else {
                Err(CredentialsError::NotPrintable(what))
            }
        };
        let account_id = text("account id", &raw[..ACCOUNT_ID_LEN])?;
        let id = text("access key id", &raw[ACCOUNT_ID_LEN..ACCOUNT_ID_LEN + ACCESS_KEY_ID_LEN])?;
        let secret = text("secret access key", &raw[ACCOUNT_ID_LEN + ACCESS_KEY_ID_LEN..])?;
        Self::new(account_id, AccessKey { id, secret })
    }

    /// The `Raw128` field.
    pub fn to_raw(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(CREDENTIALS_LEN);
        raw.extend_from_slice(self.account_id.as_bytes());
        raw.extend_from_slice(self.read.id.as_bytes());
        raw.extend_from_slice(self.read.secret.as_bytes());
        raw
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The bucket is named like the account id.
    pub fn bucket(&self) -> &str {
        &self.account_id
    }

    pub fn read_key(&self) -> &AccessKey {
        &self.read
    }
}

/// A neuron's own bucket: the account id, the write key (kept local) and the read key (published).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BucketKeys {
    pub account_id: String,
    pub write: AccessKey,
    pub read: AccessKey,
}

impl BucketKeys {
    /// Fresh random keys and account id (for a local network).
    pub fn generate() -> Self {
        Self { account_id: random_hex(ACCOUNT_ID_LEN), write: AccessKey::generate(), read: AccessKey::generate() }
    }

    /// What goes on chain.
    pub fn published(&self) -> Result<BucketCredentials, CredentialsError> {
        BucketCredentials::new(self.account_id.clone(), self.read.clone())
    }

    pub fn bucket(&self) -> &str {
        &self.account_id
    }
}

/// Where buckets are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Cloudflare R2: `https://{account_id}.r2.cloudflarestorage.com`, region `auto`.
    R2,
    /// One S3 server for every account (a local network, SeaweedFS, MinIO, AWS itself).
    Url { url: String, region: String },
}

impl Endpoint {
    /// A fixed endpoint with region `us-east-1`.
    pub fn url(url: impl Into<String>) -> Self {
        Self::Url { url: url.into(), region: "us-east-1".into() }
    }

    /// From configuration: `r2` (or empty) for Cloudflare R2, otherwise an S3 URL with `region`
    /// (`us-east-1` when empty).
    pub fn from_config(endpoint: &str, region: &str) -> Self {
        match endpoint {
            "" | "r2" => Self::R2,
            url => Self::Url {
                url: url.to_string(),
                region: if region.is_empty() { "us-east-1".into() } else { region.to_string() },
            },
        }
    }

    /// The URL and region of `account_id`'s bucket.
    pub fn resolve(&self, account_id: &str) -> (String, String) {
        match self {
            Self::R2 => (format!("https://{account_id}.r2.cloudflarestorage.com"), "auto".into()),
            Self::Url { url, region } => (url.trim_end_matches('/').to_string(), region.clone()),
        }
    }
}

fn check_width(what: &'static str, s: &str, expected: usize) -> Result<(), CredentialsError> {
    if s.len() == expected {
        Ok(())
    } else {
        Err(CredentialsError::FieldLength { what, expected, found: s.len() })
    }
}

fn check_printable(what: &'static str, s: &str) -> Result<(), CredentialsError> {
    if s.bytes().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(CredentialsError::NotPrintable(what))
    }
}

/// A valid S3 bucket name of the fixed width: lowercase letters, digits, inner hyphens.
fn check_account_id(s: &str) -> Result<(), CredentialsError> {
    let ok = s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CredentialsError::BadAccountId)
    }
}

fn random_hex(len: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; len.div_ceil(2)];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut s = hex::encode(bytes);
    s.truncate(len);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw128_round_trips_in_the_original_layout() {
        let keys = BucketKeys::generate();
        let published = keys.published().unwrap();
        let raw = published.to_raw();
        assert_eq!(raw.len(), 128);
        assert_eq!(&raw[..32], keys.account_id.as_bytes());
        assert_eq!(&raw[32..64], keys.read.id.as_bytes());
        assert_eq!(&raw[64..], keys.read.secret.as_bytes());
        assert_eq!(BucketCredentials::from_raw(&raw).unwrap(), published);
        assert_eq!(published.bucket(), keys.account_id);
    }

    #[test]
    fn hostile_fields_are_errors() {
        let good = BucketKeys::generate().published().unwrap().to_raw();
        assert_eq!(BucketCredentials::from_raw(&good[..127]), Err(CredentialsError::Length(127)));
        let mut spaced = good.clone();
        spaced[40] = b' ';
        assert!(matches!(BucketCredentials::from_raw(&spaced), Err(CredentialsError::NotPrintable(_))));
        let mut upper = good.clone();
        upper[0] = b'A';
        assert_eq!(BucketCredentials::from_raw(&upper), Err(CredentialsError::BadAccountId));
        let mut binary = good;
        binary[100] = 0xff;
        assert!(BucketCredentials::from_raw(&binary).is_err());
        assert!(BucketCredentials::new("short", AccessKey::generate()).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let keys = BucketKeys::generate();
        let shown = format!("{keys:?} {:?}", keys.published().unwrap());
        assert!(!shown.contains(&keys.read.secret) && !shown.contains(&keys.write.secret), "{shown}");
    }

    #[test]
    fn endpoints_resolve() {
        let (url, region) = Endpoint::R2.resolve("abc");
        assert_eq!((url.as_str(), region.as_str()), ("https://abc.r2.cloudflarestorage.com", "auto"));
        let (url, region) = Endpoint::url("http://127.0.0.1:9000/").resolve("abc");
        assert_eq!((url.as_str(), region.as_str()), ("http://127.0.0.1:9000", "us-east-1"));
    }
}
