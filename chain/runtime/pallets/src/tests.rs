//! Unit tests: registration, weights rules, commit-reveal, commitments encoding and budget, epoch.
use crate::commitments::{self, CommitmentInfo, Data};
use crate::mock::*;
use crate::subtensor::{self as st, EpochInputs, Error};
use codec::{Decode, Encode};
use frame_support::{assert_noop, assert_ok, BoundedVec};
use sp_core::H256;

/// Subnet 1 owned by coldkey 1 (owner hotkey 11 = uid 0); coldkey 2 registers hotkey 12 (uid 1).
fn subnet_with_two() -> u16 {
    assert_ok!(SubtensorModule::register_network(signed(1), acct(11)));
    assert_ok!(SubtensorModule::burned_register(signed(2), 1, acct(12)));
    1
}

fn no_cr(netuid: u16) {
    assert_ok!(AdminUtils::sudo_set_admin_freeze_window(RuntimeOrigin::root(), 0));
    assert_ok!(AdminUtils::sudo_set_commit_reveal_weights_enabled(RuntimeOrigin::root(), netuid, false));
    assert_ok!(AdminUtils::sudo_set_weights_set_rate_limit(RuntimeOrigin::root(), netuid, 0));
}

#[test]
fn register_network_and_burned_register() {
    new_test_ext().execute_with(|| {
        let before = Balances::free_balance(acct(2));
        let netuid = subnet_with_two();
        assert_eq!(st::SubnetOwner::<Test>::get(netuid), acct(1));
        assert_eq!(st::SubnetOwnerHotkey::<Test>::get(netuid), acct(11));
        assert_eq!(st::Keys::<Test>::get(netuid, 0), acct(11));
        assert_eq!(st::Keys::<Test>::get(netuid, 1), acct(12));
        assert_eq!(st::Uids::<Test>::get(netuid, acct(12)), Some(1));
        assert_eq!(st::SubnetworkN::<Test>::get(netuid), 2);
        assert_eq!(st::Owner::<Test>::get(acct(12)), acct(2));
        assert_eq!(st::BlockAtRegistration::<Test>::get(netuid, 1), 1);
        assert_eq!(before - Balances::free_balance(acct(2)), TAO, "the burn is 1 TAO");
        assert_eq!(st::Active::<Test>::get(netuid).len(), 2);
        assert_eq!(st::LastUpdate::<Test>::get(netuid).len(), 2);
        // The hotkey now exists (so it can sign fee-less calls) without holding TAO.
        assert!(frame_system::Pallet::<Test>::account_exists(&acct(12)));
    });
}

#[test]
fn registration_errors() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_noop!(
            SubtensorModule::burned_register(signed(2), 0, acct(13)),
            Error::<Test>::RegistrationNotPermittedOnRootSubnet
        );
        assert_noop!(SubtensorModule::burned_register(signed(2), 9, acct(13)), Error::<Test>::SubnetNotExists);
        assert_noop!(
            SubtensorModule::burned_register(signed(2), netuid, acct(12)),
            Error::<Test>::HotKeyAlreadyRegisteredInSubNet
        );
        // Hotkey 12 belongs to coldkey 2: coldkey 1 cannot register it elsewhere.
        assert_ok!(AdminUtils::sudo_set_network_rate_limit(RuntimeOrigin::root(), 0));
        assert_ok!(SubtensorModule::register_network(signed(1), acct(21)));
        assert_noop!(SubtensorModule::burned_register(signed(1), 2, acct(12)), Error::<Test>::NonAssociatedColdKey);
        // Coldkey 3 (10 TAO) cannot pay a 20 TAO burn.
        assert_ok!(AdminUtils::sudo_set_admin_freeze_window(RuntimeOrigin::root(), 0));
        assert_ok!(AdminUtils::sudo_set_min_burn(RuntimeOrigin::root(), netuid, 20 * TAO));
        assert_noop!(
            SubtensorModule::burned_register(signed(3), netuid, acct(13)),
            Error::<Test>::NotEnoughBalanceToStake
        );
        assert_ok!(AdminUtils::sudo_set_network_registration_allowed(RuntimeOrigin::root(), netuid, false));
        assert_noop!(
            SubtensorModule::burned_register(signed(2), netuid, acct(13)),
            Error::<Test>::SubNetRegistrationDisabled
        );
    });
}

