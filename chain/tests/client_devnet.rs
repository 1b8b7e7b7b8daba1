//! The client against the local dev chain (started here, one chain per test): a subnet is made the
//! way subtensor's localnet tests make one, two hotkeys register, commit, read back, set weights
//! (directly and through commit-reveal v2) and the metagraph reflects stake. Errors from the chain
//! must read as sentences.

use chain::client::{calls, AdminCall, Axon, ChainAt, ChainError, Client, Commitment, Field, RAO_PER_TAO};
use chain::devnet::{Devnet, DevnetConfig};
use chain::wallet::Keypair;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio")
}

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev key")
}

/// The chain at the finalized head.
async fn head(client: &Client) -> ChainAt {
    client.at_finalized().await.expect("the finalized head")
}

/// A subnet owned by //Alice with a fresh owner hotkey (uid 0), started, with the local settings of
/// subtensor's e2e tests.
async fn make_subnet(client: &Client, alice: &Keypair, owner_hot: &Keypair) -> u16 {
    client.tx().sudo(AdminCall::AdminFreezeWindow(0), alice).await.expect("freeze window 0");
    client.tx().sudo(AdminCall::NetworkRateLimit(0), alice).await.expect("network rate limit 0");
    let netuid = client.tx().register_network(alice, &owner_hot.public()).await.expect("register_network");
    client.tx().start_call(alice, netuid).await.expect("start_call");
    client.tx().sudo(AdminCall::WeightsSetRateLimit { netuid, blocks: 0 }, alice).await.expect("weights rate limit 0");
    netuid
}

