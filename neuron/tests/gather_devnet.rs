//! Gradient exchange end to end on the real dev chain (started here) and the in-process S3 server:
//! thirteen registered peers publish for one window — honestly or in one of the ways a payload must
//! be refused — and one gather accepts exactly the honest ones, with a typed reason for each other
//! peer. Then the same gather with the S3 server down at first and back a moment later, and a
//! miner refusing to upload a stale window.
//!
//! The window clock is in blocks: the test picks `blocks_per_window` so that window 0's put window
//! opens a few blocks after setup, and judges every commitment by its inclusion block.

mod common;

use chain::client::{AdminCall, Client};
use chain::devnet::{Devnet, DevnetConfig};
use chain::wallet::Keypair;
use common::{header, payload_bytes, runtime, small_manifest};
use compression::signature;
use compression::wire;
use neuron::storage::{
    commitment_fields, sign_payload, BucketCredentials, BucketKeys, CommitProblem, CommitmentError, Endpoint, Fault,
    GatherOptions, Gatherer, ObjectKey, PublishError, Publisher, Rejection, StorageError, Version, WindowTiming,
    WindowView, S3,
};
use neuron::testkit::local_s3::{LocalS3, LocalS3Config};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What each peer does for window 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Honest,
    /// Commits the right hash, after the put window closed.
    Late,
    /// Commits the hash for window 0 before window 0 is over.
    Early,
    /// Commits the hash of other bytes than it uploads.
    WrongHash,
    /// Uploads a payload signed by another key (hash committed).
    BadSignature,
    /// Uploads far more than the model allows (hash committed).
    Oversized,
    /// Commits the whole payload's hash, uploads a truncated copy.
    Truncated,
    /// Signs and commits a payload cut short (it verifies, it does not decode).
    Undecodable,
    /// Commits read credentials that do not work.
    WrongCredentials,
    /// Commits only its credentials, no window hash.
    NoWindowHash,
    /// Re-sends a payload made for another window (signed and committed).
    Replay,
    /// Commits a hash and uploads nothing.
    NotUploaded,
}

use Role::*;

const ROLES: [Role; 13] = [
    Honest,
    Late,
    Early,
    WrongHash,
    BadSignature,
    Oversized,
    Truncated,
    Undecodable,
    WrongCredentials,
    NoWindowHash,
    Replay,
    NotUploaded,
    Honest,
];

struct PeerSetup {
    role: Role,
    uid: u16,
    hotkey: Keypair,
    keys: BucketKeys,
}

async fn make_subnet(client: &Client, alice: &Keypair, owner_hot: &Keypair) -> u16 {
    client.tx().sudo(AdminCall::AdminFreezeWindow(0), alice).await.expect("freeze window 0");
    client.tx().sudo(AdminCall::NetworkRateLimit(0), alice).await.expect("network rate limit 0");
    let netuid = client.tx().register_network(alice, &owner_hot.public()).await.expect("register_network");
    client.tx().start_call(alice, netuid).await.expect("start_call");
    netuid
}