#[test]
fn network_rate_limit_applies() {
    new_test_ext().execute_with(|| {
        assert_ok!(SubtensorModule::register_network(signed(1), acct(11)));
        assert_noop!(SubtensorModule::register_network(signed(1), acct(21)), Error::<Test>::NetworkTxRateLimitExceeded);
    });
}

#[test]
fn a_full_subnet_replaces_the_lowest_emission_non_immune_uid_never_the_owner() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_ok!(AdminUtils::sudo_set_admin_freeze_window(RuntimeOrigin::root(), 0));
        assert_ok!(AdminUtils::sudo_set_max_allowed_uids(RuntimeOrigin::root(), netuid, 2));
        // Everyone is immune for 5000 blocks: still, the non-owner uid is the one replaced.
        assert_ok!(SubtensorModule::burned_register(signed(2), netuid, acct(13)));
        assert_eq!(st::Keys::<Test>::get(netuid, 1), acct(13));
        assert_eq!(st::Uids::<Test>::get(netuid, acct(12)), None);
        assert_eq!(st::Keys::<Test>::get(netuid, 0), acct(11));
        assert_eq!(st::SubnetworkN::<Test>::get(netuid), 2);
    });
}

#[test]
fn stake_add_and_remove() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_noop!(SubtensorModule::add_stake(signed(2), acct(12), netuid, 5 * TAO), Error::<Test>::SubtokenDisabled);
        assert_ok!(SubtensorModule::start_call(signed(1), netuid));
        assert_noop!(SubtensorModule::start_call(signed(1), netuid), Error::<Test>::FirstEmissionBlockNumberAlreadySet);
        assert_noop!(SubtensorModule::add_stake(signed(2), acct(12), netuid, 1_000), Error::<Test>::AmountTooLow);
        assert_noop!(
            SubtensorModule::add_stake(signed(2), acct(99), netuid, 5 * TAO),
            Error::<Test>::HotKeyAccountNotExists
        );
        assert_ok!(SubtensorModule::add_stake(signed(2), acct(12), netuid, 5 * TAO));
        assert_eq!(st::TotalHotkeyAlpha::<Test>::get(acct(12), netuid), 5 * TAO);
        assert_eq!(SubtensorModule::stake_of(&acct(12), &acct(2), netuid), 5 * TAO);
        assert_noop!(
            SubtensorModule::remove_stake(signed(2), acct(12), netuid, 6 * TAO),
            Error::<Test>::NotEnoughStakeToWithdraw
        );
        let before = Balances::free_balance(acct(2));
        assert_ok!(SubtensorModule::remove_stake(signed(2), acct(12), netuid, 2 * TAO));
        assert_eq!(Balances::free_balance(acct(2)) - before, 2 * TAO);
        assert_eq!(st::TotalHotkeyAlpha::<Test>::get(acct(12), netuid), 3 * TAO);
    });
}

#[test]
fn set_weights_rules() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![1], vec![1], 0),
            Error::<Test>::CommitRevealEnabled
        );
        no_cr(netuid);
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![0, 1], vec![1], 0),
            Error::<Test>::WeightVecNotEqualSize
        );
        assert_noop!(
            SubtensorModule::set_weights(signed(13), netuid, vec![1], vec![1], 0),
            Error::<Test>::HotKeyNotRegisteredInSubNet
        );
        // Uid 1 has no validator permit: only a self-weight.
        assert_noop!(
            SubtensorModule::set_weights(signed(12), netuid, vec![0], vec![1], 0),
            Error::<Test>::NeuronNoValidatorPermit
        );
        assert_ok!(SubtensorModule::set_weights(signed(12), netuid, vec![1], vec![9], 0));
        // The owner needs no permit.
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![1, 1], vec![1, 2], 0),
            Error::<Test>::DuplicateUids
        );
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![0, 5], vec![1, 2], 0),
            Error::<Test>::UidVecContainInvalidOne
        );
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![0, 1, 1], vec![1, 2, 3], 0),
            Error::<Test>::UidsLengthExceedUidsInSubNet
        );
        assert_ok!(AdminUtils::sudo_set_weights_version_key(signed(1), netuid, 7));
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![1], vec![1], 6),
            Error::<Test>::IncorrectWeightVersionKey
        );
        assert_ok!(SubtensorModule::set_weights(signed(11), netuid, vec![0, 1], vec![100, 50], 7));
        // Max-upscaled: the largest becomes 65535.
        assert_eq!(st::Weights::<Test>::get(netuid, 0), vec![(0, 65535), (1, 32768)]);
        assert_eq!(st::LastUpdate::<Test>::get(netuid)[0], 1);
        // Rate limit.
        assert_ok!(AdminUtils::sudo_set_weights_set_rate_limit(RuntimeOrigin::root(), netuid, 5));
        run_to_block(3);
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![1], vec![1], 7),
            Error::<Test>::SettingWeightsTooFast
        );
        run_to_block(6);
        assert_ok!(SubtensorModule::set_weights(signed(11), netuid, vec![1], vec![1], 7));
        // Minimum stake (the owner is exempt).
        assert_ok!(AdminUtils::sudo_set_stake_threshold(RuntimeOrigin::root(), 1_000));
        assert_noop!(
            SubtensorModule::set_weights(signed(12), netuid, vec![1], vec![9], 0),
            Error::<Test>::NotEnoughStakeToSetWeights
        );
    });
}

