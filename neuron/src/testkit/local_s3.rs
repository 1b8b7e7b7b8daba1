//! A real S3 server on this machine: `s3s` over `s3s-fs` (objects are files in a folder, written
//! to a temporary file and renamed into place), served in-process on 127.0.0.1.
//!
//! It is what tests and the local network use instead of R2. Keys have per-bucket grants, as a
//! neuron's keys have on R2: an owner key writes its own bucket, a read key only reads it, and an
//! admin key does anything.
//!
//! ```no_run
//! # fn demo() -> Result<(), neuron::testkit::local_s3::LocalS3Error> {
//! use neuron::storage::BucketKeys;
//! use neuron::testkit::local_s3::{LocalS3, LocalS3Config};
//! let keys = BucketKeys::generate();
//! let s3 = LocalS3::start(LocalS3Config::new("/tmp/s3-data").with_bucket(&keys))?;
//! println!("S3 at {}", s3.endpoint()); // http://127.0.0.1:PORT
//! # Ok(()) }
//! ```
//!
//! The server runs on a small runtime of its own, so it works the same from synchronous code and
//! from inside another tokio runtime. Dropping the handle stops it: the listening socket is closed
//! before `stop` returns, and open connections are dropped.

use crate::storage::credentials::{AccessKey, BucketKeys};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::path::S3Path;
use s3s::service::S3ServiceBuilder;
use s3s::{S3Result, S3 as _};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Everything, on every bucket.
    Admin,
    /// Create, read, write, list and delete in one bucket.
    Owner { bucket: String },
    /// Read and list one bucket.
    Read { bucket: String },
}

/// One access key and its grant.
#[derive(Debug, Clone)]
pub struct LocalKey {
    pub key: AccessKey,
    pub grant: Grant,
}

/// How to start a [`LocalS3`].
#[derive(Debug, Clone)]
pub struct LocalS3Config {
    /// Folder holding the buckets (created when missing).
    pub root: PathBuf,
    /// `127.0.0.1:0` picks a free port; give the old port to restart a stopped server.
    pub addr: SocketAddr,
    pub keys: Vec<LocalKey>,
    /// Worker threads of the server's runtime.
    pub threads: usize,
}

