//! A test runtime with the three pallets over pallet-balances (AccountId32 accounts, ED 500).
use crate::{admin_utils, commitments, subtensor};
use frame_support::{
    construct_runtime, derive_impl,
    traits::{ConstU16, ConstU64, Hooks},
};
use sp_runtime::{traits::IdentityLookup, AccountId32, BuildStorage};

pub use crate::subtensor::TAO;

type Block = frame_system::mocking::MockBlock<Test>;

construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        SubtensorModule: subtensor,
        Commitments: commitments,
        AdminUtils: admin_utils,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountId = AccountId32;
    type Lookup = IdentityLookup<AccountId32>;
    type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    type Balance = u64;
    type ExistentialDeposit = ConstU64<500>;
}

impl subtensor::Config for Test {
    type Currency = Balances;
    type InitialTempo = ConstU16<10>;
}

impl commitments::Config for Test {
    type Subnets = SubtensorModule;
}

impl admin_utils::Config for Test {}

pub fn acct(n: u8) -> AccountId32 {
    AccountId32::new([n; 32])
}

/// Coldkeys 1 and 2 are rich, 3 holds 10 TAO; hotkeys (11, 12, ...) hold nothing.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut t = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
    pallet_balances::GenesisConfig::<Test> {
        balances: vec![(acct(1), 1_000_000 * TAO), (acct(2), 1_000_000 * TAO), (acct(3), 10 * TAO)],
        ..Default::default()
    }
    .assimilate_storage(&mut t)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(t);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let b = System::block_number() + 1;
        System::set_block_number(b);
        SubtensorModule::on_initialize(b);
    }
}

pub fn signed(n: u8) -> RuntimeOrigin {
    RuntimeOrigin::signed(acct(n))
}
