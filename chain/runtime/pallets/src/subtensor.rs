//! `SubtensorModule`: subtensor's calls, storage and events for subnets, registration, staking,
//! serving, weights and the epoch, with the same names, argument names, SCALE types, storage keys
//! and hashers as subtensor, so that the same client code works against both.
//!
//! Simplified against subtensor (see chain/README.md): staking converts TAO to alpha 1:1 (no AMM
//! pool); the registration burn and the network lock are flat (no price pressure or decay); the
//! epoch is a bond-less Yuma (stake-weighted median clipping, incentive and dividends) that emits a
//! fixed amount of alpha per block of the epoch; one mechanism per subnet; no root network.
#![allow(clippy::too_many_arguments)]

pub use pallet::*;

use alloc::{collections::VecDeque, vec, vec::Vec};
use codec::{Decode, Encode, MaxEncodedLen};
use frame_support::pallet_prelude::{DispatchError, DispatchResult, Get};
use frame_support::traits::{
    fungible::{Inspect, Mutate},
    tokens::{Fortitude, Precision, Preservation},
};
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::traits::{TrailingZeroInput, Zero};

/// Subnet identifier (a `u16` in subtensor's metadata).
pub type NetUid = u16;
/// Amounts of TAO and alpha, in rao (1e-9).
pub type Balance = u64;

/// 1 TAO (or 1 alpha) in rao.
pub const TAO: Balance = 1_000_000_000;
/// Alpha emitted per block of an epoch on a subnet whose emission has started.
pub const ALPHA_PER_BLOCK: Balance = TAO;
/// Smallest `add_stake` amount (subtensor's `DefaultMinStake`).
pub const MIN_STAKE: Balance = 2_000_000;
/// Most unrevealed weight commits per hotkey and subnet.
pub const MAX_UNREVEALED_COMMITS: usize = 10;
/// Share of an epoch's emission that goes to the subnet owner, miners and validators (parts of 100).
pub const OWNER_CUT_PERCENT: u64 = 18;
/// Consensus majority (kappa) for the stake-weighted median, as parts of `u16::MAX` (0.5).
pub const KAPPA: u64 = 32_767;

/// Fixed-point U64F64 as subtensor's metadata shows it (`{ bits: u128 }`); used for stake shares.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct U64F64 {
    pub bits: u128,
}

impl U64F64 {
    pub fn from_int(v: u64) -> Self {
        Self { bits: (v as u128) << 64 }
    }
    pub fn int(self) -> u128 {
        self.bits >> 64
    }
}

#[derive(Clone, Default, Debug, PartialEq, Eq, Encode, Decode, TypeInfo, MaxEncodedLen)]
pub struct AxonInfo {
    pub block: u64,
    pub version: u32,
    pub ip: u128,
    pub port: u16,
    pub ip_type: u8,
    pub protocol: u8,
    pub placeholder1: u8,
    pub placeholder2: u8,
}

