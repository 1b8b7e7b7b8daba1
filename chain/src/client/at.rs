//! Reads at one block: [`ChainAt`], made by [`Client::at`] or [`Client::at_finalized`] (after
//! subxt's `OnlineClient::at_block`). Every read of a `ChainAt` is of the state at exactly its
//! block, so several reads through one `ChainAt` are consistent with each other.
//!
//! ```no_run
//! # async fn demo(client: &chain::client::Client) -> Result<(), chain::client::ChainError> {
//! let at = client.at_finalized().await?;
//! let (mg, commitments) = (at.metagraph(3).await?, at.commitments(3).await?);
//! assert_eq!(mg.block, at.block());
//! # let _ = commitments; Ok(()) }
//! ```

use super::commitments::{self, Commitment, CommitmentEvent};
use super::metagraph::{self, Metagraph};
use super::{calls, ChainError, Client, Config};
use crate::wallet::PublicKey;
use std::collections::{BTreeMap, BTreeSet};
use subxt::dynamic;
use subxt::ext::futures::{stream, StreamExt};

/// subxt's client at one block.
pub type AtBlock = subxt::client::ClientAtBlock<Config, subxt::client::OnlineClientAtBlockImpl<Config>>;

/// How many blocks' events a commitments read fetches at once.
const EVENT_READS_IN_FLIGHT: usize = 8;

/// The chain at one block: storage and runtime-API reads at exactly that block.
#[derive(Clone)]
pub struct ChainAt {
    client: Client,
    at: AtBlock,
}

impl std::fmt::Debug for ChainAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainAt").field("block", &self.block()).field("url", &self.client.url()).finish()
    }
}

impl ChainAt {
    pub(crate) fn new(client: Client, at: AtBlock) -> Self {
        Self { client, at }
    }

    /// The block number.
    pub fn block(&self) -> u64 {
        self.at.block_number()
    }

    /// The block hash.
    pub fn hash(&self) -> [u8; 32] {
        self.at.block_hash().0
    }

    /// The underlying subxt client at this block (for reads this type does not wrap).
    pub fn api(&self) -> &AtBlock {
        &self.at
    }

    /// The client this was made from.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Fetches a storage value at this block (its default when absent); `None` when the chain has
    /// no such value and no default.
    pub async fn storage<K, V>(&self, pallet: &str, entry: &str, keys: K) -> Result<Option<V>, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues
            + Clone,
        V: scale_decode::DecodeAsType,
    {
        let what = format!("{pallet}.{entry} at block {}", self.block());
        let v = self
            .client
            .read(&what, || async {
                let addr = dynamic::storage::<K, V>(pallet, entry);
                Ok(self.at.storage().try_fetch(addr, keys.clone()).await?)
            })
            .await?;
        v.map(|v| v.decode().map_err(|e| ChainError::decode(&what, e))).transpose()
    }

