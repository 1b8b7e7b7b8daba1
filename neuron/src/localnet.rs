//! `neuron localnet`: a whole subnet on this machine.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum LocalnetCommand {}

pub fn run(cmd: LocalnetCommand) -> anyhow::Result<()> {
    match cmd {}
}
