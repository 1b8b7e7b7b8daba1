//! A client for subtensor (finney, test, or a local dev chain) over subxt's dynamic API: metadata
//! is read from the node at run time; pallet, call, storage and runtime-API names are resolved
//! against it. Connection loss is survived by subxt's reconnecting RPC client (exponential
//! back-off), and reads are retried when they fail because of a reconnect.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chain::client::ChainError> {
//! let client = chain::client::Client::connect("finney").await?;
//! let mg = client.metagraph(3).await?;
//! println!("{} neurons at block {}", mg.n(), mg.block);
//! # Ok(()) }
//! ```

pub mod calls;
pub mod clock;
pub mod commitments;
pub mod error;
pub mod metagraph;
pub mod weights;

pub use calls::{AdminCall, Axon, Payload};
pub use clock::{window_of, window_start, BlockClock};
pub use commitments::{Commitment, Field};
pub use error::ChainError;
pub use metagraph::{Metagraph, Neuron};

use crate::wallet::{Keypair, PublicKey};
use std::future::Future;
use std::time::Duration;
use subxt::config::{DefaultExtrinsicParamsBuilder, SubstrateConfig};
use subxt::dynamic;
use subxt::rpcs::client::reconnecting_rpc_client::ExponentialBackoff;
use subxt::rpcs::client::{ReconnectingRpcClient, RpcClient};
use subxt::rpcs::rpc_params;
use subxt::transactions::{TransactionInvalid, ValidationResult};
use subxt::utils::{AccountId32, MultiSignature};
use subxt::OnlineClient;

/// The subxt configuration used for subtensor (sr25519 `MultiSignature`, `AccountId32`, BLAKE2).
pub type Config = SubstrateConfig;

/// bittensor's public endpoints (as in the Python SDK's settings).
pub const FINNEY_URL: &str = "wss://entrypoint-finney.opentensor.ai:443";
pub const TEST_URL: &str = "wss://test.finney.opentensor.ai:443";
pub const LOCAL_URL: &str = "ws://127.0.0.1:9944";

/// 1 TAO in rao.
pub const RAO_PER_TAO: u64 = 1_000_000_000;

/// `finney`, `test`, `local` (or `localnet`), or a `ws://`/`wss://` URL.
pub fn resolve_network(network_or_url: &str) -> Result<String, ChainError> {
    let s = network_or_url.trim();
    match s {
        "finney" | "main" | "mainnet" => Ok(FINNEY_URL.into()),
        "test" | "testnet" => Ok(TEST_URL.into()),
        "local" | "localnet" => Ok(LOCAL_URL.into()),
        _ if s.starts_with("ws://") || s.starts_with("wss://") => Ok(s.into()),
        _ => Err(ChainError::UnknownNetwork(s.into())),
    }
}

/// Parses a TAO amount (`1`, `0.5`, `12.000000001`) into rao without floating point.
pub fn parse_tao(s: &str) -> Result<u64, ChainError> {
    let bad = || ChainError::BadArgument(format!("{s:?} is not an amount of TAO (up to 9 decimals)"));
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || frac.len() > 9
        || !(int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()))
    {
        return Err(bad());
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().map_err(|_| bad())? };
    int.checked_mul(RAO_PER_TAO).and_then(|r| r.checked_add(frac)).ok_or_else(bad)
}

/// Formats rao as TAO with 9 decimals.
pub fn format_tao(rao: u64) -> String {
    format!("{}.{:09}", rao / RAO_PER_TAO, rao % RAO_PER_TAO)
}

/// Knobs for connecting and submitting.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long the first connection may take (attempts back off exponentially up to 10 s).
    /// Once connected, a lost connection is re-made for as long as it takes.
    pub connect_timeout: Duration,
    /// Timeout of one RPC request.
    pub request_timeout: Duration,
    /// How long to wait for a transaction to be finalized.
    pub finalize_timeout: Duration,
    /// Transactions are valid for this many blocks after the block they were built on.
    pub mortality_blocks: u64,
    /// Retries of a read that failed because the connection dropped.
    pub read_retries: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            finalize_timeout: Duration::from_secs(180),
            mortality_blocks: 64,
            read_retries: 5,
        }
    }
}

/// A transaction that made it into a finalized block and succeeded.
#[derive(Debug)]
pub struct Included {
    pub block_hash: subxt::config::substrate::H256,
    pub block: u64,
    pub events: subxt::extrinsics::ExtrinsicEvents<Config>,
}

impl Included {
    /// Decodes the fields of the first event `pallet::name` of this transaction.
    pub fn event_fields<E: scale_decode::DecodeAsFields>(
        &self,
        pallet: &str,
        name: &str,
    ) -> Option<Result<E, ChainError>> {
        self.events.iter().flatten().find(|ev| ev.pallet_name() == pallet && ev.event_name() == name).map(|ev| {
            ev.decode_fields_unchecked_as::<E>().map_err(|e| ChainError::decode(format!("event {pallet}.{name}"), e))
        })
    }
}

/// A hotkey's stake change (from `StakeAdded`/`StakeRemoved`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StakeChange {
    pub tao: u64,
    pub alpha: u64,
    pub fee: u64,
}