#[test]
fn gather_accepts_only_payloads_committed_on_time_that_hash_verify_and_decode() {
    let devnet = Devnet::start(&DevnetConfig::for_tests()).expect("start the dev chain");
    let s3_dir = tempfile::tempdir().unwrap();
    let manifest = Arc::new(small_manifest());
    let limit = wire::max_payload_len(&manifest);
    let rt = runtime();

    let client = rt.block_on(Client::connect(&devnet.ws_url())).expect("connect");
    let alice = Keypair::from_uri("//Alice").unwrap();
    let owner_hot = Keypair::generate(12).unwrap();
    let netuid = rt.block_on(make_subnet(&client, &alice, &owner_hot));

    // Peers: a hotkey and a bucket each, on one local S3 server.
    let mut peers = Vec::new();
    let mut s3_cfg = LocalS3Config::new(s3_dir.path());
    for role in ROLES {
        let hotkey = Keypair::generate(12).unwrap();
        let uid = rt.block_on(client.tx().burned_register(&alice, netuid, &hotkey.public())).expect("register");
        let keys = BucketKeys::generate();
        s3_cfg = s3_cfg.with_bucket(&keys);
        peers.push(PeerSetup { role, uid, hotkey, keys });
    }
    let server = LocalS3::start(s3_cfg.clone()).expect("local S3");
    let s3_addr = server.addr();
    let endpoint = Endpoint::url(server.endpoint());
    let s3 = S3::default();
    for p in &peers {
        rt.block_on(s3.writer(&endpoint, &p.keys).create()).expect("create bucket");
    }

    // Window 0 ends 20 blocks from now; its put window is 60 blocks (15 s at 250 ms).
    let b0 = rt.block_on(client.finalized_block()).unwrap();
    let timing = WindowTiming { blocks_per_window: b0 + 20, put_blocks: 60 };
    let put = timing.put_window(protocol::Window(0));
    let (opens, closes) = (put.opens.0, put.closes.0);
    println!("block {b0}: window 0's put window is [{opens}, {closes}]");

    // What every peer uploads and commits.
    let published: Vec<BucketCredentials> = peers.iter().map(|p| p.keys.published().unwrap()).collect();
    let object_for = |p: &PeerSetup, window: u64| {
        payload_bytes(&manifest, header(&manifest, netuid, p.uid, window, p.hotkey.public().0), u64::from(p.uid))
    };
    let signed = |p: &PeerSetup, window: u64| {
        let mut o = object_for(p, window);
        sign_payload(&mut o, &p.hotkey).unwrap();
        o
    };
    let commit = |p: &PeerSetup, creds: &BucketCredentials, hash: Option<[u8; 32]>| {
        let fields = commitment_fields(creds, hash.map(|h| (0, h)));
        rt.block_on(client.tx().set_commitment(&p.hotkey, netuid, &fields)).expect("set_commitment")
    };
    let put = |p: &PeerSetup, bytes: Vec<u8>| {
        rt.block_on(s3.writer(&endpoint, &p.keys).put_object(&ObjectKey::gradient(0, p.uid), bytes.into()))
            .expect("upload")
    };

    // Before the window is over: everyone publishes credentials; the early peer also commits a hash.
    for (p, creds) in peers.iter().zip(&published) {
        if p.role == Early {
            let o = signed(p, 0);
            put(p, o.clone());
            let block = commit(p, creds, Some(signature::content_hash(&o)));
            assert!(block < opens, "the early commit landed at {block}, not before {opens}");
        } else {
            commit(p, creds, None);
        }
    }
    rt.block_on(client.wait_for_block(opens, Duration::from_secs(120))).expect("window 0 ends");

    // Inside the put window.
    let mut expected_hash = BTreeMap::new();
    for (p, creds) in peers.iter().zip(&published) {
        match p.role {
            Honest => {
                let bucket = s3.writer(&endpoint, &p.keys);
                let publisher = Publisher {
                    chain: &client,
                    hotkey: &p.hotkey,
                    netuid,
                    uid: p.uid,
                    bucket: &bucket,
                    credentials: creds,
                    timing,
                    version: Version::current(),
                };
                let out = rt.block_on(publisher.publish_gradient(0, object_for(p, 0))).expect("publish");
                assert!(out.commit_block >= opens && out.commit_block <= closes);
                expected_hash.insert(p.uid, out.hash);
            }
            WrongHash => {
                put(p, signed(p, 0));
                commit(p, creds, Some(signature::content_hash(b"something else")));
            }
            BadSignature => {
                let mut o = object_for(p, 0);
                sign_payload(&mut o, &Keypair::generate(12).unwrap()).unwrap();
                put(p, o.clone());
                commit(p, creds, Some(signature::content_hash(&o)));
            }
            Oversized => {
                let junk = common::noise(limit * 4, 9);
                put(p, junk.clone());
                commit(p, creds, Some(signature::content_hash(&junk)));
            }
            Truncated => {
                let o = signed(p, 0);
                put(p, o[..o.len() / 2].to_vec());
                commit(p, creds, Some(signature::content_hash(&o)));
            }
            Undecodable => {
                let mut o = object_for(p, 0);
                o.truncate(o.len() - 100);
                sign_payload(&mut o, &p.hotkey).unwrap();
                put(p, o.clone());
                commit(p, creds, Some(signature::content_hash(&o)));
            }
            WrongCredentials => {
                let o = signed(p, 0);
                put(p, o.clone());
                let wrong = neuron::storage::AccessKey::new(p.keys.read.id.clone(), "0".repeat(64));
                let bad = BucketCredentials::new(p.keys.account_id.clone(), wrong).unwrap();
                commit(p, &bad, Some(signature::content_hash(&o)));
            }
            Replay => {
                let o = signed(p, 7);
                put(p, o.clone());
                commit(p, creds, Some(signature::content_hash(&o)));
            }
            NotUploaded => {
                commit(p, creds, Some(signature::content_hash(&signed(p, 0))));
            }
            Late | Early | NoWindowHash => {}
        }
    }

    // After the put window: the late peer, and a miner refusing to upload a stale window.
    rt.block_on(client.wait_for_block(closes + 1, Duration::from_secs(120))).expect("put window closes");
    for (p, creds) in peers.iter().zip(&published) {
        if p.role == Late {
            let o = signed(p, 0);
            put(p, o.clone());
            let block = commit(p, creds, Some(signature::content_hash(&o)));
            assert!(block > closes);
        }
        if p.role == NoWindowHash {
            let bucket = s3.writer(&endpoint, &p.keys);
            let publisher = Publisher {
                chain: &client,
                hotkey: &p.hotkey,
                netuid,
                uid: p.uid,
                bucket: &bucket,
                credentials: creds,
                timing,
                version: Version::current(),
            };
            let refused = rt.block_on(publisher.publish_gradient(0, object_for(p, 0))).unwrap_err();
            assert!(matches!(refused, PublishError::Stale { window: 0, .. }), "{refused}");
            println!("stale window: {refused}");
            let head = rt.block_on(bucket.head(&ObjectKey::gradient(0, p.uid).to_string()));
            assert!(head.unwrap_err().is_not_found(), "a stale window was uploaded");
        }
    }

    // The validator's view of window 0, and the gather.
    let view = rt.block_on(WindowView::read(&client, netuid, 0, timing)).expect("read window 0's commitments");
    let gatherer = Gatherer::new(S3::default(), endpoint.clone());
    let mut list: Vec<u16> = peers.iter().map(|p| p.uid).collect();
    list.insert(0, 0); // the subnet owner's hotkey: registered, never committed
    list.push(999); // not a uid
    let opts = GatherOptions { concurrency: 4, keep_bytes: true, ..GatherOptions::default() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let got = rt.block_on(gatherer.gather(netuid, &view, &list, &manifest, deadline, &opts));
    for (uid, why) in &got.rejected {
        println!("uid {uid:>3}: {why}");
    }

    let accepted: Vec<u16> = got.accepted.iter().map(|a| a.uid).collect();
    let honest: Vec<u16> = peers.iter().filter(|p| p.role == Honest).map(|p| p.uid).collect();
    assert_eq!(accepted, honest);
    for a in &got.accepted {
        assert_eq!(a.payload.header.uid, a.uid);
        assert_eq!(Some(a.hash), expected_hash.get(&a.uid).copied());
        assert_eq!(signature::content_hash(a.bytes.as_ref().unwrap()), a.hash);
        assert!(a.commit_block >= opens && a.commit_block <= closes);
    }
    assert_eq!(got.rejected.len(), list.len() - honest.len());
    assert!(matches!(got.rejected[&0], Rejection::Commit(CommitProblem::Commitment(CommitmentError::Missing))));
    assert!(matches!(got.rejected[&999], Rejection::Commit(CommitProblem::UnknownUid(999))));
    for p in &peers {
        let why = got.rejected.get(&p.uid);
        let ok = match p.role {
            Honest => why.is_none(),
            Late => matches!(why, Some(Rejection::Commit(CommitProblem::Late { window: 0, .. }))),
            Early => matches!(why, Some(Rejection::Commit(CommitProblem::Early { window: 0, .. }))),
            WrongHash | Truncated => matches!(why, Some(Rejection::HashMismatch { .. })),
            BadSignature => matches!(why, Some(Rejection::Signature(signature::SignatureError::Mismatch(_)))),
            Oversized => {
                matches!(why, Some(Rejection::TooLarge(StorageError::TooLarge { size, .. })) if *size == (limit * 4) as u64)
            }
            Undecodable => matches!(why, Some(Rejection::Decode(_))),
            WrongCredentials => matches!(why, Some(Rejection::Storage(StorageError::AccessDenied { .. }))),
            NoWindowHash => matches!(why, Some(Rejection::Commit(CommitProblem::NotCommitted { window: 0, .. }))),
            Replay => matches!(why, Some(Rejection::Header(h)) if h.field == protocol::HeaderField::Window),
            NotUploaded => matches!(why, Some(Rejection::NotUploaded { .. })),
        };
        assert!(ok, "uid {} ({:?}): {:?}", p.uid, p.role, why);
        let fault = why.map(Rejection::fault);
        let expected_fault = match p.role {
            Honest => None,
            Late | NoWindowHash | NotUploaded | WrongCredentials => Some(Fault::Missing),
            _ => Some(Fault::Invalid),
        };
        assert_eq!(fault, expected_fault, "uid {} ({:?})", p.uid, p.role);
    }
    println!("gathered {} of {} in {:?} ({} bytes)", got.accepted.len(), list.len(), got.stats.wall, got.stats.bytes);

    // The bucket goes down, the gather starts, the bucket comes back: retried until accepted.
    server.stop();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        LocalS3::start(s3_cfg.with_addr(s3_addr)).expect("restart the local S3 on its port")
    });
    let fresh = Gatherer::new(S3::default(), endpoint);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let again = rt.block_on(fresh.gather(netuid, &view, &honest, &manifest, deadline, &GatherOptions::default()));
    let _server = restarter.join().unwrap();
    assert_eq!(again.accepted.iter().map(|a| a.uid).collect::<Vec<_>>(), honest, "{:?}", again.rejected);
}
