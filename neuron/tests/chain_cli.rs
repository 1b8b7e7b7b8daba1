//! `neuron wallet` and `neuron chain` drive a full cycle on the local dev chain (started here):
//! wallets, a subnet, two registrations, a commitment read back, stake, weights through
//! commit-reveal and then directly, the metagraph; and a chain error reads as a sentence.

mod common;

use chain::devnet::{Devnet, DevnetConfig};
use serde_json::Value;
use std::process::{Command, Output};

/// The dev chain's finalized block number.
fn finalized_block(devnet: &Devnet) -> u64 {
    let hash = devnet.rpc("chain_getFinalizedHead", serde_json::json!([])).expect("chain_getFinalizedHead");
    let header = devnet.rpc("chain_getHeader", serde_json::json!([hash])).expect("chain_getHeader");
    let number = header["number"].as_str().expect("a block number");
    u64::from_str_radix(number.trim_start_matches("0x"), 16).expect("a hex block number")
}

struct Cli {
    url: String,
    wallets: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(common::neuron_binary())
            .args(args)
            .env("BT_WALLET_PATH", &self.wallets)
            .env("BT_NETWORK", &self.url)
            .env("OMP_NUM_THREADS", "1")
            .env("RUST_LOG", "warn")
            .output()
            .expect("neuron runs")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "neuron {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("neuron {args:?}: {e}: {stdout}"))
    }
}