#[test]
fn register_commit_weights_and_metagraph_on_the_dev_chain() {
    let started = Instant::now();
    let devnet = Devnet::start(&DevnetConfig::for_tests()).expect("start the dev chain");
    runtime().block_on(async {
        let client = Client::connect(&devnet.ws_url()).await.expect("connect");
        let (alice, bob) = (key("//Alice"), key("//Bob"));
        let owner_hot = Keypair::generate(12).unwrap();
        let (hk1, hk2) = (Keypair::generate(12).unwrap(), Keypair::generate(12).unwrap());

        let netuid = make_subnet(&client, &alice, &owner_hot).await;
        assert!(head(&client).await.subnet_exists(netuid).await.unwrap());
        assert_eq!(head(&client).await.uid_of(netuid, &owner_hot.public()).await.unwrap(), Some(0));
        // The owner's hotkey as validators read it to burn to (weights: `owner_uid`).
        assert_eq!(head(&client).await.subnet_owner_hotkey(netuid).await.unwrap(), Some(owner_hot.public()));

        // Two hotkeys register, paid by two coldkeys.
        let burn = head(&client).await.burn(netuid).await.unwrap();
        let before = head(&client).await.balance(&bob.public()).await.unwrap();
        let uid1 = client.tx().burned_register(&bob, netuid, &hk1.public()).await.expect("register hk1");
        let uid2 = client.tx().burned_register(&alice, netuid, &hk2.public()).await.expect("register hk2");
        assert_eq!((uid1, uid2), (1, 2));
        assert!(before - head(&client).await.balance(&bob.public()).await.unwrap() >= burn, "bob paid the burn");
        let again = client.tx().burned_register(&bob, netuid, &hk1.public()).await.unwrap_err();
        assert_eq!(again.dispatch_error_name(), Some("HotKeyAlreadyRegisteredInSubNet"), "{again}");
        assert!(again.to_string().contains("already registered"), "{again}");

        // Commitments signed by the (zero-balance) hotkeys, read back.
        let creds: Vec<u8> = [b'A'; 32].iter().chain(&[b'k'; 32]).chain(&[b's'; 64]).copied().collect();
        let window_hash =
            protocol::commitment::WindowHash { window: protocol::Window(5), hash: protocol::Hash32([7; 32]) };
        let window = Field::Raw(window_hash.to_bytes().to_vec());
        // Through `submit`, to learn the extrinsic's index in its block.
        let call = calls::set_commitment(netuid, &[Field::Raw(creds.clone()), window.clone()]).unwrap();
        let included = client.tx().submit(&call, &hk1).await.expect("commit");
        let block = included.block;
        let index = u32::try_from(included.events.extrinsic_index()).unwrap();
        assert!(index >= 1, "the timestamp inherent comes first");
        client.tx().set_commitment(&hk2, netuid, &[Field::Raw(b"hk2".to_vec())]).await.expect("commit hk2");
        let at = head(&client).await;
        let all = at.commitments(netuid).await.expect("read commitments");
        assert_eq!(all.len(), 2);
        let mine = all.iter().find(|c| c.hotkey == hk1.public()).expect("hk1's commitment");
        assert_eq!(mine.fields, vec![Field::Raw(creds), window]);
        assert_eq!((mine.block, mine.extrinsic_index), (block, index));
        let theirs = at.commitment(netuid, &hk2.public()).await.unwrap().expect("hk2's commitment");
        assert_eq!(theirs.fields, vec![Field::Raw(b"hk2".to_vec())]);
        assert_ne!(theirs.extrinsic_index, Commitment::UNKNOWN_EXTRINSIC);
        assert_eq!(all.iter().find(|c| c.hotkey == hk2.public()), Some(&theirs));
        assert!(at.commitment(netuid, &owner_hot.public()).await.unwrap().is_none());
        // Reads at a block: before hk1's commit there was none; at its block, the same as now.
        let before = client.at(block - 1).await.expect("the block before");
        assert_eq!(before.block(), block - 1);
        assert!(before.commitment(netuid, &hk1.public()).await.unwrap().is_none());
        let then = client.at(block).await.expect("the commit's block");
        assert_eq!(then.hash(), client.block_hash(block).await.unwrap());
        assert_eq!(then.commitment(netuid, &hk1.public()).await.unwrap().as_ref(), Some(mine));
        // An unregistered hotkey (funded, so that the call is dispatched) may not commit.
        let stranger = Keypair::generate(12).unwrap();
        client.tx().transfer(&alice, &stranger.public(), RAO_PER_TAO).await.expect("fund the stranger");
        let refused = client.tx().set_commitment(&stranger, netuid, &[Field::None]).await.unwrap_err();
        println!("unregistered commit: {refused}");
        assert_eq!(refused.dispatch_error_name(), Some("AccountNotAllowedCommit"), "{refused}");

        // Stake shows in the metagraph (runtime API and storage agree).
        let staked = client.tx().add_stake(&bob, &hk1.public(), netuid, 10 * RAO_PER_TAO).await.expect("add_stake");
        assert_eq!(staked.tao, 10 * RAO_PER_TAO);
        let alpha = head(&client).await.stake_of(&hk1.public(), netuid).await.unwrap();
        assert!(alpha > 0);
        let mg = head(&client).await.metagraph(netuid).await.expect("metagraph");
        assert_eq!(mg.source, chain::client::metagraph::Source::RuntimeApi);
        assert_eq!(mg.n(), 3);
        assert_eq!(mg.neurons[1].hotkey, hk1.public());
        assert_eq!(mg.neurons[1].coldkey, bob.public());
        assert_eq!(mg.neurons[1].stake, alpha);
        assert_eq!(mg.neurons[2].coldkey, alice.public());
        // Both reads at one block, so that no epoch can fall between them.
        let at = head(&client).await;
        let from_storage = at.metagraph_from_storage(netuid).await.expect("metagraph from storage");
        assert_eq!(from_storage.block, at.block());
        assert_eq!(from_storage.neurons, at.metagraph(netuid).await.unwrap().neurons);
        let removed = client.tx().remove_stake(&bob, &hk1.public(), netuid, alpha / 2).await.expect("remove_stake");
        assert_eq!(removed.alpha, alpha / 2);

        // Axon.
        let axon = Axon { ip: "10.0.0.5".parse().unwrap(), port: 8091, version: 1, protocol: 4 };
        client.tx().serve_axon(&hk1, netuid, &axon).await.expect("serve_axon");

        // Weights: commit-reveal is on by default, so a plain set_weights is refused in words.
        assert!(head(&client).await.commit_reveal_enabled(netuid).await.unwrap());
        let refused = client.weights().set_weights(&owner_hot, netuid, &[1, 2], &[1, 1], 0).await.unwrap_err();
        assert_eq!(refused.to_string(), "set_weights failed: CommitRevealEnabled: this subnet requires commit-reveal");

        // Commit-reveal v2 with a reveal period of two epochs (so that an epoch boundary between
        // the commit and the early reveal cannot make it due): commit, a reveal that is too
        // early, then the reveal in exactly the commit's reveal epoch.
        client.tx().sudo(AdminCall::CommitRevealInterval { netuid, epochs: 2 }, &alice).await.expect("reveal period 2");
        let pending = client
            .weights()
            .commit_weights(&owner_hot, netuid, &[1, 2], &[65535, 100], 0)
            .await
            .expect("commit_weights");
        let reveal_epoch = head(&client)
            .await
            .reveal_epoch(netuid, &owner_hot.public(), &pending.hash)
            .await
            .unwrap()
            .expect("the commit's epoch");
        let now = head(&client).await.epoch_index(netuid).await.unwrap().expect("SubnetEpochIndex");
        assert!(reveal_epoch > now && reveal_epoch <= now + 2, "reveal epoch {reveal_epoch}, now {now}");
        let early = client.weights().reveal_weights(&owner_hot, &pending).await.unwrap_err();
        assert_eq!(early.dispatch_error_name(), Some("RevealTooEarly"), "{early}");
        client.weights().reveal_when_due(&owner_hot, &pending, Duration::from_secs(120)).await.expect("reveal_weights");
        assert_eq!(head(&client).await.epoch_index(netuid).await.unwrap(), Some(reveal_epoch));
        assert_eq!(head(&client).await.weights(netuid, 0).await.unwrap(), vec![(1, 65535), (2, 100)]);

        // Plain set_weights once commit-reveal is off: Weights and LastUpdate change.
        client.tx().sudo(AdminCall::CommitRevealEnabled { netuid, enabled: false }, &alice).await.expect("CR off");
        let last_before = head(&client).await.last_update(netuid).await.unwrap();
        let set_at = client.weights().set_weights(&owner_hot, netuid, &[1, 2], &[1, 2], 0).await.expect("set_weights");
        assert_eq!(head(&client).await.weights(netuid, 0).await.unwrap(), vec![(1, 32768), (2, 65535)]);
        let last_after = head(&client).await.last_update(netuid).await.unwrap();
        assert_eq!(last_after[0], set_at, "LastUpdate of uid 0 is the block of set_weights");
        assert!(last_after[0] > last_before[0]);
        let mg = head(&client).await.metagraph(netuid).await.unwrap();
        assert_eq!(mg.neurons[0].last_update, set_at);

        // A non-validator's weights to others are refused in words.
        let no_permit = client.weights().set_weights(&hk2, netuid, &[0, 1], &[1, 1], 0).await.unwrap_err();
        println!("hk2 set_weights: {no_permit}");
        assert_eq!(no_permit.dispatch_error_name(), Some("NeuronNoValidatorPermit"), "{no_permit}");

        // Sudo by a non-sudo key.
        let not_sudo = client.tx().sudo(AdminCall::Tempo { netuid, tempo: 20 }, &bob).await.unwrap_err();
        assert_eq!(not_sudo.dispatch_error_name(), Some("RequireSudo"), "{not_sudo}");
    });
    println!("full cycle in {:?}", started.elapsed());
}

