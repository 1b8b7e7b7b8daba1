//! Chain errors as sentences: a failed call names the pallet error and says what it means, e.g.
//! `set_weights failed: CommitRevealEnabled: this subnet requires commit-reveal`.

use crate::wallet::WalletError;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("unknown network {0:?}: use finney, test, local, or a ws:// / wss:// URL")]
    UnknownNetwork(String),
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{context}: {reason}")]
    Rpc { context: String, reason: String },
    /// The call was included but failed; `sentence` explains `error`.
    #[error("{call} failed: {error}: {sentence}")]
    Dispatch { call: String, pallet: String, error: String, sentence: String },
    /// The node refused the transaction before inclusion (bad nonce, fees, a pool check).
    #[error("{call} was rejected by the node: {reason}")]
    Rejected { call: String, reason: String },
    #[error("the chain has no {0} (is this a subtensor chain?)")]
    Missing(String),
    #[error("could not decode {what}: {reason}")]
    Decode { what: String, reason: String },
    #[error("{0}")]
    BadArgument(String),
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

impl ChainError {
    pub(crate) fn rpc(context: impl Into<String>, e: impl std::fmt::Display) -> Self {
        ChainError::Rpc { context: context.into(), reason: e.to_string() }
    }
    pub(crate) fn decode(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        ChainError::Decode { what: what.into(), reason: e.to_string() }
    }
    /// The pallet error's name when this is a dispatch error (e.g. `CommitRevealEnabled`).
    pub fn dispatch_error_name(&self) -> Option<&str> {
        match self {
            ChainError::Dispatch { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// What a pallet error means, for the errors a neuron or operator meets. `None` for others (the
/// caller then falls back to the metadata's documentation).
pub fn sentence(pallet: &str, error: &str) -> Option<&'static str> {
    let s = match (pallet, error) {
        (_, "SubnetNotExists") | (_, "SubnetDoesNotExist") => "the subnet does not exist",
        (_, "RegistrationNotPermittedOnRootSubnet") => "registration is not allowed on the root subnet (netuid 0)",
        (_, "SubNetRegistrationDisabled") => "registration is disabled on this subnet",
        (_, "HotKeyAlreadyRegisteredInSubNet") => "this hotkey is already registered on the subnet",
        (_, "NotEnoughBalanceToStake") => "the coldkey's free balance is too low for this amount or burn",
        (_, "NonAssociatedColdKey") => "the hotkey belongs to another coldkey",
        (_, "NoNeuronIdAvailable") => "the subnet is full and no neuron can be pruned",
        (_, "NotSubnetOwner") => "only the subnet owner may do this",
        (_, "FirstEmissionBlockNumberAlreadySet") => "start_call was already made for this subnet",
        (_, "SubtokenDisabled") => "the subnet is not started yet: its owner must call start_call first",
        (_, "AmountTooLow") => "the amount is below the minimum stake (0.002 TAO)",
        (_, "HotKeyAccountNotExists") => "the hotkey is not known on chain (register it first)",
        (_, "NotEnoughStakeToWithdraw") => "the hotkey has less stake than the amount to remove",
        (_, "HotKeyNotRegisteredInNetwork") | (_, "HotKeyNotRegisteredInSubNet") => {
            "the hotkey is not registered on this subnet"
        }
        (_, "InvalidIpType") => "the IP type must be 4 or 6",
        (_, "InvalidIpAddress") => "the IP address is not allowed (127.0.0.1 and ::1 are refused)",
        (_, "InvalidPort") => "the port must not be 0",
        (_, "ServingRateLimitExceeded") => "the axon was served too recently (ServingRateLimit)",
        (_, "CommitRevealEnabled") => "this subnet requires commit-reveal",
        (_, "CommitRevealDisabled") => "commit-reveal is off on this subnet: use set_weights",
        (_, "WeightVecNotEqualSize") => "uids and weights differ in length",
        (_, "UidsLengthExceedUidsInSubNet") => "more uids than the subnet has neurons",
        (_, "NotEnoughStakeToSetWeights") => "the hotkey's stake is below the threshold for setting weights",
        (_, "IncorrectWeightVersionKey") => "the version key is below the subnet's WeightsVersionKey",
        (_, "SettingWeightsTooFast") => "weights were set too recently (WeightsSetRateLimit)",
        (_, "NeuronNoValidatorPermit") => "the neuron has no validator permit (only a self-weight is allowed)",
        (_, "DuplicateUids") => "a uid appears twice",
        (_, "UidVecContainInvalidOne") => "a uid does not exist on the subnet",
        (_, "WeightVecLengthIsLow") => "fewer weights than the subnet's MinAllowedWeights",
        (_, "MaxWeightExceeded") => "a weight exceeds the subnet's MaxWeightsLimit",
        (_, "CommittingWeightsTooFast") => "weights were committed too recently (WeightsSetRateLimit)",
        (_, "TooManyUnrevealedCommits") => "ten commits are already waiting to be revealed",
        (_, "NoWeightsCommitFound") => "no commit of this hotkey matches",
        (_, "InvalidRevealCommitHashNotMatch") => "the revealed weights do not match the committed hash",
        (_, "RevealTooEarly") => "it is too early to reveal: wait for the reveal epoch",
        (_, "ExpiredWeightCommit") => "the commit expired before it was revealed",
        (_, "NetworkTxRateLimitExceeded") => "a subnet was registered too recently (NetworkRateLimit)",
        (_, "BalanceWithdrawalError") => "the balance could not be withdrawn",
        (_, "AdminActionProhibitedDuringWeightsWindow") => {
            "admin changes are frozen just before an epoch (AdminFreezeWindow)"
        }
        ("Commitments", "SpaceLimitExceeded") => "this epoch's commitment space for the hotkey is used up",
        ("Commitments", "AccountNotAllowedCommit") => "only hotkeys registered on the subnet may commit",
        ("Commitments", "TooManyFieldsInCommitmentInfo") => "a commitment holds at most 3 fields",
        ("Sudo", "RequireSudo") => "the signer is not the sudo key",
        ("Balances", "InsufficientBalance") => "the balance is too low",
        ("Balances", "FundsUnavailable") => "the funds are not available",
        ("Balances", "ExistentialDeposit") => "the amount is below the existential deposit",
        ("Balances", "Expendability") => "the transfer would reap the sender's account",
        _ => return None,
    };
    Some(s)
}

/// What a `1010 Invalid Transaction: Custom error: N` from subtensor's transaction pool means
/// (`common/src/transaction_error.rs`).
pub fn custom_validity(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "StakeAmountTooLow: the stake is too low for this call",
        2 => "BalanceTooLow: the balance is too low",
        3 => "SubnetNotExists: the subnet does not exist",
        4 => "HotkeyAccountDoesntExist: the hotkey is not known on chain",
        5 => "NotEnoughStakeToWithdraw: less stake than the amount to remove",
        6 => "RateLimitExceeded: this call was made too recently (weights, commits or subnet registration)",
        7 => "InsufficientLiquidity: the subnet pool has too little liquidity",
        8 => "SlippageTooHigh: the price moved beyond the limit",
        10 => "HotKeyNotRegisteredInNetwork: the hotkey is not registered on this subnet",
        11 => "InvalidIpAddress: the IP address is not allowed",
        12 => "ServingRateLimitExceeded: the axon was served too recently",
        13 => "InvalidPort: the port must not be 0",
        15 => "InvalidRevealRound: the reveal round is in the past",
        16 => "CommitNotFound: no matching commit",
        17 => "CommitBlockNotInRevealRange: not in the reveal window",
        18 => "InputLengthsUnequal: uids and weights differ in length",
        19 => "UidNotFound: the hotkey is not registered on this subnet",
        25 => "NonAssociatedColdKey: the hotkey belongs to another coldkey",
        255 => "BadRequest: the node refused the request",
        _ => return None,
    })
}

/// Why a node would refuse a transaction (a dry-run's `InvalidTransaction`), in words.
pub fn describe_invalid(why: &subxt::transactions::TransactionInvalid) -> String {
    use subxt::transactions::TransactionInvalid as I;
    match why {
        I::Call => "the call is not valid here".into(),
        I::Payment => "the signer cannot pay the fee (its account has no balance)".into(),
        I::Future => "the nonce is ahead of the account's".into(),
        I::Stale => "the nonce was already used".into(),
        I::BadProof => "the signature does not verify (wrong chain or genesis?)".into(),
        I::AncientBirthBlock => "the transaction's lifetime has expired".into(),
        I::ExhaustsResources => "the block has no room for it".into(),
        I::Custom(n) => match custom_validity(*n) {
            Some(meaning) => format!("Custom error {n}: {meaning}"),
            None => format!("Custom error {n}"),
        },
        I::BadMandatory | I::MandatoryValidation => "a mandatory check failed".into(),
        I::BadSigner => "the signer is not allowed to sign this".into(),
    }
}

/// Adds the meaning of a `Custom error: N` found in a node's rejection message.
pub fn explain_rejection(message: &str) -> String {
    let code = message
        .find("Custom error: ")
        .map(|i| &message[i + "Custom error: ".len()..])
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse::<u8>().ok());
    match code.and_then(custom_validity) {
        Some(meaning) => format!("{message} ({meaning})"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_and_pool_codes() {
        let e = ChainError::Dispatch {
            call: "set_weights".into(),
            pallet: "SubtensorModule".into(),
            error: "CommitRevealEnabled".into(),
            sentence: sentence("SubtensorModule", "CommitRevealEnabled").unwrap().into(),
        };
        assert_eq!(e.to_string(), "set_weights failed: CommitRevealEnabled: this subnet requires commit-reveal");
        assert!(sentence("X", "Unheard").is_none());
        let r = explain_rejection("Invalid Transaction: Custom error: 6");
        assert!(r.contains("RateLimitExceeded"), "{r}");
        assert_eq!(
            explain_rejection("Invalid Transaction: Custom error: 200"),
            "Invalid Transaction: Custom error: 200"
        );
        assert_eq!(explain_rejection("Priority is too low"), "Priority is too low");
        let d = describe_invalid(&subxt::transactions::TransactionInvalid::Custom(6));
        assert!(d.contains("RateLimitExceeded"), "{d}");
    }
}
