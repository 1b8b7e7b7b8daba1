//! `neuron`: the one binary of covenant-rs.
//!
//! Subcommands: `codec` (inspect, encode, decode and aggregate SparseLoCo payloads) and `localnet`
//! (a local subnet on this machine). Miner, validator, audit, wallet and chain commands follow.

mod codec_cmd;
mod cuda;
mod fsutil;
mod localnet;

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
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encode, decode, aggregate and inspect SparseLoCo payloads (safetensors in and out).
    #[command(subcommand)]
    Codec(codec_cmd::CodecCommand),
    /// Run a local network: dev chain, local S3, miners and validators.
    #[command(subcommand)]
    Localnet(localnet::LocalnetCommand),
}

fn main() -> anyhow::Result<()> {
    // Must run before libtorch is first touched: see `cuda::load`.
    cuda::load();
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_json);
    match cli.command {
        Command::Codec(cmd) => codec_cmd::run(cmd),
        Command::Localnet(cmd) => localnet::run(cmd),
    }
}

fn init_tracing(filter: &str, json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
