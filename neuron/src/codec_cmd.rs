//! `neuron codec`: encode, decode, aggregate and inspect SparseLoCo payloads.
//!
//! Tensors come and go as safetensors (float32); payloads are wire-format v1 files. Used by the
//! tests and by operators debugging what a peer uploaded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use compression::wire::{self, Layout};
use compression::{signature, Aggregation, Codec, Header, IndexCoding, Manifest, ParamSpec, Payload};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::fsutil::{write_atomic, write_safetensors_atomic};

#[derive(Debug, Subcommand)]
pub enum CodecCommand {
    /// Error feedback + compression of a pseudo-gradient into a payload.
    Encode(EncodeArgs),
    /// The dense transmitted update of a payload.
    Decode(DecodeArgs),
    /// Aggregate several payloads of the same model into one dense update.
    Aggregate(AggregateArgs),
    /// Header, per-parameter sizes, bits per kept value and compression ratios of a payload.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Pseudo-gradient Δ = θ_start − θ_end, one float32 tensor per parameter.
    #[arg(long)]
    input: PathBuf,
    /// Error-feedback buffer before this step, tensors named like the parameters (zeros if absent).
    #[arg(long)]
    ef: Option<PathBuf>,
    /// Where to write the payload.
    #[arg(long)]
    output: PathBuf,
    /// Where to write the error-feedback buffer after this step.
    #[arg(long)]
    ef_out: Option<PathBuf>,
    /// Error-feedback decay β.
    #[arg(long, default_value_t = compression::codec::DEFAULT_DECAY)]
    decay: f32,
    /// Values kept per chunk.
    #[arg(long, default_value_t = compression::geometry::DEFAULT_TOPK)]
    topk: usize,
    /// Largest chunk edge.
    #[arg(long, default_value_t = compression::geometry::DEFAULT_TARGET_CHUNK)]
    chunk: usize,
    /// Index coding: `packed12` (12 bits per index) or `entropy` (Rice-coded gaps).
    #[arg(long, default_value = "packed12")]
    index_coding: IndexCoding,
    #[arg(long, default_value_t = 0)]
    netuid: u16,
    #[arg(long, default_value_t = 0)]
    uid: u16,
    #[arg(long, default_value_t = 0)]
    window: u64,
    /// Sign with this sr25519 secret seed (hex, 32 bytes, as a bittensor hotkey's `secretSeed`);
    /// its public key goes into the header. Without it the payload is unsigned.
    #[arg(long, env = "NEURON_SIGNING_SEED", hide_env_values = true)]
    seed: Option<String>,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Payload file.
    #[arg(long)]
    input: PathBuf,
    /// Where to write the dense tensors (same names as the parameters).
    #[arg(long)]
    output: PathBuf,
    /// Refuse payloads whose declared model has more elements than this (the output is dense).
    #[arg(long, default_value_t = 1 << 31)]
    max_elements: usize,
}

#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// Where to write the aggregate.
    #[arg(long)]
    output: PathBuf,
    /// `median-mean` (production: median-norm clipping, per-index mean) or `mean` (plain 1/R sum).
    #[arg(long, default_value = "median-mean")]
    mode: Aggregation,
    #[arg(long, default_value_t = 1 << 31)]
    max_elements: usize,
    /// Payload files; all must be for the same model.
    #[arg(required = true)]
    payloads: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    payload: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: CodecCommand) -> Result<()> {
    match cmd {
        CodecCommand::Encode(a) => encode(a),
        CodecCommand::Decode(a) => decode(a),
        CodecCommand::Aggregate(a) => aggregate(a),
        CodecCommand::Inspect(a) => inspect(a),
    }
}

fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut tensors = Tensor::read_safetensors(path).with_context(|| format!("reading {}", path.display()))?;
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tensors)
}

fn shape_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

