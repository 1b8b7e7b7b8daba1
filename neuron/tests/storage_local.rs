//! The S3 client against the in-process S3 server (s3s-fs on 127.0.0.1): round trips, multipart
//! uploads, parallel ranged GETs, the download cap (by HEAD, and while streaming from a server that
//! lies about sizes), credentials and grants, a server that goes down and comes back, and cleanup.

mod common;

use blake2::Digest;
use common::{noise, runtime};
use neuron::storage::{AccessKey, BucketKeys, Endpoint, ObjectKey, Retry, S3Options, StorageError, S3};
use neuron::testkit::local_s3::{Grant, LocalS3, LocalS3Config};
use std::time::Duration;

fn blake2b_256(b: &[u8]) -> [u8; 32] {
    blake2::Blake2b::<blake2::digest::consts::U32>::digest(b).into()
}

/// A server with one neuron's bucket; returns (server, keys, S3 handle, writer).
fn server(dir: &std::path::Path, opts: S3Options) -> (LocalS3, BucketKeys, S3) {
    let keys = BucketKeys::generate();
    let s3 = LocalS3::start(LocalS3Config::new(dir).with_bucket(&keys)).expect("start local S3");
    (s3, keys, S3::new(opts))
}

#[test]
fn objects_round_trip_with_multipart_uploads_and_ranged_downloads() {
    let dir = tempfile::tempdir().unwrap();
    // Small thresholds so that a 12 MiB object takes both paths.
    let opts = S3Options {
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        range_threshold: 1 << 20,
        range_part: 1 << 20,
        ..S3Options::default()
    };
    let (server, keys, s3) = server(dir.path(), opts);
    let endpoint = Endpoint::url(server.endpoint());
    runtime().block_on(async {
        let own = s3.writer(&endpoint, &keys);
        own.create().await.expect("create the bucket");
        own.create().await.expect("creating it again is fine");

        // Small object: one PUT, one GET.
        let small = noise(10_000, 1);
        let key = ObjectKey::gradient(5, 3).to_string();
        own.put(&key, small.clone().into()).await.expect("put");
        let reader = s3.reader(&endpoint, &keys.published().unwrap());
        let got = reader.get_capped(&key, 10_000).await.expect("get at exactly the cap");
        assert_eq!(got.bytes, small);
        assert_eq!(got.hash, blake2b_256(&small));
        assert_eq!(reader.head(&key).await.unwrap().size, 10_000);

        // Large object: multipart up (3 parts), 12 ranged GETs down, hashed in order.
        let large = noise(12 << 20, 2);
        let big_key = ObjectKey::checkpoint(5, "model.safetensors").unwrap().to_string();
        own.put(&big_key, large.clone().into()).await.expect("multipart put");
        let got = reader.get_capped(&big_key, 64 << 20).await.expect("ranged get");
        assert!(got.bytes == large, "ranged download differs");
        assert_eq!(got.hash, blake2b_256(&large));
        // No multipart leftovers: the bucket holds exactly the two objects.
        let mut listed: Vec<String> = reader.list("").await.unwrap().into_iter().map(|o| o.key).collect();
        listed.sort();
        assert_eq!(listed, vec![big_key.clone(), key.clone()]);

        // Missing objects are NotFound, not a transport error.
        let missing = reader.get_capped("gradient-6-3-v1", 1000).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        own.delete(&key).await.unwrap();
        own.delete(&key).await.expect("deleting twice is fine");
        assert!(reader.head(&key).await.unwrap_err().is_not_found());
    });
}

#[test]
fn an_object_over_the_cap_is_not_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (server, keys, s3) = server(dir.path(), S3Options::default());
    let endpoint = Endpoint::url(server.endpoint());
    runtime().block_on(async {
        let own = s3.writer(&endpoint, &keys);
        own.create().await.unwrap();
        own.put("gradient-1-1-v1", noise(3 << 20, 3).into()).await.unwrap();
        let reader = s3.reader(&endpoint, &keys.published().unwrap());
        let err = reader.get_capped("gradient-1-1-v1", 1 << 20).await.unwrap_err();
        // TooLarge comes from the size the server announced, before any body byte is read.
        assert_eq!(
            err,
            StorageError::TooLarge {
                bucket: keys.account_id.clone(),
                key: "gradient-1-1-v1".into(),
                size: 3 << 20,
                limit: 1 << 20
            }
        );
        assert!(err.to_string().contains("not downloaded"), "{err}");
    });
}

/// An S3 server that lies: HEAD says every object is 1 byte, GET streams the real object without
/// a Content-Length. Only the streaming cap stands between the client and the whole object.
struct LyingServer(s3s_fs::FileSystem);