#[test]
fn block_clock_follows_finalized_heads_and_the_client_survives_a_restart() {
    let cfg = DevnetConfig::for_tests();
    let mut devnet = Devnet::start(&cfg).expect("start");
    let port = devnet.addr().port();
    runtime().block_on(async {
        let opts = chain::client::ClientOptions {
            request_timeout: Duration::from_secs(5),
            read_retries: 1,
            ..Default::default()
        };
        let client = Client::connect_with(&devnet.ws_url(), opts).await.expect("connect");
        assert!(client.chain_name().await.unwrap().starts_with("covenant"));
        let mut clock = client.clock().await.expect("clock");
        let start = clock.block();
        let reached = tokio::time::timeout(Duration::from_secs(30), clock.wait_for_block(start + 4))
            .await
            .expect("4 blocks within 30 s")
            .unwrap();
        assert!(reached >= start + 4);
        // (Window arithmetic is the protocol crate's, tested there.)

        // Stop the chain and start a new one on the same port: reads recover by reconnecting.
        devnet.stop();
        let down = client.finalized_block().await;
        println!("while down: {down:?}");
        assert!(down.is_err(), "read a block from a stopped chain");
        let cfg2 = DevnetConfig { port, ..cfg.clone() };
        let _devnet2 = Devnet::start(&cfg2).expect("restart on the same port");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match client.finalized_block().await {
                Ok(b) => {
                    println!("reconnected at block {b}");
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "no reconnect within 60 s: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        // Transactions work on the new connection too.
        client
            .tx()
            .transfer(&key("//Alice"), &key("//Bob").public(), RAO_PER_TAO)
            .await
            .expect("transfer after reconnect");
    });
}

#[test]
fn connecting_to_nothing_fails_in_words() {
    let rt = runtime();
    let opts = chain::client::ClientOptions { connect_timeout: Duration::from_secs(2), ..Default::default() };
    let err = rt.block_on(Client::connect_with("ws://127.0.0.1:1", opts)).unwrap_err();
    assert!(matches!(err, ChainError::Connect { .. }), "{err:?}");
    assert!(err.to_string().starts_with("could not connect to ws://127.0.0.1:1"), "{err}");
    assert!(matches!(rt.block_on(Client::connect("nowhere")), Err(ChainError::UnknownNetwork(_))));
}
