//! A whole subnet on one machine (`neuron localnet`): the dev chain, a local S3 server, wallets,
//! a subnet with registered and staked neurons, tokenized data, and miner and validator
//! processes — then a live view, an audit of every window, and a report.
//!
//! Everything binds to 127.0.0.1 and lives under one output folder; nothing leaves the machine.

pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chain::client::{AdminCall, Client};
use chain::devnet::{Devnet, DevnetConfig};
use chain::wallet::{Keypair, Wallet};
use serde::{Deserialize, Serialize};

use crate::config::NodeConfig;
use crate::storage::BucketKeys;
use crate::testkit::adversary::Adversary;
use crate::testkit::local_s3::{LocalS3, LocalS3Config};

/// How big and how long.
#[derive(Clone, Debug)]
pub struct LocalnetOptions {
    pub miners: usize,
    pub validators: usize,
    pub windows: u64,
    pub model: model::Preset,
    pub adversaries: Vec<Adversary>,
    pub keep: bool,
    pub out: PathBuf,
    pub block_ms: u64,
    pub blocks_per_window: u64,
    pub put_blocks: u64,
    pub inner_steps: usize,
    pub batch_size: usize,
    pub seq_len: usize,
    /// The `neuron` executable to run nodes with.
    pub binary: PathBuf,
}

/// What a node of the local network does; `miner`, `validator` or `adversary:<kind>` in text
/// (`nodes.json`, the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Role {
    Validator,
    Miner,
    Adversary(Adversary),
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Validator => f.write_str("validator"),
            Self::Miner => f.write_str("miner"),
            Self::Adversary(a) => write!(f, "adversary:{}", a.name()),
        }
    }
}

impl From<Role> for String {
    fn from(r: Role) -> Self {
        r.to_string()
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "validator" => Ok(Self::Validator),
            "miner" => Ok(Self::Miner),
            other => other
                .strip_prefix("adversary:")
                .and_then(Adversary::from_name)
                .map(Self::Adversary)
                .ok_or_else(|| format!("unknown role `{other}`")),
        }
    }
}

/// One process of the local network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub role: Role,
    pub uid: u16,
    pub hotkey: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub state_dir: PathBuf,
}

/// The running network.
pub struct Localnet {
    pub options: LocalnetOptions,
    pub chain: Devnet,
    pub s3: LocalS3,
    pub client: Client,
    pub netuid: u16,
    pub owner_uid: u16,
    pub nodes: Vec<NodeInfo>,
    children: Vec<(String, Child)>,
}

const TAO: u64 = 1_000_000_000;

fn write_wallet(root: &Path, name: &str) -> Result<(Keypair, Keypair)> {
    let wallet = Wallet::new(name, "default", root)?;
    let coldkey = Keypair::generate(12)?;
    let hotkey = Keypair::generate(12)?;
    wallet.write_coldkey(&coldkey, None, true)?;
    wallet.write_coldkeypub(&coldkey.public(), true)?;
    wallet.write_hotkey(&hotkey, None, true)?;
    Ok((coldkey, hotkey))
}

/// Each node's name and role: validators, then honest miners, then one miner per adversary.
fn roles(options: &LocalnetOptions) -> Vec<(String, Role)> {
    (0..options.validators)
        .map(|i| (format!("validator{i}"), Role::Validator))
        .chain((0..options.miners).map(|i| (format!("miner{i}"), Role::Miner)))
        .chain(
            options
                .adversaries
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("adversary{i}-{}", a.name()), Role::Adversary(*a))),
        )
        .collect()
}

/// The S3 server over an emptied `root`, with one bucket per node.
fn start_s3(root: &Path, keys: &[BucketKeys]) -> Result<LocalS3> {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root)?;
    let mut s3_config = LocalS3Config::new(root);
    for k in keys {
        s3_config = s3_config.with_bucket(k);
    }
    let s3 = LocalS3::start(s3_config).context("starting the local S3 server")?;
    tracing::info!(endpoint = s3.endpoint(), "local S3 up");
    Ok(s3)
}

/// Creates the subnet with the owner's wallet: a window-long tempo, no weights rate limit,
/// commit-reveal off. Returns the netuid and the owner's uid.
async fn create_subnet(client: &Client, alice: &Keypair, wallets: &Path, blocks_per_window: u64) -> Result<(u16, u16)> {
    let (owner_cold, owner_hot) = write_wallet(wallets, "owner")?;
    client.tx().transfer(alice, &owner_cold.public(), 10_000 * TAO).await?;
    let netuid = client.tx().register_network(&owner_cold, &owner_hot.public()).await?;
    client.tx().start_call(&owner_cold, netuid).await?;
    for call in [
        AdminCall::WeightsSetRateLimit { netuid, blocks: 0 },
        AdminCall::CommitRevealEnabled { netuid, enabled: false },
        AdminCall::Tempo { netuid, tempo: blocks_per_window as u16 },
        AdminCall::ActivityCutoff { netuid, blocks: 5000 },
    ] {
        client.tx().sudo(call, alice).await?;
    }
    let owner_uid =
        client.at_finalized().await?.uid_of(netuid, &owner_hot.public()).await?.context("owner is registered")?;
    tracing::info!(netuid, owner_uid, "subnet created");
    Ok((netuid, owner_uid))
}