/// Behaviour the commitments pallet needs from this one.
pub trait SubnetQuery<AccountId> {
    fn is_registered(netuid: NetUid, who: &AccountId) -> bool;
    fn epoch_index(netuid: NetUid) -> u64;
}

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;

    #[pallet::pallet]
    #[pallet::without_storage_info]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// TAO balances: burned for registration, network locks and stake, minted back on unstake.
        type Currency: Mutate<Self::AccountId> + Inspect<Self::AccountId, Balance = Balance>;
        /// Tempo of a new subnet, in blocks.
        #[pallet::constant]
        type InitialTempo: Get<u16>;
    }

    // ---- Storage (names, keys, hashers and value types as in subtensor) ----

    /// The all-zero account, subtensor's default for account-valued maps.
    #[pallet::type_value]
    pub fn DefaultAccount<T: Config>() -> T::AccountId {
        zero_account::<T>()
    }
    #[pallet::type_value]
    pub fn DefaultTempo<T: Config>() -> u16 {
        T::InitialTempo::get()
    }
    #[pallet::type_value]
    pub fn DefaultTrue() -> bool {
        true
    }
    #[pallet::type_value]
    pub fn DefaultBurn() -> u64 {
        TAO
    }
    #[pallet::type_value]
    pub fn DefaultMinBurn() -> u64 {
        500_000
    }
    #[pallet::type_value]
    pub fn DefaultMaxBurn() -> u64 {
        100 * TAO
    }
    #[pallet::type_value]
    pub fn DefaultWeightsSetRateLimit() -> u64 {
        100
    }
    #[pallet::type_value]
    pub fn DefaultMaxAllowedUids() -> u16 {
        256
    }
    #[pallet::type_value]
    pub fn DefaultMaxAllowedValidators() -> u16 {
        128
    }
    #[pallet::type_value]
    pub fn DefaultMinAllowedWeights() -> u16 {
        1024
    }
    #[pallet::type_value]
    pub fn DefaultMaxWeightsLimit() -> u16 {
        u16::MAX
    }
    #[pallet::type_value]
    pub fn DefaultImmunityPeriod() -> u16 {
        4096
    }
    #[pallet::type_value]
    pub fn DefaultServingRateLimit() -> u64 {
        50
    }
    #[pallet::type_value]
    pub fn DefaultActivityCutoff() -> u16 {
        5000
    }
    #[pallet::type_value]
    pub fn DefaultRevealPeriodEpochs() -> u64 {
        1
    }
    #[pallet::type_value]
    pub fn DefaultMechanismCount() -> u8 {
        1
    }
    #[pallet::type_value]
    pub fn DefaultAdminFreezeWindow() -> u16 {
        10
    }
    #[pallet::type_value]
    pub fn DefaultNetworkRateLimit() -> u64 {
        7200
    }
    #[pallet::type_value]
    pub fn DefaultNetworkMinLockCost() -> u64 {
        1000 * TAO
    }
    #[pallet::type_value]
    pub fn DefaultCommitRevealWeightsVersion() -> u16 {
        4
    }
    #[pallet::type_value]
    pub fn DefaultTxRateLimit() -> u64 {
        1000
    }
    #[pallet::type_value]
    pub fn DefaultLockReductionInterval() -> u64 {
        14 * 7200
    }

    #[pallet::storage]
    pub type TotalNetworks<T> = StorageValue<_, u16, ValueQuery>;
    #[pallet::storage]
    pub type NetworksAdded<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery>;
    #[pallet::storage]
    pub type SubnetMechanism<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery>;
    #[pallet::storage]
    pub type MechanismCountCurrent<T> = StorageMap<_, Twox64Concat, NetUid, u8, ValueQuery, DefaultMechanismCount>;
    #[pallet::storage]
    pub type SubnetOwner<T: Config> = StorageMap<_, Identity, NetUid, T::AccountId, ValueQuery, DefaultAccount<T>>;
    #[pallet::storage]
    pub type SubnetOwnerHotkey<T: Config> =
        StorageMap<_, Identity, NetUid, T::AccountId, ValueQuery, DefaultAccount<T>>;
    #[pallet::storage]
    pub type SubnetLocked<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type SubtokenEnabled<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery>;
    #[pallet::storage]
    pub type FirstEmissionBlockNumber<T> = StorageMap<_, Identity, NetUid, u64, OptionQuery>;
    #[pallet::storage]
    pub type NetworkRegistrationAllowed<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery>;
    #[pallet::storage]
    pub type NetworkRateLimit<T> = StorageValue<_, u64, ValueQuery, DefaultNetworkRateLimit>;
    /// Block of the last `register_network` (our own bookkeeping for `NetworkRateLimit`).
    #[pallet::storage]
    pub type NetworkLastRegistered<T> = StorageValue<_, u64, ValueQuery>;
    #[pallet::storage]
    pub type NetworkMinLockCost<T> = StorageValue<_, u64, ValueQuery, DefaultNetworkMinLockCost>;
    #[pallet::storage]
    pub type NetworkLastLockCost<T> = StorageValue<_, u64, ValueQuery>;
    #[pallet::storage]
    pub type NetworkLockReductionInterval<T> = StorageValue<_, u64, ValueQuery, DefaultLockReductionInterval>;
    #[pallet::storage]
    pub type AdminFreezeWindow<T> = StorageValue<_, u16, ValueQuery, DefaultAdminFreezeWindow>;
    #[pallet::storage]
    pub type TxRateLimit<T> = StorageValue<_, u64, ValueQuery, DefaultTxRateLimit>;
    #[pallet::storage]
    pub type StakeThreshold<T> = StorageValue<_, u64, ValueQuery>;
    #[pallet::storage]
    pub type CommitRevealWeightsVersion<T> = StorageValue<_, u16, ValueQuery, DefaultCommitRevealWeightsVersion>;
    #[pallet::storage]
    pub type TotalIssuance<T> = StorageValue<_, u64, ValueQuery>;
    #[pallet::storage]
    pub type TotalStake<T> = StorageValue<_, u64, ValueQuery>;

    // Hyperparameters.
    #[pallet::storage]
    pub type Tempo<T: Config> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultTempo<T>>;
    #[pallet::storage]
    pub type Burn<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultBurn>;
    #[pallet::storage]
    pub type MinBurn<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultMinBurn>;
    #[pallet::storage]
    pub type MaxBurn<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultMaxBurn>;
    #[pallet::storage]
    pub type WeightsVersionKey<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type WeightsSetRateLimit<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultWeightsSetRateLimit>;
    #[pallet::storage]
    pub type CommitRevealWeightsEnabled<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery, DefaultTrue>;
    #[pallet::storage]
    pub type RevealPeriodEpochs<T> = StorageMap<_, Twox64Concat, NetUid, u64, ValueQuery, DefaultRevealPeriodEpochs>;
    #[pallet::storage]
    pub type MaxAllowedUids<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMaxAllowedUids>;
    #[pallet::storage]
    pub type MaxAllowedValidators<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMaxAllowedValidators>;
    #[pallet::storage]
    pub type MinAllowedWeights<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMinAllowedWeights>;
    #[pallet::storage]
    pub type MaxWeightsLimit<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMaxWeightsLimit>;
    #[pallet::storage]
    pub type ImmunityPeriod<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultImmunityPeriod>;
    #[pallet::storage]
    pub type ServingRateLimit<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultServingRateLimit>;
    #[pallet::storage]
    pub type ActivityCutoff<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultActivityCutoff>;

    // Epoch bookkeeping.
    #[pallet::storage]
    pub type LastEpochBlock<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type SubnetEpochIndex<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type LastMechansimStepBlock<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type BlocksSinceLastStep<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;

    // Neurons.
    #[pallet::storage]
    pub type SubnetworkN<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery>;
    #[pallet::storage]
    pub type Keys<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Identity, u16, T::AccountId, ValueQuery, DefaultAccount<T>>;
    #[pallet::storage]
    pub type Uids<T: Config> = StorageDoubleMap<_, Identity, NetUid, Blake2_128Concat, T::AccountId, u16, OptionQuery>;
    #[pallet::storage]
    pub type BlockAtRegistration<T> = StorageDoubleMap<_, Identity, NetUid, Identity, u16, u64, ValueQuery>;
    #[pallet::storage]
    pub type IsNetworkMember<T: Config> =
        StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Identity, NetUid, bool, ValueQuery>;
    #[pallet::storage]
    pub type Owner<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, T::AccountId, ValueQuery, DefaultAccount<T>>;
    #[pallet::storage]
    pub type OwnedHotkeys<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Vec<T::AccountId>, ValueQuery>;
    #[pallet::storage]
    pub type StakingHotkeys<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Vec<T::AccountId>, ValueQuery>;
    #[pallet::storage]
    pub type RegistrationsThisBlock<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery>;
    #[pallet::storage]
    pub type Axons<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Blake2_128Concat, T::AccountId, AxonInfo, OptionQuery>;

    // Per-uid vectors (index = uid). `Incentive` and `LastUpdate` are keyed by the
    // NetUidStorageIndex, which equals the netuid for mechanism 0 (the only one here).
    #[pallet::storage]
    pub type Active<T> = StorageMap<_, Identity, NetUid, Vec<bool>, ValueQuery>;
    #[pallet::storage]
    pub type ValidatorPermit<T> = StorageMap<_, Identity, NetUid, Vec<bool>, ValueQuery>;
    #[pallet::storage]
    pub type ValidatorTrust<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    #[pallet::storage]
    pub type Consensus<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    #[pallet::storage]
    pub type Incentive<T> = StorageMap<_, Identity, u16, Vec<u16>, ValueQuery>;
    #[pallet::storage]
    pub type Dividends<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    #[pallet::storage]
    pub type Emission<T> = StorageMap<_, Identity, NetUid, Vec<u64>, ValueQuery>;
    #[pallet::storage]
    pub type StakeWeight<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    #[pallet::storage]
    pub type LastUpdate<T> = StorageMap<_, Identity, u16, Vec<u64>, ValueQuery>;
    #[pallet::storage]
    pub type Weights<T> = StorageDoubleMap<_, Identity, u16, Identity, u16, Vec<(u16, u16)>, ValueQuery>;
    #[pallet::storage]
    pub type WeightCommits<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        u16,
        Twox64Concat,
        T::AccountId,
        VecDeque<(H256, u64, u64, u64)>,
        OptionQuery,
    >;

    // Stake.
    #[pallet::storage]
    pub type TotalHotkeyAlpha<T: Config> =
        StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type TotalHotkeyShares<T: Config> =
        StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Identity, NetUid, U64F64, ValueQuery>;
    #[pallet::storage]
    pub type Alpha<T: Config> = StorageNMap<
        _,
        (NMapKey<Blake2_128Concat, T::AccountId>, NMapKey<Blake2_128Concat, T::AccountId>, NMapKey<Identity, NetUid>),
        U64F64,
        ValueQuery,
    >;
    #[pallet::storage]
    pub type SubnetTAO<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type SubnetAlphaIn<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type SubnetAlphaOut<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    #[pallet::storage]
    pub type AlphaDividendsPerSubnet<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Blake2_128Concat, T::AccountId, u64, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A subnet was created: (netuid, mechanism).
        NetworkAdded(NetUid, u16),
        /// Emission started on a subnet: (netuid, first emission block).
        FirstEmissionBlockNumberSet(NetUid, u64),
        /// A neuron registered: (netuid, uid, hotkey).
        NeuronRegistered(NetUid, u16, T::AccountId),
        /// Stake added: (coldkey, hotkey, tao, alpha, netuid, fee).
        StakeAdded(T::AccountId, T::AccountId, u64, u64, NetUid, u64),
        /// Stake removed: (coldkey, hotkey, tao, alpha, netuid, fee).
        StakeRemoved(T::AccountId, T::AccountId, u64, u64, NetUid, u64),
        /// An axon was served: (netuid, hotkey).
        AxonServed(NetUid, T::AccountId),
        /// Weights were set: (netuid_index, uid).
        WeightsSet(u16, u16),
        /// A weights hash was committed: (hotkey, netuid_index, hash).
        WeightsCommitted(T::AccountId, u16, H256),
        /// Committed weights were revealed: (hotkey, netuid_index, hash).
        WeightsRevealed(T::AccountId, u16, H256),
        /// An epoch ran on a subnet: (netuid, block).
        EpochRun(NetUid, u64),
    }

    #[pallet::error]
    pub enum Error<T> {
        SubnetNotExists,
        RegistrationNotPermittedOnRootSubnet,
        SubNetRegistrationDisabled,
        HotKeyAlreadyRegisteredInSubNet,
        NotEnoughBalanceToStake,
        NonAssociatedColdKey,
        NoNeuronIdAvailable,
        NotSubnetOwner,
        FirstEmissionBlockNumberAlreadySet,
        SubtokenDisabled,
        AmountTooLow,
        HotKeyAccountNotExists,
        NotEnoughStakeToWithdraw,
        HotKeyNotRegisteredInNetwork,
        InvalidIpType,
        InvalidIpAddress,
        InvalidPort,
        ServingRateLimitExceeded,
        CommitRevealEnabled,
        CommitRevealDisabled,
        WeightVecNotEqualSize,
        UidsLengthExceedUidsInSubNet,
        HotKeyNotRegisteredInSubNet,
        NotEnoughStakeToSetWeights,
        IncorrectWeightVersionKey,
        SettingWeightsTooFast,
        NeuronNoValidatorPermit,
        DuplicateUids,
        UidVecContainInvalidOne,
        WeightVecLengthIsLow,
        MaxWeightExceeded,
        CommittingWeightsTooFast,
        TooManyUnrevealedCommits,
        NoWeightsCommitFound,
        InvalidRevealCommitHashNotMatch,
        RevealTooEarly,
        ExpiredWeightCommit,
        NetworkTxRateLimitExceeded,
        BalanceWithdrawalError,
        ArithmeticOverflow,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(n: BlockNumberFor<T>) -> Weight {
            let block = Pallet::<T>::block_u64(n);
            let mut reads = 0u64;
            for (netuid, added) in NetworksAdded::<T>::iter() {
                reads += 1;
                if !added {
                    continue;
                }
                RegistrationsThisBlock::<T>::remove(netuid);
                BlocksSinceLastStep::<T>::mutate(netuid, |b| *b = b.saturating_add(1));
                if Pallet::<T>::epoch_due(netuid, block) {
                    Pallet::<T>::run_epoch(netuid, block);
                }
            }
            // The epoch is bounded by MaxAllowedUids² per subnet; dev-chain weight accounting.
            Weight::from_parts(5_000_000u64.saturating_mul(reads.saturating_add(1)), 0)
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Sets the caller hotkey's weights on a subnet (§3.2 rules).
        #[pallet::call_index(0)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn set_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            dests: Vec<u16>,
            weights: Vec<u16>,
            version_key: u64,
        ) -> DispatchResult {
            let hotkey = ensure_signed(origin)?;
            ensure!(!CommitRevealWeightsEnabled::<T>::get(netuid), Error::<T>::CommitRevealEnabled);
            Self::do_set_weights(&hotkey, netuid, dests, weights, version_key, true)
        }

        #[pallet::call_index(2)]
        #[pallet::weight(Weight::from_parts(30_000_000, 0))]
        pub fn add_stake(
            origin: OriginFor<T>,
            hotkey: T::AccountId,
            netuid: NetUid,
            amount_staked: u64,
        ) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            Self::do_add_stake(&coldkey, &hotkey, netuid, amount_staked)
        }

        #[pallet::call_index(3)]
        #[pallet::weight(Weight::from_parts(30_000_000, 0))]
        pub fn remove_stake(
            origin: OriginFor<T>,
            hotkey: T::AccountId,
            netuid: NetUid,
            amount_unstaked: u64,
        ) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            Self::do_remove_stake(&coldkey, &hotkey, netuid, amount_unstaked)
        }

        #[pallet::call_index(4)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn serve_axon(
            origin: OriginFor<T>,
            netuid: NetUid,
            version: u32,
            ip: u128,
            port: u16,
            ip_type: u8,
            protocol: u8,
            placeholder1: u8,
            placeholder2: u8,
        ) -> DispatchResult {
            let hotkey = ensure_signed(origin)?;
            let axon = AxonInfo { block: 0, version, ip, port, ip_type, protocol, placeholder1, placeholder2 };
            Self::do_serve_axon(&hotkey, netuid, axon)
        }

        #[pallet::call_index(7)]
        #[pallet::weight(Weight::from_parts(50_000_000, 0))]
        pub fn burned_register(origin: OriginFor<T>, netuid: NetUid, hotkey: T::AccountId) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            Self::do_burned_register(&coldkey, netuid, &hotkey)
        }

        #[pallet::call_index(59)]
        #[pallet::weight(Weight::from_parts(100_000_000, 0))]
        pub fn register_network(origin: OriginFor<T>, hotkey: T::AccountId) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            Self::do_register_network(&coldkey, &hotkey).map(|_| ())
        }

        #[pallet::call_index(92)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn start_call(origin: OriginFor<T>, netuid: NetUid) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists);
            ensure!(SubnetOwner::<T>::get(netuid) == coldkey, Error::<T>::NotSubnetOwner);
            ensure!(
                FirstEmissionBlockNumber::<T>::get(netuid).is_none(),
                Error::<T>::FirstEmissionBlockNumberAlreadySet
            );
            let first = Self::current_block().saturating_add(1);
            FirstEmissionBlockNumber::<T>::insert(netuid, first);
            SubtokenEnabled::<T>::insert(netuid, true);
            Self::deposit_event(Event::FirstEmissionBlockNumberSet(netuid, first));
            Ok(())
        }

        /// Commits `blake2_256(SCALE((hotkey, netuid_index, uids, values, salt, version_key)))`.
        #[pallet::call_index(96)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn commit_weights(origin: OriginFor<T>, netuid: NetUid, commit_hash: H256) -> DispatchResult {
            let hotkey = ensure_signed(origin)?;
            Self::do_commit_weights(&hotkey, netuid, commit_hash)
        }

        #[pallet::call_index(97)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn reveal_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            uids: Vec<u16>,
            values: Vec<u16>,
            salt: Vec<u16>,
            version_key: u64,
        ) -> DispatchResult {
            let hotkey = ensure_signed(origin)?;
            Self::do_reveal_weights(&hotkey, netuid, uids, values, salt, version_key)
        }
    }
}