/// The outcome of [`Client::set_weights_auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WeightsSet {
    /// The block of `set_weights`, or of `reveal_weights`.
    pub block: u64,
    /// The block of the commit, when the subnet required commit-reveal.
    pub committed_at: Option<u64>,
}

fn is_too_early_rejection(e: &ChainError) -> bool {
    // subtensor's pool refuses an early reveal with Custom error 17.
    matches!(e, ChainError::Rejected { reason, .. } if reason.contains("Custom error 17") || reason.contains("Custom error: 17"))
}

/// A commit-reveal v2 commit waiting to be revealed: keep it until the reveal epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingReveal {
    pub netuid: u16,
    pub uids: Vec<u16>,
    pub values: Vec<u16>,
    pub salt: Vec<u16>,
    pub version_key: u64,
    /// The block the commit was included in.
    pub commit_block: u64,
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
}

mod hex_32 {
    pub fn serialize<S: serde::Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(h)))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        let b = hex::decode(s.trim_start_matches("0x")).map_err(serde::de::Error::custom)?;
        b.try_into().map_err(|_| serde::de::Error::custom("expected 32 bytes"))
    }
}

/// Signs transactions with an sr25519 wallet key (for subxt).
pub struct WalletSigner<'a>(pub &'a Keypair);

impl subxt::transactions::Signer<Config> for WalletSigner<'_> {
    fn account_id(&self) -> AccountId32 {
        AccountId32(self.0.public().0)
    }
    fn sign(&self, payload: &[u8]) -> MultiSignature {
        MultiSignature::Sr25519(self.0.sign(payload))
    }
}

