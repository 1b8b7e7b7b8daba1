//! `Commitments`: subtensor's `set_commitment` with its `Data` encoding (`RawN` is variant N+1 with
//! N raw bytes and no length prefix), at most 3 fields per commitment, and the per-epoch space
//! budget (`max(100, Σ field bytes)` per call, `MaxSpace` = 3100 per hotkey and epoch).
//! Timelocked fields are stored as given but never revealed (there is no drand here).

pub use pallet::*;

use crate::subtensor::{NetUid, SubnetQuery};
use alloc::{boxed::Box, vec::Vec};
use codec::{Decode, DecodeWithMemTracking, Encode, Input};
use frame_support::{pallet_prelude::DispatchResult, traits::ConstU32, BoundedVec};
use scale_info::{build::Fields, build::Variants, Path, Type, TypeInfo};

/// Longest `RawN` payload.
pub const MAX_RAW: usize = 128;
/// Longest `BigRaw` payload.
pub const MAX_BIG_RAW: u32 = 512;
/// Longest `TimelockEncrypted` ciphertext.
pub const MAX_TIMELOCK: u32 = 1024;
/// Fields per commitment (subtensor's `MaxCommitFieldsInner`).
pub const MAX_FIELDS: u32 = 3;
/// Space a call consumes at least.
pub const MIN_SPACE_PER_CALL: u64 = 100;

/// One committed field, encoded exactly as subtensor's `Data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    None,
    /// `RawN`: 0..=128 bytes, encoded as the byte N+1 followed by the N bytes.
    Raw(BoundedVec<u8, ConstU32<128>>),
    BlakeTwo256([u8; 32]),
    Sha256([u8; 32]),
    Keccak256([u8; 32]),
    ShaThree256([u8; 32]),
    TimelockEncrypted {
        encrypted: BoundedVec<u8, ConstU32<MAX_TIMELOCK>>,
        reveal_round: u64,
    },
    ResetBondsFlag,
    BigRaw(BoundedVec<u8, ConstU32<MAX_BIG_RAW>>),
}

impl Data {
    /// Bytes this field counts against the space budget.
    pub fn len_for_space(&self) -> u64 {
        match self {
            Data::None | Data::ResetBondsFlag => 0,
            Data::Raw(b) => b.len() as u64,
            Data::BlakeTwo256(_) | Data::Sha256(_) | Data::Keccak256(_) | Data::ShaThree256(_) => 32,
            Data::TimelockEncrypted { encrypted, .. } => encrypted.len() as u64,
            Data::BigRaw(b) => b.len() as u64,
        }
    }
}

impl Encode for Data {
    fn encode_to<O: codec::Output + ?Sized>(&self, out: &mut O) {
        match self {
            Data::None => out.push_byte(0),
            Data::Raw(bytes) => {
                out.push_byte(bytes.len() as u8 + 1);
                out.write(bytes);
            }
            Data::BlakeTwo256(h) => {
                out.push_byte(130);
                out.write(h);
            }
            Data::Sha256(h) => {
                out.push_byte(131);
                out.write(h);
            }
            Data::Keccak256(h) => {
                out.push_byte(132);
                out.write(h);
            }
            Data::ShaThree256(h) => {
                out.push_byte(133);
                out.write(h);
            }
            Data::TimelockEncrypted { encrypted, reveal_round } => {
                out.push_byte(134);
                encrypted.encode_to(out);
                reveal_round.encode_to(out);
            }
            Data::ResetBondsFlag => out.push_byte(135),
            Data::BigRaw(bytes) => {
                out.push_byte(136);
                bytes.encode_to(out);
            }
        }
    }
}

impl Decode for Data {
    fn decode<I: Input>(input: &mut I) -> Result<Self, codec::Error> {
        let tag = input.read_byte()?;
        Ok(match tag {
            0 => Data::None,
            1..=129 => {
                let mut bytes = alloc::vec![0u8; tag as usize - 1];
                input.read(&mut bytes)?;
                // At most 128 bytes by construction of the tag range.
                Data::Raw(BoundedVec::try_from(bytes).map_err(|_| codec::Error::from("Raw too long"))?)
            }
            130..=133 => {
                let mut h = [0u8; 32];
                input.read(&mut h)?;
                match tag {
                    130 => Data::BlakeTwo256(h),
                    131 => Data::Sha256(h),
                    132 => Data::Keccak256(h),
                    _ => Data::ShaThree256(h),
                }
            }
            134 => Data::TimelockEncrypted { encrypted: BoundedVec::decode(input)?, reveal_round: u64::decode(input)? },
            135 => Data::ResetBondsFlag,
            136 => Data::BigRaw(BoundedVec::decode(input)?),
            _ => return Err(codec::Error::from("invalid Data variant")),
        })
    }
}

impl DecodeWithMemTracking for Data {}

/// `Raw0`..`Raw128` as variants `1..=129` with a `[u8; N]` field each (subtensor's TypeInfo).
macro_rules! raw_variants {
    ($v:expr; $($n:literal)*) => {{
        let v = $v;
        $(
            let v = v.variant(concat!("Raw", stringify!($n)), |b| {
                b.index($n + 1).fields(Fields::unnamed().field(|f| f.ty::<[u8; $n]>()))
            });
        )*
        v
    }};
}