impl<T: Config> Pallet<T> {
    fn block_u64(n: frame_system::pallet_prelude::BlockNumberFor<T>) -> u64 {
        use sp_runtime::traits::UniqueSaturatedInto;
        n.unique_saturated_into()
    }

    pub fn current_block() -> u64 {
        Self::block_u64(frame_system::Pallet::<T>::block_number())
    }

    /// The v2 commit hash of a weights reveal.
    pub fn commit_hash(
        who: &T::AccountId,
        netuid_index: u16,
        uids: &[u16],
        values: &[u16],
        salt: &[u16],
        version_key: u64,
    ) -> H256 {
        let encoded = (who, netuid_index, uids, values, salt, version_key).encode();
        H256(sp_crypto_hashing::blake2_256(&encoded))
    }

    // ---- Subnets ----

    pub fn do_register_network(coldkey: &T::AccountId, hotkey: &T::AccountId) -> Result<NetUid, DispatchError> {
        let block = Self::current_block();
        let last = NetworkLastRegistered::<T>::get();
        let limit = NetworkRateLimit::<T>::get();
        ensure_ok(last == 0 || block.saturating_sub(last) >= limit, Error::<T>::NetworkTxRateLimitExceeded)?;
        let owner = Owner::<T>::try_get(hotkey).ok();
        ensure_ok(owner.is_none() || owner.as_ref() == Some(coldkey), Error::<T>::NonAssociatedColdKey)?;
        let lock = NetworkMinLockCost::<T>::get();
        Self::burn_tao(coldkey, lock)?;
        // The lowest free netuid above the (absent) root network.
        let mut netuid: NetUid = 1;
        while NetworksAdded::<T>::get(netuid) {
            netuid = netuid.checked_add(1).ok_or(Error::<T>::ArithmeticOverflow)?;
        }
        NetworksAdded::<T>::insert(netuid, true);
        TotalNetworks::<T>::mutate(|n| *n = n.saturating_add(1));
        SubnetMechanism::<T>::insert(netuid, 1);
        MechanismCountCurrent::<T>::insert(netuid, 1);
        SubnetOwner::<T>::insert(netuid, coldkey);
        SubnetOwnerHotkey::<T>::insert(netuid, hotkey);
        SubnetLocked::<T>::insert(netuid, lock);
        NetworkLastLockCost::<T>::put(lock);
        NetworkLastRegistered::<T>::put(block);
        // What subtensor's init_new_network sets explicitly.
        Tempo::<T>::insert(netuid, T::InitialTempo::get());
        NetworkRegistrationAllowed::<T>::insert(netuid, true);
        MaxAllowedUids::<T>::insert(netuid, 256);
        MaxAllowedValidators::<T>::insert(netuid, 64);
        MinAllowedWeights::<T>::insert(netuid, 1);
        ImmunityPeriod::<T>::insert(netuid, 5000);
        Burn::<T>::insert(netuid, TAO);
        LastEpochBlock::<T>::insert(netuid, block);
        LastMechansimStepBlock::<T>::insert(netuid, block);
        Self::associate_hotkey(coldkey, hotkey);
        Self::append_neuron(netuid, hotkey, block);
        Self::deposit_event(Event::NetworkAdded(netuid, 1));
        Ok(netuid)
    }

