//! The miner's and validator's configuration: a TOML file, then `NEURON__SECTION__KEY=value`
//! environment variables, then `--set section.key=value` flags, over defaults that are the
//! Covenant-72B run's constants (`PROTOCOL.md`, `reference/templar-protocol.md` §1).
//!
//! Every section rejects unknown keys, so a misspelt setting is an error instead of a silently
//! ignored line. `neuron miner --print-config` shows the effective configuration.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Every setting of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    pub chain: ChainConfig,
    pub wallet: WalletConfig,
    pub storage: StorageConfig,
    pub protocol: ProtocolConfig,
    pub model: ModelConfig,
    pub dataset: DatasetConfig,
    pub train: InnerConfig,
    pub codec: CodecConfig,
    pub validator: ValidatorConfig,
    pub gauntlet: weights::GauntletConfig,
    pub metrics: MetricsConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// `finney`, `test`, `local` or a `ws://`/`wss://` URL.
    pub network: String,
    pub netuid: u16,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self { network: "local".into(), netuid: 3 }
    }
}

/// A bittensor wallet, named as btcli names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalletConfig {
    pub name: String,
    pub hotkey: String,
    /// Folder of wallets (`~/.bittensor/wallets`).
    pub path: Option<PathBuf>,
}

impl Default for WalletConfig {
    fn default() -> Self {
        Self { name: "default".into(), hotkey: "default".into(), path: None }
    }
}

/// The node's own bucket. The write key never leaves the machine; the read key is committed on
/// chain for everyone.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `r2` (Cloudflare R2, `https://{account_id}.r2.cloudflarestorage.com`) or an S3 URL.
    pub endpoint: String,
    /// Region for a URL endpoint (`us-east-1` when empty).
    pub region: String,
    /// Account id; the bucket has the same name (templar's convention).
    pub account_id: String,
    pub write_key_id: String,
    pub write_secret: String,
    pub read_key_id: String,
    pub read_secret: String,
}

/// The shared protocol: every peer of a subnet must agree on these (the `[protocol]` section;
/// the Gauntlet reads the same values). The validator's scoring constants, including how often
/// weights are set and peer lists replaced, are in [`weights::GauntletConfig`], `[gauntlet]`.
pub use protocol::ProtocolConfig;

/// Where the model runs: `cpu`, `cuda` (the first GPU) or `auto` (a GPU if libtorch sees one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    #[default]
    Auto,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `tiny`, `150m`, `1b`, `8b`, `70b`.
    pub preset: model::Preset,
    /// Initialisation seed shared by the subnet.
    pub seed: u64,
    /// Folder of tokenized shards (`neuron data prepare`).
    pub data: PathBuf,
    /// `cpu`, `cuda` or `auto`.
    pub device: DeviceChoice,
    /// Where the node keeps its state (checkpoints, error feedback, validator scores).
    pub state_dir: PathBuf,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            preset: model::Preset::B70,
            seed: 42,
            data: PathBuf::from("data"),
            device: DeviceChoice::Auto,
            state_dir: PathBuf::from("state"),
        }
    }
}

/// A tokenized dataset in a bucket (PROTOCOL.md §5), mirrored into `model.data` at start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetConfig {
    /// `s3://bucket/prefix` (written by `neuron data prepare --output s3://…`); empty: use
    /// `model.data` as it is.
    pub source: String,
    /// `r2` (Cloudflare R2; the bucket is named after the account, as node buckets are) or an S3 URL.
    pub endpoint: String,
    /// Region for a URL endpoint (`us-east-1` when empty).
    pub region: String,
    /// A read key of the dataset's bucket.
    pub key_id: String,
    pub secret: String,
}

/// The miner's inner loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InnerConfig {
    /// Inner steps per window (H).
    pub inner_steps: usize,
    /// Sequences per inner step (B).
    pub batch_size: usize,
    /// Sequences per forward pass.
    pub micro_batch_size: usize,
    /// Size of each (uid, window) sample pool: inner_steps × target batch.
    pub pool_size: u64,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub min_lr_factor: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub grad_clip: f64,
}