fn encode(a: EncodeArgs) -> Result<()> {
    let deltas = read_tensors(&a.input)?;
    if deltas.is_empty() {
        bail!("{} holds no tensors", a.input.display());
    }
    let specs: Vec<ParamSpec> = deltas
        .iter()
        .map(|(name, t)| ParamSpec { name: name.clone(), shape: t.size().iter().map(|&d| d as usize).collect() })
        .collect();
    let manifest = Manifest::with_codec(specs, a.chunk, a.topk).context("building the parameter manifest")?;
    let mut ef: std::collections::HashMap<String, Tensor> = match &a.ef {
        Some(path) => read_tensors(path)?.into_iter().collect(),
        None => Default::default(),
    };
    let codec = Codec { decay: a.decay, target_chunk: a.chunk, topk: a.topk, ..Codec::default() };
    let mut params = Vec::with_capacity(deltas.len());
    let mut ef_new = Vec::with_capacity(deltas.len());
    for (name, delta) in &deltas {
        let delta = delta.to_kind(Kind::Float).contiguous();
        let mut e = match ef.remove(name) {
            Some(e) => e.to_kind(Kind::Float).contiguous(),
            None if a.ef.is_some() => bail!("{} has no tensor `{name}`", a.ef.as_ref().unwrap().display()),
            None => Tensor::zeros_like(&delta),
        };
        params.push(codec.compress(&delta, &mut e).with_context(|| format!("compressing `{name}`"))?);
        ef_new.push((name.clone(), e));
    }
    if let Some(extra) = ef.keys().next() {
        bail!("error-feedback tensor `{extra}` has no matching parameter in {}", a.input.display());
    }
    let keypair = a.seed.as_deref().map(keypair_from_seed).transpose()?;
    let header = Header {
        netuid: a.netuid,
        uid: a.uid,
        window: a.window,
        hotkey: keypair.as_ref().map(|k| k.public.to_bytes()).unwrap_or([0; 32]),
        model: manifest.fingerprint(),
    };
    let mut bytes = wire::encode(&Payload { header, params }, &manifest, a.index_coding)?;
    if let Some(k) = &keypair {
        signature::sign(&mut bytes, k)?;
    }
    write_atomic(&a.output, &bytes)?;
    if let Some(path) = &a.ef_out {
        write_safetensors_atomic(path, &ef_new)?;
    }
    let kept = manifest.kept();
    eprintln!(
        "wrote {} ({} bytes, {} parameters, {:.2} bits per kept value, {:.1}x smaller than fp32)",
        a.output.display(),
        bytes.len(),
        manifest.len(),
        bytes.len() as f64 * 8.0 / kept as f64,
        manifest.numel() as f64 * 4.0 / bytes.len() as f64
    );
    Ok(())
}

fn keypair_from_seed(hex_seed: &str) -> Result<signature::Keypair> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(hex_seed.trim().trim_start_matches("0x"), &mut seed)
        .context("the signing seed must be 32 bytes of hex (64 digits)")?;
    Ok(signature::keypair_from_seed(&seed))
}

/// Reads a payload and the manifest it declares, refusing models over `max_elements`.
fn read_payload(path: &Path, max_elements: usize) -> Result<(Vec<u8>, Manifest, Payload)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let manifest = wire::read_layout(&bytes)
        .and_then(|l| l.manifest())
        .with_context(|| format!("{} is not a valid payload", path.display()))?;
    if manifest.numel() > max_elements {
        bail!(
            "{} declares a model of {} elements, over --max-elements {max_elements}",
            path.display(),
            manifest.numel()
        );
    }
    let payload = wire::decode(&bytes, &manifest).with_context(|| format!("decoding {}", path.display()))?;
    Ok((bytes, manifest, payload))
}

fn decode(a: DecodeArgs) -> Result<()> {
    let (_, manifest, payload) = read_payload(&a.input, a.max_elements)?;
    let codec = Codec { target_chunk: manifest.target_chunk(), topk: manifest.topk(), ..Codec::default() };
    let mut out = Vec::with_capacity(manifest.len());
    for (spec, sparse) in manifest.params().iter().zip(&payload.params) {
        out.push((spec.name.clone(), codec.decompress(sparse, &shape_i64(&spec.shape), Device::Cpu)?));
    }
    write_safetensors_atomic(&a.output, &out)
}

fn aggregate(a: AggregateArgs) -> Result<()> {
    let mut manifest: Option<Manifest> = None;
    let mut payloads = Vec::with_capacity(a.payloads.len());
    for path in &a.payloads {
        let (_, m, p) = read_payload(path, a.max_elements)?;
        match &manifest {
            Some(first) if first.fingerprint() != m.fingerprint() => {
                bail!("{} is for a different model than {}", path.display(), a.payloads[0].display())
            }
            Some(_) => {}
            None => manifest = Some(m),
        }
        payloads.push(p);
    }
    let manifest = manifest.context("no payloads")?;
    let codec = Codec { target_chunk: manifest.target_chunk(), topk: manifest.topk(), ..Codec::default() };
    let mut out = Vec::with_capacity(manifest.len());
    for (i, spec) in manifest.params().iter().enumerate() {
        let peers: Vec<_> = payloads.iter().map(|p| &p.params[i]).collect();
        out.push((spec.name.clone(), codec.aggregate(&peers, a.mode, &shape_i64(&spec.shape), Device::Cpu)?));
    }
    write_safetensors_atomic(&a.output, &out)
}

