//! `neuron localnet`: a whole subnet on this machine, and `neuron localnet chain` (the dev chain
//! alone).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use neuron::testkit::adversary::Adversary;
use neuron::testkit::subnet::report::{AuditSummary, Summary, UidSummary, ValidatorRun, WindowSummary};
use neuron::testkit::subnet::{Localnet, LocalnetOptions, NodeInfo, Role};
use neuron::validator::{read_statuses, WindowStatus};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LocalnetArgs {
    #[command(subcommand)]
    command: Option<LocalnetCommand>,
    #[command(flatten)]
    run: RunArgs,
}

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

/// A local subnet: dev chain, local S3, wallets, miners and validators training a real model.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Honest miners.
    #[arg(long, default_value_t = 3)]
    miners: usize,
    /// Validators (the first one leads).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    validators: u64,
    /// Windows the validator processes before everything stops.
    #[arg(long, default_value_t = 8)]
    windows: u64,
    /// Model preset: tiny, 150m, 1b, 8b or 70b.
    #[arg(long, default_value = "tiny")]
    model: model::Preset,
    /// Dishonest miners to add, one per kind given.
    #[arg(long, value_enum, num_args = 1..)]
    adversaries: Vec<Adversary>,
    /// Leave the chain and the S3 server running at the end (until Ctrl-C).
    #[arg(long)]
    keep: bool,
    /// Folder for wallets, data, node state, logs and the report.
    #[arg(long, default_value = "localnet")]
    out: PathBuf,
    #[arg(long, default_value_t = 500)]
    block_ms: u64,
    #[arg(long, default_value_t = 40)]
    blocks_per_window: u64,
    #[arg(long, default_value_t = 6)]
    put_blocks: u64,
    #[arg(long, default_value_t = 4)]
    inner_steps: usize,
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
}

