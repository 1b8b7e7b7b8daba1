//! `SubnetInfoRuntimeApi`: `get_metagraph` (a subset of subtensor's `Metagraph` fields, with the
//! same names, order and encodings) and `get_next_epoch_start_block`.

use crate::subtensor::{self as st, AxonInfo, NetUid};
use alloc::vec::Vec;
use codec::{Compact, Decode, Encode};
use scale_info::TypeInfo;

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Metagraph<AccountId> {
    #[codec(compact)]
    pub netuid: u16,
    pub owner_hotkey: AccountId,
    pub owner_coldkey: AccountId,
    #[codec(compact)]
    pub block: u64,
    #[codec(compact)]
    pub tempo: u16,
    #[codec(compact)]
    pub last_step: u64,
    #[codec(compact)]
    pub blocks_since_last_step: u64,
    #[codec(compact)]
    pub min_allowed_weights: u16,
    #[codec(compact)]
    pub max_weights_limit: u16,
    #[codec(compact)]
    pub weights_version: u64,
    #[codec(compact)]
    pub weights_rate_limit: u64,
    #[codec(compact)]
    pub activity_cutoff: u16,
    #[codec(compact)]
    pub max_validators: u16,
    #[codec(compact)]
    pub num_uids: u16,
    #[codec(compact)]
    pub max_uids: u16,
    #[codec(compact)]
    pub burn: u64,
    pub registration_allowed: bool,
    #[codec(compact)]
    pub immunity_period: u16,
    #[codec(compact)]
    pub min_burn: u64,
    #[codec(compact)]
    pub max_burn: u64,
    #[codec(compact)]
    pub serving_rate_limit: u64,
    pub commit_reveal_weights_enabled: bool,
    #[codec(compact)]
    pub commit_reveal_period: u64,
    pub hotkeys: Vec<AccountId>,
    pub coldkeys: Vec<AccountId>,
    pub axons: Vec<AxonInfo>,
    pub active: Vec<bool>,
    pub validator_permit: Vec<bool>,
    pub last_update: Vec<Compact<u64>>,
    pub emission: Vec<Compact<u64>>,
    pub dividends: Vec<Compact<u16>>,
    pub incentives: Vec<Compact<u16>>,
    pub consensus: Vec<Compact<u16>>,
    pub block_at_registration: Vec<Compact<u64>>,
    pub alpha_stake: Vec<Compact<u64>>,
    pub tao_stake: Vec<Compact<u64>>,
    pub total_stake: Vec<Compact<u64>>,
}

sp_api::decl_runtime_apis! {
    pub trait SubnetInfoRuntimeApi {
        fn get_metagraph(netuid: u16) -> Option<Metagraph<sp_runtime::AccountId32>>;
        fn get_next_epoch_start_block(netuid: u16) -> Option<u64>;
    }
}

/// The metagraph of a subnet, or `None` when it does not exist.
pub fn metagraph<T: st::Config>(netuid: NetUid) -> Option<Metagraph<T::AccountId>> {
    if !st::NetworksAdded::<T>::get(netuid) {
        return None;
    }
    let n = st::SubnetworkN::<T>::get(netuid);
    let hotkeys: Vec<T::AccountId> = (0..n).map(|uid| st::Keys::<T>::get(netuid, uid)).collect();
    let coldkeys = hotkeys.iter().map(st::Owner::<T>::get).collect();
    let axons = hotkeys.iter().map(|h| st::Axons::<T>::get(netuid, h).unwrap_or_default()).collect();
    let per_uid = |v: Vec<u64>| -> Vec<Compact<u64>> {
        (0..n as usize).map(|i| Compact(v.get(i).copied().unwrap_or(0))).collect()
    };
    let per_uid16 = |v: Vec<u16>| -> Vec<Compact<u16>> {
        (0..n as usize).map(|i| Compact(v.get(i).copied().unwrap_or(0))).collect()
    };
    let flags = |v: Vec<bool>| -> Vec<bool> { (0..n as usize).map(|i| v.get(i).copied().unwrap_or(false)).collect() };
    let stake: Vec<u64> = hotkeys.iter().map(|h| st::TotalHotkeyAlpha::<T>::get(h, netuid)).collect();
    let registered: Vec<u64> = (0..n).map(|uid| st::BlockAtRegistration::<T>::get(netuid, uid)).collect();
    Some(Metagraph {
        netuid,
        owner_hotkey: st::SubnetOwnerHotkey::<T>::get(netuid),
        owner_coldkey: st::SubnetOwner::<T>::get(netuid),
        block: st::Pallet::<T>::current_block(),
        tempo: st::Tempo::<T>::get(netuid),
        last_step: st::LastMechansimStepBlock::<T>::get(netuid),
        blocks_since_last_step: st::BlocksSinceLastStep::<T>::get(netuid),
        min_allowed_weights: st::MinAllowedWeights::<T>::get(netuid),
        max_weights_limit: st::MaxWeightsLimit::<T>::get(netuid),
        weights_version: st::WeightsVersionKey::<T>::get(netuid),
        weights_rate_limit: st::WeightsSetRateLimit::<T>::get(netuid),
        activity_cutoff: st::ActivityCutoff::<T>::get(netuid),
        max_validators: st::MaxAllowedValidators::<T>::get(netuid),
        num_uids: n,
        max_uids: st::MaxAllowedUids::<T>::get(netuid),
        burn: st::Pallet::<T>::registration_burn(netuid),
        registration_allowed: st::NetworkRegistrationAllowed::<T>::get(netuid),
        immunity_period: st::ImmunityPeriod::<T>::get(netuid),
        min_burn: st::MinBurn::<T>::get(netuid),
        max_burn: st::MaxBurn::<T>::get(netuid),
        serving_rate_limit: st::ServingRateLimit::<T>::get(netuid),
        commit_reveal_weights_enabled: st::CommitRevealWeightsEnabled::<T>::get(netuid),
        commit_reveal_period: st::RevealPeriodEpochs::<T>::get(netuid),
        hotkeys,
        coldkeys,
        axons,
        active: flags(st::Active::<T>::get(netuid)),
        validator_permit: flags(st::ValidatorPermit::<T>::get(netuid)),
        last_update: per_uid(st::LastUpdate::<T>::get(netuid)),
        emission: per_uid(st::Emission::<T>::get(netuid)),
        dividends: per_uid16(st::Dividends::<T>::get(netuid)),
        incentives: per_uid16(st::Incentive::<T>::get(netuid)),
        consensus: per_uid16(st::Consensus::<T>::get(netuid)),
        block_at_registration: per_uid(registered),
        alpha_stake: per_uid(stake.clone()),
        // No root network: TAO stake is zero and the total is the alpha stake.
        tao_stake: per_uid(alloc::vec![0; n as usize]),
        total_stake: per_uid(stake),
    })
}
