//! A client for subtensor (finney, test, or a local dev chain) over subxt's dynamic API: metadata
//! is read from the node at run time; pallet, call, storage and runtime-API names are resolved
//! against it. Connection loss is survived by subxt's reconnecting RPC client (exponential
//! back-off), and reads are retried when they fail because of a reconnect.
//!
//! Modelled on subxt's `OnlineClient`: [`Client`] holds the connection and the block clock; reads
//! go through [`Client::at`] / [`Client::at_finalized`] ([`ChainAt`]: every read at one block),
//! transactions through [`Client::tx`] ([`Transactions`]), and setting weights through
//! [`Client::weights`] ([`Weights`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), chain::client::ChainError> {
//! let client = chain::client::Client::connect("finney").await?;
//! let at = client.at_finalized().await?;
//! let mg = at.metagraph(3).await?;
//! println!("{} neurons at block {}", mg.n(), mg.block);
//! # Ok(()) }
//! ```

pub mod at;
pub mod calls;
pub mod clock;
pub mod commitments;
pub mod error;
pub mod metagraph;
pub mod tx;
pub mod weights;

pub use at::ChainAt;
pub use calls::{AdminCall, Axon, Payload};
pub use clock::BlockClock;
pub use commitments::{Commitment, Field};
pub use error::ChainError;
pub use metagraph::{Metagraph, Neuron};
pub use tx::{Included, StakeChange, Transactions, WalletSigner};
pub use weights::{PendingReveal, Weights, WeightsSet};

use std::future::Future;
use std::time::Duration;
use subxt::config::SubstrateConfig;
use subxt::rpcs::client::reconnecting_rpc_client::ExponentialBackoff;
use subxt::rpcs::client::{ReconnectingRpcClient, RpcClient};
use subxt::rpcs::rpc_params;
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

    pub(crate) fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The chain at block `block` (finalized or not, as long as the node has it): every read of
    /// the returned [`ChainAt`] is at exactly that block.
    pub async fn at(&self, block: u64) -> Result<ChainAt, ChainError> {
        let at = self.read(&format!("block {block}"), || async { Ok(self.api.at_block(block).await?) }).await?;
        Ok(ChainAt::new(self.clone(), at))
    }

    /// The chain at the finalized head (its number read once, now).
    pub async fn at_finalized(&self) -> Result<ChainAt, ChainError> {
        let at = self.read("the finalized block", || async { Ok(self.api.at_current_block().await?) }).await?;
        Ok(ChainAt::new(self.clone(), at))
    }

    /// Transactions: registration, staking, commitments, sudo, … (see [`Transactions`]).
    pub fn tx(&self) -> Transactions<'_> {
        Transactions::new(self)
    }

    /// Setting weights, directly or by commit-reveal (see [`Weights`]).
    pub fn weights(&self) -> Weights<'_> {
        Weights::new(self)
    }

    /// Runs a read, retrying when it failed because the connection dropped and is being re-made.
    pub(crate) async fn read<T, F, Fut>(&self, what: &str, f: F) -> Result<T, ChainError>
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
