//! The S3 client: one bucket per [`Bucket`], built on `aws-sdk-s3` with our own retry loop.
//!
//! - Addressing is path-style by default (local servers, SeaweedFS and R2 all accept it).
//! - Every request attempt (headers *and* body) runs under [`S3Options::request_timeout`];
//!   transient failures (connection refused or reset, timeouts, 5xx, 429, a body cut short) are
//!   retried with exponential back-off and jitter; credential and not-found errors are not.
//! - Uploads at or over [`S3Options::multipart_threshold`] go up as a multipart upload (parts in
//!   parallel; aborted on failure, so a failed upload leaves no object and no parts behind). A
//!   plain PUT is atomic on every S3 server: readers see the old object or the whole new one.
//! - Downloads have a hard size cap: [`Bucket::get_capped`] asks for the size first (HEAD) and does
//!   not download an object over the cap; the body is counted while it streams and the transfer
//!   is dropped as soon as it passes the cap or the announced length (a server may lie). Objects
//!   over [`S3Options::range_threshold`] come down as parallel ranged GETs. The blake2b-256 of the
//!   bytes is computed while they arrive, in order.

use super::credentials::{AccessKey, BucketCredentials, BucketKeys, Endpoint};
use super::keys::ObjectKey;
use aws_sdk_s3::config::{
    retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, SharedHttpClient,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use blake2::Digest;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

type Blake2b256 = blake2::Blake2b<blake2::digest::consts::U32>;

/// Retry policy of one operation.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts per operation (the first included) when no deadline is given.
    pub max_attempts: u32,
    /// First back-off; doubled after every failure up to `max_backoff`, with jitter.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { max_attempts: 5, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(5) }
    }
}

/// Client knobs (shared by every bucket of one [`S3`]).
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Path-style addressing (`https://host/bucket/key`) instead of virtual hosts.
    pub path_style: bool,
    pub connect_timeout: Duration,
    /// Limit of one attempt of one request, its body included.
    pub request_timeout: Duration,
    pub retry: Retry,
    /// Uploads of this many bytes or more are multipart uploads.
    pub multipart_threshold: usize,
    /// Part size of multipart uploads (S3 wants ≥ 5 MiB for all but the last part).
    pub part_size: usize,
    pub upload_concurrency: usize,
    /// Downloads over this many bytes use parallel ranged GETs.
    pub range_threshold: u64,
    pub range_part: u64,
    pub range_concurrency: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        Self {
            path_style: true,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            retry: Retry::default(),
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
            upload_concurrency: 4,
            range_threshold: 32 << 20,
            range_part: 8 << 20,
            range_concurrency: 4,
        }
    }
}

