//! Every extrinsic the client sends, as dynamic payloads: pallet, call and argument *names* are
//! resolved against the chain's metadata when the call is encoded, never hard-coded indices.
//! Arguments are passed by name, so a reordered argument list on chain cannot silently swap them.
//!
//! Signer roles (subtensor): the **coldkey** signs registration, staking, subnet creation and
//! `start_call`; the **hotkey** signs weights, commitments and `serve_axon`; sudo calls are signed
//! by the sudo key (//Alice on local chains).

use super::commitments::Field;
use super::error::ChainError;
use crate::wallet::PublicKey;
use subxt::dynamic::Value;
use subxt::ext::scale_value::Composite;

/// A call ready to be signed (or encoded offline).
pub type Payload = subxt::transactions::DynamicPayload<Composite<()>>;

/// Subtensor's pallets as named in its metadata.
pub const SUBTENSOR: &str = "SubtensorModule";
pub const COMMITMENTS: &str = "Commitments";
pub const ADMIN_UTILS: &str = "AdminUtils";
pub const SUDO: &str = "Sudo";
pub const BALANCES: &str = "Balances";

fn call(pallet: &str, name: &str, args: Vec<(&str, Value)>) -> Payload {
    subxt::transactions::dynamic(pallet, name, Composite::named(args))
}

fn account(k: &PublicKey) -> Value {
    Value::from_bytes(k.0)
}

fn u(v: impl Into<u128>) -> Value {
    Value::u128(v.into())
}

fn u16s(v: &[u16]) -> Value {
    Value::unnamed_composite(v.iter().map(|x| Value::u128(u128::from(*x))))
}

/// `burned_register(netuid, hotkey)`: the coldkey signs and pays the burn.
pub fn burned_register(netuid: u16, hotkey: &PublicKey) -> Payload {
    call(SUBTENSOR, "burned_register", vec![("netuid", u(netuid)), ("hotkey", account(hotkey))])
}

/// `register_network(hotkey)`: creates a subnet owned by the signing coldkey; `hotkey` gets uid 0.
pub fn register_network(hotkey: &PublicKey) -> Payload {
    call(SUBTENSOR, "register_network", vec![("hotkey", account(hotkey))])
}

/// `start_call(netuid)`: the owner starts emissions and staking on its subnet.
pub fn start_call(netuid: u16) -> Payload {
    call(SUBTENSOR, "start_call", vec![("netuid", u(netuid))])
}

/// `add_stake(hotkey, netuid, amount_staked)`: `tao` in rao.
pub fn add_stake(hotkey: &PublicKey, netuid: u16, tao: u64) -> Payload {
    call(SUBTENSOR, "add_stake", vec![("hotkey", account(hotkey)), ("netuid", u(netuid)), ("amount_staked", u(tao))])
}

/// `remove_stake(hotkey, netuid, amount_unstaked)`: `alpha` in alpha rao.
pub fn remove_stake(hotkey: &PublicKey, netuid: u16, alpha: u64) -> Payload {
    call(
        SUBTENSOR,
        "remove_stake",
        vec![("hotkey", account(hotkey)), ("netuid", u(netuid)), ("amount_unstaked", u(alpha))],
    )
}

/// An axon endpoint as `serve_axon` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Axon {
    pub ip: std::net::IpAddr,
    pub port: u16,
    /// `major*1_000_000 + minor*1_000 + patch`, as the bittensor SDK sends it.
    pub version: u32,
    /// 4 (TCP) in the SDK.
    pub protocol: u8,
}

impl Axon {
    /// The IP as subtensor stores it: the big-endian address integer in a u128, and 4 or 6.
    pub fn ip_parts(&self) -> (u128, u8) {
        match self.ip {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 4),
            std::net::IpAddr::V6(a) => (u128::from(a), 6),
        }
    }
}

/// `serve_axon(...)`: signed by the hotkey. 127.0.0.1 is refused by the chain; use 0.0.0.0 or a
/// LAN address on local chains.
pub fn serve_axon(netuid: u16, axon: &Axon) -> Payload {
    let (ip, ip_type) = axon.ip_parts();
    call(
        SUBTENSOR,
        "serve_axon",
        vec![
            ("netuid", u(netuid)),
            ("version", u(axon.version)),
            ("ip", Value::u128(ip)),
            ("port", u(axon.port)),
            ("ip_type", u(ip_type)),
            ("protocol", u(axon.protocol)),
            ("placeholder1", u(0u8)),
            ("placeholder2", u(0u8)),
        ],
    )
}