#[test]
fn commit_hash_matches_the_reference_vector() {
    // subtensor-interface.md §12.2: Alice, netuid 1, uids [0,1], values [65535,100], salt [1..8], key 0.
    let alice = sp_runtime::AccountId32::new(hex32("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"));
    let h = st::Pallet::<Test>::commit_hash(&alice, 1, &[0, 1], &[65535, 100], &[1, 2, 3, 4, 5, 6, 7, 8], 0);
    assert_eq!(h, H256(hex32("9679ad4d55c910f4d03934a379e4f92abe803be586e851c46b2faa3aab424c8c")));
}

fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn commit_reveal_timing() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_ok!(AdminUtils::sudo_set_admin_freeze_window(RuntimeOrigin::root(), 0));
        assert_ok!(AdminUtils::sudo_set_weights_set_rate_limit(RuntimeOrigin::root(), netuid, 0));
        let (uids, values, salt) = (vec![0u16, 1], vec![10u16, 20], vec![7u16; 8]);
        let hash = st::Pallet::<Test>::commit_hash(&acct(11), netuid, &uids, &values, &salt, 0);
        assert_ok!(SubtensorModule::commit_weights(signed(11), netuid, hash));
        assert_noop!(
            SubtensorModule::reveal_weights(signed(11), netuid, uids.clone(), values.clone(), salt.clone(), 0),
            Error::<Test>::RevealTooEarly
        );
        assert_noop!(
            SubtensorModule::reveal_weights(signed(11), netuid, uids.clone(), vec![1, 1], salt.clone(), 0),
            Error::<Test>::InvalidRevealCommitHashNotMatch
        );
        run_to_block(11); // the epoch at LastEpochBlock(1) + tempo(10)
        assert_eq!(st::SubnetEpochIndex::<Test>::get(netuid), 1);
        assert_ok!(SubtensorModule::reveal_weights(signed(11), netuid, uids.clone(), values.clone(), salt.clone(), 0));
        assert_eq!(st::Weights::<Test>::get(netuid, 0), vec![(0, 32768), (1, 65535)]);
        assert!(st::WeightCommits::<Test>::get(netuid, acct(11)).is_none());
        // A commit not revealed in its reveal epoch expires.
        assert_ok!(SubtensorModule::commit_weights(signed(11), netuid, hash));
        run_to_block(31);
        assert_noop!(
            SubtensorModule::reveal_weights(signed(11), netuid, uids.clone(), values.clone(), salt.clone(), 0),
            Error::<Test>::ExpiredWeightCommit
        );
    });
}

