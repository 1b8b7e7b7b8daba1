//! `neuron data …` and `neuron train`: prepare tokenized data, and train a model on it to check
//! hardware (throughput, memory) and the training stack.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use model::data::pool::sample_pool;
use model::data::shards::{prepare, Dataset};
use model::data::tokenizer::TextTokenizer;
use model::optim::LrSchedule;
use model::{checkpoint, Llama, LlamaConfig, TrainConfig, Trainer};
use neuron::storage::{AccessKey, DatasetUrl, Endpoint, S3};
use serde::Serialize;
use tch::Device;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Tokenize text files into shards of fixed-length sequences of u32 token ids.
    Prepare(PrepareArgs),
    /// Print the sample pool of (netuid, uid, window) as JSON: which samples that miner trains on.
    Pool(PoolArgs),
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Text files; each is one document (separated by the end-of-text token).
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Output folder (created; shards and manifest.json go there), or `s3://bucket/prefix` to
    /// upload them (with the --s3-* flags; the manifest goes up last).
    #[arg(long)]
    output: String,
    /// S3 endpoint for an s3:// output: `r2` (the bucket is the account id) or a URL.
    #[arg(long, default_value = "r2")]
    s3_endpoint: String,
    /// Region for a URL endpoint.
    #[arg(long, default_value = "")]
    s3_region: String,
    /// Access key id with write access to the bucket.
    #[arg(long, env = "NEURON_S3_KEY_ID", default_value = "")]
    s3_key_id: String,
    /// Its secret.
    #[arg(long, env = "NEURON_S3_SECRET", default_value = "", hide_env_values = true)]
    s3_secret: String,
    /// `gpt2` (installed by `make setup`) or the path of a Hugging Face tokenizer.json.
    #[arg(long, default_value = "gpt2")]
    tokenizer: String,
    /// Tokens per sample.
    #[arg(long, default_value_t = 2048)]
    seq_len: usize,
    /// Samples per shard file.
    #[arg(long, default_value_t = 16384)]
    samples_per_shard: u64,
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Dataset folder (its sample count is the pool's range).
    #[arg(long, conflicts_with = "dataset_len", required_unless_present = "dataset_len")]
    data: Option<PathBuf>,
    /// Number of samples in the dataset, instead of --data.
    #[arg(long)]
    dataset_len: Option<u64>,
    #[arg(long)]
    netuid: u16,
    #[arg(long)]
    uid: u16,
    #[arg(long)]
    window: u64,
    /// Pool size (the miner trains on the first inner_steps × batch entries).
    #[arg(long, default_value_t = 30720)]
    size: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset folder made by `neuron data prepare`.
    #[arg(long)]
    data: PathBuf,
    /// Model preset: tiny, 150m, 1b, 8b, 70b.
    #[arg(long, default_value = "tiny")]
    preset: model::Preset,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: u64,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Sequences per optimizer step.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Sequences per forward/backward pass.
    #[arg(long)]
    micro_batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Initialisation seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Save a checkpoint here at the end.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Resume from this checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// One JSON object per step on stdout instead of a progress bar.
    #[arg(long)]
    log_json: bool,
}

pub fn run_data(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Prepare(a) => {
            let tokenizer = TextTokenizer::load(&a.tokenizer)?;
            let started = Instant::now();
            let remote = a.output.starts_with("s3://").then(|| DatasetUrl::parse(&a.output)).transpose()?;
            // A bucket destination: prepare in a scratch folder beside nothing of the user's.
            let scratch = remote.as_ref().map(|_| tempfile::tempdir()).transpose()?;
            let dir = scratch.as_ref().map_or_else(|| PathBuf::from(&a.output), |t| t.path().to_path_buf());
            let m = prepare(&a.input, &tokenizer, a.seq_len, a.samples_per_shard, &dir)?;
            if let Some(url) = &remote {
                if a.s3_key_id.is_empty() {
                    bail!(
                        "--s3-key-id and --s3-secret (or NEURON_S3_KEY_ID and NEURON_S3_SECRET) are needed for {url}"
                    );
                }
                let endpoint = Endpoint::from_config(&a.s3_endpoint, &a.s3_region);
                let key = AccessKey::new(&a.s3_key_id, &a.s3_secret);
                let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
                runtime.block_on(async {
                    let bucket = S3::default().bucket(&endpoint, &url.bucket, &key);
                    neuron::storage::dataset::upload(&bucket, url, &dir).await
                })?;
            }
            eprintln!(
                "{} samples of {} tokens ({} tokens) in {} shards, tokenizer {} ({} tokens), {:.1} s -> {}",
                m.samples,
                m.seq_len,
                m.tokens,
                m.shards.len(),
                m.tokenizer.name,
                m.tokenizer.vocab_size,
                started.elapsed().as_secs_f64(),
                a.output
            );
            Ok(())
        }
        DataCommand::Pool(a) => {
            let len = match (&a.data, a.dataset_len) {
                (Some(dir), _) => Dataset::open(dir, false)?.len(),
                (None, Some(n)) => n,
                (None, None) => unreachable!("clap requires one"),
            };
            if len == 0 {
                bail!("the dataset is empty");
            }
            println!("{}", serde_json::to_string(&sample_pool(a.netuid, a.uid, a.window, len, a.size))?);
            Ok(())
        }
    }
}

