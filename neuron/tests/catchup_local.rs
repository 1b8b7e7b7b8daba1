//! Late joiners (PROTOCOL.md §7) against a real S3 server on 127.0.0.1: a leader takes outer steps
//! from signed miner payloads, publishes each window's bundle and one checkpoint; a node that
//! starts later from another initialisation loads the checkpoint, replays the bundles after it,
//! and ends with the leader's weights bit for bit. Tampered pointers, weights and payloads are
//! refused with typed errors.

mod common;

use chain::wallet::Keypair;
use common::runtime;
use compression::bundle::Bundle;
use compression::wire::{self, IndexCoding};
use compression::{Aggregation, Codec, Header, Payload};
use model::{checkpoint, Llama, LlamaConfig, TrainConfig, Trainer};
use neuron::catchup::{self, CatchUpError, CheckpointPointer};
use neuron::replica::Replica;
use neuron::storage::{sign_payload, BucketKeys, Endpoint, ObjectKey, Version, S3};
use neuron::testkit::local_s3::{LocalS3, LocalS3Config};
use tch::{Device, Kind, Tensor};

use std::collections::BTreeMap;

const NETUID: u16 = 3;
const ALPHA: f64 = 0.4;

fn replica(seed: u64) -> Replica {
    let mut config = LlamaConfig::preset("tiny").unwrap();
    config.vocab_size = 256;
    let trainer = Trainer::new(Llama::new(config, Device::Cpu, seed).unwrap(), TrainConfig::default()).unwrap();
    Replica::new(trainer, Codec::default()).unwrap()
}

/// Miner `uid`'s signed payload for `window`: a random pseudo-gradient through its own error
/// feedback.
fn miner_payload(miner: &mut Replica, key: &Keypair, uid: u16, window: u64) -> Vec<u8> {
    tch::manual_seed((window * 100 + uid as u64) as i64);
    let n = miner.trainer.model.params().numel();
    let delta = Tensor::randn([n], (Kind::Float, Device::Cpu)) * 1e-3;
    let params = miner.compress(&delta).unwrap();
    let header = Header { netuid: NETUID, uid, window, hotkey: key.public().0, model: miner.manifest.fingerprint() };
    let mut bytes = wire::encode(&Payload { header, params }, &miner.manifest, IndexCoding::Packed12).unwrap();
    sign_payload(&mut bytes, key).unwrap();
    bytes
}