#[derive(Serialize)]
struct Inspection {
    bytes: usize,
    version: u16,
    netuid: u16,
    uid: u16,
    window: u64,
    hotkey: String,
    model: String,
    chunk_target: u16,
    topk: u16,
    signature: String,
    content_hash: String,
    parameters: Vec<ParamInspection>,
    elements: usize,
    kept: usize,
    bits_per_kept_value: f64,
    ratio_vs_fp32: f64,
    ratio_vs_bf16: f64,
}

#[derive(Serialize)]
struct ParamInspection {
    name: String,
    shape: Vec<usize>,
    chunk: [usize; 2],
    k: usize,
    kept: usize,
    index_coding: &'static str,
    index_bytes: usize,
    code_bytes: usize,
    bits_per_kept_value: f64,
}

fn inspect(a: InspectArgs) -> Result<()> {
    let bytes = std::fs::read(&a.payload).with_context(|| format!("reading {}", a.payload.display()))?;
    let layout: Layout =
        wire::read_layout(&bytes).with_context(|| format!("{} is not a payload", a.payload.display()))?;
    let manifest = layout.manifest()?;
    // Full decode: proves every section is well formed, not just the table.
    wire::decode(&bytes, &manifest)?;
    let signature = match signature::verify(&bytes, &layout.header.hotkey) {
        Ok(()) => "valid (header hotkey)".to_string(),
        Err(e) => format!("not valid: {e}"),
    };
    let parameters: Vec<ParamInspection> = layout
        .records
        .iter()
        .zip(manifest.geometry())
        .map(|(r, g)| ParamInspection {
            name: r.name.clone(),
            shape: r.shape.clone(),
            chunk: [g.h, g.w],
            k: g.k,
            kept: g.kept(),
            index_coding: match r.index_coding {
                0 => "packed12",
                1 => "rice",
                _ => "implicit",
            },
            index_bytes: r.index_len,
            code_bytes: r.code_len,
            bits_per_kept_value: (r.index_len + r.code_len) as f64 * 8.0 / g.kept() as f64,
        })
        .collect();
    let (elements, kept) = (manifest.numel(), manifest.kept());
    let report = Inspection {
        bytes: bytes.len(),
        version: wire::VERSION,
        netuid: layout.header.netuid,
        uid: layout.header.uid,
        window: layout.header.window,
        hotkey: hex::encode(layout.header.hotkey),
        model: hex::encode(layout.header.model),
        chunk_target: layout.codec.target_chunk,
        topk: layout.codec.topk,
        signature,
        content_hash: hex::encode(signature::content_hash(&bytes)),
        parameters,
        elements,
        kept,
        bits_per_kept_value: bytes.len() as f64 * 8.0 / kept as f64,
        ratio_vs_fp32: elements as f64 * 4.0 / bytes.len() as f64,
        ratio_vs_bf16: elements as f64 * 2.0 / bytes.len() as f64,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_inspection(&a.payload, &report);
    }
    Ok(())
}

/// `codec inspect`'s human-readable form.
fn print_inspection(path: &std::path::Path, report: &Inspection) {
    println!("payload       {} ({} bytes, format v{})", path.display(), report.bytes, report.version);
    println!("netuid/uid    {} / {}   window {}", report.netuid, report.uid, report.window);
    println!("hotkey        {}", report.hotkey);
    println!("model         {}  (chunk ≤ {}, top-{})", report.model, report.chunk_target, report.topk);
    println!("signature     {}", report.signature);
    println!("content hash  {}", report.content_hash);
    println!();
    println!(
        "{:<40} {:>16} {:>7} {:>5} {:>10} {:>8} {:>10} {:>9} {:>6}",
        "parameter", "shape", "chunk", "k", "kept", "indices", "idx bytes", "code bytes", "bits"
    );
    for p in &report.parameters {
        println!(
            "{:<40} {:>16} {:>7} {:>5} {:>10} {:>8} {:>10} {:>9} {:>6.2}",
            p.name,
            format!("{:?}", p.shape),
            format!("{}x{}", p.chunk[0], p.chunk[1]),
            p.k,
            p.kept,
            p.index_coding,
            p.index_bytes,
            p.code_bytes,
            p.bits_per_kept_value
        );
    }
    println!();
    println!(
        "{} elements, {} kept ({:.3} %), {:.2} bits per kept value; {:.1}x smaller than fp32, {:.1}x than bf16",
        report.elements,
        report.kept,
        100.0 * report.kept as f64 / report.elements as f64,
        report.bits_per_kept_value,
        report.ratio_vs_fp32,
        report.ratio_vs_bf16
    );
}
