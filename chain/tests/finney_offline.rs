//! Compatibility with the real chain, offline: every extrinsic the client can send is built
//! against real finney metadata (tests/fixtures/finney.scale, see fixtures/README.md) with an
//! offline subxt client, and its call data is checked against hand-encoded SCALE (known-good bytes
//! from reference/subtensor-interface.md §12 where they exist). One extrinsic is signed the way
//! the client signs and its signature is checked over an independently assembled payload.
//! Reads are checked too: values laid out by finney's own types decode into what the client reads.

use chain::client::commitments::decode_registration;
use chain::client::metagraph::RuntimeMetagraph;
use chain::client::{calls, weights, AdminCall, Axon, Config, Field, WalletSigner};
use chain::wallet::{Keypair, PublicKey};
use codec::{Compact, Encode};
use protocol::commitment::WindowHash;
use protocol::{Hash32, Window};
use scale_decode::DecodeAsType;
use scale_info::{form::PortableForm, PortableRegistry, TypeDef, TypeDefPrimitive};
use subxt::config::substrate::{SpecVersionForRange, H256};
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::dynamic::Value;
use subxt::{Metadata, OfflineClient, SubstrateConfig};

const FINNEY: &[u8] = include_bytes!("fixtures/finney.scale");
const SPEC: u32 = 1;
/// An arbitrary genesis hash: call data does not depend on it, and the signature check below
/// assembles the payload with the same value.
const GENESIS: [u8; 32] = [0x2f; 32];

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const ALICE_HEX: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

// Pallet indices on finney.
const SUBTENSOR: u8 = 7;
const COMMITMENTS: u8 = 18;
const ADMIN_UTILS: u8 = 19;
const SUDO: u8 = 12;
const BALANCES: u8 = 5;

fn metadata() -> Metadata {
    Metadata::decode_from(FINNEY).expect("finney metadata decodes")
}

fn offline() -> OfflineClient<SubstrateConfig> {
    let config = SubstrateConfig::builder()
        .set_genesis_hash(H256::from(GENESIS))
        .set_metadata_for_spec_versions([(SPEC, metadata().arc())])
        .set_spec_version_for_block_ranges([SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version: SPEC,
            transaction_version: 1,
        }])
        .build();
    OfflineClient::new_with_config(config)
}

fn call_data(call: &calls::Payload) -> Vec<u8> {
    let at = offline().at_block(1u64).expect("offline client at a block");
    at.tx().call_data(call).unwrap_or_else(|e| panic!("{}.{}: {e}", call.pallet_name(), call.call_name()))
}

fn alice() -> PublicKey {
    PublicKey::from_ss58(ALICE).unwrap()
}