    // ---- Registration ----

    pub fn do_burned_register(coldkey: &T::AccountId, netuid: NetUid, hotkey: &T::AccountId) -> DispatchResult {
        ensure_ok(netuid != 0, Error::<T>::RegistrationNotPermittedOnRootSubnet)?;
        ensure_ok(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists)?;
        ensure_ok(NetworkRegistrationAllowed::<T>::get(netuid), Error::<T>::SubNetRegistrationDisabled)?;
        ensure_ok(!Uids::<T>::contains_key(netuid, hotkey), Error::<T>::HotKeyAlreadyRegisteredInSubNet)?;
        let burn = Self::registration_burn(netuid);
        ensure_ok(Self::can_withdraw(coldkey, burn), Error::<T>::NotEnoughBalanceToStake)?;
        if let Ok(owner) = Owner::<T>::try_get(hotkey) {
            ensure_ok(&owner == coldkey, Error::<T>::NonAssociatedColdKey)?;
        }
        let block = Self::current_block();
        let n = SubnetworkN::<T>::get(netuid);
        let max = MaxAllowedUids::<T>::get(netuid);
        ensure_ok(max != 0, Error::<T>::NoNeuronIdAvailable)?;
        let replace = if n < max {
            None
        } else {
            Some(Self::neuron_to_prune(netuid, block).ok_or(Error::<T>::NoNeuronIdAvailable)?)
        };
        Self::burn_tao(coldkey, burn)?;
        Self::associate_hotkey(coldkey, hotkey);
        let uid = match replace {
            None => Self::append_neuron(netuid, hotkey, block),
            Some(uid) => {
                Self::replace_neuron(netuid, uid, hotkey, block);
                uid
            }
        };
        RegistrationsThisBlock::<T>::mutate(netuid, |r| *r = r.saturating_add(1));
        Self::deposit_event(Event::NeuronRegistered(netuid, uid, hotkey.clone()));
        Ok(())
    }

    /// The burn a registration costs now: `Burn` clamped to `[MinBurn, MaxBurn]`.
    pub fn registration_burn(netuid: NetUid) -> u64 {
        let (min, max) = (MinBurn::<T>::get(netuid), MaxBurn::<T>::get(netuid));
        Burn::<T>::get(netuid).max(min).min(max.max(min))
    }

    /// Owner(hotkey) = coldkey on first sight. The hotkey account is also made to exist (a
    /// "sufficient" reference) so that a hotkey without TAO can sign the fee-less calls, as
    /// subtensor's own CheckNonce allows.
    fn associate_hotkey(coldkey: &T::AccountId, hotkey: &T::AccountId) {
        if Owner::<T>::contains_key(hotkey) {
            return;
        }
        Owner::<T>::insert(hotkey, coldkey);
        OwnedHotkeys::<T>::mutate(coldkey, |v| v.push(hotkey.clone()));
        StakingHotkeys::<T>::mutate(coldkey, |v| {
            if !v.contains(hotkey) {
                v.push(hotkey.clone())
            }
        });
        frame_system::Pallet::<T>::inc_sufficients(hotkey);
    }

    fn append_neuron(netuid: NetUid, hotkey: &T::AccountId, block: u64) -> u16 {
        let uid = SubnetworkN::<T>::get(netuid);
        SubnetworkN::<T>::insert(netuid, uid.saturating_add(1));
        Active::<T>::mutate(netuid, |v| v.push(true));
        Emission::<T>::mutate(netuid, |v| v.push(0));
        Consensus::<T>::mutate(netuid, |v| v.push(0));
        Incentive::<T>::mutate(netuid, |v| v.push(0));
        Dividends::<T>::mutate(netuid, |v| v.push(0));
        ValidatorTrust::<T>::mutate(netuid, |v| v.push(0));
        ValidatorPermit::<T>::mutate(netuid, |v| v.push(false));
        StakeWeight::<T>::mutate(netuid, |v| v.push(0));
        LastUpdate::<T>::mutate(netuid, |v| v.push(block));
        Self::set_neuron_keys(netuid, uid, hotkey, block);
        uid
    }

    fn set_neuron_keys(netuid: NetUid, uid: u16, hotkey: &T::AccountId, block: u64) {
        Keys::<T>::insert(netuid, uid, hotkey);
        Uids::<T>::insert(netuid, hotkey, uid);
        BlockAtRegistration::<T>::insert(netuid, uid, block);
        IsNetworkMember::<T>::insert(hotkey, netuid, true);
    }

    fn replace_neuron(netuid: NetUid, uid: u16, hotkey: &T::AccountId, block: u64) {
        let old = Keys::<T>::get(netuid, uid);
        Uids::<T>::remove(netuid, &old);
        IsNetworkMember::<T>::remove(&old, netuid);
        Axons::<T>::remove(netuid, &old);
        WeightCommits::<T>::remove(netuid, &old);
        Weights::<T>::remove(netuid, uid);
        let i = uid as usize;
        let reset = |v: &mut Vec<u16>| {
            if let Some(x) = v.get_mut(i) {
                *x = 0
            }
        };
        Incentive::<T>::mutate(netuid, reset);
        Dividends::<T>::mutate(netuid, reset);
        Consensus::<T>::mutate(netuid, reset);
        ValidatorTrust::<T>::mutate(netuid, reset);
        StakeWeight::<T>::mutate(netuid, reset);
        Emission::<T>::mutate(netuid, |v| {
            if let Some(x) = v.get_mut(i) {
                *x = 0
            }
        });
        ValidatorPermit::<T>::mutate(netuid, |v| {
            if let Some(x) = v.get_mut(i) {
                *x = false
            }
        });
        LastUpdate::<T>::mutate(netuid, |v| {
            if let Some(x) = v.get_mut(i) {
                *x = block
            }
        });
        // Other validators' weights to the replaced uid no longer apply.
        for (row, mut w) in Weights::<T>::iter_prefix(netuid) {
            let before = w.len();
            w.retain(|(dest, _)| *dest != uid);
            if w.len() != before {
                Weights::<T>::insert(netuid, row, w);
            }
        }
        Self::set_neuron_keys(netuid, uid, hotkey, block);
    }