#[test]
fn wallet_and_chain_commands_drive_a_full_cycle() {
    let devnet = Devnet::start(&DevnetConfig::for_tests()).expect("start the dev chain");
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli { url: devnet.ws_url(), wallets: dir.path().to_str().unwrap().to_string() };
    let started = std::time::Instant::now();

    // Wallets: //Alice (the dev chain's sudo and a rich account) owns the subnet; //Bob's wallet
    // holds two miner hotkeys.
    let alice = cli.json(&[
        "wallet",
        "new",
        "--wallet.name",
        "alice",
        "--wallet.hotkey",
        "owner",
        "--coldkey-uri",
        "//Alice",
        "--no-password",
        "--json",
    ]);
    assert_eq!(alice["coldkey"], "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
    let m1 = cli.json(&[
        "wallet",
        "new",
        "--wallet.name",
        "bob",
        "--wallet.hotkey",
        "m1",
        "--coldkey-uri",
        "//Bob",
        "--no-password",
        "--json",
    ]);
    let m2 = cli.json(&["wallet", "new", "--wallet.name", "bob", "--wallet.hotkey", "m2", "--json"]);
    assert_eq!(m2["created"], serde_json::json!(["hotkey"]), "the existing coldkey is kept");
    let listed = cli.json(&["wallet", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let shown = cli.json(&["wallet", "show", "--wallet.name", "bob", "--wallet.hotkey", "m2", "--json"]);
    assert_eq!(shown["hotkey"], m2["hotkey"]);

    let subnet =
        cli.json(&["chain", "create-subnet", "--dev", "--wallet.name", "alice", "--wallet.hotkey", "owner", "--json"]);
    let netuid = subnet["netuid"].as_u64().unwrap().to_string();
    let n = netuid.as_str();

    for (hk, uid) in [("m1", 1), ("m2", 2)] {
        let r =
            cli.json(&["chain", "register", "--netuid", n, "--wallet.name", "bob", "--wallet.hotkey", hk, "--json"]);
        assert_eq!(r["uid"], uid);
    }
    let again = cli.run(&["chain", "register", "--netuid", n, "--wallet.name", "bob", "--wallet.hotkey", "m1"]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("burned_register failed: HotKeyAlreadyRegisteredInSubNet: this hotkey is already registered"),
        "{stderr}"
    );

    // A commitment, read back with its uid, its block and its extrinsic's index in the block.
    let committed = cli.json(&[
        "chain",
        "commit",
        "--netuid",
        n,
        "--field",
        "text:bucket-creds",
        "--field",
        "0x0102",
        "--wallet.name",
        "bob",
        "--wallet.hotkey",
        "m1",
        "--json",
    ]);
    let commitments = cli.json(&["chain", "commitments", "--netuid", n, "--json"]);
    let mine = commitments.as_array().unwrap().iter().find(|c| c["hotkey"] == m1["hotkey"]).expect("m1's commitment");
    assert_eq!(mine["uid"], 1);
    assert_eq!(mine["fields"][0]["text"], "bucket-creds");
    assert_eq!(mine["fields"][1]["hex"], "0x0102");
    assert_eq!(mine["block"], committed["block"]);
    assert!(mine["extrinsic_index"].as_u64().unwrap() >= 1, "after the timestamp inherent: {mine}");
    // Read at the block before the commit: not there yet.
    let before = (committed["block"].as_u64().unwrap() - 1).to_string();
    let earlier = cli.json(&["chain", "commitments", "--netuid", n, "--block", &before, "--json"]);
    assert!(earlier.as_array().unwrap().iter().all(|c| c["hotkey"] != m1["hotkey"]), "{earlier}");

    // Stake shows in the metagraph.
    let staked = cli.json(&[
        "chain",
        "stake",
        "add",
        "--netuid",
        n,
        "--amount",
        "5",
        "--wallet.name",
        "bob",
        "--wallet.hotkey",
        "m1",
        "--json",
    ]);
    assert_eq!(staked["change"]["tao"], 5_000_000_000u64);

    // Weights: commit-reveal is on by default, so this commits, waits for the epoch and reveals.
    let w = cli.json(&[
        "chain",
        "weights",
        "--netuid",
        n,
        "--uids",
        "1,2",
        "--weights",
        "1,3",
        "--wallet.name",
        "alice",
        "--wallet.hotkey",
        "owner",
        "--json",
    ]);
    assert!(w["result"]["committed_at"].is_u64(), "{w}");
    assert_eq!(w["weights"], serde_json::json!([[1, 21845], [2, 65535]]));
    // Commit-reveal off (sudo), then weights are set directly and LastUpdate moves.
    cli.json(&[
        "chain",
        "sudo",
        "--param",
        "commit-reveal",
        "--value",
        "off",
        "--netuid",
        n,
        "--wallet.name",
        "alice",
        "--json",
    ]);
    let w = cli.json(&[
        "chain",
        "weights",
        "--netuid",
        n,
        "--uids",
        "1",
        "--weights",
        "9",
        "--wallet.name",
        "alice",
        "--wallet.hotkey",
        "owner",
        "--json",
    ]);
    assert!(w["result"]["committed_at"].is_null());
    let set_block = w["result"]["block"].as_u64().unwrap();

    // The runtime API and storage, both read at one block (an epoch between two reads at the head
    // would change incentives and dividends).
    let block = finalized_block(&devnet).to_string();
    let mg = cli.json(&["chain", "metagraph", "--netuid", n, "--block", &block, "--json"]);
    assert_eq!(mg["block"].as_u64().unwrap().to_string(), block);
    let neurons = mg["neurons"].as_array().unwrap();
    assert_eq!(neurons.len(), 3);
    assert_eq!(neurons[1]["hotkey"], m1["hotkey"]);
    assert_eq!(neurons[1]["coldkey"], m1["coldkey"]);
    assert!(neurons[1]["stake"].as_u64().unwrap() > 0);
    assert_eq!(neurons[0]["last_update"].as_u64().unwrap(), set_block);
    let from_storage = cli.json(&["chain", "metagraph", "--netuid", n, "--storage", "--block", &block, "--json"]);
    assert_eq!(from_storage["block"], mg["block"]);
    assert_eq!(from_storage["neurons"], mg["neurons"]);

    let human = cli.run(&["chain", "metagraph", "--netuid", n]);
    assert!(human.status.success());
    let table = String::from_utf8_lossy(&human.stdout);
    println!("{table}");
    // One row per neuron, with its hotkey.
    for neuron in neurons {
        let hotkey = neuron["hotkey"].as_str().unwrap();
        assert!(table.lines().any(|l| l.contains(hotkey)), "{hotkey} is not in the table:\n{table}");
    }
    println!("full CLI cycle in {:?}", started.elapsed());
}