/// `Commitments.set_commitment(netuid, { fields })`: signed by a hotkey registered on `netuid`.
/// Replaces the hotkey's whole commitment. At most 3 fields.
pub fn set_commitment(netuid: u16, fields: &[Field]) -> Result<Payload, ChainError> {
    if fields.len() > 3 {
        return Err(ChainError::BadArgument(format!("{} commitment fields: at most 3", fields.len())));
    }
    let values = fields.iter().map(Field::to_value).collect::<Result<Vec<_>, _>>()?;
    let info = Value::named_composite([("fields", Value::unnamed_composite(values))]);
    Ok(call(COMMITMENTS, "set_commitment", vec![("netuid", u(netuid)), ("info", info)]))
}

/// `set_weights(netuid, dests, weights, version_key)`: signed by the hotkey. Refused with
/// `CommitRevealEnabled` where the subnet requires commit-reveal.
pub fn set_weights(netuid: u16, uids: &[u16], weights: &[u16], version_key: u64) -> Result<Payload, ChainError> {
    check_lengths(uids, weights)?;
    Ok(call(
        SUBTENSOR,
        "set_weights",
        vec![("netuid", u(netuid)), ("dests", u16s(uids)), ("weights", u16s(weights)), ("version_key", u(version_key))],
    ))
}

/// `commit_weights(netuid, commit_hash)`: commit-reveal v2, signed by the hotkey.
pub fn commit_weights(netuid: u16, commit_hash: &[u8; 32]) -> Payload {
    call(SUBTENSOR, "commit_weights", vec![("netuid", u(netuid)), ("commit_hash", Value::from_bytes(commit_hash))])
}

/// `reveal_weights(netuid, uids, values, salt, version_key)`: opens a v2 commit.
pub fn reveal_weights(
    netuid: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> Result<Payload, ChainError> {
    check_lengths(uids, values)?;
    Ok(call(
        SUBTENSOR,
        "reveal_weights",
        vec![
            ("netuid", u(netuid)),
            ("uids", u16s(uids)),
            ("values", u16s(values)),
            ("salt", u16s(salt)),
            ("version_key", u(version_key)),
        ],
    ))
}

/// `Balances.transfer_keep_alive(dest, value)`: `rao` in rao.
pub fn transfer_keep_alive(dest: &PublicKey, rao: u64) -> Payload {
    let dest = Value::unnamed_variant("Id", [account(dest)]);
    call(BALANCES, "transfer_keep_alive", vec![("dest", dest), ("value", u(rao))])
}

/// `Sudo.sudo(call)`: runs `inner` as root; signed by the sudo key.
pub fn sudo(inner: Payload) -> Payload {
    call(SUDO, "sudo", vec![("call", inner.into_value())])
}

/// Subnet and chain parameters settable through `AdminUtils` (by root, some by the subnet owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCall {
    /// Root: blocks before an epoch during which admin calls are refused (0 on local chains).
    AdminFreezeWindow(u16),
    /// Root: blocks between subnet registrations.
    NetworkRateLimit(u64),
    /// Root: the global transaction rate limit.
    TxRateLimit(u64),
    /// Root: the minimum stake to set weights.
    StakeThreshold(u64),
    Tempo {
        netuid: u16,
        tempo: u16,
    },
    CommitRevealEnabled {
        netuid: u16,
        enabled: bool,
    },
    /// Reveal period, in epochs.
    CommitRevealInterval {
        netuid: u16,
        epochs: u64,
    },
    WeightsSetRateLimit {
        netuid: u16,
        blocks: u64,
    },
    WeightsVersionKey {
        netuid: u16,
        key: u64,
    },
    MinAllowedWeights {
        netuid: u16,
        min: u16,
    },
    MaxAllowedValidators {
        netuid: u16,
        max: u16,
    },
    MaxAllowedUids {
        netuid: u16,
        max: u16,
    },
    ImmunityPeriod {
        netuid: u16,
        blocks: u16,
    },
    ActivityCutoff {
        netuid: u16,
        blocks: u16,
    },
    ServingRateLimit {
        netuid: u16,
        blocks: u64,
    },
    RegistrationAllowed {
        netuid: u16,
        allowed: bool,
    },
    MinBurn {
        netuid: u16,
        rao: u64,
    },
    MaxBurn {
        netuid: u16,
        rao: u64,
    },
}

