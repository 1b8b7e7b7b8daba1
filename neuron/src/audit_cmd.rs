//! `neuron audit --window W`: verify every committed payload of a window from public data.

use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use neuron::storage::{Endpoint, WindowTiming};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The window to audit.
    #[arg(long)]
    window: u64,
    /// Chain: `finney`, `test`, `local` or a ws:// URL.
    #[arg(long, default_value = "local", env = "BT_NETWORK")]
    network: String,
    #[arg(long)]
    netuid: u16,
    /// Model preset the payloads are for (fixes the manifest they must decode against).
    #[arg(long, default_value = "70b")]
    preset: model::Preset,
    #[arg(long, default_value_t = 64)]
    topk: usize,
    #[arg(long, default_value_t = 64)]
    chunk: usize,
    #[arg(long, default_value_t = 115)]
    blocks_per_window: u64,
    #[arg(long, default_value_t = 6)]
    put_blocks: u64,
    /// S3 endpoint of the buckets: `r2` (Cloudflare R2, the account id from each commitment) or a URL.
    #[arg(long, default_value = "r2")]
    s3_endpoint: String,
    /// Also list uids with no commitment for the window.
    #[arg(long)]
    all: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(a: AuditArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let client = chain::client::Client::connect(&a.network).await?;
        let codec = compression::Codec { topk: a.topk, target_chunk: a.chunk, ..Default::default() };
        let manifest = Arc::new(neuron::replica::payload_manifest(&model::LlamaConfig::of(a.preset), &codec)?);
        let endpoint = match a.s3_endpoint.as_str() {
            "r2" => Endpoint::R2,
            url => Endpoint::url(url),
        };
        let timing = WindowTiming { blocks_per_window: a.blocks_per_window, put_blocks: a.put_blocks };
        let verdicts =
            neuron::audit::audit_window(&client, endpoint, a.netuid, a.window, timing, manifest, a.all).await?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&verdicts)?);
        } else {
            println!("{:>4}  {:<48}  {:>7}  {:>9}  verdict", "uid", "hotkey", "block", "bytes");
            for v in &verdicts {
                println!(
                    "{:>4}  {:<48}  {:>7}  {:>9}  {}",
                    v.uid,
                    v.hotkey,
                    v.commit_block.map_or("-".into(), |b| b.to_string()),
                    v.bytes.map_or("-".into(), |b| b.to_string()),
                    v.problem.as_deref().unwrap_or("ok: hash, put window, signature and decoding verified")
                );
            }
            let ok = verdicts.iter().filter(|v| v.ok()).count();
            println!("{ok} of {} payloads verified for window {}", verdicts.len(), a.window);
        }
        Ok(())
    })
}
