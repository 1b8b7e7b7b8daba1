//! `AdminUtils`: the hyperparameter calls local set-ups use, with subtensor's names, argument names
//! and call indices. "root" calls need the root origin (through `Sudo.sudo`); "owner" calls accept
//! root or the subnet owner's coldkey. Subnet calls are refused in the admin freeze window (the last
//! `AdminFreezeWindow` blocks before the subnet's next epoch), as on subtensor.

pub use pallet::*;

use crate::subtensor::{self as st, NetUid};
use frame_support::pallet_prelude::{DispatchError, DispatchResult};
use frame_system::pallet_prelude::OriginFor;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::pallet_prelude::*;
    use frame_system::pallet_prelude::*;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config + st::Config {}

    #[pallet::error]
    pub enum Error<T> {
        SubnetDoesNotExist,
        AdminActionProhibitedDuringWeightsWindow,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Sets `tx_rate_limit` (root).
        #[pallet::call_index(2)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_tx_rate_limit(origin: OriginFor<T>, tx_rate_limit: u64) -> DispatchResult {
            ensure_root(origin)?;
            st::TxRateLimit::<T>::put(tx_rate_limit);
            Ok(())
        }

        /// Sets `serving_rate_limit` (owner or root).
        #[pallet::call_index(3)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_serving_rate_limit(
            origin: OriginFor<T>,
            netuid: NetUid,
            serving_rate_limit: u64,
        ) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::ServingRateLimit::<T>::insert(netuid, serving_rate_limit);
            Ok(())
        }

        /// Sets `weights_version_key` (owner or root).
        #[pallet::call_index(6)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_weights_version_key(
            origin: OriginFor<T>,
            netuid: NetUid,
            weights_version_key: u64,
        ) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::WeightsVersionKey::<T>::insert(netuid, weights_version_key);
            Ok(())
        }

        /// Sets `weights_set_rate_limit` (root).
        #[pallet::call_index(7)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_weights_set_rate_limit(
            origin: OriginFor<T>,
            netuid: NetUid,
            weights_set_rate_limit: u64,
        ) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::WeightsSetRateLimit::<T>::insert(netuid, weights_set_rate_limit);
            Ok(())
        }

        /// Sets `immunity_period` (owner or root).
        #[pallet::call_index(13)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_immunity_period(origin: OriginFor<T>, netuid: NetUid, immunity_period: u16) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::ImmunityPeriod::<T>::insert(netuid, immunity_period);
            Ok(())
        }

        /// Sets `min_allowed_weights` (owner or root).
        #[pallet::call_index(14)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_min_allowed_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            min_allowed_weights: u16,
        ) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::MinAllowedWeights::<T>::insert(netuid, min_allowed_weights);
            Ok(())
        }

        /// Sets `max_allowed_uids` (root).
        #[pallet::call_index(15)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_max_allowed_uids(
            origin: OriginFor<T>,
            netuid: NetUid,
            max_allowed_uids: u16,
        ) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::MaxAllowedUids::<T>::insert(netuid, max_allowed_uids);
            Ok(())
        }

        /// Sets `activity_cutoff` (owner or root).
        #[pallet::call_index(18)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_activity_cutoff(origin: OriginFor<T>, netuid: NetUid, activity_cutoff: u16) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::ActivityCutoff::<T>::insert(netuid, activity_cutoff);
            Ok(())
        }

        /// Sets `registration_allowed` (root).
        #[pallet::call_index(19)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_network_registration_allowed(
            origin: OriginFor<T>,
            netuid: NetUid,
            registration_allowed: bool,
        ) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::NetworkRegistrationAllowed::<T>::insert(netuid, registration_allowed);
            Ok(())
        }

        /// Sets `min_burn` (owner or root).
        #[pallet::call_index(22)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_min_burn(origin: OriginFor<T>, netuid: NetUid, min_burn: u64) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::MinBurn::<T>::insert(netuid, min_burn);
            Ok(())
        }

        /// Sets `max_burn` (root).
        #[pallet::call_index(23)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_max_burn(origin: OriginFor<T>, netuid: NetUid, max_burn: u64) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::MaxBurn::<T>::insert(netuid, max_burn);
            Ok(())
        }

        /// Sets `max_allowed_validators` (root).
        #[pallet::call_index(25)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_max_allowed_validators(
            origin: OriginFor<T>,
            netuid: NetUid,
            max_allowed_validators: u16,
        ) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::MaxAllowedValidators::<T>::insert(netuid, max_allowed_validators);
            Ok(())
        }

        /// Sets `rate_limit` (root).
        #[pallet::call_index(29)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_network_rate_limit(origin: OriginFor<T>, rate_limit: u64) -> DispatchResult {
            ensure_root(origin)?;
            st::NetworkRateLimit::<T>::put(rate_limit);
            Ok(())
        }

        /// Sets `tempo` (root).
        #[pallet::call_index(30)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_tempo(origin: OriginFor<T>, netuid: NetUid, tempo: u16) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::Tempo::<T>::insert(netuid, tempo);
            Ok(())
        }

        /// Sets `lock_cost` (root).
        #[pallet::call_index(36)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_network_min_lock_cost(origin: OriginFor<T>, lock_cost: u64) -> DispatchResult {
            ensure_root(origin)?;
            st::NetworkMinLockCost::<T>::put(lock_cost);
            Ok(())
        }

        /// Sets `interval` (root).
        #[pallet::call_index(38)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_lock_reduction_interval(origin: OriginFor<T>, interval: u64) -> DispatchResult {
            ensure_root(origin)?;
            st::NetworkLockReductionInterval::<T>::put(interval);
            Ok(())
        }

        /// Sets `min_stake` (root).
        #[pallet::call_index(42)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_stake_threshold(origin: OriginFor<T>, min_stake: u64) -> DispatchResult {
            ensure_root(origin)?;
            st::StakeThreshold::<T>::put(min_stake);
            Ok(())
        }

        /// Sets `enabled` (owner or root).
        #[pallet::call_index(49)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_commit_reveal_weights_enabled(
            origin: OriginFor<T>,
            netuid: NetUid,
            enabled: bool,
        ) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::CommitRevealWeightsEnabled::<T>::insert(netuid, enabled);
            Ok(())
        }

        /// The reveal period, in epochs (subtensor bounds it to 1..=100; stored as given here).
        #[pallet::call_index(57)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_commit_reveal_weights_interval(
            origin: OriginFor<T>,
            netuid: NetUid,
            interval: u64,
        ) -> DispatchResult {
            Self::owner_or_root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::RevealPeriodEpochs::<T>::insert(netuid, interval);
            Ok(())
        }

        /// Sets `subtoken_enabled` (root).
        #[pallet::call_index(66)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_subtoken_enabled(
            origin: OriginFor<T>,
            netuid: NetUid,
            subtoken_enabled: bool,
        ) -> DispatchResult {
            Self::root(origin, netuid)?;
            Self::ensure_not_frozen(netuid)?;
            st::SubtokenEnabled::<T>::insert(netuid, subtoken_enabled);
            Ok(())
        }

        /// Blocks before each epoch in which subnet hyperparameters are frozen (default 10).
        #[pallet::call_index(74)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Operational, Pays::No))]
        pub fn sudo_set_admin_freeze_window(origin: OriginFor<T>, window: u16) -> DispatchResult {
            ensure_root(origin)?;
            st::AdminFreezeWindow::<T>::put(window);
            Ok(())
        }
    }
}

impl<T: Config> Pallet<T> {
    fn subnet_exists(netuid: NetUid) -> Result<(), DispatchError> {
        if st::NetworksAdded::<T>::get(netuid) {
            Ok(())
        } else {
            Err(Error::<T>::SubnetDoesNotExist.into())
        }
    }

    fn root(origin: OriginFor<T>, netuid: NetUid) -> DispatchResult {
        frame_system::ensure_root(origin)?;
        Self::subnet_exists(netuid)
    }

    fn owner_or_root(origin: OriginFor<T>, netuid: NetUid) -> DispatchResult {
        Self::subnet_exists(netuid)?;
        match frame_system::ensure_signed_or_root(origin)? {
            None => Ok(()),
            Some(who) if who == st::SubnetOwner::<T>::get(netuid) => Ok(()),
            Some(_) => Err(DispatchError::BadOrigin),
        }
    }

    fn ensure_not_frozen(netuid: NetUid) -> DispatchResult {
        let window = st::AdminFreezeWindow::<T>::get() as u64;
        if window > 0 && st::Pallet::<T>::blocks_until_next_epoch(netuid) < window {
            return Err(Error::<T>::AdminActionProhibitedDuringWeightsWindow.into());
        }
        Ok(())
    }
}