impl LocalS3Config {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            keys: Vec::new(),
            threads: 2,
        }
    }

    pub fn with_key(mut self, key: AccessKey, grant: Grant) -> Self {
        self.keys.push(LocalKey { key, grant });
        self
    }

    /// A neuron's bucket: its write key owns it, its read key reads it.
    pub fn with_bucket(self, keys: &BucketKeys) -> Self {
        let bucket = keys.account_id.clone();
        self.with_key(keys.write.clone(), Grant::Owner { bucket: bucket.clone() })
            .with_key(keys.read.clone(), Grant::Read { bucket })
    }

    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalS3Error {
    #[error("local S3: the address must be on the loopback interface, not {0}")]
    NotLoopback(SocketAddr),
    #[error("local S3: no keys configured (every request would be refused)")]
    NoKeys,
    #[error("local S3: access key {0:?} is configured twice")]
    DuplicateKey(String),
    #[error("local S3: cannot use the folder {path}: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error("local S3: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("local S3: cannot start its runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running server. Dropping it stops it.
#[derive(Debug)]
pub struct LocalS3 {
    addr: SocketAddr,
    root: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: std::sync::mpsc::Receiver<()>,
}

impl LocalS3 {
    /// Starts serving `cfg.root` on `cfg.addr`; returns once the socket listens.
    pub fn start(cfg: LocalS3Config) -> Result<Self, LocalS3Error> {
        std::fs::create_dir_all(&cfg.root).map_err(|source| LocalS3Error::Folder { path: cfg.root.clone(), source })?;
        let fs = s3s_fs::FileSystem::new(&cfg.root).map_err(|e| LocalS3Error::Folder {
            path: cfg.root.clone(),
            source: std::io::Error::other(format!("{e:?}")),
        })?;
        let root = std::fs::canonicalize(&cfg.root)
            .map_err(|source| LocalS3Error::Folder { path: cfg.root.clone(), source })?;
        Self::start_with(cfg, LocalFs { inner: fs, root })
    }

    /// Serves another S3 implementation (for instance a wrapper of `s3s_fs::FileSystem` that
    /// misbehaves, to test clients against hostile servers) with the same keys and grants.
    pub fn start_with(cfg: LocalS3Config, backend: impl s3s::S3) -> Result<Self, LocalS3Error> {
        if !cfg.addr.ip().is_loopback() {
            return Err(LocalS3Error::NotLoopback(cfg.addr));
        }
        if cfg.keys.is_empty() {
            return Err(LocalS3Error::NoKeys);
        }
        let mut auth = SimpleAuth::new();
        let mut grants: HashMap<String, Grant> = HashMap::new();
        for k in &cfg.keys {
            if grants.insert(k.key.id.clone(), k.grant.clone()).is_some() {
                return Err(LocalS3Error::DuplicateKey(k.key.id.clone()));
            }
            auth.register(k.key.id.clone(), k.key.secret.clone().into());
        }
        let service = {
            let mut b = S3ServiceBuilder::new(backend);
            b.set_auth(auth);
            b.set_access(Grants(Arc::new(grants)));
            b.build()
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads.max(1))
            .thread_name("local-s3")
            .enable_all()
            .build()
            .map_err(LocalS3Error::Runtime)?;
        let listener = {
            // Registering the socket needs the runtime's reactor (entering is fine from inside
            // another runtime; only blocking on it is not).
            let _in_runtime = runtime.enter();
            bind(cfg.addr)?
        };
        let addr = listener.local_addr().map_err(|source| LocalS3Error::Bind { addr: cfg.addr, source })?;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            use hyper_util::rt::{TokioExecutor, TokioIo};
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => {
                            let _ = socket.set_nodelay(true);
                            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                            connections.spawn(async move {
                                let _ = conn.await;
                            });
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "local S3: accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            drop(listener);
            connections.abort_all();
            let _ = stopped_tx.send(());
        });
        tracing::debug!(%addr, root = %cfg.root.display(), "local S3 serving");
        Ok(Self { addr, root: cfg.root, runtime: Some(runtime), stop: Some(stop_tx), stopped: stopped_rx })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops the server: the port is free when this returns.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            // The accept loop drops the listener, then says so.
            let _ = self.stopped.recv_timeout(Duration::from_secs(5));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A listening socket with SO_REUSEADDR (so a restarted server gets its old port back while old
/// connections linger in TIME_WAIT). Must run inside the server's runtime.
fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, LocalS3Error> {
    let err = |source| LocalS3Error::Bind { addr, source };
    let socket = tokio::net::TcpSocket::new_v4().map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

/// Per-key grants.
struct Grants(Arc<HashMap<String, Grant>>);

#[async_trait::async_trait]
impl S3Access for Grants {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(creds) = cx.credentials() else {
            return Err(s3s::s3_error!(AccessDenied, "anonymous requests are refused"));
        };
        let Some(grant) = self.0.get(&creds.access_key) else {
            return Err(s3s::s3_error!(InvalidAccessKeyId));
        };
        let bucket = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => Some(&**bucket),
        };
        let op = cx.s3_op().name();
        let read_only = op.starts_with("Get") || op.starts_with("Head") || op.starts_with("List");
        let allowed = match grant {
            Grant::Admin => true,
            Grant::Owner { bucket: own } => bucket == Some(own.as_str()),
            Grant::Read { bucket: own } => bucket == Some(own.as_str()) && read_only,
        };
        if allowed {
            Ok(())
        } else {
            Err(s3s::s3_error!(AccessDenied, "key {} may not {op} here", creds.access_key))
        }
    }
}

/// Bytes per read when serving an object (s3s-fs reads 4 KiB at a time, one blocking-pool round
/// trip each: ~90 MB/s here; 1 MiB reads are I/O-bound).
const SERVE_CHUNK: usize = 1 << 20;

/// `s3s_fs::FileSystem` with a faster GET body; every other operation is the file system's own.
struct LocalFs {
    inner: s3s_fs::FileSystem,
    /// The file system's root, canonical.
    root: PathBuf,
}

impl LocalFs {
    async fn get_object_fast(
        &self,
        req: s3s::S3Request<s3s::dto::GetObjectInput>,
    ) -> S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
        let range = req.input.range;
        let path = object_path(&self.root, &req.input.bucket, &req.input.key);
        let mut out = self.inner.get_object(req).await?;
        // Keys with `.`/`..` components keep the file system's own (slow, correct) body.
        let (Some(path), Some(len)) = (path, out.output.content_length.and_then(|n| u64::try_from(n).ok())) else {
            return Ok(out);
        };
        let Ok(file) = std::fs::File::open(&path) else { return Ok(out) };
        let Ok(file_len) = file.metadata().map(|m| m.len()) else { return Ok(out) };
        let start = match range {
            None => 0,
            Some(s3s::dto::Range::Int { first, .. }) => first,
            Some(s3s::dto::Range::Suffix { length }) => file_len.saturating_sub(length),
        };
        if start.checked_add(len).is_none_or(|end| end > file_len) {
            return Ok(out);
        }
        out.output.body = Some(s3s::dto::StreamingBlob::wrap(file_stream(file, start, len)));
        Ok(out)
    }
}

/// `root/bucket/key` when both are plain relative paths.
fn object_path(root: &Path, bucket: &str, key: &str) -> Option<PathBuf> {
    use std::path::Component;
    let plain = |s: &str| !s.is_empty() && Path::new(s).components().all(|c| matches!(c, Component::Normal(_)));
    (plain(bucket) && plain(key)).then(|| root.join(bucket).join(key))
}

/// `len` bytes of `file` from `start`, read `SERVE_CHUNK` at a time on the blocking pool.
fn file_stream(
    file: std::fs::File,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Sync + 'static {
    futures_util::stream::try_unfold((file, start, len), |(mut file, pos, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let n = left.min(SERVE_CHUNK as u64) as usize;
        let (file, buf) = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut buf = vec![0u8; n];
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut buf)?;
            Ok::<_, std::io::Error>((file, buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Some((bytes::Bytes::from(buf), (file, pos + n as u64, left - n as u64))))
    })
}

/// Implements `s3s::S3` for [`LocalFs`] by handing each listed operation to the file system.
macro_rules! delegate_to_fs {
    ($($op:ident: $input:ident => $output:ident),* $(,)?) => {
        #[async_trait::async_trait]
        impl s3s::S3 for LocalFs {
            async fn get_object(
                &self,
                req: s3s::S3Request<s3s::dto::GetObjectInput>,
            ) -> S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
                self.get_object_fast(req).await
            }
            $(
                async fn $op(
                    &self,
                    req: s3s::S3Request<s3s::dto::$input>,
                ) -> S3Result<s3s::S3Response<s3s::dto::$output>> {
                    self.inner.$op(req).await
                }
            )*
        }
    };
}

delegate_to_fs! {
    create_bucket: CreateBucketInput => CreateBucketOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    put_object: PutObjectInput => PutObjectOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
}