#[test]
fn data_encoding_is_subtensors() {
    let raw = Data::Raw(BoundedVec::try_from(vec![0xAB; 128]).unwrap());
    let enc = raw.encode();
    assert_eq!(enc.len(), 129);
    assert_eq!(enc[0], 129, "Raw128 is variant 129 with no length prefix");
    assert_eq!(Data::decode(&mut &enc[..]).unwrap(), raw);
    assert_eq!(Data::Raw(BoundedVec::try_from(vec![]).unwrap()).encode(), vec![1]);
    assert_eq!(Data::None.encode(), vec![0]);
    let big = Data::BigRaw(BoundedVec::try_from(vec![1; 200]).unwrap());
    let e = big.encode();
    assert_eq!(e[0], 136);
    assert_eq!(Data::decode(&mut &e[..]).unwrap(), big);
    for d in [
        Data::Sha256([3; 32]),
        Data::ResetBondsFlag,
        Data::TimelockEncrypted { encrypted: BoundedVec::try_from(vec![9; 10]).unwrap(), reveal_round: 77 },
    ] {
        assert_eq!(Data::decode(&mut &d.encode()[..]).unwrap(), d);
    }
    // Untrusted bytes: unknown tags and truncated payloads are errors, not panics.
    assert!(Data::decode(&mut &[137u8][..]).is_err());
    assert!(Data::decode(&mut &[129u8, 1, 2, 3][..]).is_err());
    let mut too_big = vec![136u8];
    too_big.extend(codec::Compact(513u32).encode());
    too_big.extend(vec![0u8; 513]);
    assert!(Data::decode(&mut &too_big[..]).is_err());
    // The SDK's call: fields = [Raw128(bytes)] -> compact(1) ++ 0x81 ++ bytes.
    let info = CommitmentInfo { fields: BoundedVec::try_from(vec![raw]).unwrap() };
    let e = info.encode();
    assert_eq!(&e[..2], &[4, 129]);
    // At most 3 fields decode.
    let four = (codec::Compact(4u32), [0u8; 4]).encode();
    assert!(CommitmentInfo::decode(&mut &four[..]).is_err());
}

#[test]
fn commitments_need_registration_and_respect_the_space_budget() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        let small = || {
            Box::new(CommitmentInfo {
                fields: BoundedVec::try_from(vec![Data::Raw(BoundedVec::try_from(vec![1; 10]).unwrap())]).unwrap(),
            })
        };
        assert_noop!(
            Commitments::set_commitment(signed(13), netuid, small()),
            commitments::Error::<Test>::AccountNotAllowedCommit
        );
        // 100 space per call (the minimum), 3100 per epoch: 31 calls fit, the 32nd does not.
        for _ in 0..31 {
            assert_ok!(Commitments::set_commitment(signed(12), netuid, small()));
        }
        assert_noop!(
            Commitments::set_commitment(signed(12), netuid, small()),
            commitments::Error::<Test>::SpaceLimitExceeded
        );
        let reg = commitments::CommitmentOf::<Test>::get(netuid, acct(12)).unwrap();
        assert_eq!((reg.deposit, reg.block), (0, 1));
        // The budget resets with the next epoch.
        run_to_block(11);
        assert_ok!(Commitments::set_commitment(signed(12), netuid, small()));
        assert_eq!(commitments::UsedSpaceOf::<Test>::get(netuid, acct(12)).unwrap().used_space, 100);
    });
}

#[test]
fn yuma_clips_to_the_stake_weighted_median() {
    // Validators 0 (stake 60) and 1 (stake 40); miners 2 and 3. V0 weights miner 2, V1 miner 3.
    let weights = vec![vec![(2, 65535)], vec![(3, 65535)], vec![], vec![]];
    let inp = EpochInputs {
        stake: &[60, 40, 0, 0],
        active: &[true; 4],
        permits: &[true, true, false, false],
        weights: &weights,
        last_update: &[10; 4],
        registered: &[0; 4],
        owner_uid: None,
        max_validators: 64,
    };
    let out = st::yuma(&inp);
    // Miner 3 has only 40% of the stake behind it: consensus 0, clipped away.
    assert_eq!(out.consensus[3], 0);
    assert_eq!(out.consensus[2], 65535);
    assert!(out.incentive[2] > 65000 && out.incentive[3] == 0, "{:?}", out.incentive);
    assert!(out.dividends[0] > 65000 && out.dividends[1] == 0, "{:?}", out.dividends);
    assert_eq!(out.new_permits, vec![true, true, false, false]);
    // Weights set before the target registered do not count.
    let inp2 = EpochInputs { registered: &[0, 0, 20, 0], ..inp };
    assert_eq!(st::yuma(&inp2).incentive[2], 0);
}