    /// The uid a registration into a full subnet replaces: the non-immune uid with the lowest
    /// emission (ties: older registration, then lower uid), never the owner's hotkey. Immune uids
    /// only when no non-immune one is left.
    pub fn neuron_to_prune(netuid: NetUid, block: u64) -> Option<u16> {
        let n = SubnetworkN::<T>::get(netuid);
        let owner_hotkey = SubnetOwnerHotkey::<T>::get(netuid);
        let immunity = ImmunityPeriod::<T>::get(netuid) as u64;
        let emission = Emission::<T>::get(netuid);
        let mut best: Option<(bool, u64, u64, u16)> = None;
        for uid in 0..n {
            if Keys::<T>::get(netuid, uid) == owner_hotkey {
                continue;
            }
            let registered = BlockAtRegistration::<T>::get(netuid, uid);
            let immune = block.saturating_sub(registered) < immunity;
            let key = (immune, emission.get(uid as usize).copied().unwrap_or(0), registered, uid);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|b| b.3)
    }

    // ---- Stake (1 TAO = 1 alpha; shares as in subtensor so emission raises every staker's value) ----

    pub fn do_add_stake(coldkey: &T::AccountId, hotkey: &T::AccountId, netuid: NetUid, tao: u64) -> DispatchResult {
        ensure_ok(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists)?;
        ensure_ok(SubtokenEnabled::<T>::get(netuid), Error::<T>::SubtokenDisabled)?;
        ensure_ok(tao >= MIN_STAKE, Error::<T>::AmountTooLow)?;
        ensure_ok(Owner::<T>::contains_key(hotkey), Error::<T>::HotKeyAccountNotExists)?;
        ensure_ok(Self::can_withdraw(coldkey, tao), Error::<T>::NotEnoughBalanceToStake)?;
        Self::burn_tao(coldkey, tao)?;
        let alpha = tao;
        Self::credit_stake(coldkey, hotkey, netuid, alpha);
        SubnetTAO::<T>::mutate(netuid, |x| *x = x.saturating_add(tao));
        TotalStake::<T>::mutate(|x| *x = x.saturating_add(tao));
        StakingHotkeys::<T>::mutate(coldkey, |v| {
            if !v.contains(hotkey) {
                v.push(hotkey.clone())
            }
        });
        Self::deposit_event(Event::StakeAdded(coldkey.clone(), hotkey.clone(), tao, alpha, netuid, 0));
        Ok(())
    }

    pub fn do_remove_stake(
        coldkey: &T::AccountId,
        hotkey: &T::AccountId,
        netuid: NetUid,
        alpha: u64,
    ) -> DispatchResult {
        ensure_ok(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists)?;
        ensure_ok(SubtokenEnabled::<T>::get(netuid), Error::<T>::SubtokenDisabled)?;
        ensure_ok(alpha > 0, Error::<T>::AmountTooLow)?;
        ensure_ok(Owner::<T>::contains_key(hotkey), Error::<T>::HotKeyAccountNotExists)?;
        ensure_ok(Self::stake_of(hotkey, coldkey, netuid) >= alpha, Error::<T>::NotEnoughStakeToWithdraw)?;
        Self::debit_stake(coldkey, hotkey, netuid, alpha);
        let tao = alpha;
        T::Currency::mint_into(coldkey, tao)?;
        SubnetTAO::<T>::mutate(netuid, |x| *x = x.saturating_sub(tao));
        TotalStake::<T>::mutate(|x| *x = x.saturating_sub(tao));
        Self::deposit_event(Event::StakeRemoved(coldkey.clone(), hotkey.clone(), tao, alpha, netuid, 0));
        Ok(())
    }

    /// The alpha a coldkey has staked on a hotkey (its shares of the hotkey's total).
    pub fn stake_of(hotkey: &T::AccountId, coldkey: &T::AccountId, netuid: NetUid) -> u64 {
        let shares = Alpha::<T>::get((hotkey, coldkey, netuid)).int();
        let total_shares = TotalHotkeyShares::<T>::get(hotkey, netuid).int();
        if total_shares == 0 {
            return 0;
        }
        let total = TotalHotkeyAlpha::<T>::get(hotkey, netuid) as u128;
        u64::try_from(shares.saturating_mul(total) / total_shares).unwrap_or(u64::MAX)
    }

    fn credit_stake(coldkey: &T::AccountId, hotkey: &T::AccountId, netuid: NetUid, alpha: u64) {
        let total = TotalHotkeyAlpha::<T>::get(hotkey, netuid) as u128;
        let total_shares = TotalHotkeyShares::<T>::get(hotkey, netuid).int();
        let new_shares = if total == 0 || total_shares == 0 {
            alpha as u128
        } else {
            (alpha as u128).saturating_mul(total_shares) / total
        };
        let new_shares = u64::try_from(new_shares).unwrap_or(u64::MAX);
        Alpha::<T>::mutate((hotkey, coldkey, netuid), |s| {
            *s = U64F64::from_int((s.int() as u64).saturating_add(new_shares))
        });
        TotalHotkeyShares::<T>::mutate(hotkey, netuid, |s| {
            // A fresh pool (all stake withdrawn) restarts its share count.
            let base = if total == 0 { 0 } else { s.int() as u64 };
            *s = U64F64::from_int(base.saturating_add(new_shares))
        });
        TotalHotkeyAlpha::<T>::mutate(hotkey, netuid, |x| *x = x.saturating_add(alpha));
        SubnetAlphaOut::<T>::mutate(netuid, |x| *x = x.saturating_add(alpha));
    }

    fn debit_stake(coldkey: &T::AccountId, hotkey: &T::AccountId, netuid: NetUid, alpha: u64) {
        let total = TotalHotkeyAlpha::<T>::get(hotkey, netuid) as u128;
        let total_shares = TotalHotkeyShares::<T>::get(hotkey, netuid).int();
        let own_shares = Alpha::<T>::get((hotkey, coldkey, netuid)).int();
        // Round the shares removed up so that a withdrawal never leaves value behind it.
        let shares = (alpha as u128)
            .saturating_mul(total_shares)
            .saturating_add(total.saturating_sub(1))
            .checked_div(total)
            .map_or(own_shares, |s| s.min(own_shares));
        let left = own_shares.saturating_sub(shares);
        if left == 0 {
            Alpha::<T>::remove((hotkey, coldkey, netuid));
        } else {
            Alpha::<T>::insert((hotkey, coldkey, netuid), U64F64 { bits: left << 64 });
        }
        TotalHotkeyShares::<T>::insert(hotkey, netuid, U64F64 { bits: total_shares.saturating_sub(shares) << 64 });
        TotalHotkeyAlpha::<T>::mutate(hotkey, netuid, |x| *x = x.saturating_sub(alpha));
        SubnetAlphaOut::<T>::mutate(netuid, |x| *x = x.saturating_sub(alpha));
    }