/// Every way a storage operation fails, with the object it was about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("{op} s3://{bucket}/{key}: no such object or bucket")]
    NotFound { op: &'static str, bucket: String, key: String },
    #[error(
        "{op} s3://{bucket}/{key} at {endpoint}: the server refused the credentials or the access ({code}): {message}"
    )]
    AccessDenied { op: &'static str, bucket: String, key: String, endpoint: String, code: String, message: String },
    #[error("s3://{bucket}/{key} is {size} bytes, over the limit of {limit}: not downloaded")]
    TooLarge { bucket: String, key: String, size: u64, limit: u64 },
    #[error("s3://{bucket}/{key}: the server sent more than {limit} bytes; transfer dropped after {read} bytes")]
    Overflow { bucket: String, key: String, limit: u64, read: u64 },
    #[error("s3://{bucket}/{key}: got {got} of {expected} bytes (truncated transfer)")]
    Truncated { bucket: String, key: String, expected: u64, got: u64 },
    #[error("{op} s3://{bucket}/{key}: no complete answer within {ms} ms (attempt {attempts})")]
    Timeout { op: &'static str, bucket: String, key: String, ms: u64, attempts: u32 },
    #[error("{op} s3://{bucket}/{key} at {endpoint}: unreachable after {attempts} attempt(s): {detail}")]
    Unavailable { op: &'static str, bucket: String, key: String, endpoint: String, attempts: u32, detail: String },
    #[error("{op} s3://{bucket}/{key}: the server answered {status} {code}: {message}")]
    Service { op: &'static str, bucket: String, key: String, status: u16, code: String, message: String },
    #[error("S3 client: {0}")]
    Config(String),
}

impl StorageError {
    /// Whether the object (or bucket) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// One failed attempt: the error, and whether trying again may help.
struct Failure {
    error: StorageError,
    transient: bool,
}

impl Failure {
    fn permanent(error: StorageError) -> Self {
        Self { error, transient: false }
    }
    fn transient(error: StorageError) -> Self {
        Self { error, transient: true }
    }
}

/// What one request was about (for error messages).
#[derive(Clone, Copy)]
struct Ctx<'a> {
    op: &'static str,
    bucket: &'a str,
    key: &'a str,
    endpoint: &'a str,
    timeout: Duration,
}

impl Ctx<'_> {
    fn unavailable(&self, detail: String) -> StorageError {
        StorageError::Unavailable {
            op: self.op,
            bucket: self.bucket.into(),
            key: self.key.into(),
            endpoint: self.endpoint.into(),
            attempts: 1,
            detail,
        }
    }

    /// Sorts an SDK error into permanent and transient failures.
    fn classify<E>(&self, err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let detail = DisplayErrorContext(&err).to_string();
        match &err {
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or("").to_string();
                let message = se.err().message().unwrap_or("").to_string();
                const CREDENTIAL_CODES: [&str; 6] = [
                    "AccessDenied",
                    "InvalidAccessKeyId",
                    "SignatureDoesNotMatch",
                    "AuthorizationHeaderMalformed",
                    "InvalidToken",
                    "ExpiredToken",
                ];
                if status == 403 || CREDENTIAL_CODES.contains(&code.as_str()) {
                    let code = if code.is_empty() { format!("HTTP {status}") } else { code };
                    let message = if message.is_empty() {
                        "no reason given (a HEAD answer has no body): wrong key or secret, or no access to this bucket"
                            .to_string()
                    } else {
                        message
                    };
                    return Failure::permanent(StorageError::AccessDenied {
                        op: self.op,
                        bucket: self.bucket.into(),
                        key: self.key.into(),
                        endpoint: self.endpoint.into(),
                        code,
                        message,
                    });
                }
                if status == 404 {
                    return Failure::permanent(StorageError::NotFound {
                        op: self.op,
                        bucket: self.bucket.into(),
                        key: self.key.into(),
                    });
                }
                let error = StorageError::Service {
                    op: self.op,
                    bucket: self.bucket.into(),
                    key: self.key.into(),
                    status,
                    code,
                    message: if message.is_empty() { detail } else { message },
                };
                Failure { error, transient: status >= 500 || status == 429 || status == 408 }
            }
            SdkError::TimeoutError(_) => Failure::transient(StorageError::Timeout {
                op: self.op,
                bucket: self.bucket.into(),
                key: self.key.into(),
                ms: self.timeout.as_millis() as u64,
                attempts: 1,
            }),
            SdkError::DispatchFailure(df) if df.is_user() => Failure::permanent(StorageError::Config(format!(
                "{} s3://{}/{}: {detail}",
                self.op, self.bucket, self.key
            ))),
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::transient(self.unavailable(detail)),
            SdkError::ConstructionFailure(_) => Failure::permanent(StorageError::Config(format!(
                "{} s3://{}/{}: {detail}",
                self.op, self.bucket, self.key
            ))),
            _ => Failure::transient(self.unavailable(detail)),
        }
    }
}

fn with_attempts(mut e: StorageError, n: u32) -> StorageError {
    match &mut e {
        StorageError::Unavailable { attempts, .. } | StorageError::Timeout { attempts, .. } => *attempts = n,
        _ => {}
    }
    e
}

/// A handle on S3 servers: one HTTP connection pool shared by every [`Bucket`] made from it.
#[derive(Clone, Debug)]
pub struct S3 {
    http: SharedHttpClient,
    opts: Arc<S3Options>,
}

impl Default for S3 {
    fn default() -> Self {
        Self::new(S3Options::default())
    }
}

impl S3 {
    pub fn new(opts: S3Options) -> Self {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        Self { http, opts: Arc::new(opts) }
    }

    pub fn options(&self) -> &S3Options {
        &self.opts
    }

    /// A bucket reached at `endpoint` with `key`.
    pub fn bucket(&self, endpoint: &Endpoint, bucket: &str, key: &AccessKey) -> Bucket {
        let (url, region) = endpoint.resolve(bucket);
        let creds = Credentials::new(key.id.clone(), key.secret.clone(), None, None, "covenant-rs");
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(self.opts.connect_timeout)
            .operation_attempt_timeout(self.opts.request_timeout)
            .build();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(url.clone())
            .region(Region::new(region))
            .credentials_provider(creds)
            .force_path_style(self.opts.path_style)
            .http_client(self.http.clone())
            // Retries are ours (below), with the error classes we choose.
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            // Integrity is the blake2b-256 committed on chain; no per-request CRCs.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Bucket {
            client: aws_sdk_s3::Client::from_conf(config),
            name: bucket.to_string(),
            endpoint: url,
            opts: self.opts.clone(),
        }
    }

    /// A peer's bucket, read with the credentials it committed.
    pub fn reader(&self, endpoint: &Endpoint, creds: &BucketCredentials) -> Bucket {
        self.bucket(endpoint, creds.bucket(), creds.read_key())
    }

    /// This neuron's own bucket, with its write key.
    pub fn writer(&self, endpoint: &Endpoint, keys: &BucketKeys) -> Bucket {
        self.bucket(endpoint, keys.bucket(), &keys.write)
    }
}

