//! What a miner and a validator share: the chain connection and hotkey, the node's own bucket and
//! its on-chain credentials, the model replica and data, the peer list, debug slices, and the
//! node's persisted state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chain::client::{BlockClock, Client};
use chain::wallet::{Keypair, PasswordSource, Wallet};
use compression::wire::{self, Header, IndexCoding, Payload};
use compression::{Aggregation, Manifest, SparseParam};
use model::data::shards::Dataset;
use model::{checkpoint, Llama, LlamaConfig, Trainer};
use tch::Device;

use crate::catchup;
use crate::config::{DeviceChoice, NodeConfig};
use crate::replica::Replica;
use crate::roster::{Leader, Roster};
use crate::signed::{self, DebugSlice, PeerList};
use crate::storage::{
    AccessKey, Bucket, BucketCredentials, BucketKeys, DatasetUrl, Endpoint, Gatherer, ObjectKey, Publisher, Version,
    WindowTiming, S3,
};

/// A running node.
pub struct Node {
    pub config: NodeConfig,
    pub chain: Client,
    pub hotkey: Keypair,
    pub uid: u16,
    pub netuid: u16,
    pub timing: WindowTiming,
    pub version: Version,
    pub endpoint: Endpoint,
    pub s3: S3,
    /// The node's own bucket, with the write key.
    pub bucket: Bucket,
    /// The read credentials committed on chain.
    pub credentials: BucketCredentials,
    pub gatherer: Gatherer,
    pub manifest: Arc<Manifest>,
    pub data: Dataset,
    pub replica: Replica,
    pub index_coding: IndexCoding,
    pub aggregation: Aggregation,
    /// Outer steps applied.
    pub global_step: u64,
    /// Last window whose outer step the model includes.
    pub last_window: Option<u64>,
    /// The checkpoint this node last published as the leader: its window and global step.
    pub published_checkpoint: Option<(u64, u64)>,
}

/// What [`Node::catch_up`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// The leader's checkpoint loaded first: its window and global step.
    pub checkpoint: Option<(u64, u64)>,
    /// Windows whose bundles were replayed.
    pub replayed: Vec<u64>,
    /// Windows with no bundle that were passed over because a later one existed.
    pub skipped: Vec<u64>,
}

const EF_FILE: &str = "error_feedback.safetensors";
const EF_TENSOR: &str = "error_feedback";

/// Where a node keeps its own state between runs.
pub fn checkpoint_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("checkpoint")
}

fn device_of(choice: DeviceChoice) -> Result<Device> {
    Ok(match choice {
        DeviceChoice::Cpu => Device::Cpu,
        DeviceChoice::Cuda if tch::Cuda::is_available() => Device::Cuda(0),
        DeviceChoice::Cuda => bail!("model.device = cuda, but libtorch sees no CUDA device"),
        DeviceChoice::Auto => Device::cuda_if_available(),
    })
}

/// The hotkey named by the configuration's wallet section.
pub fn load_hotkey(config: &NodeConfig) -> Result<Keypair> {
    let w = &config.wallet;
    let wallet = Wallet::resolve(Some(&w.name), Some(&w.hotkey), w.path.as_deref())?;
    let pw = PasswordSource { file: None, no_prompt: true };
    wallet.hotkey(&pw).with_context(|| format!("loading hotkey {}/{}", w.name, w.hotkey))
}

/// The node's bucket keys from the storage section.
pub fn bucket_keys(config: &NodeConfig) -> Result<(Endpoint, BucketKeys)> {
    let s = &config.storage;
    if s.account_id.is_empty() || s.write_key_id.is_empty() || s.read_key_id.is_empty() {
        bail!("storage.account_id, storage.write_key_id/write_secret and storage.read_key_id/read_secret are required");
    }
    let endpoint = Endpoint::from_config(&s.endpoint, &s.region);
    let keys = BucketKeys {
        account_id: s.account_id.clone(),
        write: AccessKey::new(&s.write_key_id, &s.write_secret),
        read: AccessKey::new(&s.read_key_id, &s.read_secret),
    };
    Ok((endpoint, keys))
}