impl AdminCall {
    /// The `AdminUtils` call.
    pub fn payload(&self) -> Payload {
        use AdminCall::*;
        let (name, args): (&str, Vec<(&str, Value)>) = match *self {
            AdminFreezeWindow(w) => ("sudo_set_admin_freeze_window", vec![("window", u(w))]),
            NetworkRateLimit(r) => ("sudo_set_network_rate_limit", vec![("rate_limit", u(r))]),
            TxRateLimit(r) => ("sudo_set_tx_rate_limit", vec![("tx_rate_limit", u(r))]),
            StakeThreshold(s) => ("sudo_set_stake_threshold", vec![("min_stake", u(s))]),
            Tempo { netuid, tempo } => ("sudo_set_tempo", vec![("netuid", u(netuid)), ("tempo", u(tempo))]),
            CommitRevealEnabled { netuid, enabled } => (
                "sudo_set_commit_reveal_weights_enabled",
                vec![("netuid", u(netuid)), ("enabled", Value::bool(enabled))],
            ),
            CommitRevealInterval { netuid, epochs } => {
                ("sudo_set_commit_reveal_weights_interval", vec![("netuid", u(netuid)), ("interval", u(epochs))])
            }
            WeightsSetRateLimit { netuid, blocks } => {
                ("sudo_set_weights_set_rate_limit", vec![("netuid", u(netuid)), ("weights_set_rate_limit", u(blocks))])
            }
            WeightsVersionKey { netuid, key } => {
                ("sudo_set_weights_version_key", vec![("netuid", u(netuid)), ("weights_version_key", u(key))])
            }
            MinAllowedWeights { netuid, min } => {
                ("sudo_set_min_allowed_weights", vec![("netuid", u(netuid)), ("min_allowed_weights", u(min))])
            }
            MaxAllowedValidators { netuid, max } => {
                ("sudo_set_max_allowed_validators", vec![("netuid", u(netuid)), ("max_allowed_validators", u(max))])
            }
            MaxAllowedUids { netuid, max } => {
                ("sudo_set_max_allowed_uids", vec![("netuid", u(netuid)), ("max_allowed_uids", u(max))])
            }
            ImmunityPeriod { netuid, blocks } => {
                ("sudo_set_immunity_period", vec![("netuid", u(netuid)), ("immunity_period", u(blocks))])
            }
            ActivityCutoff { netuid, blocks } => {
                ("sudo_set_activity_cutoff", vec![("netuid", u(netuid)), ("activity_cutoff", u(blocks))])
            }
            ServingRateLimit { netuid, blocks } => {
                ("sudo_set_serving_rate_limit", vec![("netuid", u(netuid)), ("serving_rate_limit", u(blocks))])
            }
            RegistrationAllowed { netuid, allowed } => (
                "sudo_set_network_registration_allowed",
                vec![("netuid", u(netuid)), ("registration_allowed", Value::bool(allowed))],
            ),
            MinBurn { netuid, rao } => ("sudo_set_min_burn", vec![("netuid", u(netuid)), ("min_burn", u(rao))]),
            MaxBurn { netuid, rao } => ("sudo_set_max_burn", vec![("netuid", u(netuid)), ("max_burn", u(rao))]),
        };
        call(ADMIN_UTILS, name, args)
    }