/// An object's size as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A downloaded object and the blake2b-256 of its bytes.
#[derive(Debug, Clone)]
pub struct Download {
    pub bytes: Vec<u8>,
    pub hash: [u8; 32],
}

/// What [`Bucket::cleanup`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    pub deleted: Vec<String>,
    /// Objects left in place (recent, not windowed, or not ours).
    pub kept: usize,
}

/// One bucket with one key.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
    endpoint: String,
    opts: Arc<S3Options>,
}

impl Bucket {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn ctx<'a>(&'a self, op: &'static str, key: &'a str) -> Ctx<'a> {
        Ctx { op, bucket: &self.name, key, endpoint: &self.endpoint, timeout: self.opts.request_timeout }
    }

    /// Runs `f` (one attempt) until it succeeds, fails permanently, or runs out of attempts
    /// (or, with a deadline, of time: then attempts are not counted).
    async fn retry<T, F, Fut>(&self, ctx: Ctx<'_>, deadline: Option<Instant>, mut f: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = &self.opts.retry;
        let mut backoff = policy.initial_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let limit = match deadline {
                Some(d) => self.opts.request_timeout.min(d.saturating_duration_since(Instant::now())),
                None => self.opts.request_timeout,
            };
            let failure = match tokio::time::timeout(limit, f()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(failure)) => failure,
                Err(_) => Failure::transient(StorageError::Timeout {
                    op: ctx.op,
                    bucket: ctx.bucket.into(),
                    key: ctx.key.into(),
                    ms: limit.as_millis() as u64,
                    attempts: attempt,
                }),
            };
            let out_of_tries = match deadline {
                Some(d) => Instant::now() + backoff >= d,
                None => attempt >= policy.max_attempts.max(1),
            };
            if !failure.transient || out_of_tries {
                return Err(with_attempts(failure.error, attempt));
            }
            // Jitter: sleep between half and all of the back-off.
            let sleep = backoff.mul_f64(0.5 + 0.5 * rand::random::<f64>());
            tracing::debug!(op = ctx.op, bucket = ctx.bucket, key = ctx.key, attempt, error = %failure.error,
                sleep_ms = sleep.as_millis() as u64, "retrying");
            tokio::time::sleep(sleep).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
    }

    /// Creates the bucket; an existing bucket of ours is fine.
    pub async fn create(&self) -> Result<(), StorageError> {
        let ctx = self.ctx("CreateBucket", "");
        self.retry(ctx, None, || async {
            match self.client.create_bucket().bucket(&self.name).send().await {
                Ok(_) => Ok(()),
                Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")) => Ok(()),
                Err(e) => Err(ctx.classify(e)),
            }
        })
        .await
    }

    /// Stores `data` at `key` (replacing any object there), multipart when large.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        if data.len() >= self.opts.multipart_threshold.max(1) && data.len() > self.opts.part_size {
            return self.put_multipart(key, data).await;
        }
        let ctx = self.ctx("PutObject", key);
        self.retry(ctx, None, || async {
            self.client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .content_length(data.len() as i64)
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ctx.classify(e))
        })
        .await
    }

    /// [`Bucket::put`] for an [`ObjectKey`].
    pub async fn put_object(&self, key: &ObjectKey, data: Bytes) -> Result<(), StorageError> {
        self.put(&key.to_string(), data).await
    }

    async fn put_multipart(&self, key: &str, data: Bytes) -> Result<(), StorageError> {
        let ctx = self.ctx("CreateMultipartUpload", key);
        let upload_id = self
            .retry(ctx, None, || async {
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| ctx.classify(e))?;
                out.upload_id.ok_or_else(|| {
                    Failure::permanent(StorageError::Service {
                        op: ctx.op,
                        bucket: self.name.clone(),
                        key: key.into(),
                        status: 200,
                        code: "NoUploadId".into(),
                        message: "the answer has no upload id".into(),
                    })
                })
            })
            .await?;
        let result = self.upload_parts(key, &upload_id, &data).await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                self.abort_multipart(key, &upload_id).await;
                return Err(e);
            }
        };
        let ctx = self.ctx("CompleteMultipartUpload", key);
        let done = self
            .retry(ctx, None, || async {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts.clone())).build())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| ctx.classify(e))
            })
            .await;
        if let Err(e) = done {
            self.abort_multipart(key, &upload_id).await;
            return Err(e);
        }
        Ok(())
    }

    async fn upload_parts(&self, key: &str, upload_id: &str, data: &Bytes) -> Result<Vec<CompletedPart>, StorageError> {
        let part_size = self.opts.part_size.max(1);
        let ranges: Vec<(i32, Bytes)> = (0..data.len())
            .step_by(part_size)
            .enumerate()
            .map(|(i, start)| (i as i32 + 1, data.slice(start..(start + part_size).min(data.len()))))
            .collect();
        futures_util::stream::iter(ranges)
            .map(|(number, chunk)| async move {
                let ctx = self.ctx("UploadPart", key);
                self.retry(ctx, None, || async {
                    let out = self
                        .client
                        .upload_part()
                        .bucket(&self.name)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(chunk.len() as i64)
                        .body(ByteStream::from(chunk.clone()))
                        .send()
                        .await
                        .map_err(|e| ctx.classify(e))?;
                    Ok(CompletedPart::builder().set_e_tag(out.e_tag).part_number(number).build())
                })
                .await
            })
            .buffered(self.opts.upload_concurrency.max(1))
            .try_collect()
            .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) {
        let ctx = self.ctx("AbortMultipartUpload", key);
        let aborted = self
            .retry(ctx, None, || async {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| ctx.classify(e))
            })
            .await;
        if let Err(e) = aborted {
            tracing::warn!(bucket = %self.name, key, error = %e, "could not abort a failed multipart upload");
        }
    }

    /// The size of `key`.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        self.head_by(key, None).await
    }

    async fn head_by(&self, key: &str, deadline: Option<Instant>) -> Result<ObjectInfo, StorageError> {
        let ctx = self.ctx("HeadObject", key);
        self.retry(ctx, deadline, || async {
            let out =
                self.client.head_object().bucket(&self.name).key(key).send().await.map_err(|e| ctx.classify(e))?;
            let size = out.content_length.and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
                Failure::permanent(StorageError::Service {
                    op: ctx.op,
                    bucket: self.name.clone(),
                    key: key.into(),
                    status: 200,
                    code: "NoContentLength".into(),
                    message: "the answer has no valid Content-Length".into(),
                })
            })?;
            Ok(ObjectInfo { key: key.to_string(), size })
        })
        .await
    }

    /// Downloads `key` if it is at most `limit` bytes: the size is asked first and an object over
    /// the limit is not downloaded at all ([`StorageError::TooLarge`]); the body is also counted as
    /// it streams ([`StorageError::Overflow`]). Transient failures are retried per
    /// [`S3Options::retry`].
    pub async fn get_capped(&self, key: &str, limit: u64) -> Result<Download, StorageError> {
        self.get_capped_by(key, limit, None).await
    }

    /// [`Bucket::get_capped`], retrying transient failures until `deadline` (when given) instead
    /// of a fixed number of times.
    pub async fn get_capped_by(
        &self,
        key: &str,
        limit: u64,
        deadline: Option<Instant>,
    ) -> Result<Download, StorageError> {
        let info = self.head_by(key, deadline).await?;
        if info.size > limit {
            return Err(StorageError::TooLarge { bucket: self.name.clone(), key: key.into(), size: info.size, limit });
        }
        if info.size <= self.opts.range_threshold.max(1) {
            // No more than the size just announced either (a server may lie in one answer).
            let ctx = self.ctx("GetObject", key);
            return self.retry(ctx, deadline, || self.get_whole(ctx, info.size)).await;
        }
        self.get_ranged(key, info.size, deadline).await
    }

    /// One GET of the whole object, hashed as it streams; dropped past `limit`.
    async fn get_whole(&self, ctx: Ctx<'_>, limit: u64) -> Result<Download, Failure> {
        let out = self.client.get_object().bucket(&self.name).key(ctx.key).send().await.map_err(|e| ctx.classify(e))?;
        let declared = out.content_length.and_then(|n| u64::try_from(n).ok());
        if let Some(size) = declared.filter(|&n| n > limit) {
            return Err(Failure::permanent(StorageError::TooLarge {
                bucket: self.name.clone(),
                key: ctx.key.into(),
                size,
                limit,
            }));
        }
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
        let mut hasher = Blake2b256::new();
        read_body(ctx, out.body, limit.min(declared.unwrap_or(u64::MAX)), &mut bytes, Some(&mut hasher)).await?;
        if let Some(expected) = declared.filter(|&n| n != bytes.len() as u64) {
            return Err(Failure::transient(StorageError::Truncated {
                bucket: self.name.clone(),
                key: ctx.key.into(),
                expected,
                got: bytes.len() as u64,
            }));
        }
        Ok(Download { bytes, hash: hasher.finalize().into() })
    }

    /// Parallel ranged GETs of an object of `size` bytes; parts are hashed in order as they come.
    async fn get_ranged(&self, key: &str, size: u64, deadline: Option<Instant>) -> Result<Download, StorageError> {
        let part = self.opts.range_part.max(1);
        let ranges: Vec<(u64, u64)> = (0..size).step_by(part as usize).map(|s| (s, (s + part).min(size))).collect();
        let mut parts = futures_util::stream::iter(ranges)
            .map(|(start, end)| async move {
                let ctx = self.ctx("GetObject (range)", key);
                self.retry(ctx, deadline, || self.get_range(ctx, start, end)).await
            })
            .buffered(self.opts.range_concurrency.max(1));
        let mut bytes = Vec::with_capacity(size as usize);
        let mut hasher = Blake2b256::new();
        while let Some(part) = parts.next().await {
            let part = part?;
            hasher.update(&part);
            bytes.extend_from_slice(&part);
        }
        Ok(Download { bytes, hash: hasher.finalize().into() })
    }

    /// Bytes `start..end` of the object, exactly.
    async fn get_range(&self, ctx: Ctx<'_>, start: u64, end: u64) -> Result<Vec<u8>, Failure> {
        let want = end - start;
        let out = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(ctx.key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(|e| ctx.classify(e))?;
        let mut bytes = Vec::with_capacity(want as usize);
        // Parts are hashed in order by the caller.
        read_body(ctx, out.body, want, &mut bytes, None).await?;
        if bytes.len() as u64 != want {
            return Err(Failure::transient(StorageError::Truncated {
                bucket: self.name.clone(),
                key: ctx.key.into(),
                expected: want,
                got: bytes.len() as u64,
            }));
        }
        Ok(bytes)
    }

    /// Every object under `prefix` (all objects when empty).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let ctx = self.ctx("ListObjectsV2", prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .retry(ctx, None, || async {
                    let mut req = self.client.list_objects_v2().bucket(&self.name);
                    if !prefix.is_empty() {
                        req = req.prefix(prefix);
                    }
                    if let Some(t) = &token {
                        req = req.continuation_token(t);
                    }
                    req.send().await.map_err(|e| ctx.classify(e))
                })
                .await?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Deletes `key` (deleting a missing object succeeds, as in S3).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let ctx = self.ctx("DeleteObject", key);
        self.retry(ctx, None, || async {
            match self.client.delete_object().bucket(&self.name).key(key).send().await {
                Ok(_) => Ok(()),
                Err(e) => match ctx.classify(e) {
                    f if matches!(f.error, StorageError::NotFound { .. }) => Ok(()),
                    f => Err(f),
                },
            }
        })
        .await
    }

    /// Deletes this bucket's gradient and debug objects (any protocol version) of windows older
    /// than `current_window - keep_windows`. A leading validator passes `replay_from`, the window
    /// of its latest published checkpoint: aggregator bundles and checkpoint files older than both
    /// that window and the kept windows go too, since a late joiner never replays from before its
    /// checkpoint. Without it they stay. Everything else (peer lists, the checkpoint pointer,
    /// foreign keys) stays.
    pub async fn cleanup(
        &self,
        current_window: u64,
        keep_windows: u64,
        replay_from: Option<u64>,
    ) -> Result<Cleanup, StorageError> {
        let mut report = Cleanup::default();
        let oldest_kept = current_window.saturating_sub(keep_windows);
        let oldest_replayed = replay_from.map(|w| w.min(oldest_kept));
        for o in self.list("").await? {
            let stale = match ObjectKey::parse(&o.key) {
                Some(k @ (ObjectKey::Gradient { .. } | ObjectKey::Debug { .. })) => {
                    k.window().is_some_and(|w| w < oldest_kept)
                }
                Some(k @ (ObjectKey::Aggregator { .. } | ObjectKey::Checkpoint { .. })) => {
                    k.window().zip(oldest_replayed).is_some_and(|(w, oldest)| w < oldest)
                }
                _ => false,
            };
            if stale {
                self.delete(&o.key).await?;
                report.deleted.push(o.key);
            } else {
                report.kept += 1;
            }
        }
        Ok(report)
    }
}

/// Reads a body into `out` (hashing it), failing as soon as it passes `limit` bytes.
async fn read_body(
    ctx: Ctx<'_>,
    mut body: ByteStream,
    limit: u64,
    out: &mut Vec<u8>,
    mut hasher: Option<&mut Blake2b256>,
) -> Result<(), Failure> {
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Failure::transient(ctx.unavailable(format!("reading the body: {e}"))))?;
        let read = out.len() as u64 + chunk.len() as u64;
        if read > limit {
            // Dropping `body` closes the connection: the rest is never read.
            return Err(Failure::permanent(StorageError::Overflow {
                bucket: ctx.bucket.into(),
                key: ctx.key.into(),
                limit,
                read,
            }));
        }
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&chunk);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(())
}