#[test]
fn a_late_joiner_loads_the_checkpoint_replays_the_bundles_and_matches_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let keys = BucketKeys::generate();
    let server = LocalS3::start(LocalS3Config::new(dir.path()).with_bucket(&keys)).unwrap();
    let endpoint = Endpoint::url(server.endpoint());
    let s3 = S3::default();
    let version = Version::current();
    let leader_key = Keypair::from_seed(&[1; 32]);
    let miner_keys: Vec<Keypair> = (0..3).map(|i| Keypair::from_seed(&[10 + i; 32])).collect();
    let state = dir.path().join("leader-state");
    let rt = runtime();

    let mut leader = replica(7);
    let mut miners: Vec<Replica> = (0..3).map(|_| replica(7)).collect();
    let own = s3.writer(&endpoint, &keys);
    rt.block_on(own.create()).unwrap();
    let mut global_step = 0;
    let mut published: Option<CheckpointPointer> = None;
    for window in 10..15u64 {
        let entries: Vec<(u16, Vec<u8>)> = miners
            .iter_mut()
            .zip(&miner_keys)
            .enumerate()
            .map(|(i, (m, k))| (i as u16 + 1, miner_payload(m, k, i as u16 + 1, window)))
            .collect();
        let decoded: Vec<Payload> = entries.iter().map(|(_, b)| wire::decode(b, &leader.manifest).unwrap()).collect();
        let updates: Vec<&[compression::SparseParam]> = decoded.iter().map(|p| p.params.as_slice()).collect();
        let g = leader.aggregate(&updates, Aggregation::MedianClippedMean).unwrap();
        leader.outer_step(&g, ALPHA).unwrap();
        global_step += 1;
        let bundle = Bundle { window, entries };
        rt.block_on(own.put(&ObjectKey::aggregator(window).to_string(), bundle.encode().into())).unwrap();
        if window == 11 {
            checkpoint::save(&state, &leader.trainer, window, global_step).unwrap();
            let p = rt.block_on(catchup::publish_checkpoint(&own, &leader_key, NETUID, &version, &state)).unwrap();
            assert_eq!((p.window, p.global_step), (11, 2));
            published = Some(p);
        }
    }

    // The late joiner reads everything with the read key alone.
    let reader = s3.reader(&endpoint, &keys.published().unwrap());
    let mut joiner = replica(8);
    assert!(!joiner.trainer.model.params().master().equal(leader.trainer.model.params().master()));
    let pointer = rt.block_on(catchup::latest_checkpoint(&reader, &leader_key.public(), NETUID, &version)).unwrap();
    assert_eq!(pointer, published);
    let pointer = pointer.unwrap();
    let scratch = dir.path().join("joiner");
    rt.block_on(catchup::load_checkpoint(&reader, &pointer, &mut joiner.trainer, &scratch)).unwrap();
    // The hotkeys the chain has for the miners' uids.
    let hotkeys: BTreeMap<u16, _> = miner_keys.iter().enumerate().map(|(i, k)| (i as u16 + 1, k.public())).collect();
    let mut steps = 0;
    for window in pointer.window + 1..=16 {
        match rt.block_on(catchup::fetch_bundle(&reader, NETUID, &hotkeys, window, &version, &joiner.manifest)).unwrap()
        {
            Some(payloads) => {
                assert_eq!(payloads.len(), 3);
                assert!(catchup::replay(&mut joiner, window, &payloads, Aggregation::MedianClippedMean, ALPHA).unwrap());
                steps += 1;
            }
            None => assert!(window >= 15, "bundle of window {window} is missing"),
        }
    }
    assert_eq!(steps, 3);
    assert!(joiner.trainer.model.params().master().equal(leader.trainer.model.params().master()));

    // Someone else's signature on the pointer: refused.
    let stranger = Keypair::from_seed(&[99; 32]);
    let err = rt.block_on(catchup::latest_checkpoint(&reader, &stranger.public(), NETUID, &version)).unwrap_err();
    assert!(matches!(err, CatchUpError::Pointer(_)), "{err}");
    // A pointer for another subnet: refused.
    let err = rt.block_on(catchup::latest_checkpoint(&reader, &leader_key.public(), NETUID + 1, &version)).unwrap_err();
    assert!(matches!(err, CatchUpError::WrongSubnet { .. }), "{err}");
    // Weights that do not hash to what the (signed) pointer says: refused, model untouched.
    let wrong = CheckpointPointer { hash: "00".repeat(32), ..pointer.clone() };
    let before = joiner.trainer.model.params().master().copy();
    let err = rt.block_on(catchup::load_checkpoint(&reader, &wrong, &mut joiner.trainer, &scratch)).unwrap_err();
    assert!(matches!(err, CatchUpError::WrongHash { .. }), "{err}");
    assert!(joiner.trainer.model.params().master().equal(&before));
    // A checkpoint of another architecture: refused before downloading.
    let other = CheckpointPointer { model_fingerprint: "ff".repeat(32), ..pointer };
    let err = rt.block_on(catchup::load_checkpoint(&reader, &other, &mut joiner.trainer, &scratch)).unwrap_err();
    assert!(matches!(err, CatchUpError::WrongModel { .. }), "{err}");

    // A bundle whose payload is signed by someone other than the hotkey in its header.
    let mut forged = miner_payload(&mut miners[0], &miner_keys[0], 1, 20);
    sign_payload(&mut forged, &stranger).unwrap();
    let bundle = Bundle { window: 20, entries: vec![(1, forged)] };
    rt.block_on(own.put(&ObjectKey::aggregator(20).to_string(), bundle.encode().into())).unwrap();
    let err =
        rt.block_on(catchup::fetch_bundle(&reader, NETUID, &hotkeys, 20, &version, &joiner.manifest)).unwrap_err();
    assert!(matches!(err, CatchUpError::Payload { window: 20, uid: 1, .. }), "{err}");
    // A payload filed under another uid than its header's.
    let honest = miner_payload(&mut miners[1], &miner_keys[1], 2, 21);
    let bundle = Bundle { window: 21, entries: vec![(3, honest)] };
    rt.block_on(own.put(&ObjectKey::aggregator(21).to_string(), bundle.encode().into())).unwrap();
    let err =
        rt.block_on(catchup::fetch_bundle(&reader, NETUID, &hotkeys, 21, &version, &joiner.manifest)).unwrap_err();
    assert!(matches!(err, CatchUpError::Payload { window: 21, uid: 3, .. }), "{err}");
    // A payload whose header names a stranger's hotkey and carries its valid signature, filed
    // under uid 1: the hotkey the chain has for uid 1 decides, not the header.
    let impostor = miner_payload(&mut miners[0], &stranger, 1, 23);
    let bundle = Bundle { window: 23, entries: vec![(1, impostor)] };
    rt.block_on(own.put(&ObjectKey::aggregator(23).to_string(), bundle.encode().into())).unwrap();
    let err =
        rt.block_on(catchup::fetch_bundle(&reader, NETUID, &hotkeys, 23, &version, &joiner.manifest)).unwrap_err();
    assert!(matches!(err, CatchUpError::Payload { window: 23, uid: 1, .. }), "{err}");
    // Bytes that are not a bundle.
    rt.block_on(own.put(&ObjectKey::aggregator(22).to_string(), vec![7u8; 100].into())).unwrap();
    let err =
        rt.block_on(catchup::fetch_bundle(&reader, NETUID, &hotkeys, 22, &version, &joiner.manifest)).unwrap_err();
    assert!(matches!(err, CatchUpError::Bundle { window: 22, .. }), "{err}");
}