/// A connected client. Cheap to clone (all clones share one connection).
#[derive(Clone)]
pub struct Client {
    api: OnlineClient<Config>,
    rpc: RpcClient,
    url: String,
    opts: ClientOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.url).finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `finney`, `test`, `local` or a URL with default options.
    pub async fn connect(network_or_url: &str) -> Result<Self, ChainError> {
        Self::connect_with(network_or_url, ClientOptions::default()).await
    }

    pub async fn connect_with(network_or_url: &str, opts: ClientOptions) -> Result<Self, ChainError> {
        let url = resolve_network(network_or_url)?;
        let connect_err = |reason: String| ChainError::Connect { url: url.clone(), reason };
        let policy = ExponentialBackoff::from_millis(100).max_delay(Duration::from_secs(10));
        let build =
            ReconnectingRpcClient::builder().retry_policy(policy).request_timeout(opts.request_timeout).build(&url);
        let inner = tokio::time::timeout(opts.connect_timeout, build)
            .await
            .map_err(|_| connect_err(format!("no connection within {} s", opts.connect_timeout.as_secs_f32())))?
            .map_err(|e| connect_err(e.to_string()))?;
        let rpc = RpcClient::new(inner);
        let api = OnlineClient::<Config>::from_rpc_client(rpc.clone()).await.map_err(|e| connect_err(e.to_string()))?;
        tracing::debug!(%url, "connected");
        Ok(Self { api, rpc, url, opts })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying subxt client (for reads this type does not wrap).
    pub fn api(&self) -> &OnlineClient<Config> {
        &self.api
    }

    /// Runs a read, retrying when it failed because the connection dropped and is being re-made.
    async fn read<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ChainError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, subxt::Error>>,
    {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            let transient = match tokio::time::timeout(self.opts.request_timeout, f()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if e.is_disconnected_will_reconnect() => ChainError::rpc(what, e),
                Ok(Err(e)) => return Err(ChainError::rpc(what, e)),
                // No answer (the node is down and the connection is being re-made).
                Err(_) => ChainError::Timeout { what: what.to_string(), secs: self.opts.request_timeout.as_secs() },
            };
            if attempt >= self.opts.read_retries {
                return Err(transient);
            }
            attempt += 1;
            tracing::warn!(what, attempt, error = %transient, "retrying after the connection is re-made");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// The latest finalized block number.
    pub async fn finalized_block(&self) -> Result<u64, ChainError> {
        self.read("the finalized block", || async { Ok(self.api.at_current_block().await?.block_number()) }).await
    }

    /// The hash of block `number` (`chain_getBlockHash`): public randomness everyone agrees on once
    /// the block is final (validators seed their evaluation samples with it).
    pub async fn block_hash(&self, number: u64) -> Result<[u8; 32], ChainError> {
        let hash: Option<String> = self
            .rpc
            .request("chain_getBlockHash", rpc_params![number])
            .await
            .map_err(|e| ChainError::rpc("chain_getBlockHash", e))?;
        let hash = hash.ok_or_else(|| ChainError::decode(format!("block {number}"), "no such block"))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hash.trim_start_matches("0x"), &mut out)
            .map_err(|e| ChainError::decode(format!("hash of block {number}: {hash:?}"), e))?;
        Ok(out)
    }

    /// The chain's name (`system_chain`).
    pub async fn chain_name(&self) -> Result<String, ChainError> {
        self.rpc.request::<String>("system_chain", rpc_params![]).await.map_err(|e| ChainError::rpc("system_chain", e))
    }

    /// A stream of finalized block numbers (`chain_subscribeFinalizedHeads`).
    pub async fn finalized_heads(
        &self,
    ) -> Result<impl subxt::ext::futures::Stream<Item = Result<u64, ChainError>> + Unpin, ChainError> {
        use subxt::ext::futures::StreamExt;
        #[derive(serde::Deserialize)]
        struct Header {
            number: String,
        }
        let sub = self
            .rpc
            .subscribe::<Header>("chain_subscribeFinalizedHeads", rpc_params![], "chain_unsubscribeFinalizedHeads")
            .await
            .map_err(|e| ChainError::rpc("chain_subscribeFinalizedHeads", e))?;
        Ok(sub.map(|h| {
            let h = h.map_err(|e| ChainError::rpc("finalized heads", e))?;
            u64::from_str_radix(h.number.trim_start_matches("0x"), 16)
                .map_err(|e| ChainError::decode(format!("block number {:?}", h.number), e))
        }))
    }

    /// Starts a block/window clock on finalized heads.
    pub async fn clock(&self) -> Result<BlockClock, ChainError> {
        BlockClock::start(self).await
    }

    /// Waits until the finalized block is at least `block` (polling; for one-off waits).
    pub async fn wait_for_block(&self, block: u64, timeout: Duration) -> Result<u64, ChainError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let now = self.finalized_block().await?;
            if now >= block {
                return Ok(now);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChainError::Timeout { what: format!("block {block} (at {now})"), secs: timeout.as_secs() });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // ----- transactions -------------------------------------------------------------------

    async fn next_nonce(&self, who: &PublicKey) -> Result<u64, ChainError> {
        // The pool-aware nonce; fall back to the runtime's view at the finalized block.
        match self.rpc.request::<u64>("system_accountNextIndex", rpc_params![who.ss58()]).await {
            Ok(n) => Ok(n),
            Err(e) => {
                tracing::debug!(error = %e, "system_accountNextIndex failed; asking the runtime");
                self.read("the account nonce", || async {
                    Ok(self.api.at_current_block().await?.tx().account_nonce(&AccountId32(who.0)).await?)
                })
                .await
            }
        }
    }

    /// Signs `call` with `signer`, submits it, waits until it is finalized, and checks that it
    /// succeeded (including the inner call of `Sudo.sudo`). Failures are [`ChainError::Dispatch`]
    /// with an explanation, or [`ChainError::Rejected`] when the node refused the transaction.
    pub async fn submit(&self, call: &Payload, signer: &Keypair) -> Result<Included, ChainError> {
        let limit = self.opts.request_timeout + self.opts.finalize_timeout;
        tokio::time::timeout(limit, self.submit_unbounded(call, signer)).await.map_err(|_| ChainError::Timeout {
            what: format!("{} to be submitted and finalized", call.call_name()),
            secs: limit.as_secs(),
        })?
    }

    async fn submit_unbounded(&self, call: &Payload, signer: &Keypair) -> Result<Included, ChainError> {
        let name = call.call_name().to_string();
        let rejected = |e: &dyn std::fmt::Display| ChainError::Rejected {
            call: name.clone(),
            reason: error::explain_rejection(&e.to_string()),
        };
        let nonce = self.next_nonce(&signer.public()).await?;
        let params =
            DefaultExtrinsicParamsBuilder::<Config>::new().nonce(nonce).mortal(self.opts.mortality_blocks).build();
        let at = self.read("the current block", || async { Ok(self.api.at_current_block().await?) }).await?;
        let mut tx = at.tx();
        let signed = tx.create_signed(call, &WalletSigner(signer), params).await.map_err(|e| rejected(&e))?;
        // Dry-run validation first: it names the reason a node would drop the transaction (fees,
        // nonce, subtensor's pool checks), which some nodes' submission errors do not carry.
        match signed.validate().await {
            Ok(ValidationResult::Invalid(TransactionInvalid::Future)) | Ok(ValidationResult::Valid(_)) => {}
            Ok(ValidationResult::Invalid(why)) => {
                return Err(ChainError::Rejected { call: name, reason: error::describe_invalid(&why) })
            }
            Ok(ValidationResult::Unknown(why)) => {
                return Err(ChainError::Rejected { call: name, reason: format!("validity unknown: {why:?}") })
            }
            Err(e) => tracing::debug!(error = %e, "could not dry-run the transaction; submitting anyway"),
        }
        let progress = signed.submit_and_watch().await.map_err(|e| rejected(&e))?;
        let secs = self.opts.finalize_timeout.as_secs();
        let in_block = tokio::time::timeout(self.opts.finalize_timeout, progress.wait_for_finalized())
            .await
            .map_err(|_| ChainError::Timeout { what: format!("{name} to be finalized"), secs })?
            .map_err(|e| rejected(&e))?;
        let events = in_block.fetch_events().await.map_err(|e| ChainError::rpc(format!("events of {name}"), e))?;
        let block_at = in_block.at().await.map_err(|e| ChainError::rpc(format!("the block of {name}"), e))?;
        let metadata = block_at.metadata();
        for ev in events.iter() {
            let ev = ev.map_err(|e| ChainError::decode(format!("events of {name}"), e))?;
            let failed = match (ev.pallet_name(), ev.event_name()) {
                ("System", "ExtrinsicFailed") => Some(ev.field_bytes()),
                // Sudid { sudo_result: Result<(), DispatchError> }: 0x01 ‖ error when the inner call failed.
                ("Sudo", "Sudid") => ev.field_bytes().strip_prefix(&[1u8]),
                _ => None,
            };
            if let Some(bytes) = failed {
                let err = subxt::error::DispatchError::decode_from(bytes, metadata.clone())
                    .map_err(|e| ChainError::decode(format!("the error of {name}"), e))?;
                return Err(dispatch_error(&name, err));
            }
        }
        Ok(Included { block_hash: in_block.block_hash(), block: block_at.block_number(), events })
    }

    /// Runs an `AdminUtils` call as root through `Sudo.sudo` (local chains: the sudo key is //Alice).
    pub async fn sudo(&self, call: AdminCall, sudo_key: &Keypair) -> Result<Included, ChainError> {
        self.submit(&calls::sudo(call.payload()), sudo_key).await
    }

    /// Runs an `AdminUtils` call signed by a subnet owner (for the calls owners may make).
    pub async fn admin(&self, call: AdminCall, owner: &Keypair) -> Result<Included, ChainError> {
        self.submit(&call.payload(), owner).await
    }

    /// Registers `hotkey` on `netuid` by burning TAO from `coldkey`; returns the uid.
    pub async fn burned_register(&self, coldkey: &Keypair, netuid: u16, hotkey: &PublicKey) -> Result<u16, ChainError> {
        let inc = self.submit(&calls::burned_register(netuid, hotkey), coldkey).await?;
        match inc.event_fields::<(u16, u16, [u8; 32])>(calls::SUBTENSOR, "NeuronRegistered") {
            Some(r) => Ok(r?.1),
            None => self.uid_of(netuid, hotkey).await?.ok_or_else(|| {
                ChainError::decode("burned_register", "no NeuronRegistered event and the hotkey has no uid")
            }),
        }
    }

    /// Creates a subnet owned by `coldkey` with `hotkey` as uid 0; returns its netuid.
    pub async fn register_network(&self, coldkey: &Keypair, hotkey: &PublicKey) -> Result<u16, ChainError> {
        let inc = self.submit(&calls::register_network(hotkey), coldkey).await?;
        match inc.event_fields::<(u16, u16)>(calls::SUBTENSOR, "NetworkAdded") {
            Some(r) => Ok(r?.0),
            None => Err(ChainError::decode("register_network", "no NetworkAdded event")),
        }
    }

    /// Starts emissions and staking on a subnet (its owner's coldkey signs).
    pub async fn start_call(&self, coldkey: &Keypair, netuid: u16) -> Result<(), ChainError> {
        self.submit(&calls::start_call(netuid), coldkey).await.map(|_| ())
    }

    /// Stakes `tao` rao from `coldkey` to `hotkey` on `netuid`.
    pub async fn add_stake(
        &self,
        coldkey: &Keypair,
        hotkey: &PublicKey,
        netuid: u16,
        tao: u64,
    ) -> Result<StakeChange, ChainError> {
        let inc = self.submit(&calls::add_stake(hotkey, netuid, tao), coldkey).await?;
        stake_event(&inc, "StakeAdded", tao)
    }

    /// Unstakes `alpha` rao of alpha from `hotkey` on `netuid` back to `coldkey`.
    pub async fn remove_stake(
        &self,
        coldkey: &Keypair,
        hotkey: &PublicKey,
        netuid: u16,
        alpha: u64,
    ) -> Result<StakeChange, ChainError> {
        let inc = self.submit(&calls::remove_stake(hotkey, netuid, alpha), coldkey).await?;
        stake_event(&inc, "StakeRemoved", 0)
    }

    /// Transfers `rao` from `from` to `dest` (keeping `from` alive).
    pub async fn transfer(&self, from: &Keypair, dest: &PublicKey, rao: u64) -> Result<Included, ChainError> {
        self.submit(&calls::transfer_keep_alive(dest, rao), from).await
    }

    /// Publishes an axon endpoint for `hotkey` on `netuid`.
    pub async fn serve_axon(&self, hotkey: &Keypair, netuid: u16, axon: &Axon) -> Result<(), ChainError> {
        self.submit(&calls::serve_axon(netuid, axon), hotkey).await.map(|_| ())
    }

    /// Replaces `hotkey`'s commitment on `netuid` with `fields`; returns the block it landed in.
    pub async fn set_commitment(&self, hotkey: &Keypair, netuid: u16, fields: &[Field]) -> Result<u64, ChainError> {
        Ok(self.submit(&calls::set_commitment(netuid, fields)?, hotkey).await?.block)
    }

    /// Sets weights directly (subnets without commit-reveal).
    pub async fn set_weights(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<u64, ChainError> {
        Ok(self.submit(&calls::set_weights(netuid, uids, weights, version_key)?, hotkey).await?.block)
    }

    /// Commit-reveal v2, step 1: commits the hash of the weights with a fresh salt. Keep the
    /// returned [`PendingReveal`] and pass it to [`Self::reveal_weights`] in the reveal epoch.
    pub async fn commit_weights(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
    ) -> Result<PendingReveal, ChainError> {
        if uids.len() != values.len() {
            return Err(ChainError::BadArgument(format!("{} uids but {} weights", uids.len(), values.len())));
        }
        let salt = weights::random_salt(8);
        let hash = weights::commit_hash(&hotkey.public(), netuid, uids, values, &salt, version_key);
        let inc = self.submit(&calls::commit_weights(netuid, &hash), hotkey).await?;
        Ok(PendingReveal {
            netuid,
            uids: uids.to_vec(),
            values: values.to_vec(),
            salt,
            version_key,
            commit_block: inc.block,
            hash,
        })
    }

    /// Commit-reveal v2, step 2.
    pub async fn reveal_weights(&self, hotkey: &Keypair, pending: &PendingReveal) -> Result<u64, ChainError> {
        let call =
            calls::reveal_weights(pending.netuid, &pending.uids, &pending.values, &pending.salt, pending.version_key)?;
        Ok(self.submit(&call, hotkey).await?.block)
    }

    /// Sets weights the way the subnet requires: directly, or (when commit-reveal is on) by a v2
    /// commit, waiting for the reveal epoch, and the reveal. Returns the block of the set or reveal.
    pub async fn set_weights_auto(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
        reveal_timeout: Duration,
    ) -> Result<WeightsSet, ChainError> {
        if !self.commit_reveal_enabled(netuid).await? {
            let block = self.set_weights(hotkey, netuid, uids, weights, version_key).await?;
            return Ok(WeightsSet { block, committed_at: None });
        }
        let pending = self.commit_weights(hotkey, netuid, uids, weights, version_key).await?;
        let block = self.reveal_when_due(hotkey, &pending, reveal_timeout).await?;
        Ok(WeightsSet { block, committed_at: Some(pending.commit_block) })
    }

    /// Reveals a v2 commit as soon as the chain accepts it. Where the chain keeps epochs
    /// (`SubnetEpochIndex`), the reveal epoch is the commit's own epoch (from `WeightCommits`)
    /// plus `RevealPeriodEpochs`: it waits exactly for that one, and says so if it has passed
    /// already. Elsewhere it tries after each `Tempo` blocks. Gives up after `timeout`.
    pub async fn reveal_when_due(
        &self,
        hotkey: &Keypair,
        pending: &PendingReveal,
        timeout: Duration,
    ) -> Result<u64, ChainError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let netuid = pending.netuid;
        if let Some(reveal_epoch) = self.reveal_epoch(netuid, &hotkey.public(), &pending.hash).await? {
            loop {
                let Some(epoch) = self.epoch_index(netuid).await? else { break };
                if epoch > reveal_epoch {
                    return Err(ChainError::BadArgument(format!(
                        "the commit of block {} had to be revealed in epoch {reveal_epoch}; the chain is in epoch {epoch}",
                        pending.commit_block
                    )));
                }
                if epoch == reveal_epoch {
                    return self.reveal_weights(hotkey, pending).await;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ChainError::Timeout { what: "the reveal epoch".into(), secs: timeout.as_secs() });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        loop {
            let epoch = self.epoch_index(netuid).await?;
            let block = self.finalized_block().await?;
            let tempo = u64::from(self.tempo(netuid).await?.max(1));
            // Wait for the next epoch.
            loop {
                if tokio::time::Instant::now() >= deadline {
                    return Err(ChainError::Timeout { what: "the reveal epoch".into(), secs: timeout.as_secs() });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let moved = match epoch {
                    Some(e) => self.epoch_index(netuid).await?.is_some_and(|now| now > e),
                    None => self.finalized_block().await? >= block + tempo,
                };
                if moved {
                    break;
                }
            }
            match self.reveal_weights(hotkey, pending).await {
                Ok(b) => return Ok(b),
                Err(e) if e.dispatch_error_name() == Some("RevealTooEarly") || is_too_early_rejection(&e) => {
                    tracing::info!(netuid, "too early to reveal; waiting for the next epoch")
                }
                Err(e) => return Err(e),
            }
        }
    }

    // ----- reads --------------------------------------------------------------------------

    /// Fetches a storage value (its default when absent); `None` when the chain has no such value
    /// and no default.
    pub async fn storage<K, V>(&self, pallet: &str, entry: &str, keys: K) -> Result<Option<V>, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
        V: scale_decode::DecodeAsType,
    {
        let what = format!("{pallet}.{entry}");
        let at = self.read(&what, || async { Ok(self.api.at_current_block().await?) }).await?;
        fetch_at(&at, pallet, entry, keys).await
    }

    /// The free balance of an account, in rao.
    pub async fn balance(&self, account: &PublicKey) -> Result<u64, ChainError> {
        #[derive(scale_decode::DecodeAsType)]
        struct Account {
            data: Data,
        }
        #[derive(scale_decode::DecodeAsType)]
        struct Data {
            free: u128,
        }
        let a: Option<Account> = self.storage("System", "Account", (account.0,)).await?;
        Ok(a.map(|a| u64::try_from(a.data.free).unwrap_or(u64::MAX)).unwrap_or(0))
    }

    /// The uid of `hotkey` on `netuid`, if registered.
    pub async fn uid_of(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<u16>, ChainError> {
        self.storage(calls::SUBTENSOR, "Uids", (netuid, hotkey.0)).await
    }

    pub async fn subnet_exists(&self, netuid: u16) -> Result<bool, ChainError> {
        Ok(self.storage::<_, bool>(calls::SUBTENSOR, "NetworksAdded", (netuid,)).await?.unwrap_or(false))
    }

    pub async fn commit_reveal_enabled(&self, netuid: u16) -> Result<bool, ChainError> {
        Ok(self.storage::<_, bool>(calls::SUBTENSOR, "CommitRevealWeightsEnabled", (netuid,)).await?.unwrap_or(false))
    }

    pub async fn tempo(&self, netuid: u16) -> Result<u16, ChainError> {
        Ok(self.storage::<_, u16>(calls::SUBTENSOR, "Tempo", (netuid,)).await?.unwrap_or(0))
    }

    pub async fn weights_version_key(&self, netuid: u16) -> Result<u64, ChainError> {
        Ok(self.storage::<_, u64>(calls::SUBTENSOR, "WeightsVersionKey", (netuid,)).await?.unwrap_or(0))
    }

    /// The registration burn of a subnet, in rao.
    pub async fn burn(&self, netuid: u16) -> Result<u64, ChainError> {
        Ok(self.storage::<_, u64>(calls::SUBTENSOR, "Burn", (netuid,)).await?.unwrap_or(0))
    }

    /// The hotkey's alpha stake on the subnet, in rao.
    pub async fn stake_of(&self, hotkey: &PublicKey, netuid: u16) -> Result<u64, ChainError> {
        Ok(self.storage::<_, u64>(calls::SUBTENSOR, "TotalHotkeyAlpha", (hotkey.0, netuid)).await?.unwrap_or(0))
    }

    /// The weights row `uid` set on `netuid` (mechanism 0): `(target uid, weight)`.
    pub async fn weights(&self, netuid: u16, uid: u16) -> Result<Vec<(u16, u16)>, ChainError> {
        Ok(self.storage::<_, Vec<(u16, u16)>>(calls::SUBTENSOR, "Weights", (netuid, uid)).await?.unwrap_or_default())
    }

    /// `LastUpdate` of every uid on `netuid` (mechanism 0).
    pub async fn last_update(&self, netuid: u16) -> Result<Vec<u64>, ChainError> {
        Ok(self.storage::<_, Vec<u64>>(calls::SUBTENSOR, "LastUpdate", (netuid,)).await?.unwrap_or_default())
    }

    /// The epoch in which the v2 commit `hash` of `hotkey` must be revealed: its commit epoch
    /// (`WeightCommits`) plus `RevealPeriodEpochs`. `None` when the chain keeps no such entry
    /// (or no epochs).
    pub async fn reveal_epoch(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
        hash: &[u8; 32],
    ) -> Result<Option<u64>, ChainError> {
        if self.epoch_index(netuid).await?.is_none() {
            return Ok(None);
        }
        /// One entry of `WeightCommits`: (hash, commit epoch, commit block, unused).
        type WeightCommit = ([u8; 32], u64, u64, u64);
        let commits: Option<Vec<WeightCommit>> =
            self.storage(calls::SUBTENSOR, "WeightCommits", (netuid, hotkey.0)).await?;
        let Some(commit_epoch) = commits.unwrap_or_default().iter().find(|c| &c.0 == hash).map(|c| c.1) else {
            return Ok(None);
        };
        let period: Option<u64> = self.storage(calls::SUBTENSOR, "RevealPeriodEpochs", (netuid,)).await?;
        Ok(Some(commit_epoch + period.unwrap_or(1)))
    }

    /// `SubnetEpochIndex(netuid)`, when the chain has it (subtensor since the dynamic tempo).
    pub async fn epoch_index(&self, netuid: u16) -> Result<Option<u64>, ChainError> {
        let at = self.read("the current block", || async { Ok(self.api.at_current_block().await?) }).await?;
        let has = at
            .metadata_ref()
            .pallet_by_name(calls::SUBTENSOR)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name("SubnetEpochIndex"))
            .is_some();
        if !has {
            return Ok(None);
        }
        fetch_at(&at, calls::SUBTENSOR, "SubnetEpochIndex", (netuid,)).await
    }

    /// `SubnetInfoRuntimeApi.get_next_epoch_start_block(netuid)`, when the chain has it.
    pub async fn next_epoch_start_block(&self, netuid: u16) -> Result<Option<u64>, ChainError> {
        let at = self.read("the current block", || async { Ok(self.api.at_current_block().await?) }).await?;
        if !has_runtime_api(at.metadata_ref(), "SubnetInfoRuntimeApi", "get_next_epoch_start_block") {
            return Ok(None);
        }
        let call = dynamic::runtime_api_call::<_, Option<u64>>(
            "SubnetInfoRuntimeApi",
            "get_next_epoch_start_block",
            (netuid,),
        );
        at.runtime_apis().call(call).await.map_err(|e| ChainError::rpc("get_next_epoch_start_block", e))
    }

    /// Every commitment on `netuid` (all `CommitmentOf(netuid, *)` entries), sorted by hotkey.
    pub async fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>, ChainError> {
        let what = format!("the commitments of subnet {netuid}");
        let raw = self
            .read(&what, || async {
                let at = self.api.at_current_block().await?;
                let addr = dynamic::storage::<(u16, [u8; 32]), dynamic::Value>("Commitments", "CommitmentOf");
                let mut it = at.storage().iter(addr, (netuid,)).await?;
                let mut out = Vec::new();
                while let Some(kv) = it.next().await {
                    let kv = kv?;
                    let hotkey = kv.key()?.part(1).map(|p| p.decode_as::<[u8; 32]>());
                    let value = kv.value().decode_as::<dynamic::Value>();
                    out.push((hotkey, value));
                }
                Ok(out)
            })
            .await?;
        let mut list = Vec::with_capacity(raw.len());
        for (hotkey, value) in raw {
            let hotkey = match hotkey {
                Some(Ok(Some(h))) => PublicKey(h),
                other => return Err(ChainError::decode(&what, format!("a key without a hotkey: {other:?}"))),
            };
            let value = value.map_err(|e| ChainError::decode(&what, e))?;
            list.push(commitments::decode_registration(hotkey, &value)?);
        }
        list.sort_by_key(|c| c.hotkey);
        Ok(list)
    }

    /// One hotkey's commitment on `netuid`.
    pub async fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Commitment>, ChainError> {
        let v: Option<dynamic::Value> = self.storage("Commitments", "CommitmentOf", (netuid, hotkey.0)).await?;
        v.map(|v| commitments::decode_registration(*hotkey, &v)).transpose()
    }

    /// The metagraph of `netuid`: through `SubnetInfoRuntimeApi.get_metagraph` when the chain
    /// has it, else from storage. Errors when the subnet does not exist.
    pub async fn metagraph(&self, netuid: u16) -> Result<Metagraph, ChainError> {
        let at = self.read("the current block", || async { Ok(self.api.at_current_block().await?) }).await?;
        if !has_runtime_api(at.metadata_ref(), "SubnetInfoRuntimeApi", "get_metagraph") {
            return self.metagraph_from_storage(netuid).await;
        }
        let call = dynamic::runtime_api_call::<_, Option<metagraph::RuntimeMetagraph>>(
            "SubnetInfoRuntimeApi",
            "get_metagraph",
            (netuid,),
        );
        let got =
            at.runtime_apis().call(call).await.map_err(|e| ChainError::rpc("SubnetInfoRuntimeApi.get_metagraph", e))?;
        let m = got.ok_or_else(|| ChainError::BadArgument(format!("subnet {netuid} does not exist")))?;
        Ok(metagraph::Columns::from(m).into_metagraph(netuid, at.block_number(), metagraph::Source::RuntimeApi))
    }

    /// The metagraph read from storage items, all at one block.
    pub async fn metagraph_from_storage(&self, netuid: u16) -> Result<Metagraph, ChainError> {
        use subxt::ext::futures::future::try_join_all;
        let at = self.read("the current block", || async { Ok(self.api.at_current_block().await?) }).await?;
        let st = calls::SUBTENSOR;
        if !fetch_at::<_, bool>(&at, st, "NetworksAdded", (netuid,)).await?.unwrap_or(false) {
            return Err(ChainError::BadArgument(format!("subnet {netuid} does not exist")));
        }
        let n: u16 = fetch_at(&at, st, "SubnetworkN", (netuid,)).await?.unwrap_or(0);
        let uids: Vec<u16> = (0..n).collect();
        let hotkeys: Vec<[u8; 32]> =
            try_join_all(uids.iter().map(|uid| fetch_at::<_, [u8; 32]>(&at, st, "Keys", (netuid, *uid))))
                .await?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
        let coldkeys = try_join_all(hotkeys.iter().map(|h| fetch_at::<_, [u8; 32]>(&at, st, "Owner", (*h,))));
        let stake = try_join_all(hotkeys.iter().map(|h| fetch_at::<_, u64>(&at, st, "TotalHotkeyAlpha", (*h, netuid))));
        let registered =
            try_join_all(uids.iter().map(|uid| fetch_at::<_, u64>(&at, st, "BlockAtRegistration", (netuid, *uid))));
        let (coldkeys, stake, registered) = tokio::try_join!(coldkeys, stake, registered)?;
        let flags = |e: &'static str| fetch_at::<_, Vec<bool>>(&at, st, e, (netuid,));
        let u16s = |e: &'static str| fetch_at::<_, Vec<u16>>(&at, st, e, (netuid,));
        let u64s = |e: &'static str| fetch_at::<_, Vec<u64>>(&at, st, e, (netuid,));
        let (active, permit, last_update, emission, dividends, incentive) = tokio::try_join!(
            flags("Active"),
            flags("ValidatorPermit"),
            u64s("LastUpdate"),
            u64s("Emission"),
            u16s("Dividends"),
            u16s("Incentive"),
        )?;
        let stake: Vec<u64> = stake.into_iter().map(Option::unwrap_or_default).collect();
        let columns = metagraph::Columns {
            hotkeys,
            coldkeys: coldkeys.into_iter().map(Option::unwrap_or_default).collect(),
            active: active.unwrap_or_default(),
            validator_permit: permit.unwrap_or_default(),
            last_update: last_update.unwrap_or_default(),
            emission: emission.unwrap_or_default(),
            dividends: dividends.unwrap_or_default(),
            incentives: incentive.unwrap_or_default(),
            block_at_registration: registered.into_iter().map(Option::unwrap_or_default).collect(),
            alpha_stake: stake.clone(),
            total_stake: stake,
        };
        Ok(columns.into_metagraph(netuid, at.block_number(), metagraph::Source::Storage))
    }
}

type AtBlock = subxt::client::ClientAtBlock<Config, subxt::client::OnlineClientAtBlockImpl<Config>>;

async fn fetch_at<K, V>(at: &AtBlock, pallet: &str, entry: &str, keys: K) -> Result<Option<V>, ChainError>
where
    K: subxt::ext::frame_decode::storage::IntoEncodableValues + subxt::ext::frame_decode::storage::IntoDecodableValues,
    V: scale_decode::DecodeAsType,
{
    let what = format!("{pallet}.{entry}");
    let addr = dynamic::storage::<K, V>(pallet, entry);
    let v = at.storage().try_fetch(addr, keys).await.map_err(|e| ChainError::rpc(&what, e))?;
    v.map(|v| v.decode().map_err(|e| ChainError::decode(&what, e))).transpose()
}

fn has_runtime_api(md: &subxt::Metadata, api: &str, method: &str) -> bool {
    md.runtime_api_trait_by_name(api).and_then(|t| t.method_by_name(method)).is_some()
}

fn stake_event(inc: &Included, name: &str, fallback_tao: u64) -> Result<StakeChange, ChainError> {
    // (coldkey, hotkey, tao, alpha, netuid, fee)
    match inc.event_fields::<([u8; 32], [u8; 32], u64, u64, u16, u64)>(calls::SUBTENSOR, name) {
        Some(r) => {
            let (_, _, tao, alpha, _, fee) = r?;
            Ok(StakeChange { tao, alpha, fee })
        }
        None => Ok(StakeChange { tao: fallback_tao, alpha: 0, fee: 0 }),
    }
}

/// A dispatch error as a sentence.
fn dispatch_error(call: &str, err: subxt::error::DispatchError) -> ChainError {
    use subxt::error::DispatchError as D;
    match &err {
        D::Module(m) => match m.details() {
            Ok(d) => {
                let pallet = d.pallet.name().to_string();
                let name = d.variant.name.clone();
                let sentence = error::sentence(&pallet, &name)
                    .map(str::to_string)
                    .or_else(|| d.variant.docs.iter().map(|l| l.trim()).find(|l| !l.is_empty()).map(str::to_string))
                    .unwrap_or_else(|| format!("{pallet} refused the call"));
                ChainError::Dispatch { call: call.to_string(), pallet, error: name, sentence }
            }
            Err(_) => ChainError::Dispatch {
                call: call.to_string(),
                pallet: String::new(),
                error: "UnknownModuleError".into(),
                sentence: m.to_string(),
            },
        },
        D::BadOrigin => ChainError::Dispatch {
            call: call.to_string(),
            pallet: String::new(),
            error: "BadOrigin".into(),
            sentence: "the signer is not allowed to make this call".into(),
        },
        other => ChainError::Dispatch {
            call: call.to_string(),
            pallet: String::new(),
            error: format!("{other:?}").split(['(', ' ']).next().unwrap_or("DispatchError").to_string(),
            sentence: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_resolve() {
        assert_eq!(resolve_network("finney").unwrap(), FINNEY_URL);
        assert_eq!(resolve_network("test").unwrap(), TEST_URL);
        assert_eq!(resolve_network("local").unwrap(), LOCAL_URL);
        assert_eq!(resolve_network("ws://1.2.3.4:9944").unwrap(), "ws://1.2.3.4:9944");
        assert!(matches!(resolve_network("mars"), Err(ChainError::UnknownNetwork(_))));
    }

    #[test]
    fn tao_amounts_parse_exactly() {
        assert_eq!(parse_tao("1").unwrap(), RAO_PER_TAO);
        assert_eq!(parse_tao("0.5").unwrap(), RAO_PER_TAO / 2);
        assert_eq!(parse_tao(".000000001").unwrap(), 1);
        assert_eq!(parse_tao("12.000000001").unwrap(), 12 * RAO_PER_TAO + 1);
        for bad in ["", ".", "1.0000000001", "-1", "1e9", "abc", "99999999999999999999"] {
            assert!(parse_tao(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(format_tao(1_500_000_000), "1.500000000");
    }
}