#[test]
fn yuma_counts_only_permitted_stake_and_limits_permits() {
    // Validator 0 (permit, stake 100) weights miner 2; uid 1 holds 1000 stake but no permit and
    // sets nothing. Its stake must not dilute the median: miner 2 is in consensus.
    let weights = vec![vec![(2, 65535)], vec![], vec![], vec![]];
    let inp = EpochInputs {
        stake: &[100, 1000, 0, 50],
        active: &[true; 4],
        permits: &[true, false, false, false],
        weights: &weights,
        last_update: &[10; 4],
        registered: &[0; 4],
        owner_uid: None,
        max_validators: 2,
    };
    let out = st::yuma(&inp);
    assert_eq!(out.consensus[2], 65535);
    assert!(out.incentive[2] > 65000, "{:?}", out.incentive);
    // Permits for the next epoch: the top 2 by stake (uid 1, uid 0), not uid 3 nor the miner.
    assert_eq!(out.new_permits, vec![true, true, false, false]);
    // An inactive validator's stake does not count either, and its row is ignored: no consensus.
    let out = st::yuma(&EpochInputs { active: &[false, true, true, true], ..inp });
    assert_eq!(out.consensus[2], 0);
    assert_eq!(out.incentive[2], 0);
}

#[test]
fn serve_axon_rules() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        let serve = |who: u8, ip: u128, port: u16, ip_type: u8| {
            SubtensorModule::serve_axon(signed(who), netuid, 1, ip, port, ip_type, 4, 0, 0)
        };
        let ip = (10u128 << 24) | 5;
        assert_noop!(serve(13, ip, 8091, 4), Error::<Test>::HotKeyNotRegisteredInNetwork);
        assert_noop!(serve(12, ip, 8091, 5), Error::<Test>::InvalidIpType);
        assert_noop!(serve(12, 0x7f00_0001, 8091, 4), Error::<Test>::InvalidIpAddress);
        assert_noop!(serve(12, u32::MAX as u128, 8091, 4), Error::<Test>::InvalidIpAddress);
        assert_noop!(serve(12, ip, 0, 4), Error::<Test>::InvalidPort);
        assert_ok!(serve(12, ip, 8091, 4));
        let axon = st::Axons::<Test>::get(netuid, acct(12)).unwrap();
        assert_eq!((axon.ip, axon.port, axon.block), (ip, 8091, 1));
        // Serving again within ServingRateLimit (50 blocks by default) is refused.
        run_to_block(30);
        assert_noop!(serve(12, ip, 9000, 4), Error::<Test>::ServingRateLimitExceeded);
        run_to_block(51);
        assert_ok!(serve(12, ip, 9000, 4));
        assert_eq!(st::Axons::<Test>::get(netuid, acct(12)).unwrap().port, 9000);
    });
}

#[test]
fn weight_count_and_size_limits() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_ok!(SubtensorModule::burned_register(signed(2), netuid, acct(13)));
        no_cr(netuid);
        // At least two weights...
        assert_ok!(AdminUtils::sudo_set_min_allowed_weights(signed(1), netuid, 2));
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![1], vec![1], 0),
            Error::<Test>::WeightVecLengthIsLow
        );
        // ...but a lone self-weight is always allowed.
        assert_ok!(SubtensorModule::set_weights(signed(12), netuid, vec![1], vec![1], 0));
        // No weight above MaxWeightsLimit after max-upscaling (two equal weights are both 65535).
        st::MaxWeightsLimit::<Test>::insert(netuid, 40_000);
        assert_noop!(
            SubtensorModule::set_weights(signed(11), netuid, vec![1, 2], vec![1, 1], 0),
            Error::<Test>::MaxWeightExceeded
        );
        st::MaxWeightsLimit::<Test>::insert(netuid, u16::MAX);
        assert_ok!(SubtensorModule::set_weights(signed(11), netuid, vec![1, 2], vec![1, 1], 0));
    });
}