/// Mirrors the dataset `dataset.source` names into `model.data` (verified, resumable).
async fn mirror_dataset(s3: &S3, config: &NodeConfig) -> Result<()> {
    let d = &config.dataset;
    let url = DatasetUrl::parse(&d.source)?;
    let bucket =
        s3.bucket(&Endpoint::from_config(&d.endpoint, &d.region), &url.bucket, &AccessKey::new(&d.key_id, &d.secret));
    let done = crate::storage::dataset::mirror(&bucket, &url, &config.model.data)
        .await
        .with_context(|| format!("mirroring the dataset {url} into {}", config.model.data.display()))?;
    tracing::info!(source = %url, downloaded = done.downloaded.len(), kept = done.kept.len(), "dataset ready");
    Ok(())
}

impl Node {
    /// Connects to the chain, checks registration, prepares the bucket (publishing its read
    /// credentials if the chain does not have them yet), and loads the model and data.
    pub async fn start(config: NodeConfig) -> Result<Self> {
        let netuid = config.chain.netuid;
        let chain = Client::connect(&config.chain.network).await.context("connecting to the chain")?;
        let hotkey = load_hotkey(&config)?;
        let uid = chain
            .at_finalized()
            .await?
            .uid_of(netuid, &hotkey.public())
            .await?
            .with_context(|| format!("hotkey {} is not registered on subnet {netuid}", hotkey.ss58()))?;
        let timing = config.protocol.timing();
        let version = config.protocol.version()?;
        let (endpoint, keys) = bucket_keys(&config)?;
        let s3 = S3::default();
        let bucket = s3.writer(&endpoint, &keys);
        bucket.create().await.context("creating the node's bucket")?;
        let credentials = keys.published()?;

        let device = device_of(config.model.device)?;
        let model_config = LlamaConfig::of(config.model.preset);
        let trainer = Trainer::new(Llama::new(model_config, device, config.model.seed)?, config.train.train_config())?;
        let replica = Replica::new(trainer, config.codec.codec())?;
        let manifest = Arc::new(replica.manifest.clone());
        if !config.dataset.source.is_empty() {
            mirror_dataset(&s3, &config).await?;
        }
        let data = Dataset::open(&config.model.data, false)
            .with_context(|| format!("opening the dataset {}", config.model.data.display()))?;
        let (index_coding, aggregation) = (config.codec.index_coding, config.codec.aggregation);
        let mut node = Self {
            gatherer: Gatherer::new(s3.clone(), endpoint.clone()),
            config,
            chain,
            hotkey,
            uid,
            netuid,
            timing,
            version,
            endpoint,
            s3,
            bucket,
            credentials,
            manifest,
            data,
            replica,
            index_coding,
            aggregation,
            global_step: 0,
            last_window: None,
            published_checkpoint: None,
        };
        node.restore()?;
        node.ensure_credentials_committed().await?;
        tracing::info!(
            uid,
            netuid,
            hotkey = %node.hotkey.ss58(),
            params = node.replica.trainer.model.config().num_params(),
            ?device,
            global_step = node.global_step,
            "node ready"
        );
        Ok(node)
    }

    /// Publishes the bucket's read credentials unless the chain already has them.
    async fn ensure_credentials_committed(&self) -> Result<()> {
        let on_chain = self.chain.at_finalized().await?.commitment(self.netuid, &self.hotkey.public()).await?;
        let current = on_chain.as_ref().and_then(|c| crate::storage::PeerCommitment::parse(c).ok());
        if current.map(|c| c.credentials) != Some(self.credentials.clone()) {
            self.publisher().commit_credentials().await.context("committing bucket credentials")?;
            tracing::info!(bucket = self.credentials.bucket(), "bucket credentials committed on chain");
        }
        Ok(())
    }