    /// Emission: alpha credited to a hotkey raises the value of all its stakers' shares. A hotkey
    /// without stake gets its owner's shares, so that emission is never lost.
    fn emit_to_hotkey(netuid: NetUid, hotkey: &T::AccountId, alpha: u64) {
        if alpha == 0 {
            return;
        }
        if TotalHotkeyShares::<T>::get(hotkey, netuid).int() == 0 {
            let owner = Owner::<T>::get(hotkey);
            Self::credit_stake(&owner, hotkey, netuid, alpha);
        } else {
            TotalHotkeyAlpha::<T>::mutate(hotkey, netuid, |x| *x = x.saturating_add(alpha));
            SubnetAlphaOut::<T>::mutate(netuid, |x| *x = x.saturating_add(alpha));
        }
        AlphaDividendsPerSubnet::<T>::mutate(netuid, hotkey, |x| *x = x.saturating_add(alpha));
    }

    fn can_withdraw(who: &T::AccountId, amount: u64) -> bool {
        T::Currency::reducible_balance(who, Preservation::Expendable, Fortitude::Polite) >= amount
    }

    fn burn_tao(who: &T::AccountId, amount: u64) -> DispatchResult {
        if amount.is_zero() {
            return Ok(());
        }
        T::Currency::burn_from(who, amount, Preservation::Expendable, Precision::Exact, Fortitude::Polite)
            .map_err(|_| Error::<T>::NotEnoughBalanceToStake)?;
        Ok(())
    }

    // ---- Serving ----

    pub fn do_serve_axon(hotkey: &T::AccountId, netuid: NetUid, mut axon: AxonInfo) -> DispatchResult {
        ensure_ok(Uids::<T>::contains_key(netuid, hotkey), Error::<T>::HotKeyNotRegisteredInNetwork)?;
        ensure_ok(axon.ip_type == 4 || axon.ip_type == 6, Error::<T>::InvalidIpType)?;
        let ip_ok = if axon.ip_type == 4 {
            axon.ip < u32::MAX as u128 && axon.ip != 0x7f00_0001
        } else {
            axon.ip != u128::MAX && axon.ip != 1
        };
        ensure_ok(ip_ok, Error::<T>::InvalidIpAddress)?;
        ensure_ok(axon.port != 0, Error::<T>::InvalidPort)?;
        let block = Self::current_block();
        if let Some(prev) = Axons::<T>::get(netuid, hotkey) {
            let limit = ServingRateLimit::<T>::get(netuid);
            ensure_ok(block.saturating_sub(prev.block) >= limit, Error::<T>::ServingRateLimitExceeded)?;
        }
        axon.block = block;
        Axons::<T>::insert(netuid, hotkey, axon);
        Self::deposit_event(Event::AxonServed(netuid, hotkey.clone()));
        Ok(())
    }

    // ---- Weights ----

    /// The stake weight of a hotkey on a subnet (alpha only: there is no root network here).
    pub fn stake_weight(hotkey: &T::AccountId, netuid: NetUid) -> u64 {
        TotalHotkeyAlpha::<T>::get(hotkey, netuid)
    }

    /// subtensor's `internal_set_weights` checks 1–14 (§3.2); `rate_limited` is false on reveal.
    pub fn do_set_weights(
        hotkey: &T::AccountId,
        netuid: NetUid,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
        rate_limited: bool,
    ) -> DispatchResult {
        ensure_ok(netuid != 0, Error::<T>::SubnetNotExists)?;
        ensure_ok(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists)?;
        ensure_ok(uids.len() == values.len(), Error::<T>::WeightVecNotEqualSize)?;
        let n = SubnetworkN::<T>::get(netuid);
        ensure_ok(uids.len() <= n as usize, Error::<T>::UidsLengthExceedUidsInSubNet)?;
        let uid = Uids::<T>::get(netuid, hotkey).ok_or(Error::<T>::HotKeyNotRegisteredInSubNet)?;
        let is_owner = SubnetOwnerHotkey::<T>::get(netuid) == *hotkey;
        ensure_ok(
            is_owner || Self::stake_weight(hotkey, netuid) >= StakeThreshold::<T>::get(),
            Error::<T>::NotEnoughStakeToSetWeights,
        )?;
        let required = WeightsVersionKey::<T>::get(netuid);
        ensure_ok(required == 0 || version_key >= required, Error::<T>::IncorrectWeightVersionKey)?;
        let block = Self::current_block();
        if rate_limited {
            let last = LastUpdate::<T>::get(netuid).get(uid as usize).copied().unwrap_or(0);
            ensure_ok(
                last == 0 || block.saturating_sub(last) >= WeightsSetRateLimit::<T>::get(netuid),
                Error::<T>::SettingWeightsTooFast,
            )?;
        }
        let self_weight = uids.len() == 1 && uids[0] == uid;
        let permit = ValidatorPermit::<T>::get(netuid).get(uid as usize).copied().unwrap_or(false);
        ensure_ok(self_weight || is_owner || permit, Error::<T>::NeuronNoValidatorPermit)?;
        let mut seen = Vec::with_capacity(uids.len());
        for u in &uids {
            ensure_ok(!seen.contains(u), Error::<T>::DuplicateUids)?;
            seen.push(*u);
        }
        ensure_ok(uids.iter().all(|u| *u < n), Error::<T>::UidVecContainInvalidOne)?;
        let min = MinAllowedWeights::<T>::get(netuid).min(n) as usize;
        ensure_ok(self_weight || uids.len() >= min, Error::<T>::WeightVecLengthIsLow)?;
        let normalized = max_upscale(&values);
        let limit = MaxWeightsLimit::<T>::get(netuid);
        if limit != u16::MAX && !self_weight {
            ensure_ok(normalized.iter().all(|w| *w <= limit), Error::<T>::MaxWeightExceeded)?;
        }
        let row: Vec<(u16, u16)> = uids.into_iter().zip(normalized).collect();
        Weights::<T>::insert(netuid, uid, row);
        if rate_limited {
            Self::touch_last_update(netuid, uid, block);
        }
        Self::deposit_event(Event::WeightsSet(netuid, uid));
        Ok(())
    }

    fn touch_last_update(netuid: NetUid, uid: u16, block: u64) {
        LastUpdate::<T>::mutate(netuid, |v| {
            if v.len() <= uid as usize {
                v.resize(uid as usize + 1, 0);
            }
            v[uid as usize] = block;
        });
    }

    pub fn do_commit_weights(hotkey: &T::AccountId, netuid: NetUid, hash: H256) -> DispatchResult {
        ensure_ok(CommitRevealWeightsEnabled::<T>::get(netuid), Error::<T>::CommitRevealDisabled)?;
        let uid = Uids::<T>::get(netuid, hotkey).ok_or(Error::<T>::HotKeyNotRegisteredInSubNet)?;
        let block = Self::current_block();
        let last = LastUpdate::<T>::get(netuid).get(uid as usize).copied().unwrap_or(0);
        ensure_ok(
            last == 0 || block.saturating_sub(last) >= WeightsSetRateLimit::<T>::get(netuid),
            Error::<T>::CommittingWeightsTooFast,
        )?;
        let epoch = SubnetEpochIndex::<T>::get(netuid);
        let period = RevealPeriodEpochs::<T>::get(netuid);
        WeightCommits::<T>::try_mutate(netuid, hotkey, |commits| -> DispatchResult {
            let q = commits.get_or_insert_with(VecDeque::new);
            // Commits that can no longer be revealed do not count.
            q.retain(|(_, commit_epoch, _, _)| commit_epoch.saturating_add(period) >= epoch);
            ensure_ok(q.len() < MAX_UNREVEALED_COMMITS, Error::<T>::TooManyUnrevealedCommits)?;
            q.push_back((hash, epoch, block, 0));
            Ok(())
        })?;
        Self::touch_last_update(netuid, uid, block);
        Self::deposit_event(Event::WeightsCommitted(hotkey.clone(), netuid, hash));
        Ok(())
    }

