//! Transactions: [`Transactions`], from [`Client::tx`]. Each call is signed, submitted, waited for
//! until finalized, and checked (see [`Transactions::submit`]).
//!
//! ```no_run
//! # async fn demo(client: &chain::client::Client, coldkey: &chain::wallet::Keypair)
//! # -> Result<(), chain::client::ChainError> {
//! let uid = client.tx().burned_register(coldkey, 3, &coldkey.public()).await?;
//! # let _ = uid; Ok(()) }
//! ```

use super::calls::{self, AdminCall, Axon, Payload};
use super::commitments::Field;
use super::{error, ChainError, Client, Config};
use crate::wallet::{Keypair, PublicKey};
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::rpcs::rpc_params;
use subxt::transactions::{TransactionInvalid, ValidationResult};
use subxt::utils::{AccountId32, MultiSignature};

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

/// The transactions of a [`Client`] (`client.tx()`).
#[derive(Debug, Clone, Copy)]
pub struct Transactions<'a> {
    client: &'a Client,
}

impl<'a> Transactions<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Self { client }
    }

    async fn next_nonce(&self, who: &PublicKey) -> Result<u64, ChainError> {
        // The pool-aware nonce; fall back to the runtime's view at the finalized block.
        match self.client.rpc().request::<u64>("system_accountNextIndex", rpc_params![who.ss58()]).await {
            Ok(n) => Ok(n),
            Err(e) => {
                tracing::debug!(error = %e, "system_accountNextIndex failed; asking the runtime");
                let api = self.client.api();
                self.client
                    .read("the account nonce", || async {
                        Ok(api.at_current_block().await?.tx().account_nonce(&AccountId32(who.0)).await?)
                    })
                    .await
            }
        }
    }

    /// Signs `call` with `signer`, submits it, waits until it is finalized, and checks that it
    /// succeeded (including the inner call of `Sudo.sudo`). Failures are [`ChainError::Dispatch`]
    /// with an explanation, or [`ChainError::Rejected`] when the node refused the transaction.
    pub async fn submit(&self, call: &Payload, signer: &Keypair) -> Result<Included, ChainError> {
        let opts = self.client.options();
        let limit = opts.request_timeout + opts.finalize_timeout;
        tokio::time::timeout(limit, self.submit_unbounded(call, signer)).await.map_err(|_| ChainError::Timeout {
            what: format!("{} to be submitted and finalized", call.call_name()),
            secs: limit.as_secs(),
        })?
    }

    async fn submit_unbounded(&self, call: &Payload, signer: &Keypair) -> Result<Included, ChainError> {
        let name = call.call_name().to_string();
        let rejected = |e: &dyn std::fmt::Display| ChainError::rejected(name.clone(), &e.to_string());
        let opts = self.client.options();
        let nonce = self.next_nonce(&signer.public()).await?;
        let params = DefaultExtrinsicParamsBuilder::<Config>::new().nonce(nonce).mortal(opts.mortality_blocks).build();
        let api = self.client.api();
        let at = self.client.read("the current block", || async { Ok(api.at_current_block().await?) }).await?;
        let mut tx = at.tx();
        let signed = tx.create_signed(call, &WalletSigner(signer), params).await.map_err(|e| rejected(&e))?;
        // Dry-run validation first: it names the reason a node would drop the transaction (fees,
        // nonce, subtensor's pool checks), which some nodes' submission errors do not carry.
        match signed.validate().await {
            Ok(ValidationResult::Invalid(TransactionInvalid::Future)) | Ok(ValidationResult::Valid(_)) => {}
            Ok(ValidationResult::Invalid(why)) => return Err(ChainError::invalid(name, &why)),
            Ok(ValidationResult::Unknown(why)) => {
                return Err(ChainError::Rejected {
                    call: name,
                    reason: format!("validity unknown: {why:?}"),
                    custom: None,
                })
            }
            Err(e) => tracing::debug!(error = %e, "could not dry-run the transaction; submitting anyway"),
        }
        let progress = signed.submit_and_watch().await.map_err(|e| rejected(&e))?;
        let secs = opts.finalize_timeout.as_secs();
        let in_block = tokio::time::timeout(opts.finalize_timeout, progress.wait_for_finalized())
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
            None => self.client.at(inc.block).await?.uid_of(netuid, hotkey).await?.ok_or_else(|| {
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
