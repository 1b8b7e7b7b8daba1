//! `neuron miner` and `neuron validator`: flags, configuration, metrics, Ctrl-C.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use neuron::config::NodeConfig;
use neuron::metrics::Metrics;

/// Flags shared by the miner and the validator. Every setting lives in the configuration
/// (`--print-config` shows them all); the flags here are shortcuts for the usual ones.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// TOML configuration file.
    #[arg(long, env = "NEURON_CONFIG")]
    config: Option<PathBuf>,
    /// Override a setting: `--set train.inner_steps=4` (repeatable; after file and environment;
    /// the flags below come last).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    overrides: Vec<String>,
    /// Chain: `finney`, `test`, `local` or a ws:// URL.
    #[arg(long, alias = "subtensor.network")]
    network: Option<String>,
    #[arg(long)]
    netuid: Option<u16>,
    #[arg(long = "wallet.name")]
    wallet_name: Option<String>,
    #[arg(long = "wallet.hotkey")]
    wallet_hotkey: Option<String>,
    #[arg(long = "wallet.path")]
    wallet_path: Option<PathBuf>,
    /// Prometheus metrics address, e.g. 127.0.0.1:9100.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

impl NodeArgs {
    /// Defaults, file, environment and `--set` overrides, then the flags given here.
    fn load(&self) -> Result<NodeConfig> {
        let mut config = NodeConfig::load(self.config.as_deref(), &self.overrides)?;
        if let Some(n) = &self.network {
            config.chain.network = n.clone();
        }
        if let Some(n) = self.netuid {
            config.chain.netuid = n;
        }
        if let Some(n) = &self.wallet_name {
            config.wallet.name = n.clone();
        }
        if let Some(n) = &self.wallet_hotkey {
            config.wallet.hotkey = n.clone();
        }
        if let Some(p) = &self.wallet_path {
            config.wallet.path = Some(p.clone());
        }
        if let Some(a) = self.metrics {
            config.metrics.listen = Some(a);
        }
        Ok(config)
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // Training blocks its thread (block_in_place): keep a second worker for the block clock,
    // gathers and the metrics endpoint.
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// `neuron adversary`: a dishonest miner (testkit builds only).
#[cfg(feature = "testkit")]
#[derive(Debug, Args)]
pub struct AdversaryArgs {
    /// Which rule to break.
    #[arg(long, value_enum)]
    kind: neuron::testkit::adversary::Adversary,
    #[command(flatten)]
    node: NodeArgs,
}

#[cfg(feature = "testkit")]
pub fn run_adversary(args: AdversaryArgs) -> Result<()> {
    let config = args.node.load()?;
    if args.node.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    runtime()?.block_on(async {
        let metrics = start_metrics(&config, "miner").await?;
        neuron::testkit::miner::run(config, args.kind, metrics, shutdown_signal()).await
    })
}

async fn start_metrics(config: &NodeConfig, role: &str) -> Result<Metrics> {
    let metrics = Metrics::new(role, None);
    if let Some(addr) = config.metrics.listen {
        metrics.serve(addr).await?;
    }
    Ok(metrics)
}

pub fn run_miner(args: NodeArgs) -> Result<()> {
    let config = args.load()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    runtime()?.block_on(async {
        let metrics = start_metrics(&config, "miner").await?;
        neuron::miner::run(config, metrics, shutdown_signal()).await
    })
}

pub fn run_validator(args: NodeArgs) -> Result<()> {
    let config = args.load()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    runtime()?.block_on(async {
        let metrics = start_metrics(&config, "validator").await?;
        neuron::validator::run(config, metrics, shutdown_signal()).await
    })
}