pub fn run(args: LocalnetArgs) -> Result<()> {
    match args.command {
        Some(LocalnetCommand::Chain { port, block_ms }) => {
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
        None => run_network(args.run),
    }
}

fn run_network(a: RunArgs) -> Result<()> {
    neuron::testkit::subnet::check_out_dir(&a.out)?;
    let options = LocalnetOptions {
        miners: a.miners,
        validators: a.validators as usize,
        windows: a.windows,
        model: a.model,
        adversaries: a.adversaries,
        keep: a.keep,
        out: a.out.clone(),
        block_ms: a.block_ms,
        blocks_per_window: a.blocks_per_window,
        put_blocks: a.put_blocks,
        inner_steps: a.inner_steps,
        batch_size: a.batch_size,
        seq_len: a.seq_len,
        binary: std::env::current_exe()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let mut net = Localnet::create(options).await?;
        net.launch()?;
        println!(
            "local subnet {} on {} with S3 at {}; logs in {}",
            net.netuid,
            net.chain.ws_url(),
            net.s3.endpoint(),
            net.options.out.join("nodes").display()
        );
        // Generous: three times the chain time the windows take, plus start-up.
        let o = &net.options;
        let chain_time = Duration::from_millis((o.windows + 2) * o.blocks_per_window * o.block_ms);
        let deadline = tokio::time::Instant::now() + chain_time * 3 + Duration::from_secs(300);
        let mut seen = Vec::new();
        let outcome = tokio::select! {
            r = watch(&mut net, &mut seen, deadline) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        net.stop_nodes();
        let stopped_early = outcome.as_ref().err().map(|e| format!("{e:#}"));
        let summary = summarize(&net, &seen, stopped_early).await?;
        neuron::testkit::subnet::report::write(&net.options.out, &summary)?;
        print_summary(&summary);
        println!("report: {}", net.options.out.join("report.html").display());
        if net.options.keep {
            println!("chain {} and S3 {} keep running; Ctrl-C stops them", net.chain.ws_url(), net.s3.endpoint());
            let _ = tokio::signal::ctrl_c().await;
        }
        outcome
    })
}

/// Reads the leading validator's status lines as they come, prints one line per window (with
/// the on-chain incentive at that moment), and returns once it has processed the requested
/// number of windows; fails if a node exits or the deadline passes first.
async fn watch(
    net: &mut Localnet,
    seen: &mut Vec<(WindowStatus, BTreeMap<u16, f64>)>,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let validator = net.nodes.iter().find(|n| n.role == Role::Validator).context("no validator")?.clone();
    let mut offset = 0usize;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Some((name, code)) = net.exited().into_iter().next() {
            bail!(
                "{name} exited (status {code:?}); see its log in {}",
                net.options.out.join("nodes").join(&name).display()
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the validator processed {} of {} windows in the time allowed", seen.len(), net.options.windows);
        }
        let statuses = read_statuses(&validator.state_dir);
        for status in statuses.iter().skip(offset) {
            let incentive = incentives(&net.client, net.netuid).await?;
            print_window(net, status, &incentive);
            seen.push((status.clone(), incentive));
        }
        offset = statuses.len();
        if seen.len() as u64 >= net.options.windows {
            return Ok(());
        }
    }
}

/// On-chain incentive per uid, as a share of 1.
async fn incentives(client: &chain::client::Client, netuid: u16) -> Result<BTreeMap<u16, f64>> {
    let metagraph = client.at_finalized().await?.metagraph(netuid).await?;
    Ok(metagraph.neurons.iter().map(|n| (n.uid, n.incentive as f64 / u16::MAX as f64)).collect())
}

fn role_of(net: &Localnet, uid: u16) -> String {
    if uid == net.owner_uid {
        return "owner".into();
    }
    net.nodes.iter().find(|n| n.uid == uid).map_or_else(|| "?".into(), |n| n.role.to_string())
}

fn print_window(net: &Localnet, s: &WindowStatus, incentive: &BTreeMap<u16, f64>) {
    let weights: Vec<String> = s.weights.iter().map(|(u, w)| format!("{u}:{w:.3}")).collect();
    let inc: Vec<String> = incentive.iter().filter(|(_, i)| **i > 0.0).map(|(u, i)| format!("{u}:{i:.3}")).collect();
    let rejected: Vec<String> = s
        .rejected
        .iter()
        .map(|(u, r)| {
            let short: String = r.chars().take(100).collect();
            let more = if short.len() < r.len() { "…" } else { "" };
            format!("{u} ({}): {short}{more}", role_of(net, *u))
        })
        .collect();
    println!(
        "window {:>4}  block {:>5}  loss {:>7}  accepted {:?}  weights [{}]  incentive [{}]",
        s.window,
        s.block,
        s.loss.map_or("-".into(), |l| format!("{l:.4}")),
        s.gathered,
        weights.join(" "),
        inc.join(" ")
    );
    for r in rejected {
        println!("             rejected {r}");
    }
}

async fn summarize(
    net: &Localnet,
    seen: &[(WindowStatus, BTreeMap<u16, f64>)],
    stopped_early: Option<String>,
) -> Result<Summary> {
    let metagraph = net.client.at_finalized().await?.metagraph(net.netuid).await?;
    let incentive = incentives(&net.client, net.netuid).await?;
    let last_weights: BTreeMap<u16, f64> =
        seen.last().map(|(s, _)| s.weights.iter().copied().collect()).unwrap_or_default();
    let windows = seen
        .iter()
        .map(|(s, incentive)| WindowSummary {
            window: s.window,
            loss: s.loss,
            block: s.block,
            accepted: s.gathered.clone(),
            rejected: s.rejected.clone(),
            weights: s.weights.clone(),
            incentive: incentive.iter().map(|(u, i)| (*u, *i)).collect(),
        })
        .collect();
    let uid_summary = |n: &chain::client::Neuron| UidSummary {
        uid: n.uid,
        hotkey: n.hotkey.ss58(),
        role: role_of(net, n.uid),
        weight: last_weights.get(&n.uid).copied().unwrap_or(0.0),
        incentive: incentive.get(&n.uid).copied().unwrap_or(0.0),
        dividends: n.dividends as f64 / u16::MAX as f64,
    };
    let uids = metagraph.neurons.iter().filter(|n| n.uid != net.owner_uid).map(uid_summary).collect();
    let owner = metagraph.neurons.iter().find(|n| n.uid == net.owner_uid).map(uid_summary);
    let statuses: Vec<&WindowStatus> = seen.iter().map(|(s, _)| s).collect();

    // Audit every window the validator processed, from public data only.
    let config = neuron::config::NodeConfig::load(Some(&net.nodes[0].config), &[])?;
    let codec = config.codec.codec();
    let manifest = Arc::new(neuron::replica::payload_manifest(&model::LlamaConfig::of(config.model.preset), &codec)?);
    let timing = neuron::storage::WindowTiming {
        blocks_per_window: config.protocol.blocks_per_window,
        put_blocks: config.protocol.put_blocks,
    };
    let endpoint = neuron::storage::Endpoint::url(net.s3.endpoint());
    let mut audit = AuditSummary::default();
    let mut verdicts_by_window = Vec::new();
    for s in statuses {
        let verdicts = neuron::audit::audit_window(
            &net.client,
            endpoint.clone(),
            net.netuid,
            s.window,
            timing,
            manifest.clone(),
            false,
        )
        .await?;
        for v in &verdicts {
            if v.ok() {
                audit.ok += 1;
            } else {
                audit.failed += 1;
            }
        }
        verdicts_by_window.push(serde_json::json!({ "window": s.window, "verdicts": verdicts }));
    }
    neuron::fsutil::write_atomic(
        &net.options.out.join("audit.json"),
        &serde_json::to_vec_pretty(&verdicts_by_window)?,
    )?;
    let validators = net.nodes.iter().filter(|n| n.role == Role::Validator).map(validator_run).collect();
    Ok(Summary { windows, uids, owner, audit, validators, stopped_early })
}

/// A validator's record from its `status.jsonl` (missing: it processed no window).
fn validator_run(node: &NodeInfo) -> ValidatorRun {
    let mut run = ValidatorRun { uid: node.uid, ..ValidatorRun::default() };
    for status in read_statuses(&node.state_dir) {
        run.windows += 1;
        run.weights_set += u64::from(status.weights_block.is_some());
        run.led += u64::from(status.leader);
        run.last_window = Some(status.window);
        run.global_step = status.global_step;
        run.loss = status.loss;
    }
    run
}

fn print_summary(s: &Summary) {
    println!();
    println!("{:>4}  {:<22}  {:>8}  {:>9}  hotkey", "uid", "role", "weight", "incentive");
    for u in s.owner.iter().chain(&s.uids) {
        println!("{:>4}  {:<22}  {:>8.4}  {:>9.4}  {}", u.uid, u.role, u.weight, u.incentive, u.hotkey);
    }
    let first = s.windows.iter().find_map(|w| w.loss);
    let last = s.windows.iter().rev().find_map(|w| w.loss);
    if let (Some(a), Some(b)) = (first, last) {
        println!("validator loss {a:.4} -> {b:.4} over {} windows", s.windows.len());
    }
    for v in &s.validators {
        println!(
            "validator uid {}: {} windows, weights set in {}, led {}, {} outer steps",
            v.uid, v.windows, v.weights_set, v.led, v.global_step
        );
    }
    println!("audit: {} payloads verified, {} failed", s.audit.ok, s.audit.failed);
}