#[async_trait::async_trait]
impl s3s::S3 for LyingServer {
    async fn create_bucket(
        &self,
        req: s3s::S3Request<s3s::dto::CreateBucketInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CreateBucketOutput>> {
        self.0.create_bucket(req).await
    }

    async fn put_object(
        &self,
        req: s3s::S3Request<s3s::dto::PutObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::PutObjectOutput>> {
        self.0.put_object(req).await
    }

    async fn head_object(
        &self,
        req: s3s::S3Request<s3s::dto::HeadObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::HeadObjectOutput>> {
        let mut out = self.0.head_object(req).await?;
        out.output.content_length = Some(1);
        Ok(out)
    }

    async fn get_object(
        &self,
        req: s3s::S3Request<s3s::dto::GetObjectInput>,
    ) -> s3s::S3Result<s3s::S3Response<s3s::dto::GetObjectOutput>> {
        use futures_util::StreamExt;
        let mut out = self.0.get_object(req).await?;
        out.output.content_length = None;
        out.output.e_tag = None;
        if let Some(body) = out.output.body.take() {
            // A stream of unknown length: sent chunked.
            let unsized_body = futures_util::stream::unfold(body, |mut b| async move {
                b.next().await.map(|chunk| (chunk.map_err(std::io::Error::other), b))
            });
            out.output.body = Some(s3s::dto::StreamingBlob::wrap(unsized_body));
        }
        Ok(out)
    }
}

#[test]
fn a_server_that_lies_about_sizes_is_cut_off_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let keys = BucketKeys::generate();
    let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
    let server = LocalS3::start_with(LocalS3Config::new(dir.path()).with_bucket(&keys), LyingServer(fs)).unwrap();
    let endpoint = Endpoint::url(server.endpoint());
    let s3 = S3::default();
    runtime().block_on(async {
        let own = s3.writer(&endpoint, &keys);
        own.create().await.unwrap();
        let size: u64 = 16 << 20;
        own.put("gradient-2-1-v1", noise(size as usize, 4).into()).await.unwrap();
        let reader = s3.reader(&endpoint, &keys.published().unwrap());
        assert_eq!(reader.head("gradient-2-1-v1").await.unwrap().size, 1, "the server lies");
        let limit: u64 = 1 << 20;
        let err = reader.get_capped("gradient-2-1-v1", limit).await.unwrap_err();
        match err {
            // HEAD announced 1 byte: the body is dropped at the first chunk that passes it.
            StorageError::Overflow { read, limit: l, .. } => {
                assert_eq!(l, 1);
                assert!(read < size / 4, "read {read} of {size} bytes before stopping");
            }
            other => panic!("expected Overflow, got {other}"),
        }
    });
}

#[test]
fn wrong_credentials_and_missing_grants_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (server, keys, s3) = server(dir.path(), S3Options::default());
    let endpoint = Endpoint::url(server.endpoint());
    runtime().block_on(async {
        let own = s3.writer(&endpoint, &keys);
        own.create().await.unwrap();
        own.put("gradient-1-1-v1", noise(100, 5).into()).await.unwrap();

        let bad_secret = AccessKey::new(keys.read.id.clone(), "0".repeat(64));
        let err = s3.bucket(&endpoint, &keys.account_id, &bad_secret).get_capped("gradient-1-1-v1", 1000).await;
        let err = err.unwrap_err();
        println!("wrong secret: {err}");
        assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");
        assert!(err.to_string().contains("refused the credentials"), "{err}");

        let unknown = AccessKey::generate();
        let err = s3.bucket(&endpoint, &keys.account_id, &unknown).list("").await.unwrap_err();
        println!("unknown key: {err}");
        assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");

        // The published read key cannot write, and cannot read another bucket.
        let reader = s3.reader(&endpoint, &keys.published().unwrap());
        let err = reader.put("gradient-1-1-v1", vec![0u8; 10].into()).await.unwrap_err();
        assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");
        let other = s3.bucket(&endpoint, "someone-elses-bucket", &keys.read);
        assert!(matches!(other.list("").await, Err(StorageError::AccessDenied { .. })));
        // Nothing was overwritten.
        assert_eq!(reader.get_capped("gradient-1-1-v1", 1000).await.unwrap().bytes, noise(100, 5));
    });
}

#[test]
fn a_bucket_that_goes_down_and_comes_back_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let keys = BucketKeys::generate();
    let cfg = LocalS3Config::new(dir.path()).with_bucket(&keys);
    let server = LocalS3::start(cfg.clone()).unwrap();
    let addr = server.addr();
    let endpoint = Endpoint::url(server.endpoint());
    let opts = S3Options {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        retry: Retry {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        ..S3Options::default()
    };
    let s3 = S3::new(opts);
    let rt = runtime();
    let payload = noise(200_000, 6);
    rt.block_on(async {
        let own = s3.writer(&endpoint, &keys);
        own.create().await.unwrap();
        own.put("gradient-9-2-v1", payload.clone().into()).await.unwrap();
    });
    server.stop();

    // Down: a bounded number of attempts, then a clear error naming the endpoint.
    let reader = s3.reader(&endpoint, &keys.published().unwrap());
    let err = rt.block_on(reader.get_capped("gradient-9-2-v1", 1 << 20)).unwrap_err();
    println!("server down: {err}");
    assert!(matches!(err, StorageError::Unavailable { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");

    // Down, then up again on the same port while a download with a deadline keeps retrying.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (restarted_tx, restarted_rx) = std::sync::mpsc::channel();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let server = LocalS3::start(cfg.with_addr(addr)).expect("restart on the same port");
        restarted_tx.send(()).unwrap();
        server
    });
    let got = rt.block_on(reader.get_capped_by("gradient-9-2-v1", 1 << 20, Some(deadline))).expect("retried until up");
    assert_eq!(got.bytes, payload);
    restarted_rx.recv().unwrap();
    drop(restarter.join().unwrap());
}

#[test]
fn cleanup_removes_only_stale_gradients_and_debug_objects() {
    let dir = tempfile::tempdir().unwrap();
    let (server, keys, s3) = server(dir.path(), S3Options::default());
    let endpoint = Endpoint::url(server.endpoint());
    runtime().block_on(async {
        let own = s3.writer(&endpoint, &keys);
        own.create().await.unwrap();
        let old_version = neuron::storage::Version::new("0.9").unwrap();
        let keys_written = [
            ObjectKey::gradient(1, 4),
            ObjectKey::gradient(7, 4),
            ObjectKey::gradient(10, 4),
            ObjectKey::debug(2, 4),
            ObjectKey::debug(9, 4),
            ObjectKey::gradient(3, 4).with_version(old_version),
            ObjectKey::aggregator(1),
            ObjectKey::peers(1),
            ObjectKey::checkpoint(1, "model.safetensors").unwrap(),
        ];
        for k in &keys_written {
            own.put_object(k, vec![1u8; 10].into()).await.unwrap();
        }
        own.put("notes.txt", vec![1u8; 3].into()).await.unwrap();
        // Window 10, keep 3: windows < 7 are stale; with no checkpoint published, bundles and
        // checkpoints stay (a late joiner replays from the start).
        let report = own.cleanup(10, 3, None).await.unwrap();
        let mut deleted = report.deleted.clone();
        deleted.sort();
        assert_eq!(deleted, vec!["debug-2-4-v1", "gradient-1-4-v1", "gradient-3-4-v0.9"]);
        assert_eq!(report.kept, 7);
        let left: Vec<String> = own.list("").await.unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(left.len(), 7);
        assert!(left.contains(&"gradient-7-4-v1".to_string()) && left.contains(&"notes.txt".to_string()));

        // A leader whose latest checkpoint is of window 2 drops the bundles and checkpoints
        // before it, and keeps the pointer to it.
        for k in [ObjectKey::aggregator(2), ObjectKey::checkpoint(2, "model.safetensors").unwrap()] {
            own.put_object(&k, vec![1u8; 10].into()).await.unwrap();
        }
        own.put_object(&ObjectKey::checkpoint_latest(), vec![1u8; 10].into()).await.unwrap();
        let report = own.cleanup(10, 3, Some(2)).await.unwrap();
        let mut deleted = report.deleted.clone();
        deleted.sort();
        assert_eq!(deleted, vec!["aggregator-1-v1", "checkpoints/v1/1/model.safetensors"]);
        let left: Vec<String> = own.list("").await.unwrap().into_iter().map(|o| o.key).collect();
        for kept in ["aggregator-2-v1", "checkpoints/v1/2/model.safetensors", "checkpoints/v1/LATEST", "peers_1-v1"] {
            assert!(left.contains(&kept.to_string()), "{kept} was deleted: {left:?}");
        }
    });
}

#[test]
fn the_server_refuses_non_loopback_addresses_and_empty_key_sets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LocalS3Config::new(dir.path()).with_key(AccessKey::generate(), Grant::Admin);
    let public = cfg.clone().with_addr("0.0.0.0:0".parse().unwrap());
    assert!(LocalS3::start(public).is_err());
    assert!(LocalS3::start(LocalS3Config::new(dir.path())).is_err());
    let s = LocalS3::start(cfg).unwrap();
    assert!(s.endpoint().starts_with("http://127.0.0.1:"));
}
