//! The metagraph of a subnet: who is registered (uid → hotkey, coldkey) and what the chain holds
//! for each uid (stake, validator permit, last update, incentive, dividends, emission).
//!
//! Read through `SubnetInfoRuntimeApi.get_metagraph` when the chain has it (one call, one block,
//! computed by the runtime), otherwise from storage items.

use crate::wallet::PublicKey;
use serde::Serialize;

/// Where a metagraph was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    RuntimeApi,
    Storage,
}

/// One registered uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neuron {
    pub uid: u16,
    #[serde(serialize_with = "ss58")]
    pub hotkey: PublicKey,
    #[serde(serialize_with = "ss58")]
    pub coldkey: PublicKey,
    /// Total stake weight in rao (alpha on the subnet; plus TAO-weighted root stake on finney).
    pub stake: u64,
    /// Alpha staked to the hotkey on this subnet, in rao.
    pub alpha_stake: u64,
    pub active: bool,
    pub validator_permit: bool,
    /// Block of the uid's last weights update (or registration).
    pub last_update: u64,
    /// Normalised to u16::MAX.
    pub incentive: u16,
    /// Normalised to u16::MAX.
    pub dividends: u16,
    /// Alpha rao emitted to the uid in the last epoch.
    pub emission: u64,
    pub block_at_registration: u64,
}

fn ss58<S: serde::Serializer>(k: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.ss58())
}

/// A subnet's metagraph at one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metagraph {
    pub netuid: u16,
    /// The block it was read at.
    pub block: u64,
    pub source: Source,
    pub neurons: Vec<Neuron>,
}

impl Metagraph {
    pub fn n(&self) -> usize {
        self.neurons.len()
    }
    pub fn uid_of(&self, hotkey: &PublicKey) -> Option<u16> {
        self.neurons.iter().find(|n| &n.hotkey == hotkey).map(|n| n.uid)
    }
    pub fn neuron(&self, uid: u16) -> Option<&Neuron> {
        self.neurons.get(usize::from(uid)).filter(|n| n.uid == uid)
    }
    pub fn hotkeys(&self) -> Vec<PublicKey> {
        self.neurons.iter().map(|n| n.hotkey).collect()
    }
}

/// The fields of subtensor's `Metagraph` runtime-API struct that we use; the rest are skipped by
/// name when decoding, so the struct can grow on chain.
#[derive(Debug, scale_decode::DecodeAsType)]
pub struct RuntimeMetagraph {
    pub hotkeys: Vec<[u8; 32]>,
    pub coldkeys: Vec<[u8; 32]>,
    pub active: Vec<bool>,
    pub validator_permit: Vec<bool>,
    pub last_update: Vec<u64>,
    pub emission: Vec<u64>,
    pub dividends: Vec<u16>,
    pub incentives: Vec<u16>,
    pub block_at_registration: Vec<u64>,
    pub alpha_stake: Vec<u64>,
    pub total_stake: Vec<u64>,
}

/// Per-uid columns, any of which may be shorter than the uid count (chain data right after a
/// registration, or a hostile node): missing entries read as zero/false.
#[derive(Debug, Default)]
pub(crate) struct Columns {
    pub hotkeys: Vec<[u8; 32]>,
    pub coldkeys: Vec<[u8; 32]>,
    pub active: Vec<bool>,
    pub validator_permit: Vec<bool>,
    pub last_update: Vec<u64>,
    pub emission: Vec<u64>,
    pub dividends: Vec<u16>,
    pub incentives: Vec<u16>,
    pub block_at_registration: Vec<u64>,
    pub alpha_stake: Vec<u64>,
    pub total_stake: Vec<u64>,
}

impl From<RuntimeMetagraph> for Columns {
    fn from(m: RuntimeMetagraph) -> Self {
        Columns {
            hotkeys: m.hotkeys,
            coldkeys: m.coldkeys,
            active: m.active,
            validator_permit: m.validator_permit,
            last_update: m.last_update,
            emission: m.emission,
            dividends: m.dividends,
            incentives: m.incentives,
            block_at_registration: m.block_at_registration,
            alpha_stake: m.alpha_stake,
            total_stake: m.total_stake,
        }
    }
}

impl Columns {
    /// One neuron per hotkey (the hotkey list defines the uids).
    pub fn into_metagraph(self, netuid: u16, block: u64, source: Source) -> Metagraph {
        fn at<T: Copy + Default>(v: &[T], i: usize) -> T {
            v.get(i).copied().unwrap_or_default()
        }
        let n = self.hotkeys.len().min(usize::from(u16::MAX) + 1);
        let neurons = (0..n)
            .map(|i| Neuron {
                uid: i as u16,
                hotkey: PublicKey(self.hotkeys[i]),
                coldkey: PublicKey(self.coldkeys.get(i).copied().unwrap_or([0; 32])),
                stake: at(&self.total_stake, i),
                alpha_stake: at(&self.alpha_stake, i),
                active: at(&self.active, i),
                validator_permit: at(&self.validator_permit, i),
                last_update: at(&self.last_update, i),
                incentive: at(&self.incentives, i),
                dividends: at(&self.dividends, i),
                emission: at(&self.emission, i),
                block_at_registration: at(&self.block_at_registration, i),
            })
            .collect();
        Metagraph { netuid, block, source, neurons }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_columns_read_as_zero() {
        let c = Columns {
            hotkeys: vec![[1; 32], [2; 32]],
            coldkeys: vec![[9; 32]],
            total_stake: vec![5],
            validator_permit: vec![true, true, true],
            ..Columns::default()
        };
        let m = c.into_metagraph(1, 10, Source::Storage);
        assert_eq!(m.n(), 2);
        assert_eq!(m.neurons[1].coldkey, PublicKey([0; 32]));
        assert_eq!(m.neurons[1].stake, 0);
        assert!(m.neurons[1].validator_permit);
        assert_eq!(m.uid_of(&PublicKey([2; 32])), Some(1));
        assert_eq!(m.neuron(1).map(|n| n.uid), Some(1));
        assert!(m.neuron(2).is_none());
    }
}
