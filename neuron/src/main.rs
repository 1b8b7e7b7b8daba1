//! `neuron`: the one binary of covenant-rs.
//!
//! Subcommands: `miner` and `validator` (the protocol), `codec` (inspect, encode, decode and
//! aggregate SparseLoCo payloads), `data` and `train` (tokenized data, model training), `wallet`
//! and `chain` (keys and chain operations); with the `testkit` feature, `localnet` (a local
//! subnet on this machine) and the hidden `adversary` (a dishonest miner for it).

mod audit_cmd;
mod chain_cmd;
mod codec_cmd;
mod cuda;
use neuron::fsutil;
#[cfg(feature = "testkit")]
mod localnet;
mod node_cmd;
mod train_cmd;
mod wallet_cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "neuron",
    version,
    about = "covenant-rs: trustless decentralized pre-training (SparseLoCo + Gauntlet)"
)]
struct Cli {
    /// Log filter, as RUST_LOG (e.g. `info`, `neuron=debug`).
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    log: String,
    /// Log format on stderr: human-readable `text` or `json` lines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encode, decode, aggregate and inspect SparseLoCo payloads (safetensors in and out).
    #[command(subcommand)]
    Codec(codec_cmd::CodecCommand),
    /// Prepare tokenized training data; show sample pools.
    #[command(subcommand)]
    Data(train_cmd::DataCommand),
    /// Train a model on prepared data (hardware and stack check: loss, tokens/s).
    Train(train_cmd::TrainArgs),
    /// Train and earn: the miner's window loop (PROTOCOL.md §2).
    Miner(node_cmd::NodeArgs),
    /// Score miners with the Gauntlet and set weights (PROTOCOL.md §6).
    Validator(node_cmd::NodeArgs),
    /// Verify every committed payload of a window from public data (chain + buckets).
    Audit(audit_cmd::AuditArgs),
    /// Run a local network: dev chain, local S3, miners and validators (testkit builds).
    #[cfg(feature = "testkit")]
    Localnet(localnet::LocalnetArgs),
    /// A dishonest miner for local networks and tests (testkit builds).
    #[cfg(feature = "testkit")]
    #[command(hide = true)]
    Adversary(node_cmd::AdversaryArgs),
    /// Bittensor wallets (coldkeys and hotkeys, btcli's file format).
    #[command(subcommand)]
    Wallet(wallet_cmd::WalletCommand),
    /// Operate on subtensor or the dev chain: register, stake, commit, weights, metagraph, ….
    Chain(chain_cmd::ChainArgs),
}

fn main() -> anyhow::Result<()> {
    // Must run before libtorch is first touched: see `cuda::load`.
    cuda::load();
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    match cli.command {
        Command::Codec(cmd) => codec_cmd::run(cmd),
        Command::Data(cmd) => train_cmd::run_data(cmd),
        Command::Train(args) => train_cmd::run_train(args),
        Command::Miner(args) => node_cmd::run_miner(args),
        Command::Validator(args) => node_cmd::run_validator(args),
        Command::Audit(args) => audit_cmd::run(args),
        #[cfg(feature = "testkit")]
        Command::Localnet(args) => localnet::run(args),
        #[cfg(feature = "testkit")]
        Command::Adversary(args) => node_cmd::run_adversary(args),
        Command::Wallet(cmd) => wallet_cmd::run(cmd),
        Command::Chain(args) => chain_cmd::run(args),
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if matches!(format, LogFormat::Json) {
        builder.json().init();
    } else {
        builder.init();
    }
}