    pub fn do_reveal_weights(
        hotkey: &T::AccountId,
        netuid: NetUid,
        uids: Vec<u16>,
        values: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
    ) -> DispatchResult {
        ensure_ok(CommitRevealWeightsEnabled::<T>::get(netuid), Error::<T>::CommitRevealDisabled)?;
        let mut commits = WeightCommits::<T>::get(netuid, hotkey).ok_or(Error::<T>::NoWeightsCommitFound)?;
        let hash = Self::commit_hash(hotkey, netuid, &uids, &values, &salt, version_key);
        let epoch = SubnetEpochIndex::<T>::get(netuid);
        let period = RevealPeriodEpochs::<T>::get(netuid);
        let pos = commits.iter().position(|c| c.0 == hash).ok_or(Error::<T>::InvalidRevealCommitHashNotMatch)?;
        let reveal_epoch = commits[pos].1.saturating_add(period);
        ensure_ok(epoch >= reveal_epoch, Error::<T>::RevealTooEarly)?;
        // Expired (a failed call changes no storage; the next commit drops stale entries).
        ensure_ok(epoch == reveal_epoch, Error::<T>::ExpiredWeightCommit)?;
        Self::do_set_weights(hotkey, netuid, uids, values, version_key, false)?;
        commits.drain(..=pos);
        Self::store_commits(netuid, hotkey, commits);
        Self::deposit_event(Event::WeightsRevealed(hotkey.clone(), netuid, hash));
        Ok(())
    }

    fn store_commits(netuid: NetUid, hotkey: &T::AccountId, commits: VecDeque<(H256, u64, u64, u64)>) {
        if commits.is_empty() {
            WeightCommits::<T>::remove(netuid, hotkey);
        } else {
            WeightCommits::<T>::insert(netuid, hotkey, commits);
        }
    }

    // ---- Epoch ----

    /// subtensor's dynamic-tempo rule: an epoch runs once `Tempo` blocks passed since the last.
    pub fn epoch_due(netuid: NetUid, block: u64) -> bool {
        let tempo = Tempo::<T>::get(netuid) as u64;
        tempo > 0 && block.saturating_sub(LastEpochBlock::<T>::get(netuid)) >= tempo
    }

    /// First block of the next epoch (what `SubnetInfoRuntimeApi::get_next_epoch_start_block` returns).
    pub fn next_epoch_start_block(netuid: NetUid) -> Option<u64> {
        if !NetworksAdded::<T>::get(netuid) {
            return None;
        }
        let tempo = Tempo::<T>::get(netuid) as u64;
        if tempo == 0 {
            return None;
        }
        Some(LastEpochBlock::<T>::get(netuid).saturating_add(tempo).max(Self::current_block()))
    }

    /// Blocks left before the next epoch (used by AdminUtils' freeze window).
    pub fn blocks_until_next_epoch(netuid: NetUid) -> u64 {
        Self::next_epoch_start_block(netuid).map_or(u64::MAX, |b| b.saturating_sub(Self::current_block()))
    }

    pub fn run_epoch(netuid: NetUid, block: u64) {
        let tempo = Tempo::<T>::get(netuid) as u64;
        let elapsed = block.saturating_sub(LastEpochBlock::<T>::get(netuid)).min(tempo);
        LastEpochBlock::<T>::insert(netuid, block);
        LastMechansimStepBlock::<T>::insert(netuid, block);
        BlocksSinceLastStep::<T>::insert(netuid, 0);
        SubnetEpochIndex::<T>::mutate(netuid, |e| *e = e.saturating_add(1));

        let n = SubnetworkN::<T>::get(netuid) as usize;
        let hotkeys: Vec<T::AccountId> = (0..n as u16).map(|uid| Keys::<T>::get(netuid, uid)).collect();
        let owner_hotkey = SubnetOwnerHotkey::<T>::get(netuid);
        let threshold = StakeThreshold::<T>::get();
        let stake: Vec<u64> = hotkeys
            .iter()
            .map(|h| {
                let s = Self::stake_weight(h, netuid);
                if s >= threshold || *h == owner_hotkey {
                    s
                } else {
                    0
                }
            })
            .collect();
        let last_update = padded(LastUpdate::<T>::get(netuid), n);
        let registered: Vec<u64> = (0..n as u16).map(|uid| BlockAtRegistration::<T>::get(netuid, uid)).collect();
        let cutoff = ActivityCutoff::<T>::get(netuid) as u64;
        let active: Vec<bool> = last_update.iter().map(|lu| lu.saturating_add(cutoff) >= block).collect();
        let permits = padded(ValidatorPermit::<T>::get(netuid), n);
        let owner_uid = Uids::<T>::get(netuid, &owner_hotkey);
        let mut weights: Vec<Vec<(u16, u16)>> = vec![Vec::new(); n];
        for (row, w) in Weights::<T>::iter_prefix(netuid) {
            if let Some(slot) = weights.get_mut(row as usize) {
                *slot = w;
            }
        }
        let inputs = EpochInputs {
            stake: &stake,
            active: &active,
            permits: &permits,
            weights: &weights,
            last_update: &last_update,
            registered: &registered,
            owner_uid,
            max_validators: MaxAllowedValidators::<T>::get(netuid),
        };
        let out = yuma(&inputs);

        // Emission: a fixed amount of alpha per elapsed block once start_call ran.
        let started = FirstEmissionBlockNumber::<T>::get(netuid).is_some_and(|first| block >= first);
        let mut emission = vec![0u64; n];
        if started && n > 0 {
            let total = ALPHA_PER_BLOCK.saturating_mul(elapsed);
            let owner_cut = total.saturating_mul(OWNER_CUT_PERCENT) / 100;
            let half = (total - owner_cut) / 2;
            let incentive_alpha = split(half, &out.incentive);
            let dividend_alpha = split(half, &out.dividends);
            for uid in 0..n {
                emission[uid] = incentive_alpha[uid].saturating_add(dividend_alpha[uid]);
            }
            if let Some(o) = owner_uid {
                emission[o as usize] = emission[o as usize].saturating_add(owner_cut);
            }
            for (uid, alpha) in emission.iter().enumerate() {
                Self::emit_to_hotkey(netuid, &hotkeys[uid], *alpha);
            }
        }
        Active::<T>::insert(netuid, active);
        ValidatorPermit::<T>::insert(netuid, out.new_permits);
        ValidatorTrust::<T>::insert(netuid, out.validator_trust);
        Consensus::<T>::insert(netuid, out.consensus);
        Incentive::<T>::insert(netuid, out.incentive);
        Dividends::<T>::insert(netuid, out.dividends);
        StakeWeight::<T>::insert(netuid, out.stake_weight);
        Emission::<T>::insert(netuid, emission);
        Self::deposit_event(Event::EpochRun(netuid, block));
    }
}

impl<T: Config> SubnetQuery<T::AccountId> for Pallet<T> {
    fn is_registered(netuid: NetUid, who: &T::AccountId) -> bool {
        Uids::<T>::contains_key(netuid, who)
    }
    fn epoch_index(netuid: NetUid) -> u64 {
        SubnetEpochIndex::<T>::get(netuid)
    }
}