    pub fn publisher(&self) -> Publisher<'_> {
        Publisher {
            chain: &self.chain,
            hotkey: &self.hotkey,
            netuid: self.netuid,
            uid: self.uid,
            bucket: &self.bucket,
            credentials: &self.credentials,
            timing: self.timing,
            version: self.version.clone(),
        }
    }

    pub fn key(&self, key: ObjectKey) -> String {
        key.with_version(self.version.clone()).to_string()
    }

    /// The window the chain is in, by `clock`.
    pub fn current_window(&self, clock: &BlockClock) -> u64 {
        self.timing.window_of(protocol::Block(clock.block())).0
    }

    /// Waits until window `window`'s put window opens (the chain enters `window + 1`).
    pub async fn wait_for_put_window(&self, clock: &mut BlockClock, window: u64) -> Result<()> {
        clock.wait_for_block(self.timing.put_window(protocol::Window(window)).opens.0).await?;
        Ok(())
    }

    /// Waits until window `window` can be processed: its put window is over.
    pub async fn wait_until_processable(&self, clock: &mut BlockClock, window: u64) -> Result<()> {
        clock.wait_for_block(self.timing.processable_from(protocol::Window(window)).0).await?;
        Ok(())
    }

    /// Replays the outer steps this node misses before `window` (a restart, a late start), if
    /// any; a failure is logged, and the window goes on with the model as it is.
    pub async fn catch_up_before(&mut self, window: u64) {
        if self.last_window.is_none_or(|l| l + 1 < window) {
            if let Err(e) = self.catch_up(window.saturating_sub(1)).await {
                tracing::warn!(window, "catching up failed: {e:#}");
            }
        }
    }

    /// Encodes a compressed update of `window` as this node's payload (unsigned; the publisher
    /// signs it).
    pub fn encode_payload(&self, window: u64, params: Vec<SparseParam>) -> Result<Vec<u8>> {
        let header = Header {
            netuid: self.netuid,
            uid: self.uid,
            window,
            hotkey: self.hotkey.public().0,
            model: self.manifest.fingerprint(),
        };
        Ok(wire::encode(&Payload { header, params }, &self.manifest, self.index_coding)?)
    }

    /// The subnet at the finalized head (neurons and commitments at one block).
    pub async fn roster(&self) -> Result<Roster> {
        Roster::read(&self.chain, self.netuid).await
    }

    /// Uids that count as validators (not evaluated, not gathered): stake above the threshold.
    pub fn validators(&self, roster: &Roster) -> Vec<u16> {
        roster.validators(self.config.validator.validator_stake_threshold)
    }

    /// The peer list in force for `window`: the leader's latest list whose first effective window
    /// is at most `window`, if its signature verifies.
    pub async fn peer_list(&self, leader: &Leader, window: u64) -> Option<PeerList> {
        let bucket = self.s3.reader(&self.endpoint, &leader.credentials);
        let mut objects = bucket.list("peers_").await.ok()?;
        objects.sort_by(|a, b| b.key.cmp(&a.key));
        let mut best: Option<PeerList> = None;
        for o in objects {
            let Some(ObjectKey::Peers { window: w, version }) = ObjectKey::parse(&o.key) else { continue };
            if version != self.version || w > window {
                continue;
            }
            if best.as_ref().is_some_and(|b| b.first_effective_window >= w) {
                continue;
            }
            let Ok(dl) = bucket.get_capped(&o.key, signed::MAX_SIGNED_OBJECT as u64).await else { continue };
            match signed::open::<PeerList>(&dl.bytes, &leader.hotkey) {
                Ok(list) if list.netuid == self.netuid && list.first_effective_window <= window => {
                    if best.as_ref().is_none_or(|b| list.first_effective_window > b.first_effective_window) {
                        best = Some(list);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(key = o.key, "ignoring a peer list that does not verify: {e}"),
            }
        }
        best
    }

    /// Uploads this node's debug slice for `window` (after its outer step).
    pub async fn publish_debug(&self, window: u64) -> Result<()> {
        let slice = DebugSlice {
            netuid: self.netuid,
            uid: self.uid,
            window,
            global_step: self.global_step,
            params: self.replica.debug_slice()?,
        };
        let bytes = signed::sign(&slice, &self.hotkey)?;
        self.bucket.put(&self.key(ObjectKey::debug(window, self.uid)), bytes.into()).await?;
        Ok(())
    }

    /// Aggregates accepted payloads and applies the outer step; returns the aggregate.
    pub fn apply_gathered(&mut self, updates: &[&[SparseParam]]) -> Result<Option<tch::Tensor>> {
        if updates.is_empty() {
            return Ok(None);
        }
        let g = self.replica.aggregate(updates, self.aggregation)?;
        self.apply_aggregate(&g)?;
        Ok(Some(g))
    }

    /// The outer step `θ ← θ − α·G` with an aggregate already computed.
    pub fn apply_aggregate(&mut self, g: &tch::Tensor) -> Result<()> {
        self.replica.outer_step(g, self.config.protocol.outer_learning_rate)?;
        self.global_step += 1;
        Ok(())
    }

    /// Saves the model, optimizer, error feedback and `extras` (`(file name, bytes)`, e.g. the
    /// validator's scores) after `window`, all in one atomically replaced folder.
    pub fn save(&mut self, window: u64, extras: &[(&str, Vec<u8>)]) -> Result<()> {
        let dir = checkpoint_dir(&self.config.model.state_dir);
        std::fs::create_dir_all(&self.config.model.state_dir)?;
        let ef = self.replica.error_feedback().to_device(Device::Cpu);
        checkpoint::save_with(&dir, &self.replica.trainer, window, self.global_step, |stage| {
            tch::Tensor::write_safetensors(&[(EF_TENSOR, &ef)], stage.join(EF_FILE))?;
            let mut names = vec![EF_FILE.to_string()];
            for (name, bytes) in extras {
                let path = stage.join(name);
                std::fs::write(&path, bytes).map_err(|source| checkpoint::CheckpointError::Io { path, source })?;
                names.push(name.to_string());
            }
            Ok(names)
        })?;
        self.last_window = Some(window);
        Ok(())
    }

    /// A file saved by [`Node::save`] with the current state, if any.
    pub fn saved_extra(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let dir = checkpoint_dir(&self.config.model.state_dir);
        checkpoint::recover(&dir)?;
        if !dir.join(checkpoint::MANIFEST).exists() {
            return Ok(None);
        }
        let m = checkpoint::read_manifest(&dir)?;
        Ok(checkpoint::read_extra(&dir, &m, name)?)
    }

    /// Loads the state saved by [`Node::save`], if any.
    fn restore(&mut self) -> Result<()> {
        let dir = checkpoint_dir(&self.config.model.state_dir);
        checkpoint::recover(&dir)?;
        if !dir.join(checkpoint::MANIFEST).exists() {
            return Ok(());
        }
        let m = checkpoint::load(&dir, &mut self.replica.trainer).context("restoring the node's checkpoint")?;
        if m.files.iter().any(|(f, _)| f == EF_FILE) {
            let ef = tch::Tensor::read_safetensors(dir.join(EF_FILE))?
                .into_iter()
                .find(|(n, _)| n == EF_TENSOR)
                .map(|(_, t)| t)
                .with_context(|| format!("{EF_FILE} has no {EF_TENSOR} tensor"))?;
            self.replica.set_error_feedback(ef.to_device(self.replica.device()))?;
        }
        self.global_step = m.global_step;
        self.last_window = Some(m.window);
        tracing::info!(window = m.window, global_step = m.global_step, "resumed from saved state");
        Ok(())
    }

    /// Brings the model up to window `target` (PROTOCOL.md §7): when the node has no state, or
    /// its state is older than the leader's latest checkpoint and the bundles since its own last
    /// window are gone, it loads that checkpoint; then it replays the leader's bundles of the
    /// windows after its last one, up to `target`. A missing bundle is passed over when a later
    /// one exists (the leader failed that window); the replay stops at the first missing bundle
    /// after which there is none. Does nothing for the leader itself.
    pub async fn catch_up(&mut self, target: u64) -> Result<CaughtUp> {
        let mut done = CaughtUp::default();
        if self.last_window.is_some_and(|w| w >= target) {
            return Ok(done);
        }
        let roster = self.roster().await?;
        let Some(Leader { uid: leader_uid, hotkey: leader_hotkey, credentials }) = roster.leader() else {
            return Ok(done);
        };
        if leader_uid == self.uid {
            return Ok(done);
        }
        let leader = self.s3.reader(&self.endpoint, &credentials);
        let hotkeys = roster.hotkeys();
        let (netuid, version) = (self.netuid, self.version.clone());
        let mut next = self.last_window.map(|w| w + 1);
        // The first bundle this node needs, if the leader still has it.
        let mut first = match next {
            Some(w) => {
                catchup::fetch_bundle(&leader, netuid, &hotkeys, w, &version, &self.manifest).await?.map(|p| (w, p))
            }
            None => None,
        };
        if first.is_none() {
            if let Some(p) = catchup::latest_checkpoint(&leader, &leader_hotkey, netuid, &version).await? {
                let newer = self.last_window.is_none_or(|w| p.window > w);
                if newer && p.window <= target {
                    let scratch = self.config.model.state_dir.join("download");
                    catchup::load_checkpoint(&leader, &p, &mut self.replica.trainer, &scratch).await?;
                    // A fresh inner optimizer starts where the subnet's learning-rate schedule is.
                    let steps = p.global_step * self.config.train.inner_steps as u64;
                    let optimizer = &mut self.replica.trainer.optimizer;
                    optimizer.step = optimizer.step.max(steps);
                    self.global_step = p.global_step;
                    self.last_window = Some(p.window);
                    next = Some(p.window + 1);
                    done.checkpoint = Some((p.window, p.global_step));
                    tracing::info!(window = p.window, global_step = p.global_step, "loaded the leader's checkpoint");
                }
            }
        }
        let Some(mut window) = next else { return Ok(done) };
        let mut pending_skips = Vec::new();
        while window <= target {
            let bundle = match first.take() {
                Some((w, payloads)) if w == window => Some(payloads),
                _ => catchup::fetch_bundle(&leader, netuid, &hotkeys, window, &version, &self.manifest).await?,
            };
            match bundle {
                Some(payloads) => {
                    let (aggregation, alpha) = (self.aggregation, self.config.protocol.outer_learning_rate);
                    let stepped = tokio::task::block_in_place(|| {
                        catchup::replay(&mut self.replica, window, &payloads, aggregation, alpha)
                    })?;
                    if stepped {
                        self.global_step += 1;
                    }
                    self.last_window = Some(window);
                    done.replayed.push(window);
                    done.skipped.append(&mut pending_skips);
                }
                None => pending_skips.push(window),
            }
            window += 1;
        }
        if !done.replayed.is_empty() || done.checkpoint.is_some() {
            tracing::info!(
                replayed = ?done.replayed,
                skipped = ?done.skipped,
                global_step = self.global_step,
                "caught up with the leader"
            );
        }
        Ok(done)
    }

    /// As the leader: publishes the checkpoint just saved when `checkpoint_frequency` outer steps
    /// have been taken since the last one published (or none was published yet).
    pub async fn publish_checkpoint_if_due(&mut self) -> Result<()> {
        let freq = self.config.protocol.checkpoint_frequency.max(1);
        let due = self.published_checkpoint.is_none_or(|(_, step)| self.global_step >= step + freq);
        if due {
            let dir = checkpoint_dir(&self.config.model.state_dir);
            let p = catchup::publish_checkpoint(&self.bucket, &self.hotkey, self.netuid, &self.version, &dir).await?;
            tracing::info!(window = p.window, global_step = p.global_step, key = p.key, "checkpoint published");
            self.published_checkpoint = Some((p.window, p.global_step));
        }
        Ok(())
    }

    /// A block clock following finalized heads.
    pub async fn clock(&self) -> Result<BlockClock> {
        Ok(self.chain.clock().await?)
    }
}