#[test]
fn at_most_ten_unrevealed_commits() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_ok!(AdminUtils::sudo_set_admin_freeze_window(RuntimeOrigin::root(), 0));
        assert_ok!(AdminUtils::sudo_set_weights_set_rate_limit(RuntimeOrigin::root(), netuid, 0));
        for i in 0..st::MAX_UNREVEALED_COMMITS as u16 {
            let hash = st::Pallet::<Test>::commit_hash(&acct(11), netuid, &[1], &[i + 1], &[i], 0);
            assert_ok!(SubtensorModule::commit_weights(signed(11), netuid, hash));
        }
        let hash = st::Pallet::<Test>::commit_hash(&acct(11), netuid, &[1], &[99], &[99], 0);
        assert_noop!(
            SubtensorModule::commit_weights(signed(11), netuid, hash),
            Error::<Test>::TooManyUnrevealedCommits
        );
        // Commits that can no longer be revealed stop counting.
        run_to_block(31);
        assert_ok!(SubtensorModule::commit_weights(signed(11), netuid, hash));
        assert_eq!(st::WeightCommits::<Test>::get(netuid, acct(11)).unwrap().len(), 1);
    });
}

#[test]
fn stake_under_the_threshold_earns_no_permit() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_ok!(SubtensorModule::start_call(signed(1), netuid));
        assert_ok!(SubtensorModule::add_stake(signed(2), acct(12), netuid, 5 * TAO));
        assert_ok!(AdminUtils::sudo_set_stake_threshold(RuntimeOrigin::root(), 10 * TAO));
        run_to_block(11);
        assert_eq!(st::ValidatorPermit::<Test>::get(netuid), vec![true, false], "the owner always has one");
        assert_ok!(AdminUtils::sudo_set_stake_threshold(RuntimeOrigin::root(), TAO));
        run_to_block(21);
        assert_eq!(st::ValidatorPermit::<Test>::get(netuid), vec![true, true]);
    });
}

#[test]
fn epochs_run_every_tempo_blocks_and_emit() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        assert_ok!(SubtensorModule::start_call(signed(1), netuid));
        no_cr(netuid);
        assert_ok!(SubtensorModule::add_stake(signed(1), acct(11), netuid, 100 * TAO));
        run_to_block(10);
        assert_eq!(st::SubnetEpochIndex::<Test>::get(netuid), 0);
        run_to_block(11);
        assert_eq!(st::SubnetEpochIndex::<Test>::get(netuid), 1);
        assert_eq!(st::LastEpochBlock::<Test>::get(netuid), 11);
        assert_eq!(SubtensorModule::next_epoch_start_block(netuid), Some(21));
        // The owner (permit, majority stake) weights miner 1; the next epoch pays it.
        assert_ok!(SubtensorModule::set_weights(signed(11), netuid, vec![1], vec![1], 0));
        run_to_block(21);
        let incentive = st::Incentive::<Test>::get(netuid);
        let emission = st::Emission::<Test>::get(netuid);
        assert!(incentive[1] > 65000, "{incentive:?}");
        assert!(emission[1] > 0 && emission[0] > 0, "{emission:?}");
        // 10 blocks × 1 alpha, split owner 18% / miners 41% / validators 41%.
        let total: u64 = emission.iter().sum();
        assert!(total <= 10 * TAO && total > 10 * TAO - 10, "{total}");
        assert_eq!(st::TotalHotkeyAlpha::<Test>::get(acct(12), netuid), emission[1]);
    });
}

#[test]
fn admin_calls_check_origin_and_freeze_window() {
    new_test_ext().execute_with(|| {
        let netuid = subnet_with_two();
        // Default window 10 with tempo 10: frozen right after the epoch block.
        run_to_block(2);
        assert_noop!(
            AdminUtils::sudo_set_tempo(RuntimeOrigin::root(), netuid, 20),
            crate::admin_utils::Error::<Test>::AdminActionProhibitedDuringWeightsWindow
        );
        assert_ok!(AdminUtils::sudo_set_admin_freeze_window(RuntimeOrigin::root(), 0));
        assert_noop!(AdminUtils::sudo_set_tempo(signed(1), netuid, 20), sp_runtime::DispatchError::BadOrigin);
        assert_ok!(AdminUtils::sudo_set_tempo(RuntimeOrigin::root(), netuid, 20));
        assert_eq!(st::Tempo::<Test>::get(netuid), 20);
        // Owner-or-root calls accept the owner's coldkey, not others.
        assert_ok!(AdminUtils::sudo_set_commit_reveal_weights_enabled(signed(1), netuid, false));
        assert_noop!(
            AdminUtils::sudo_set_commit_reveal_weights_enabled(signed(2), netuid, true),
            sp_runtime::DispatchError::BadOrigin
        );
    });
}
