//! A tokenized dataset in a bucket (PROTOCOL.md §5), against a real S3 server on 127.0.0.1:
//! `neuron data prepare --output s3://…` uploads real text's shards, a node mirrors them with a
//! read key, verified; a tampered shard is refused and never lands in the node's folder.

mod common;

use std::process::{Command, Output};

use common::runtime;
use model::data::shards::Dataset;
use neuron::storage::dataset::{mirror, DatasetError};
use neuron::storage::{BucketKeys, DatasetUrl, Endpoint, StorageError, S3};
use neuron::testkit::local_s3::{LocalS3, LocalS3Config};

fn neuron(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::neuron_binary());
    cmd.args(args).env("OMP_NUM_THREADS", "1").env_remove("NEURON_S3_KEY_ID").env_remove("NEURON_S3_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("neuron runs")
}

#[test]
fn prepare_uploads_to_a_bucket_and_a_node_mirrors_it_verified() {
    let dir = tempfile::tempdir().unwrap();
    let keys = BucketKeys::generate();
    let server = LocalS3::start(LocalS3Config::new(dir.path().join("s3")).with_bucket(&keys)).unwrap();
    let endpoint = server.endpoint();
    let bucket_name = keys.account_id.clone();
    let url = format!("s3://{bucket_name}/tokens/v1");
    let play = std::fs::read_dir(model::cache_dir().join("data/text/shakespeare")).unwrap().next().unwrap().unwrap();
    let input = play.path().to_string_lossy().into_owned();
    let prepare = |env: &[(&str, &str)]| {
        neuron(
            &[
                "data",
                "prepare",
                "--input",
                &input,
                "--output",
                &url,
                "--seq-len",
                "32",
                "--samples-per-shard",
                "256",
                "--s3-endpoint",
                &endpoint,
            ],
            env,
        )
    };

    // Without keys: a clear error, nothing uploaded.
    let refused = prepare(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--s3-key-id"), "{refused:?}");
    // With the write key (from the environment, as an operator would pass it).
    let out = prepare(&[("NEURON_S3_KEY_ID", &keys.write.id), ("NEURON_S3_SECRET", &keys.write.secret)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let rt = runtime();
    let s3 = S3::default();
    let at = DatasetUrl::parse(&url).unwrap();
    let reader = s3.bucket(&Endpoint::url(&endpoint), &bucket_name, &keys.read);
    let local = dir.path().join("node-data");
    let first = rt.block_on(mirror(&reader, &at, &local)).unwrap();
    assert!(first.downloaded.len() >= 2, "{first:?}");
    assert!(first.kept.is_empty());
    // A complete, verified dataset: hashes and token ids checked.
    let data = Dataset::open(&local, true).unwrap();
    assert_eq!(data.seq_len(), 32);
    assert_eq!(data.manifest.shards.len(), first.downloaded.len());
    // Again: nothing to download.
    let again = rt.block_on(mirror(&reader, &at, &local)).unwrap();
    assert_eq!((again.downloaded.len(), again.kept.len()), (0, first.downloaded.len()));

    // A shard replaced in the bucket by other bytes of the same size: refused, and the node's
    // folder never holds it.
    let shard = data.manifest.shards[0].file.clone();
    let original = std::fs::read(local.join(&shard)).unwrap();
    let writer = s3.bucket(&Endpoint::url(&endpoint), &bucket_name, &keys.write);
    let mut forged = original.clone();
    forged[0] ^= 1;
    rt.block_on(writer.put(&format!("tokens/v1/{shard}"), forged.into())).unwrap();
    std::fs::remove_file(local.join(&shard)).unwrap();
    let err = rt.block_on(mirror(&reader, &at, &local)).unwrap_err();
    assert!(matches!(&err, DatasetError::Hash { file, .. } if *file == shard), "{err}");
    assert!(!local.join(&shard).exists());

    // A dataset that is not there, or a key that does not open the bucket: typed errors.
    let missing = DatasetUrl::parse(&format!("s3://{bucket_name}/nothing")).unwrap();
    let err = rt.block_on(mirror(&reader, &missing, &local)).unwrap_err();
    assert!(matches!(&err, DatasetError::Storage(e) if e.is_not_found()), "{err}");
    let stranger = s3.bucket(&Endpoint::url(&endpoint), &bucket_name, &BucketKeys::generate().read);
    let err = rt.block_on(mirror(&stranger, &at, &local)).unwrap_err();
    assert!(matches!(&err, DatasetError::Storage(e) if matches!(**e, StorageError::AccessDenied { .. })), "{err}");
}