#[derive(Serialize)]
struct StepLog {
    step: u64,
    loss: f64,
    grad_norm: f64,
    lr: f64,
    tokens: u64,
    tokens_per_s: f64,
    elapsed_s: f64,
}

pub fn run_train(a: TrainArgs) -> Result<()> {
    let device = match a.device {
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
        DeviceArg::Cuda => bail!("--device cuda: libtorch sees no CUDA device on this machine"),
    };
    let data = Dataset::open(&a.data, true).with_context(|| format!("opening dataset {}", a.data.display()))?;
    let mut trainer = trainer_for(&a, device, &data)?;
    tracing::info!(
        preset = %a.preset,
        params = trainer.model.config().num_params(),
        ?device,
        samples = data.len(),
        "training"
    );
    let needed = a.steps * a.batch_size as u64;
    let order = sample_pool(0, 0, trainer.inner_step(), data.len(), needed);
    let bar = (!a.log_json).then(|| {
        let bar = indicatif::ProgressBar::new(a.steps);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise}<{eta_precise}]",
            )
            .expect("valid template"),
        );
        bar
    });
    let started = Instant::now();
    for s in 0..a.steps {
        // Wraps around the dataset when it is smaller than steps × batch.
        let indices: Vec<u64> = (0..a.batch_size as u64)
            .map(|j| order[((s * a.batch_size as u64 + j) % order.len() as u64) as usize])
            .collect();
        let batch = data.batch(&indices, device)?;
        let t = Instant::now();
        let stats = trainer.step(&batch)?;
        let tokens_per_s = stats.tokens as f64 / t.elapsed().as_secs_f64();
        if let Some(bar) = &bar {
            bar.set_message(format!("loss {:.4}  {:.0} tok/s", stats.loss, tokens_per_s));
            bar.inc(1);
        } else {
            let log = StepLog {
                step: stats.step,
                loss: stats.loss,
                grad_norm: stats.grad_norm,
                lr: stats.lr,
                tokens: stats.tokens,
                tokens_per_s,
                elapsed_s: started.elapsed().as_secs_f64(),
            };
            println!("{}", serde_json::to_string(&log)?);
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    if let Some(dir) = &a.checkpoint {
        checkpoint::save(dir, &trainer, 0, 0)?;
        tracing::info!("checkpoint written to {}", dir.display());
    }
    Ok(())
}

/// The model and trainer `neuron train` runs: the preset (its vocabulary must hold the
/// dataset's tokens), the schedule from the flags, resumed from `--resume` if given.
fn trainer_for(a: &TrainArgs, device: Device, data: &Dataset) -> Result<Trainer> {
    let config = LlamaConfig::of(a.preset);
    if data.manifest.tokenizer.vocab_size > config.vocab_size {
        bail!(
            "the dataset's tokenizer has {} tokens, more than the {} preset's vocabulary of {}",
            data.manifest.tokenizer.vocab_size,
            a.preset,
            config.vocab_size
        );
    }
    let train_config = TrainConfig {
        schedule: LrSchedule {
            peak: a.lr,
            warmup_steps: a.warmup,
            total_steps: a.steps.max(a.warmup + 1),
            min_factor: 0.1,
        },
        batch_size: a.batch_size,
        micro_batch_size: a.micro_batch_size.unwrap_or(a.batch_size),
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(Llama::new(config, device, a.seed)?, train_config)?;
    if let Some(dir) = &a.resume {
        let m = checkpoint::load(dir, &mut trainer)?;
        tracing::info!(window = m.window, inner_step = m.inner_step, "resumed from {}", dir.display());
    }
    Ok(trainer)
}