/// The account whose id is all zeros (AccountId32 decodes from any 32 bytes).
pub fn zero_account<T: frame_system::Config>() -> T::AccountId {
    T::AccountId::decode(&mut TrailingZeroInput::zeroes())
        .unwrap_or_else(|_| unreachable!("an account id decodes from an endless run of zeros"))
}

fn ensure_ok<T: Config>(cond: bool, err: Error<T>) -> Result<(), Error<T>> {
    if cond {
        Ok(())
    } else {
        Err(err)
    }
}

fn padded<X: Clone + Default>(mut v: Vec<X>, n: usize) -> Vec<X> {
    v.resize(n, X::default());
    v
}

/// Scales values so that the largest becomes `u16::MAX` (subtensor's `vec_u16_max_upscale_to_u16`).
pub fn max_upscale(values: &[u16]) -> Vec<u16> {
    let max = values.iter().copied().max().unwrap_or(0) as u64;
    if max == 0 {
        return values.to_vec();
    }
    values.iter().map(|v| ((*v as u64 * u16::MAX as u64 + max / 2) / max) as u16).collect()
}

/// Splits `total` in proportion to `parts` (which need not sum to anything in particular).
fn split(total: u64, parts: &[u16]) -> Vec<u64> {
    let sum: u128 = parts.iter().map(|p| *p as u128).sum();
    if sum == 0 {
        return vec![0; parts.len()];
    }
    parts.iter().map(|p| (total as u128 * *p as u128 / sum) as u64).collect()
}

/// Normalizes to proportions of `u16::MAX` (the sum becomes ≈ 65535, or all zero).
fn normalize_u16(values: &[u128]) -> Vec<u16> {
    let sum: u128 = values.iter().sum();
    if sum == 0 {
        return vec![0; values.len()];
    }
    values.iter().map(|v| (v.saturating_mul(u16::MAX as u128) / sum) as u16).collect()
}

/// What the epoch reads, per uid.
pub struct EpochInputs<'a> {
    pub stake: &'a [u64],
    pub active: &'a [bool],
    /// Validator permits from the previous epoch: only these rows' weights count.
    pub permits: &'a [bool],
    /// Weight rows (uid, u16 weight) per uid.
    pub weights: &'a [Vec<(u16, u16)>],
    pub last_update: &'a [u64],
    pub registered: &'a [u64],
    pub owner_uid: Option<u16>,
    pub max_validators: u16,
}

/// What the epoch writes, per uid (u16 vectors are proportions of `u16::MAX`).
#[derive(Debug, PartialEq, Eq)]
pub struct EpochOutputs {
    pub consensus: Vec<u16>,
    pub incentive: Vec<u16>,
    pub dividends: Vec<u16>,
    pub validator_trust: Vec<u16>,
    pub stake_weight: Vec<u16>,
    pub new_permits: Vec<bool>,
}

/// A bond-less Yuma consensus, in integer arithmetic (weights as parts of `u16::MAX`):
/// 1. stake counts only for active uids with a validator permit (as subtensor masks
///    non-validator stake before the median); rows count only with a permit; self-weights
///    are masked (except the owner's), and so are weights set before the target (re)registered;
///    rows are normalized to sum 1;
/// 2. consensus per miner = the stake-weighted median (kappa = 1/2) of its column;
/// 3. weights are clipped to consensus; incentive = Σ stake × clipped weight, normalized;
/// 4. validator trust = Σ clipped weights of a row; dividends = stake × Σ clipped weight ×
///    incentive, normalized (in place of subtensor's bond EMA);
/// 5. new permits: the top `max_validators` by stake (stake > 0) plus the owner.
pub fn yuma(inp: &EpochInputs) -> EpochOutputs {
    let n = inp.stake.len();
    const ONE: u64 = u16::MAX as u64;
    let counts = |i: usize| inp.active.get(i).copied().unwrap_or(false) && inp.permits.get(i).copied().unwrap_or(false);
    let active_stake: Vec<u64> = (0..n).map(|i| if counts(i) { inp.stake[i] } else { 0 }).collect();
    let total_stake: u128 = active_stake.iter().map(|s| *s as u128).sum();
    let stake_weight = normalize_u16(&inp.stake.iter().map(|s| *s as u128).collect::<Vec<_>>());

    // 1. The masked, row-normalized weight matrix (dense; n ≤ MaxAllowedUids).
    let mut w = vec![vec![0u64; n]; n];
    for (i, w_row) in w.iter_mut().enumerate() {
        if !inp.permits.get(i).copied().unwrap_or(false) {
            continue;
        }
        let row = inp.weights.get(i).map(Vec::as_slice).unwrap_or_default();
        let last_update = inp.last_update.get(i).copied().unwrap_or(0);
        let mut kept: Vec<(usize, u64)> = Vec::with_capacity(row.len());
        for (dest, val) in row {
            let j = *dest as usize;
            if j >= n || (j == i && inp.owner_uid != Some(i as u16)) {
                continue;
            }
            if last_update <= inp.registered.get(j).copied().unwrap_or(0) {
                continue; // set before the target (re)registered
            }
            kept.push((j, *val as u64));
        }
        let sum: u64 = kept.iter().map(|(_, v)| *v).sum();
        if sum == 0 {
            continue;
        }
        for (j, v) in kept {
            w_row[j] = v * ONE / sum;
        }
    }

    // 2. Consensus: the largest weight that validators holding at least kappa of the stake reach.
    let mut consensus = vec![0u64; n];
    if total_stake > 0 {
        let needed = total_stake * KAPPA as u128 / ONE as u128;
        for (j, c) in consensus.iter_mut().enumerate() {
            let mut col: Vec<(u64, u64)> =
                (0..n).filter(|i| w[*i][j] > 0).map(|i| (w[i][j], active_stake[i])).collect();
            col.sort_unstable_by_key(|c| core::cmp::Reverse(c.0));
            let mut acc: u128 = 0;
            for (val, s) in col {
                acc += s as u128;
                if acc > needed {
                    *c = val;
                    break;
                }
            }
        }
    }

    // 3. Clip and rank.
    let mut rank = vec![0u128; n];
    let mut row_trust = vec![0u128; n];
    for i in 0..n {
        for j in 0..n {
            let clipped = w[i][j].min(consensus[j]);
            rank[j] += active_stake[i] as u128 * clipped as u128;
            row_trust[i] += clipped as u128;
        }
    }
    let incentive = normalize_u16(&rank);

    // 4. Dividends without bonds: a validator earns by stake, in proportion to how much of its
    //    clipped weight lands on miners that earn incentive.
    let mut div = vec![0u128; n];
    for i in 0..n {
        let aligned: u128 = (0..n).map(|j| w[i][j].min(consensus[j]) as u128 * incentive[j] as u128).sum();
        div[i] = active_stake[i] as u128 * (aligned / ONE as u128);
    }
    let dividends = normalize_u16(&div);
    let validator_trust = row_trust.iter().map(|t| (*t).min(ONE as u128) as u16).collect();

    // 5. Permits for the next epoch.
    let mut order: Vec<usize> = (0..n).filter(|i| inp.stake[*i] > 0).collect();
    order.sort_by(|a, b| inp.stake[*b].cmp(&inp.stake[*a]).then(a.cmp(b)));
    let mut new_permits = vec![false; n];
    for i in order.into_iter().take(inp.max_validators as usize) {
        new_permits[i] = true;
    }
    if let Some(o) = inp.owner_uid {
        if let Some(p) = new_permits.get_mut(o as usize) {
            *p = true;
        }
    }
    EpochOutputs {
        consensus: consensus.iter().map(|c| *c as u16).collect(),
        incentive,
        dividends,
        validator_trust,
        stake_weight,
        new_permits,
    }
}