impl TypeInfo for Data {
    type Identity = Self;
    fn type_info() -> Type {
        let v = Variants::new().variant("None", |b| b.index(0));
        let v = raw_variants!(v; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26
            27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56
            57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86
            87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112
            113 114 115 116 117 118 119 120 121 122 123 124 125 126 127 128);
        let hash32 = || Fields::unnamed().field(|f| f.ty::<[u8; 32]>());
        let v = v
            .variant("BlakeTwo256", |b| b.index(130).fields(hash32()))
            .variant("Sha256", |b| b.index(131).fields(hash32()))
            .variant("Keccak256", |b| b.index(132).fields(hash32()))
            .variant("ShaThree256", |b| b.index(133).fields(hash32()))
            .variant("TimelockEncrypted", |b| {
                b.index(134).fields(
                    Fields::named()
                        .field(|f| f.ty::<BoundedVec<u8, ConstU32<MAX_TIMELOCK>>>().name("encrypted"))
                        .field(|f| f.ty::<u64>().name("reveal_round")),
                )
            })
            .variant("ResetBondsFlag", |b| b.index(135))
            .variant("BigRaw", |b| {
                b.index(136).fields(Fields::unnamed().field(|f| f.ty::<BoundedVec<u8, ConstU32<MAX_BIG_RAW>>>()))
            });
        Type::builder().path(Path::new("Data", module_path!())).variant(v)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct CommitmentInfo {
    pub fields: BoundedVec<Data, ConstU32<MAX_FIELDS>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Registration<BlockNumber> {
    pub deposit: u64,
    pub block: BlockNumber,
    pub info: CommitmentInfo,
}

#[derive(Clone, Default, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct UsageTracker {
    pub last_epoch: u64,
    pub used_space: u64,
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
        /// Who may commit on a subnet (its registered hotkeys) and the subnet's epoch counter.
        type Subnets: SubnetQuery<Self::AccountId>;
    }

    #[pallet::type_value]
    pub fn DefaultMaxSpace() -> u32 {
        3100
    }

    #[pallet::storage]
    pub type CommitmentOf<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Twox64Concat, T::AccountId, Registration<BlockNumberFor<T>>, OptionQuery>;
    #[pallet::storage]
    pub type LastCommitment<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Twox64Concat, T::AccountId, BlockNumberFor<T>, OptionQuery>;
    #[pallet::storage]
    pub type LastBondsReset<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Twox64Concat, T::AccountId, BlockNumberFor<T>, OptionQuery>;
    #[pallet::storage]
    pub type RevealedCommitments<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Twox64Concat, T::AccountId, Vec<(Vec<u8>, u64)>, OptionQuery>;
    #[pallet::storage]
    pub type UsedSpaceOf<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Twox64Concat, T::AccountId, UsageTracker, OptionQuery>;
    #[pallet::storage]
    pub type MaxSpace<T> = StorageValue<_, u32, ValueQuery, DefaultMaxSpace>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A commitment was set.
        Commitment { netuid: NetUid, who: T::AccountId },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The signer is not registered on the subnet.
        AccountNotAllowedCommit,
        /// More than 3 fields.
        TooManyFieldsInCommitmentInfo,
        /// The space budget of this epoch is spent.
        SpaceLimitExceeded,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        #[pallet::call_index(0)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn set_commitment(origin: OriginFor<T>, netuid: NetUid, info: Box<CommitmentInfo>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_set_commitment(&who, netuid, *info)
        }

        #[pallet::call_index(2)]
        #[pallet::weight((Weight::from_parts(5_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn set_max_space(origin: OriginFor<T>, new_limit: u32) -> DispatchResult {
            ensure_root(origin)?;
            MaxSpace::<T>::put(new_limit);
            Ok(())
        }
    }
}

impl<T: Config> Pallet<T> {
    /// Space a commitment consumes: `max(100, Σ field bytes)`.
    pub fn space_of(info: &CommitmentInfo) -> u64 {
        info.fields.iter().map(Data::len_for_space).sum::<u64>().max(MIN_SPACE_PER_CALL)
    }

    pub fn do_set_commitment(who: &T::AccountId, netuid: NetUid, info: CommitmentInfo) -> DispatchResult {
        if !T::Subnets::is_registered(netuid, who) {
            return Err(Error::<T>::AccountNotAllowedCommit.into());
        }
        // BoundedVec already caps the fields at MAX_FIELDS when the call decodes; keep the check
        // for callers inside the runtime.
        if info.fields.len() > MAX_FIELDS as usize {
            return Err(Error::<T>::TooManyFieldsInCommitmentInfo.into());
        }
        let epoch = T::Subnets::epoch_index(netuid);
        let space = Self::space_of(&info);
        let mut usage = UsedSpaceOf::<T>::get(netuid, who).unwrap_or_default();
        if usage.last_epoch != epoch {
            usage = UsageTracker { last_epoch: epoch, used_space: 0 };
        }
        let used = usage.used_space.saturating_add(space);
        if used > MaxSpace::<T>::get() as u64 {
            return Err(Error::<T>::SpaceLimitExceeded.into());
        }
        usage.used_space = used;
        UsedSpaceOf::<T>::insert(netuid, who, usage);
        let block = frame_system::Pallet::<T>::block_number();
        if info.fields.iter().any(|f| matches!(f, Data::ResetBondsFlag)) {
            // There are no bonds here; record the reset as subtensor does.
            LastBondsReset::<T>::insert(netuid, who, block);
        }
        CommitmentOf::<T>::insert(netuid, who, Registration { deposit: 0, block, info });
        LastCommitment::<T>::insert(netuid, who, block);
        Self::deposit_event(Event::Commitment { netuid, who: who.clone() });
        Ok(())
    }
}
