//! `neuron localnet`: a whole subnet on this machine.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum LocalnetCommand {
    /// Run the local dev chain (our subtensor-compatible runtime under chopsticks) until Ctrl-C.
    ///
    /// Needs `make setup` (or `scripts/setup-chain.sh`) once: it builds the runtime and installs
    /// chopsticks into the cache.
    Chain {
        /// Port for ws:// and http:// JSON-RPC on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 9944)]
        port: u16,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
        block_ms: u64,
    },
}

pub fn run(cmd: LocalnetCommand) -> anyhow::Result<()> {
    match cmd {
        LocalnetCommand::Chain { port, block_ms } => {
            let cfg = chain::devnet::DevnetConfig { port, block_ms, ..Default::default() };
            let devnet = chain::devnet::Devnet::start(&cfg)?;
            // The one line scripts wait for; logs go to stderr.
            println!("{}", devnet.ws_url());
            tracing::info!(
                block_ms,
                started_ms = devnet.started_in().as_millis() as u64,
                "dev chain running; Ctrl-C stops it"
            );
            devnet.run_until_interrupted()?;
            Ok(())
        }
    }
}