impl Localnet {
    /// Starts the chain and the S3 server, creates and funds wallets, creates the subnet,
    /// registers and stakes the neurons, prepares data and writes each node's configuration.
    pub async fn create(options: LocalnetOptions) -> Result<Self> {
        let out = &options.out;
        std::fs::create_dir_all(out)?;
        let wallets = out.join("wallets");
        let _ = std::fs::remove_dir_all(&wallets);

        let chain = Devnet::start(&DevnetConfig { port: 0, block_ms: options.block_ms, ..DevnetConfig::default() })
            .context("starting the dev chain (run `make setup` once)")?;
        tracing::info!(url = chain.ws_url(), "dev chain up");

        // Buckets: one per node, each with its own write and read key.
        let roles = roles(&options);
        let keys: Vec<BucketKeys> = roles.iter().map(|_| BucketKeys::generate()).collect();
        let s3 = start_s3(&out.join("s3"), &keys)?;

        let client = Client::connect(&chain.ws_url()).await?;
        let alice = Keypair::from_uri("//Alice")?;
        client.tx().sudo(AdminCall::AdminFreezeWindow(0), &alice).await?;
        client.tx().sudo(AdminCall::NetworkRateLimit(0), &alice).await?;
        let (netuid, owner_uid) = create_subnet(&client, &alice, &wallets, options.blocks_per_window).await?;

        let data = out.join("data");
        if !data.join(model::data::shards::MANIFEST).exists() {
            prepare_data(&data, options.seq_len)?;
        }

        let mut nodes = Vec::with_capacity(roles.len());
        for ((name, role), bucket) in roles.iter().zip(&keys) {
            let (cold, hot) = write_wallet(&wallets, name)?;
            client.tx().transfer(&alice, &cold.public(), 1_000 * TAO).await?;
            let uid = client.tx().burned_register(&cold, netuid, &hot.public()).await?;
            if *role == Role::Validator {
                client.tx().add_stake(&cold, &hot.public(), netuid, 500 * TAO).await?;
            }
            let dir = out.join("nodes").join(name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let config =
                node_config(&options, &chain.ws_url(), netuid, &wallets, name, &s3.endpoint(), bucket, &data, &dir);
            let config_path = dir.join("config.toml");
            std::fs::write(&config_path, config.to_toml())?;
            tracing::info!(name, %role, uid, "registered");
            nodes.push(NodeInfo {
                name: name.clone(),
                role: *role,
                uid,
                hotkey: hot.ss58(),
                config: config_path,
                log: dir.join("node.log"),
                state_dir: dir.join("state"),
            });
        }
        let summary_nodes = serde_json::to_vec_pretty(&nodes)?;
        std::fs::write(out.join("nodes.json"), summary_nodes)?;
        Ok(Self { options, chain, s3, client, netuid, owner_uid, nodes, children: Vec::new() })
    }

    /// Starts every node as a child process of the `neuron` binary.
    pub fn launch(&mut self) -> Result<()> {
        for n in self.nodes.clone() {
            let child = self.spawn(&n)?;
            self.children.push((n.name, child));
        }
        Ok(())
    }

    /// Starts one node's process; its output is appended to its log.
    fn spawn(&self, n: &NodeInfo) -> Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&n.log)?;
        let mut cmd = Command::new(&self.options.binary);
        match n.role {
            Role::Validator => cmd.arg("validator"),
            Role::Miner => cmd.arg("miner"),
            Role::Adversary(kind) => cmd.arg("adversary").arg("--kind").arg(kind.name()),
        };
        cmd.arg("--config").arg(&n.config);
        cmd.env("OMP_NUM_THREADS", "1")
            .env("RUST_LOG", std::env::var("NEURON_NODE_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        cmd.spawn().with_context(|| format!("starting {}", n.name))
    }

    /// Kills node `name` with SIGKILL (no chance to save anything) and starts it again: what a
    /// power cut and a restart do.
    pub fn kill_and_restart(&mut self, name: &str) -> Result<()> {
        let node = self.nodes.iter().find(|n| n.name == name).with_context(|| format!("no node {name}"))?.clone();
        let slot =
            self.children.iter().position(|(n, _)| n == name).with_context(|| format!("{name} is not running"))?;
        let (_, mut child) = self.children.remove(slot);
        child.kill()?;
        child.wait()?;
        let child = self.spawn(&node)?;
        self.children.push((node.name, child));
        Ok(())
    }

    /// Names of nodes whose process has exited.
    pub fn exited(&mut self) -> Vec<(String, Option<i32>)> {
        self.children
            .iter_mut()
            .filter_map(|(name, c)| match c.try_wait() {
                Ok(Some(status)) => Some((name.clone(), status.code())),
                _ => None,
            })
            .collect()
    }

    /// Stops every node (SIGTERM, then SIGKILL after a grace period).
    pub fn stop_nodes(&mut self) {
        for (_, c) in &mut self.children {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for (_, c) in &mut self.children {
            while std::time::Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Localnet {
    fn drop(&mut self) {
        self.stop_nodes();
    }
}

/// Tokenizes the shipped text (Shakespeare's plays and the King James Bible) into `dir`.
fn prepare_data(dir: &Path, seq_len: usize) -> Result<()> {
    let text = model::cache_dir().join("data/text");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(text.join("shakespeare"))
        .with_context(|| format!("{} (run `make setup`)", text.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    inputs.sort();
    inputs.push(text.join("kjv.txt"));
    let tokenizer = model::data::tokenizer::TextTokenizer::load("gpt2")?;
    let m = model::data::shards::prepare(&inputs, &tokenizer, seq_len, 8192, dir)?;
    tracing::info!(samples = m.samples, tokens = m.tokens, "data prepared");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn node_config(
    o: &LocalnetOptions,
    ws_url: &str,
    netuid: u16,
    wallets: &Path,
    name: &str,
    s3_endpoint: &str,
    bucket: &BucketKeys,
    data: &Path,
    dir: &Path,
) -> NodeConfig {
    let mut c = NodeConfig::default();
    c.chain.network = ws_url.to_string();
    c.chain.netuid = netuid;
    c.wallet.name = name.to_string();
    c.wallet.hotkey = "default".into();
    c.wallet.path = Some(wallets.to_path_buf());
    c.storage.endpoint = s3_endpoint.to_string();
    c.storage.account_id = bucket.account_id.clone();
    c.storage.write_key_id = bucket.write.id.clone();
    c.storage.write_secret = bucket.write.secret.clone();
    c.storage.read_key_id = bucket.read.id.clone();
    c.storage.read_secret = bucket.read.secret.clone();
    c.protocol.blocks_per_window = o.blocks_per_window;
    c.protocol.put_blocks = o.put_blocks;
    c.protocol.gather_timeout_s = 30;
    c.protocol.checkpoint_frequency = 5;
    // Every window of the run stays in the buckets for the final audit.
    c.protocol.keep_windows = c.protocol.keep_windows.max(o.windows + 4);
    c.model.preset = o.model;
    c.model.data = data.to_path_buf();
    c.model.device = crate::config::DeviceChoice::Cpu;
    c.model.state_dir = dir.join("state");
    c.train.inner_steps = o.inner_steps;
    c.train.batch_size = o.batch_size;
    c.train.micro_batch_size = o.batch_size;
    // The miner trains on its whole pool, so "own" evaluation samples are ones it trained on: a
    // run of a few windows needs that clear a signal (in production 1 in 5 is).
    c.train.pool_size = (o.inner_steps * o.batch_size) as u64;
    c.train.learning_rate = 2e-3;
    c.train.warmup_steps = 10;
    c.train.total_steps = 2000;
    c.validator.eval_batches = 2;
    c.validator.eval_batch_size = o.batch_size;
    c.validator.validator_stake_threshold = 100 * TAO;
    // A short run: the rules that wait for history in production start early here.
    c.gauntlet.bma_warmup_windows = 2;
    // Not from the very first outer step: in the first window every miner starts from the same
    // weights, and an update of one inner step at the warm-up's near-zero learning rate is a
    // uniform sign pattern whose top-k indices are the same for everyone.
    c.gauntlet.copycat_start_global_step = 2;
    // The own-data test controlled by the window's consensus update (weights/README.md): a run
    // of a few windows cannot wait for templar's coin-flip test to average out.
    c.gauntlet.own_data_margin = Some(0.01);
    c
}

/// Waits until the chain reaches `block`, failing after `timeout`.
pub async fn wait_for_block(client: &Client, block: u64, timeout: Duration) -> Result<u64> {
    Ok(client.wait_for_block(block, timeout).await?)
}

/// Refuses an output folder that is not ours to clear.
pub fn check_out_dir(out: &Path) -> Result<()> {
    if out.exists() && std::fs::read_dir(out)?.next().is_some() && !out.join("nodes.json").exists() {
        bail!("{} is not empty and is not a localnet folder; choose another --out", out.display());
    }
    Ok(())
}