    fn has_storage(&self, pallet: &str, entry: &str) -> bool {
        self.at
            .metadata_ref()
            .pallet_by_name(pallet)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(entry))
            .is_some()
    }

    fn has_runtime_api(&self, api: &str, method: &str) -> bool {
        self.at.metadata_ref().runtime_api_trait_by_name(api).and_then(|t| t.method_by_name(method)).is_some()
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

    /// The subnet owner's hotkey (`SubnetOwnerHotkey`: the hotkey `register_network` named),
    /// `None` for a subnet that does not exist.
    pub async fn subnet_owner_hotkey(&self, netuid: u16) -> Result<Option<PublicKey>, ChainError> {
        let key = self.storage::<_, [u8; 32]>(calls::SUBTENSOR, "SubnetOwnerHotkey", (netuid,)).await?;
        Ok(key.map(PublicKey))
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

    /// `SubnetEpochIndex(netuid)`, when the chain has it (subtensor since the dynamic tempo).
    pub async fn epoch_index(&self, netuid: u16) -> Result<Option<u64>, ChainError> {
        if !self.has_storage(calls::SUBTENSOR, "SubnetEpochIndex") {
            return Ok(None);
        }
        self.storage(calls::SUBTENSOR, "SubnetEpochIndex", (netuid,)).await
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

    /// `SubnetInfoRuntimeApi.get_next_epoch_start_block(netuid)`, when the chain has it.
    pub async fn next_epoch_start_block(&self, netuid: u16) -> Result<Option<u64>, ChainError> {
        if !self.has_runtime_api("SubnetInfoRuntimeApi", "get_next_epoch_start_block") {
            return Ok(None);
        }
        let what = format!("SubnetInfoRuntimeApi.get_next_epoch_start_block at block {}", self.block());
        self.client
            .read(&what, || async {
                let call = dynamic::runtime_api_call::<_, Option<u64>>(
                    "SubnetInfoRuntimeApi",
                    "get_next_epoch_start_block",
                    (netuid,),
                );
                Ok(self.at.runtime_apis().call(call).await?)
            })
            .await
    }

    /// Every commitment on `netuid` (all `CommitmentOf(netuid, *)` entries), sorted by hotkey, each
    /// with the index of the extrinsic that set it (see [`Commitment::extrinsic_index`]).
    pub async fn commitments(&self, netuid: u16) -> Result<Vec<Commitment>, ChainError> {
        let what = format!("the commitments of subnet {netuid} at block {}", self.block());
        let raw = self
            .client
            .read(&what, || async {
                let addr = dynamic::storage::<(u16, [u8; 32]), dynamic::Value>("Commitments", "CommitmentOf");
                let mut it = self.at.storage().iter(addr, (netuid,)).await?;
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
        self.set_extrinsic_indices(netuid, &mut list).await;
        Ok(list)
    }

    /// One hotkey's commitment on `netuid`.
    pub async fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Commitment>, ChainError> {
        let v: Option<dynamic::Value> = self.storage("Commitments", "CommitmentOf", (netuid, hotkey.0)).await?;
        let Some(v) = v else { return Ok(None) };
        let mut c = [commitments::decode_registration(*hotkey, &v)?];
        self.set_extrinsic_indices(netuid, &mut c).await;
        let [c] = c;
        Ok(Some(c))
    }

    /// Fills in [`Commitment::extrinsic_index`] from the events of each commitment's block (each
    /// distinct block read once). A block whose events cannot be read (a pruned node keeps no state
    /// of old blocks) leaves its commitments at [`Commitment::UNKNOWN_EXTRINSIC`].
    async fn set_extrinsic_indices(&self, netuid: u16, list: &mut [Commitment]) {
        let blocks: BTreeSet<u64> = list.iter().map(|c| c.block).collect();
        let read: Vec<(u64, Result<Vec<CommitmentEvent>, ChainError>)> = stream::iter(blocks)
            .map(|b| async move { (b, self.commitment_events(b).await) })
            .buffer_unordered(EVENT_READS_IN_FLIGHT)
            .collect()
            .await;
        let mut by_block: BTreeMap<u64, BTreeMap<PublicKey, u32>> = BTreeMap::new();
        for (block, events) in read {
            match events {
                Ok(events) => {
                    by_block.insert(block, commitments::extrinsic_indices(&events, netuid));
                }
                Err(e) => tracing::debug!(block, error = %e, "no events for the commitments of this block"),
            }
        }
        for c in list {
            c.extrinsic_index =
                by_block.get(&c.block).and_then(|m| m.get(&c.hotkey)).copied().unwrap_or(Commitment::UNKNOWN_EXTRINSIC);
        }
    }

    /// The `Commitments` events of block `block`, with the extrinsic each was emitted by.
    async fn commitment_events(&self, block: u64) -> Result<Vec<CommitmentEvent>, ChainError> {
        let what = format!("the events of block {block}");
        self.client
            .read(&what, || async {
                let events = if block == self.block() {
                    self.at.events().fetch().await?
                } else {
                    self.client.api().at_block(block).await?.events().fetch().await?
                };
                let mut out = Vec::new();
                for ev in events.iter() {
                    let ev = ev?;
                    if ev.pallet_name() != calls::COMMITMENTS {
                        continue;
                    }
                    let extrinsic = match ev.phase() {
                        subxt::events::Phase::ApplyExtrinsic(i) => Some(i),
                        _ => None,
                    };
                    let fields = ev.decode_fields_unchecked_as::<subxt::ext::scale_value::Composite<()>>()?;
                    out.push(CommitmentEvent { extrinsic, name: ev.event_name().to_string(), fields });
                }
                Ok(out)
            })
            .await
    }

    /// The metagraph of `netuid`: through `SubnetInfoRuntimeApi.get_metagraph` when the chain
    /// has it, else from storage. Errors when the subnet does not exist.
    pub async fn metagraph(&self, netuid: u16) -> Result<Metagraph, ChainError> {
        if !self.has_runtime_api("SubnetInfoRuntimeApi", "get_metagraph") {
            return self.metagraph_from_storage(netuid).await;
        }
        let what = format!("SubnetInfoRuntimeApi.get_metagraph at block {}", self.block());
        let got = self
            .client
            .read(&what, || async {
                let call = dynamic::runtime_api_call::<_, Option<metagraph::RuntimeMetagraph>>(
                    "SubnetInfoRuntimeApi",
                    "get_metagraph",
                    (netuid,),
                );
                Ok(self.at.runtime_apis().call(call).await?)
            })
            .await?;
        let m = got.ok_or_else(|| ChainError::BadArgument(format!("subnet {netuid} does not exist")))?;
        Ok(metagraph::Columns::from(m).into_metagraph(netuid, self.block(), metagraph::Source::RuntimeApi))
    }

    /// The metagraph read from storage items.
    pub async fn metagraph_from_storage(&self, netuid: u16) -> Result<Metagraph, ChainError> {
        use subxt::ext::futures::future::try_join_all;
        let st = calls::SUBTENSOR;
        if !self.subnet_exists(netuid).await? {
            return Err(ChainError::BadArgument(format!("subnet {netuid} does not exist")));
        }
        let n: u16 = self.storage(st, "SubnetworkN", (netuid,)).await?.unwrap_or(0);
        let uids: Vec<u16> = (0..n).collect();
        let hotkeys: Vec<[u8; 32]> =
            try_join_all(uids.iter().map(|uid| self.storage::<_, [u8; 32]>(st, "Keys", (netuid, *uid))))
                .await?
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
        let coldkeys = try_join_all(hotkeys.iter().map(|h| self.storage::<_, [u8; 32]>(st, "Owner", (*h,))));
        let stake = try_join_all(hotkeys.iter().map(|h| self.storage::<_, u64>(st, "TotalHotkeyAlpha", (*h, netuid))));
        let registered =
            try_join_all(uids.iter().map(|uid| self.storage::<_, u64>(st, "BlockAtRegistration", (netuid, *uid))));
        let (coldkeys, stake, registered) = tokio::try_join!(coldkeys, stake, registered)?;
        let flags = |e: &'static str| self.storage::<_, Vec<bool>>(st, e, (netuid,));
        let u16s = |e: &'static str| self.storage::<_, Vec<u16>>(st, e, (netuid,));
        let u64s = |e: &'static str| self.storage::<_, Vec<u64>>(st, e, (netuid,));
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
        Ok(columns.into_metagraph(netuid, self.block(), metagraph::Source::Storage))
    }
}