impl Default for InnerConfig {
    fn default() -> Self {
        Self {
            inner_steps: 30,
            batch_size: 192,
            micro_batch_size: 1,
            pool_size: 30 * 1024,
            learning_rate: 1.17e-4,
            warmup_steps: 1500,
            total_steps: 140_000,
            min_lr_factor: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

impl InnerConfig {
    pub fn train_config(&self) -> model::TrainConfig {
        model::TrainConfig {
            adamw: model::optim::AdamWConfig {
                beta1: self.beta1,
                beta2: self.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
            },
            schedule: model::optim::LrSchedule {
                peak: self.learning_rate,
                warmup_steps: self.warmup_steps,
                total_steps: self.total_steps,
                min_factor: self.min_lr_factor,
            },
            grad_clip: self.grad_clip,
            batch_size: self.batch_size,
            micro_batch_size: self.micro_batch_size,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodecConfig {
    /// Error-feedback decay β.
    pub decay: f32,
    /// Values kept per chunk.
    pub topk: usize,
    /// Largest chunk edge.
    pub chunk: usize,
    /// `packed12` or `entropy`.
    pub index_coding: compression::wire::IndexCoding,
    /// `median-mean` (production) or `mean`.
    pub aggregation: compression::Aggregation,
}

impl Default for CodecConfig {
    fn default() -> Self {
        Self {
            decay: 0.95,
            topk: 64,
            chunk: 64,
            index_coding: compression::wire::IndexCoding::Entropy,
            aggregation: compression::Aggregation::MedianClippedMean,
        }
    }
}

impl CodecConfig {
    pub fn codec(&self) -> compression::Codec {
        compression::Codec { decay: self.decay, target_chunk: self.chunk, topk: self.topk, ..Default::default() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorConfig {
    /// The miner's update is applied at `outer_learning_rate × eval_lr_factor` for evaluation.
    pub eval_lr_factor: f64,
    /// Batches per loss evaluation (templar `validator_sample_micro_bs`).
    pub eval_batches: usize,
    /// Sequences per evaluation batch.
    pub eval_batch_size: usize,
    /// Set weights on chain (off: score only, e.g. for auditing).
    pub set_weights: bool,
    /// Stake above which a uid counts as a validator and is not evaluated.
    pub validator_stake_threshold: u64,
    /// An update whose norm is more than this many times the window's median (per parameter,
    /// the median of the ratios over parameters) is scored as invalid **[ours]**: median
    /// clipping already keeps it from moving the model more than an honest one, but it must not
    /// be rewarded either, and under the plain-mean aggregation it would not be clipped. 0 turns
    /// the rule off (templar has none).
    pub max_norm_ratio: f64,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            eval_lr_factor: 0.2,
            eval_batches: 8,
            eval_batch_size: 1,
            set_weights: true,
            validator_stake_threshold: 20_000_000_000_000,
            max_norm_ratio: 10.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the Prometheus `/metrics` endpoint (off when empty).
    pub listen: Option<std::net::SocketAddr>,
}

/// Why a configuration could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("--set {0}: expected section.key=value")]
    BadOverride(String),
}

/// Sets `path` (dotted) in a TOML table to `value` (parsed as a TOML value, or a string if it
/// does not parse).
fn set_path(table: &mut toml::Table, path: &str, value: &str) -> Result<(), ConfigError> {
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut parts = path.split('.').peekable();
    let mut current = table;
    while let Some(part) = parts.next() {
        if part.is_empty() {
            return Err(ConfigError::BadOverride(path.to_string()));
        }
        if parts.peek().is_none() {
            current.insert(part.to_string(), parsed);
            return Ok(());
        }
        let next = current.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        current = next.as_table_mut().ok_or_else(|| ConfigError::BadOverride(path.to_string()))?;
    }
    Err(ConfigError::BadOverride(path.to_string()))
}

impl NodeConfig {
    /// Defaults, then `file` (if any), then `NEURON__SECTION__KEY=value` environment variables,
    /// then `overrides` (`section.key=value`).
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| ConfigError::Invalid { origin: path.display().to_string(), message: e.to_string() })?
            }
            None => toml::Table::new(),
        };
        let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("NEURON__")).collect();
        env.sort();
        for (key, value) in env {
            let path = key.trim_start_matches("NEURON__").to_lowercase().replace("__", ".");
            set_path(&mut table, &path, &value)?;
        }
        for o in overrides {
            let (path, value) = o.split_once('=').ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            set_path(&mut table, path.trim(), value.trim())?;
        }
        let config: Self = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid {
            origin: "configuration".into(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings that must agree across sections or be in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { origin: "configuration".into(), message };
        self.protocol.validate().map_err(|e| invalid(e.to_string()))?;
        self.gauntlet.validate().map_err(|e| invalid(e.to_string()))?;
        Ok(())
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_original_runs_constants() {
        let c = NodeConfig::default();
        assert_eq!(c.protocol.blocks_per_window, 115);
        assert_eq!(c.protocol.outer_learning_rate, 0.4);
        assert_eq!(c.train.inner_steps, 30);
        assert_eq!(c.train.learning_rate, 1.17e-4);
        assert_eq!(c.codec.decay, 0.95);
        assert_eq!(c.gauntlet.uids_per_window, 20);
        assert_eq!(c.validator.eval_lr_factor, 0.2);
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "[chain]\nnetuid = 7\n[train]\ninner_steps = 4\n").unwrap();
        let c = NodeConfig::load(Some(&path), &["train.inner_steps=5".into(), "model.preset=tiny".into()]).unwrap();
        assert_eq!(c.chain.netuid, 7);
        assert_eq!(c.train.inner_steps, 5);
        assert_eq!(c.model.preset, model::Preset::Tiny);
        // Round trip through the printed form.
        let again: NodeConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(NodeConfig::load(None, &["train.inner_stepz=5".into()]).is_err());
        assert!(NodeConfig::load(None, &["train.inner_steps=lots".into()]).is_err());
        assert!(NodeConfig::load(None, &["nonsense".into()]).is_err());
        assert!(NodeConfig::load(None, &["model.preset=3b".into()]).is_err());
        assert!(NodeConfig::load(None, &["model.device=tpu".into()]).is_err());
        assert!(NodeConfig::load(None, &["codec.index_coding=zip".into()]).is_err());
        assert!(NodeConfig::load(None, &["protocol.put_blocks=500".into()]).is_err());
        assert!(NodeConfig::load(Some(Path::new("/nonexistent/node.toml")), &[]).is_err());
    }
}
