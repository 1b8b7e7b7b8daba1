//! Chain errors as sentences: a failed call names the pallet error and says what it means, e.g.
//! `set_weights failed: CommitRevealEnabled: this subnet requires commit-reveal`.

use crate::wallet::WalletError;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("unknown network {0:?}: use finney, test, local, or a ws:// / wss:// URL")]
    UnknownNetwork(String),
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// A read or an RPC request failed; `source` is the underlying (subxt, RPC) error.
    #[error("{context}: {source}")]
    Rpc {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The call was included but failed; `sentence` explains `error`.
    #[error("{call} failed: {error}: {sentence}")]
    Dispatch { call: String, pallet: String, error: String, sentence: String },
    /// The node refused the transaction before inclusion (bad nonce, fees, a pool check).
    /// `custom` is the code of an `InvalidTransaction::Custom(N)` from subtensor's pool (see
    /// [`custom`] and [`custom_validity`]), parsed once where the rejection is built.
    #[error("{call} was rejected by the node: {reason}")]
    Rejected { call: String, reason: String, custom: Option<u8> },
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
    /// An RPC/read failure keeping `e` as its source (`&str`/`String` messages work too).
    pub(crate) fn rpc(context: impl Into<String>, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ChainError::Rpc { context: context.into(), source: e.into() }
    }
    /// A rejection by the node, from its message: a `Custom error: N` (or `Custom error N`) in it
    /// is parsed into `custom` and explained in `reason`.
    pub(crate) fn rejected(call: impl Into<String>, message: &str) -> Self {
        ChainError::Rejected { call: call.into(), reason: explain_rejection(message), custom: custom_code(message) }
    }
    /// A rejection from a dry-run's `InvalidTransaction`.
    pub(crate) fn invalid(call: impl Into<String>, why: &subxt::transactions::TransactionInvalid) -> Self {
        let custom = match why {
            subxt::transactions::TransactionInvalid::Custom(n) => Some(*n),
            _ => None,
        };
        ChainError::Rejected { call: call.into(), reason: describe_invalid(why), custom }
    }
    /// The custom validity code of a rejection (`InvalidTransaction::Custom(N)`), if any.
    pub fn custom_code(&self) -> Option<u8> {
        match self {
            ChainError::Rejected { custom, .. } => *custom,
            _ => None,
        }
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

/// Codes of subtensor's `InvalidTransaction::Custom(N)` that the client acts on
/// (`common/src/transaction_error.rs`; all codes are explained by [`custom_validity`]).
pub mod custom {
    /// `RateLimitExceeded`: weights, commits or subnet registration too soon.
    pub const RATE_LIMIT_EXCEEDED: u8 = 6;
    /// `CommitBlockNotInRevealRange`: a reveal outside its reveal window (e.g. too early).
    pub const COMMIT_BLOCK_NOT_IN_REVEAL_RANGE: u8 = 17;
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

/// The `N` of a `Custom error: N` (a node's submission error) or `Custom error N` (this client's
/// [`describe_invalid`]) in a rejection message.
pub fn custom_code(message: &str) -> Option<u8> {
    const TAG: &str = "Custom error";
    let i = message.find(TAG)?;
    let rest = message[i + TAG.len()..].trim_start_matches(':').trim_start();
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse::<u8>().ok()
}

/// Adds the meaning of a `Custom error: N` found in a node's rejection message.
pub fn explain_rejection(message: &str) -> String {
    match custom_code(message).and_then(custom_validity) {
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

    #[test]
    fn custom_codes_are_parsed_once_into_the_rejection() {
        assert_eq!(custom_code("1010: Invalid Transaction: Custom error: 17"), Some(17));
        assert_eq!(custom_code("Custom error 17: CommitBlockNotInRevealRange"), Some(17));
        assert_eq!(custom_code("Custom error: 255"), Some(255));
        assert_eq!(custom_code("Custom error: 256"), None);
        assert_eq!(custom_code("Custom error: x"), None);
        assert_eq!(custom_code("Priority is too low"), None);
        let e = ChainError::rejected("reveal_weights", "Invalid Transaction: Custom error: 17");
        assert_eq!(e.custom_code(), Some(custom::COMMIT_BLOCK_NOT_IN_REVEAL_RANGE));
        assert!(e.to_string().contains("CommitBlockNotInRevealRange"), "{e}");
        let e = ChainError::invalid("reveal_weights", &subxt::transactions::TransactionInvalid::Custom(17));
        assert_eq!(e.custom_code(), Some(17));
        assert_eq!(
            e.to_string(),
            "reveal_weights was rejected by the node: Custom error 17: CommitBlockNotInRevealRange: not in the reveal window"
        );
        let e = ChainError::invalid("set_weights", &subxt::transactions::TransactionInvalid::Stale);
        assert_eq!(e.custom_code(), None);
        assert_eq!(ChainError::rejected("x", "Transaction is outdated").custom_code(), None);
        assert_eq!(ChainError::BadArgument("Custom error: 17".into()).custom_code(), None);
    }

    #[test]
    fn rpc_errors_keep_their_source() {
        use std::error::Error as _;
        let inner = std::io::Error::other("connection reset");
        let e = ChainError::rpc("SubtensorModule.Tempo", inner);
        assert_eq!(e.to_string(), "SubtensorModule.Tempo: connection reset");
        assert_eq!(e.source().map(|s| s.to_string()).as_deref(), Some("connection reset"));
    }
}