fn idx(pallet: u8, call: u8) -> Vec<u8> {
    vec![pallet, call]
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn known_good_bytes_from_the_interface_reference() {
    let set_weights = calls::set_weights(1, &[0, 1, 2], &[65535, 32768, 0], 0).unwrap();
    assert_eq!(hex::encode(call_data(&set_weights)), "070001000c0000010002000cffff008000000000000000000000");
    let axon = Axon { ip: "10.0.0.5".parse().unwrap(), port: 8091, version: 10_002_000, protocol: 4 };
    assert_eq!(
        hex::encode(call_data(&calls::serve_axon(1, &axon))),
        "07040100509e98000500000a0000000000000000000000009b1f04040000"
    );
    assert_eq!(hex::encode(call_data(&calls::burned_register(1, &alice()))), format!("07070100{ALICE_HEX}"));
    // A Raw128 commitment: [18, 0, netuid LE, compact(1), 0x81 (128+1), the 128 bytes].
    let creds: Vec<u8> = (0..128u8).collect();
    let commit = calls::set_commitment(1, &[Field::Raw(creds.clone())]).unwrap();
    assert_eq!(call_data(&commit), cat(&[&[18, 0, 1, 0, 4, 0x81], &creds]));
}

#[test]
fn every_subtensor_call_matches_hand_encoded_scale() {
    let hk = alice();
    let hash = [0xab; 32];
    let cases: Vec<(calls::Payload, Vec<u8>)> = vec![
        (calls::burned_register(513, &hk), cat(&[&idx(SUBTENSOR, 7), &513u16.encode(), &hk.0])),
        (calls::register_network(&hk), cat(&[&idx(SUBTENSOR, 59), &hk.0])),
        (calls::start_call(9), cat(&[&idx(SUBTENSOR, 92), &9u16.encode()])),
        (
            calls::add_stake(&hk, 3, 1_500_000_000),
            cat(&[&idx(SUBTENSOR, 2), &hk.0, &3u16.encode(), &1_500_000_000u64.encode()]),
        ),
        (calls::remove_stake(&hk, 3, 42), cat(&[&idx(SUBTENSOR, 3), &hk.0, &3u16.encode(), &42u64.encode()])),
        (
            calls::set_weights(3, &[4, 5], &[1, 65535], 77).unwrap(),
            cat(&[&idx(SUBTENSOR, 0), &(3u16, vec![4u16, 5], vec![1u16, 65535], 77u64).encode()]),
        ),
        (calls::commit_weights(3, &hash), cat(&[&idx(SUBTENSOR, 96), &3u16.encode(), &hash])),
        (
            calls::reveal_weights(3, &[0, 1], &[65535, 100], &[1, 2, 3, 4, 5, 6, 7, 8], 9).unwrap(),
            cat(&[
                &idx(SUBTENSOR, 97),
                &(3u16, vec![0u16, 1], vec![65535u16, 100], vec![1u16, 2, 3, 4, 5, 6, 7, 8], 9u64).encode(),
            ]),
        ),
        (
            calls::serve_axon(
                3,
                &Axon { ip: "2001:db8::7".parse().unwrap(), port: 9000, version: 1_002_003, protocol: 4 },
            ),
            cat(&[
                &idx(SUBTENSOR, 4),
                &(
                    3u16,
                    1_002_003u32,
                    u128::from("2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap()),
                    9000u16,
                    6u8,
                    4u8,
                    0u8,
                    0u8,
                )
                    .encode(),
            ]),
        ),
        (
            calls::transfer_keep_alive(&hk, 10_000_000_000),
            cat(&[&idx(BALANCES, 3), &[0], &hk.0, &Compact(10_000_000_000u64).encode()]),
        ),
    ];
    for (call, want) in cases {
        assert_eq!(hex::encode(call_data(&call)), hex::encode(&want), "{}", call.call_name());
    }
}

#[test]
fn commitments_with_the_protocol_fields() {
    // PROTOCOL.md §4: bucket credentials (Raw128) and `window ‖ blake2b_256(object)` (Raw40).
    let creds = [b'a'; 128];
    let object_hash = weights::blake2_256(b"object");
    let fields = [
        Field::Raw(creds.to_vec()),
        Field::Raw(WindowHash { window: Window(1234), hash: Hash32(object_hash) }.to_bytes().to_vec()),
    ];
    let got = call_data(&calls::set_commitment(2, &fields).unwrap());
    let want = cat(&[
        &[COMMITMENTS, 0],
        &2u16.encode(),
        &[8], // compact(2)
        &[129],
        &creds,
        &[41],
        &1234u64.to_le_bytes(),
        &object_hash,
    ]);
    assert_eq!(hex::encode(got), hex::encode(want));
    // Every RawN length and the other sendable variants.
    for n in [0usize, 1, 31, 32, 64, 127] {
        let b = vec![7u8; n];
        let got = call_data(&calls::set_commitment(1, &[Field::Raw(b.clone())]).unwrap());
        assert_eq!(got, cat(&[&[COMMITMENTS, 0, 1, 0, 4, n as u8 + 1], &b]), "Raw{n}");
    }
    let big = vec![9u8; 300];
    let got = call_data(
        &calls::set_commitment(1, &[Field::BigRaw(big.clone()), Field::None, Field::ResetBondsFlag]).unwrap(),
    );
    assert_eq!(got, cat(&[&[COMMITMENTS, 0, 1, 0, 12, 136], &Compact(300u32).encode(), &big, &[0, 135]]));
    let got = call_data(&calls::set_commitment(1, &[Field::Hash { kind: "Sha256".into(), hash: [1; 32] }]).unwrap());
    assert_eq!(got, cat(&[&[COMMITMENTS, 0, 1, 0, 4, 131], &[1; 32]]));
    assert!(calls::set_commitment(1, &[Field::None, Field::None, Field::None, Field::None]).is_err());
}

/// AdminUtils call indices on finney (from its metadata) and the SCALE of each call's arguments.
fn admin_expected(call: &AdminCall) -> Vec<u8> {
    use AdminCall::*;
    let (index, args): (u8, Vec<u8>) = match *call {
        AdminFreezeWindow(w) => (74, w.encode()),
        NetworkRateLimit(r) => (29, r.encode()),
        TxRateLimit(r) => (2, r.encode()),
        StakeThreshold(s) => (42, s.encode()),
        Tempo { netuid, tempo } => (30, (netuid, tempo).encode()),
        CommitRevealEnabled { netuid, enabled } => (49, (netuid, enabled).encode()),
        CommitRevealInterval { netuid, epochs } => (57, (netuid, epochs).encode()),
        WeightsSetRateLimit { netuid, blocks } => (7, (netuid, blocks).encode()),
        WeightsVersionKey { netuid, key } => (6, (netuid, key).encode()),
        MinAllowedWeights { netuid, min } => (14, (netuid, min).encode()),
        MaxAllowedValidators { netuid, max } => (25, (netuid, max).encode()),
        MaxAllowedUids { netuid, max } => (15, (netuid, max).encode()),
        ImmunityPeriod { netuid, blocks } => (13, (netuid, blocks).encode()),
        ActivityCutoff { netuid, blocks } => (18, (netuid, blocks).encode()),
        ServingRateLimit { netuid, blocks } => (3, (netuid, blocks).encode()),
        RegistrationAllowed { netuid, allowed } => (19, (netuid, allowed).encode()),
        MinBurn { netuid, rao } => (22, (netuid, rao).encode()),
        MaxBurn { netuid, rao } => (23, (netuid, rao).encode()),
    };
    cat(&[&[ADMIN_UTILS, index], &args])
}

#[test]
fn admin_calls_direct_and_through_sudo() {
    for call in AdminCall::examples() {
        let want = admin_expected(&call);
        assert_eq!(hex::encode(call_data(&call.payload())), hex::encode(&want), "{call:?}");
        // Sudo.sudo(call: Box<RuntimeCall>): the inner call's bytes follow [12, 0].
        let sudo = call_data(&calls::sudo(call.payload()));
        assert_eq!(hex::encode(sudo), hex::encode(cat(&[&[SUDO, 0], &want])), "sudo {call:?}");
    }
}

#[test]
fn a_signed_extrinsic_verifies_over_an_independent_payload() {
    let key = Keypair::from_uri("//Alice").unwrap();
    let call = calls::set_weights(1, &[0, 1, 2], &[65535, 32768, 0], 0).unwrap();
    let at = offline().at_block(1u64).unwrap();
    let params = DefaultExtrinsicParamsBuilder::<Config>::new().nonce(5).tip(0).immortal().build();
    let mut signable = at.tx().create_signable_offline(&call, params).expect("signable against finney's extensions");
    let tx = signable.sign(&WalletSigner(&key)).expect("signed");
    let bytes = tx.encoded().to_vec();
    let cd = call_data(&call);

    // v4 signed: compact(len) ‖ 0x84 ‖ MultiAddress::Id(0x00 ‖ 32) ‖ MultiSignature::Sr25519(0x01 ‖ 64)
    // ‖ explicit extension data ‖ call.
    let mut rest = &bytes[..];
    let len = <Compact<u32> as codec::Decode>::decode(&mut rest).unwrap().0 as usize;
    assert_eq!(len, rest.len());
    assert_eq!(rest[0], 0x84, "a v4 signed extrinsic");
    assert_eq!(rest[1], 0x00);
    assert_eq!(&rest[2..34], &key.public().0);
    assert_eq!(rest[34], 0x01, "sr25519 signature");
    let sig: [u8; 64] = rest[35..99].try_into().unwrap();
    // Explicit data, in finney's extension order: era (immortal 00), nonce (compact 5 = 0x14),
    // tip (compact 0), metadata-hash mode (00); the other extensions encode nothing.
    let extra = [0x00, 0x14, 0x00, 0x00];
    assert_eq!(&rest[99..103], &extra);
    assert_eq!(&rest[103..], &cd[..]);

    // Implicit data: spec version, transaction version, genesis, era block (genesis when
    // immortal), metadata hash (None).
    let implicit = cat(&[&SPEC.to_le_bytes(), &1u32.to_le_bytes(), &GENESIS, &GENESIS, &[0]]);
    let payload = cat(&[&cd, &extra, &implicit]);
    let payload = if payload.len() > 256 { weights::blake2_256(&payload).to_vec() } else { payload };
    assert!(key.public().verify(&payload, &sig), "the signature does not cover the expected payload");
}

/// A value of type `ty` with every integer 1, every bool true, two elements per sequence and
/// `Some` for options: enough to lay out bytes with finney's own types.
fn sample(types: &PortableRegistry, ty: u32, depth: usize) -> Value {
    let t = types.resolve(ty).unwrap_or_else(|| panic!("type {ty} not in the registry"));
    let fields = |fs: &[scale_info::Field<PortableForm>]| -> Value {
        if fs.iter().all(|f| f.name.is_some()) && !fs.is_empty() {
            Value::named_composite(
                fs.iter().map(|f| (f.name.clone().unwrap_or_default(), sample(types, f.ty.id, depth + 1))),
            )
        } else {
            Value::unnamed_composite(fs.iter().map(|f| sample(types, f.ty.id, depth + 1)))
        }
    };
    match &t.type_def {
        TypeDef::Composite(c) => fields(&c.fields),
        TypeDef::Variant(v) => {
            let var = v.variants.iter().find(|x| x.name == "Some").unwrap_or(&v.variants[0]);
            let inner = fields(&var.fields);
            Value::variant(
                var.name.clone(),
                match inner.value {
                    subxt::ext::scale_value::ValueDef::Composite(c) => c,
                    _ => unreachable!(),
                },
            )
        }
        TypeDef::Sequence(s) => {
            let n = if depth < 6 { 2 } else { 0 };
            Value::unnamed_composite((0..n).map(|_| sample(types, s.type_param.id, depth + 1)))
        }
        TypeDef::Array(a) => Value::unnamed_composite((0..a.len).map(|_| sample(types, a.type_param.id, depth + 1))),
        TypeDef::Tuple(t) => Value::unnamed_composite(t.fields.iter().map(|f| sample(types, f.id, depth + 1))),
        TypeDef::Compact(c) => sample(types, c.type_param.id, depth + 1),
        TypeDef::Primitive(p) => match p {
            TypeDefPrimitive::Bool => Value::bool(true),
            TypeDefPrimitive::Str => Value::string("x"),
            TypeDefPrimitive::Char => Value::char('x'),
            TypeDefPrimitive::I8
            | TypeDefPrimitive::I16
            | TypeDefPrimitive::I32
            | TypeDefPrimitive::I64
            | TypeDefPrimitive::I128 => Value::i128(1),
            _ => Value::u128(1),
        },
        TypeDef::BitSequence(_) => Value::bit_sequence(Default::default()),
    }
}

#[test]
fn the_metagraph_runtime_api_decodes_from_finneys_layout() {
    let md = metadata();
    let method = md
        .runtime_api_trait_by_name("SubnetInfoRuntimeApi")
        .and_then(|t| t.method_by_name("get_metagraph"))
        .expect("finney has SubnetInfoRuntimeApi.get_metagraph");
    let ty = method.output_ty();
    let value = sample(md.types(), ty, 0);
    let mut bytes = Vec::new();
    subxt::ext::scale_value::scale::encode_as_type(&value, ty, md.types(), &mut bytes).expect("encode a sample");
    let got = Option::<RuntimeMetagraph>::decode_as_type(&mut &bytes[..], ty, md.types()).expect("decodes");
    let m = got.expect("Some");
    assert_eq!(m.hotkeys, vec![[1u8; 32]; 2]);
    assert_eq!(m.coldkeys.len(), 2);
    assert_eq!((m.total_stake, m.alpha_stake), (vec![1, 1], vec![1, 1]));
    assert_eq!((m.validator_permit, m.active), (vec![true, true], vec![true, true]));
    assert_eq!((m.last_update, m.incentives, m.dividends), (vec![1, 1], vec![1, 1], vec![1, 1]));
    assert_eq!((m.emission, m.block_at_registration), (vec![1, 1], vec![1, 1]));
}

#[test]
fn commitment_of_decodes_from_finneys_layout() {
    let md = metadata();
    let entry = md
        .pallet_by_name("Commitments")
        .and_then(|p| p.storage())
        .and_then(|s| s.entry_by_name("CommitmentOf"))
        .expect("finney has Commitments.CommitmentOf");
    let ty = entry.value_ty();
    // Registration { deposit: u64, block: u32, info: { fields: [Raw128, Raw40] } }, by hand.
    let creds = [b'k'; 128];
    let window = Field::Raw(WindowHash { window: Window(7), hash: Hash32([3; 32]) }.to_bytes().to_vec());
    let bytes = cat(&[&0u64.encode(), &4321u32.encode(), &[8, 129], &creds, &[41], window.raw().unwrap()]);
    let mut input = &bytes[..];
    let value = subxt::ext::scale_value::scale::decode_as_type(&mut input, ty, md.types()).expect("finney's layout");
    assert!(input.is_empty(), "{} bytes left over", input.len());
    let c = decode_registration(alice(), &value).unwrap();
    assert_eq!(c.block, 4321);
    assert_eq!(c.fields, vec![Field::Raw(creds.to_vec()), window]);
}
