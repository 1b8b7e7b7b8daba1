//! `neuron chain …`: operator commands on subtensor (finney, test) or the local dev chain. The
//! logic lives in `chain::client`; this module parses flags and prints.

use crate::wallet_cmd::WalletArgs;
use anyhow::Context;
use chain::client::{self, AdminCall, Axon, ChainAt, Client, Field};
use chain::wallet::PublicKey;
use clap::{Args, Subcommand};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Network: finney, test or local (ws://127.0.0.1:9944)
    #[arg(long, global = true, default_value = "local", env = "BT_NETWORK")]
    network: String,
    /// Node URL (ws:// or wss://); overrides --network
    #[arg(long, global = true, value_name = "URL")]
    chain_url: Option<String>,
    /// Print JSON on stdout
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ChainCommand,
}

#[derive(Debug, Subcommand)]
enum ChainCommand {
    /// Register the wallet's hotkey on a subnet (burned registration, paid by the coldkey)
    Register {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Add or remove stake (signed by the coldkey)
    #[command(subcommand)]
    Stake(StakeCommand),
    /// Publish the hotkey's commitment on a subnet (replaces it; at most 3 fields)
    Commit {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        /// A field: `0x…` hex bytes, `text:…`, or other text as UTF-8 (at most 128 bytes). Repeat for more.
        #[arg(long = "field", value_name = "VALUE", required = true)]
        fields: Vec<String>,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Every commitment on a subnet
    Commitments {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        /// Read at this block (default: the finalized head)
        #[arg(long)]
        block: Option<u64>,
    },
    /// Set weights from the wallet's hotkey: directly, or by commit-reveal when the subnet requires it
    Weights {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        /// Target uids, comma-separated
        #[arg(long, value_name = "UIDS")]
        uids: String,
        /// Weights (any u16 proportions), comma-separated, one per uid
        #[arg(long, value_name = "WEIGHTS")]
        weights: String,
        /// Version key (at least the subnet's WeightsVersionKey)
        #[arg(long, default_value_t = 0)]
        version_key: u64,
        /// With commit-reveal: how long to wait for the reveal epoch, in seconds
        #[arg(long, default_value_t = 7200)]
        reveal_timeout: u64,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// The metagraph of a subnet
    Metagraph {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        /// Read storage items instead of the runtime API
        #[arg(long)]
        storage: bool,
        /// Read at this block (default: the finalized head)
        #[arg(long)]
        block: Option<u64>,
    },
    /// Create a subnet owned by the wallet's coldkey (its hotkey becomes uid 0) and start it
    CreateSubnet {
        /// Local chains: first lift the admin freeze window and the subnet rate limit, then the
        /// weights rate limit (the coldkey must be the sudo key, e.g. //Alice)
        #[arg(long)]
        dev: bool,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Set a chain or subnet parameter through Sudo (or as the subnet owner with --owner)
    Sudo {
        /// One of: admin-freeze-window, network-rate-limit, tx-rate-limit, stake-threshold, tempo,
        /// commit-reveal, commit-reveal-interval, weights-rate-limit, weights-version-key,
        /// min-allowed-weights, max-allowed-validators, max-allowed-uids, immunity-period,
        /// activity-cutoff, serving-rate-limit, registration-allowed, min-burn, max-burn
        #[arg(long)]
        param: String,
        #[arg(long)]
        value: String,
        /// Subnet id (for subnet parameters)
        #[arg(long)]
        netuid: Option<u16>,
        /// Sign as the subnet owner instead of wrapping the call in Sudo.sudo
        #[arg(long)]
        owner: bool,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Transfer TAO from the wallet's coldkey
    Transfer {
        /// Destination SS58 address
        #[arg(long)]
        dest: String,
        /// Amount in TAO
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Free balance of an address (default: the wallet's coldkey)
    Balance {
        #[arg(long)]
        address: Option<String>,
        /// Read at this block (default: the finalized head)
        #[arg(long)]
        block: Option<u64>,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Publish the hotkey's axon endpoint
    Serve {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        #[arg(long)]
        ip: std::net::IpAddr,
        #[arg(long)]
        port: u16,
        #[command(flatten)]
        wallet: WalletArgs,
    },
}

#[derive(Debug, Subcommand)]
enum StakeCommand {
    /// Stake TAO from the coldkey to the wallet's hotkey
    Add {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        /// TAO to stake (up to 9 decimals)
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        wallet: WalletArgs,
    },
    /// Unstake alpha from the wallet's hotkey back to the coldkey
    Remove {
        /// Subnet id
        #[arg(long)]
        netuid: u16,
        /// Alpha to unstake (up to 9 decimals)
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        wallet: WalletArgs,
    },
}

fn parse_field(s: &str) -> anyhow::Result<Field> {
    let bytes = if let Some(t) = s.strip_prefix("text:") {
        t.as_bytes().to_vec()
    } else if let Some(h) = s.strip_prefix("0x") {
        hex::decode(h).with_context(|| format!("field {s:?} is not hex"))?
    } else {
        s.as_bytes().to_vec()
    };
    if bytes.len() > client::commitments::MAX_RAW {
        anyhow::bail!("a field holds at most 128 bytes; {s:?} has {}", bytes.len());
    }
    Ok(Field::Raw(bytes))
}

fn print(json: bool, value: serde_json::Value, human: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

/// The chain at `block`, or at the finalized head.
async fn chain_at(client: &Client, block: Option<u64>) -> anyhow::Result<ChainAt> {
    Ok(match block {
        Some(b) => client.at(b).await.with_context(|| format!("reading at block {b}"))?,
        None => client.at_finalized().await?,
    })
}

pub fn run(args: ChainArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(args))
}

/// One arm per subcommand, each a few lines (the longer ones are functions of their own).
async fn run_async(args: ChainArgs) -> anyhow::Result<()> {
    let target = args.chain_url.clone().unwrap_or_else(|| args.network.clone());
    let json = args.json;
    let client = Client::connect(&target).await?;
    match args.command {
        ChainCommand::Register { netuid, wallet } => {
            let w = wallet.wallet()?;
            let hotkey = w.hotkey_public()?;
            let coldkey = w.coldkey(&wallet.password())?;
            let uid = client.tx().burned_register(&coldkey, netuid, &hotkey).await?;
            print(json, serde_json::json!({"netuid": netuid, "uid": uid, "hotkey": hotkey.ss58()}), || {
                format!("registered {hotkey} on subnet {netuid} as uid {uid}")
            });
        }
        ChainCommand::Stake(cmd) => {
            stake(&client, cmd, json).await?;
        }
        ChainCommand::Commit { netuid, fields, wallet } => {
            let fields = fields.iter().map(|f| parse_field(f)).collect::<anyhow::Result<Vec<_>>>()?;
            let hotkey = wallet.wallet()?.hotkey(&wallet.password())?;
            let block = client.tx().set_commitment(&hotkey, netuid, &fields).await?;
            print(json, serde_json::json!({"netuid": netuid, "hotkey": hotkey.ss58(), "block": block}), || {
                format!("committed {} field(s) for {} on subnet {netuid} in block {block}", fields.len(), hotkey.ss58())
            });
        }
        ChainCommand::Commitments { netuid, block } => {
            show_commitments(&client, netuid, block, json).await?;
        }
        ChainCommand::Weights { netuid, uids, weights, version_key, reveal_timeout, wallet } => {
            let uids = client::weights::parse_u16_list(&uids)?;
            let weights = client::weights::parse_u16_list(&weights)?;
            let hotkey = wallet.wallet()?.hotkey(&wallet.password())?;
            let timeout = Duration::from_secs(reveal_timeout);
            let set = client.weights().set_weights_auto(&hotkey, netuid, &uids, &weights, version_key, timeout).await?;
            // The row as of the block that set it.
            let at = client.at(set.block).await?;
            let row = match at.uid_of(netuid, &hotkey.public()).await? {
                Some(uid) => at.weights(netuid, uid).await?,
                None => Vec::new(),
            };
            let v = serde_json::json!({"netuid": netuid, "result": set, "weights": row});
            print(json, v, || match set.committed_at {
                Some(c) => format!("committed in block {c}, revealed in block {}: {row:?}", set.block),
                None => format!("set in block {}: {row:?}", set.block),
            });
        }
        ChainCommand::Metagraph { netuid, storage, block } => {
            show_metagraph(&client, netuid, storage, block, json).await?;
        }
        ChainCommand::CreateSubnet { dev, wallet } => {
            create_subnet(&client, dev, wallet, json).await?;
        }
        ChainCommand::Sudo { param, value, netuid, owner, wallet } => {
            let call = AdminCall::parse(&param, netuid, &value)?;
            let coldkey = wallet.wallet()?.coldkey(&wallet.password())?;
            let tx = client.tx();
            let inc = if owner { tx.admin(call, &coldkey).await? } else { tx.sudo(call, &coldkey).await? };
            print(json, serde_json::json!({"param": param, "value": value, "block": inc.block}), || {
                format!("{param} = {value} (block {})", inc.block)
            });
        }
        ChainCommand::Transfer { dest, amount, wallet } => {
            let dest = PublicKey::parse(&dest)?;
            let rao = client::parse_tao(&amount)?;
            let coldkey = wallet.wallet()?.coldkey(&wallet.password())?;
            let inc = client.tx().transfer(&coldkey, &dest, rao).await?;
            print(json, serde_json::json!({"dest": dest.ss58(), "rao": rao, "block": inc.block}), || {
                format!("sent {} TAO to {dest} (block {})", client::format_tao(rao), inc.block)
            });
        }
        ChainCommand::Balance { address, block, wallet } => {
            let who = match address {
                Some(a) => PublicKey::parse(&a)?,
                None => wallet.wallet()?.coldkey_public()?,
            };
            let rao = chain_at(&client, block).await?.balance(&who).await?;
            print(json, serde_json::json!({"address": who.ss58(), "free": rao}), || {
                format!("{who}: {} TAO", client::format_tao(rao))
            });
        }
        ChainCommand::Serve { netuid, ip, port, wallet } => {
            let hotkey = wallet.wallet()?.hotkey(&wallet.password())?;
            let axon = Axon { ip, port, version: version_as_int(), protocol: 4 };
            client.tx().serve_axon(&hotkey, netuid, &axon).await?;
            print(json, serde_json::json!({"netuid": netuid, "ip": ip.to_string(), "port": port}), || {
                format!("serving {ip}:{port} for {} on subnet {netuid}", hotkey.ss58())
            });
        }
    }
    Ok(())
}

/// `chain stake add|remove`.
async fn stake(client: &Client, cmd: StakeCommand, json: bool) -> anyhow::Result<()> {
    let (netuid, amount, wallet, add) = match cmd {
        StakeCommand::Add { netuid, amount, wallet } => (netuid, amount, wallet, true),
        StakeCommand::Remove { netuid, amount, wallet } => (netuid, amount, wallet, false),
    };
    let rao = client::parse_tao(&amount)?;
    let w = wallet.wallet()?;
    let hotkey = w.hotkey_public()?;
    let coldkey = w.coldkey(&wallet.password())?;
    let change = if add {
        client.tx().add_stake(&coldkey, &hotkey, netuid, rao).await?
    } else {
        client.tx().remove_stake(&coldkey, &hotkey, netuid, rao).await?
    };
    let stake = client.at_finalized().await?.stake_of(&hotkey, netuid).await?;
    let v = serde_json::json!({"netuid": netuid, "hotkey": hotkey.ss58(), "change": change, "stake": stake});
    print(json, v, || {
        format!(
            "{} {} TAO / {} alpha; {hotkey} now has {} alpha on subnet {netuid}",
            if add { "staked" } else { "unstaked" },
            client::format_tao(change.tao),
            client::format_tao(change.alpha),
            client::format_tao(stake)
        )
    });
    Ok(())
}

/// `chain commitments`: commitments and the uids they belong to, at one block.
async fn show_commitments(client: &Client, netuid: u16, block: Option<u64>, json: bool) -> anyhow::Result<()> {
    // Commitments and the uids they belong to, at one block.
    let at = chain_at(client, block).await?;
    let list = at.commitments(netuid).await?;
    let mg = at.metagraph(netuid).await.ok();
    let uid = |k: &PublicKey| mg.as_ref().and_then(|m| m.uid_of(k));
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["uid"] = serde_json::json!(uid(&c.hotkey));
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else if list.is_empty() {
        println!("no commitments on subnet {netuid} at block {}", at.block());
    } else {
        for c in &list {
            let u = uid(&c.hotkey).map(|u| u.to_string()).unwrap_or_else(|| "-".into());
            let index = match c.extrinsic_index {
                client::Commitment::UNKNOWN_EXTRINSIC => "?".to_string(),
                i => i.to_string(),
            };
            println!("uid {u} {} block {} extrinsic {index}", c.hotkey, c.block);
            for f in &c.fields {
                println!("  {}", serde_json::to_string(f)?);
            }
        }
    }
    Ok(())
}

/// `chain metagraph`, from the runtime API or (`--storage`) storage, at one block.
async fn show_metagraph(
    client: &Client,
    netuid: u16,
    storage: bool,
    block: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let at = chain_at(client, block).await?;
    let mg = if storage { at.metagraph_from_storage(netuid).await? } else { at.metagraph(netuid).await? };
    if json {
        println!("{}", serde_json::to_string(&mg)?);
    } else {
        println!("subnet {netuid} at block {}: {} neurons", mg.block, mg.n());
        println!(
            "{:>4}  {:<48}  {:>16}  {:>3}  {:>10}  {:>6}  {:>6}",
            "uid", "hotkey", "stake", "vp", "updated", "incent", "divs"
        );
        for n in &mg.neurons {
            println!(
                "{:>4}  {:<48}  {:>16}  {:>3}  {:>10}  {:>6}  {:>6}",
                n.uid,
                n.hotkey.ss58(),
                client::format_tao(n.stake),
                if n.validator_permit { "yes" } else { "no" },
                n.last_update,
                n.incentive,
                n.dividends
            );
        }
    }
    Ok(())
}

/// `chain create-subnet`; `--dev` lifts the dev chain's rate limits first.
async fn create_subnet(client: &Client, dev: bool, wallet: WalletArgs, json: bool) -> anyhow::Result<()> {
    let w = wallet.wallet()?;
    let hotkey = w.hotkey_public()?;
    let coldkey = w.coldkey(&wallet.password())?;
    if dev {
        client.tx().sudo(AdminCall::AdminFreezeWindow(0), &coldkey).await?;
        client.tx().sudo(AdminCall::NetworkRateLimit(0), &coldkey).await?;
    }
    let netuid = client.tx().register_network(&coldkey, &hotkey).await?;
    client.tx().start_call(&coldkey, netuid).await?;
    if dev {
        client.tx().sudo(AdminCall::WeightsSetRateLimit { netuid, blocks: 0 }, &coldkey).await?;
    }
    print(json, serde_json::json!({"netuid": netuid, "owner_hotkey": hotkey.ss58()}), || {
        format!("created and started subnet {netuid}; owner hotkey {hotkey} is uid 0")
    });
    Ok(())
}

/// `major*1_000_000 + minor*1_000 + patch` of this build, as the bittensor SDK reports versions.
fn version_as_int() -> u32 {
    let mut parts = env!("CARGO_PKG_VERSION").split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    a * 1_000_000 + b * 1_000 + c
}