    /// Names accepted by [`AdminCall::parse`], with whether they need a netuid.
    pub const NAMES: &'static [(&'static str, bool)] = &[
        ("admin-freeze-window", false),
        ("network-rate-limit", false),
        ("tx-rate-limit", false),
        ("stake-threshold", false),
        ("tempo", true),
        ("commit-reveal", true),
        ("commit-reveal-interval", true),
        ("weights-rate-limit", true),
        ("weights-version-key", true),
        ("min-allowed-weights", true),
        ("max-allowed-validators", true),
        ("max-allowed-uids", true),
        ("immunity-period", true),
        ("activity-cutoff", true),
        ("serving-rate-limit", true),
        ("registration-allowed", true),
        ("min-burn", true),
        ("max-burn", true),
    ];

    /// Parses `name` (see [`AdminCall::NAMES`]) with its value (numbers, or true/false).
    pub fn parse(name: &str, netuid: Option<u16>, value: &str) -> Result<AdminCall, ChainError> {
        use AdminCall::*;
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ChainError> {
            v.trim().parse().map_err(|_| ChainError::BadArgument(format!("{name}: {v:?} is not a valid number here")))
        }
        let flag = |v: &str| match v.trim() {
            "true" | "on" | "1" | "yes" => Ok(true),
            "false" | "off" | "0" | "no" => Ok(false),
            _ => Err(ChainError::BadArgument(format!("{name}: {v:?} is not true or false"))),
        };
        let needs = AdminCall::NAMES.iter().find(|(n, _)| *n == name).map(|(_, needs)| *needs).ok_or_else(|| {
            let names: Vec<&str> = AdminCall::NAMES.iter().map(|(n, _)| *n).collect();
            ChainError::BadArgument(format!("unknown parameter {name:?}; known: {}", names.join(", ")))
        })?;
        let n = match (needs, netuid) {
            (true, Some(n)) => n,
            (true, None) => return Err(ChainError::BadArgument(format!("{name} needs --netuid"))),
            (false, _) => 0,
        };
        Ok(match name {
            "admin-freeze-window" => AdminFreezeWindow(num(name, value)?),
            "network-rate-limit" => NetworkRateLimit(num(name, value)?),
            "tx-rate-limit" => TxRateLimit(num(name, value)?),
            "stake-threshold" => StakeThreshold(num(name, value)?),
            "tempo" => Tempo { netuid: n, tempo: num(name, value)? },
            "commit-reveal" => CommitRevealEnabled { netuid: n, enabled: flag(value)? },
            "commit-reveal-interval" => CommitRevealInterval { netuid: n, epochs: num(name, value)? },
            "weights-rate-limit" => WeightsSetRateLimit { netuid: n, blocks: num(name, value)? },
            "weights-version-key" => WeightsVersionKey { netuid: n, key: num(name, value)? },
            "min-allowed-weights" => MinAllowedWeights { netuid: n, min: num(name, value)? },
            "max-allowed-validators" => MaxAllowedValidators { netuid: n, max: num(name, value)? },
            "max-allowed-uids" => MaxAllowedUids { netuid: n, max: num(name, value)? },
            "immunity-period" => ImmunityPeriod { netuid: n, blocks: num(name, value)? },
            "activity-cutoff" => ActivityCutoff { netuid: n, blocks: num(name, value)? },
            "serving-rate-limit" => ServingRateLimit { netuid: n, blocks: num(name, value)? },
            "registration-allowed" => RegistrationAllowed { netuid: n, allowed: flag(value)? },
            "min-burn" => MinBurn { netuid: n, rao: num(name, value)? },
            _ => MaxBurn { netuid: n, rao: num(name, value)? },
        })
    }

    /// Every variant once (for the offline compatibility test).
    pub fn examples() -> Vec<AdminCall> {
        use AdminCall::*;
        let netuid = 3;
        vec![
            AdminFreezeWindow(0),
            NetworkRateLimit(0),
            TxRateLimit(0),
            StakeThreshold(0),
            Tempo { netuid, tempo: 10 },
            CommitRevealEnabled { netuid, enabled: false },
            CommitRevealInterval { netuid, epochs: 1 },
            WeightsSetRateLimit { netuid, blocks: 0 },
            WeightsVersionKey { netuid, key: 7 },
            MinAllowedWeights { netuid, min: 1 },
            MaxAllowedValidators { netuid, max: 64 },
            MaxAllowedUids { netuid, max: 256 },
            ImmunityPeriod { netuid, blocks: 5000 },
            ActivityCutoff { netuid, blocks: 5000 },
            ServingRateLimit { netuid, blocks: 0 },
            RegistrationAllowed { netuid, allowed: true },
            MinBurn { netuid, rao: 500_000 },
            MaxBurn { netuid, rao: 100_000_000_000 },
        ]
    }
}

fn check_lengths(uids: &[u16], values: &[u16]) -> Result<(), ChainError> {
    if uids.len() != values.len() {
        return Err(ChainError::BadArgument(format!(
            "{} uids but {} weights: they must pair up",
            uids.len(),
            values.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_calls_parse_by_name() {
        assert_eq!(AdminCall::parse("tempo", Some(3), "10").unwrap(), AdminCall::Tempo { netuid: 3, tempo: 10 });
        assert_eq!(
            AdminCall::parse("commit-reveal", Some(3), "off").unwrap(),
            AdminCall::CommitRevealEnabled { netuid: 3, enabled: false }
        );
        assert_eq!(AdminCall::parse("admin-freeze-window", None, "0").unwrap(), AdminCall::AdminFreezeWindow(0));
        assert!(AdminCall::parse("tempo", None, "10").is_err());
        assert!(AdminCall::parse("tempo", Some(1), "70000").is_err());
        assert!(AdminCall::parse("nope", Some(1), "1").is_err());
        assert_eq!(AdminCall::NAMES.len(), AdminCall::examples().len());
    }
}
