//! Who is who in a window (PROTOCOL.md §6.7): the leading validator, the validators, the active
//! miners, and the peers whose updates make the outer step. Pure rules over what the chain says
//! (stake, permits, commitments); the node reads the chain and calls these.

use crate::ids::{Hotkey, Uid, Window};

/// How many windows back a miner's latest commitment may name and still count as active: a uid
/// is active in `w` if it committed for `w`, `w − 1` or `w − 2`.
pub const ACTIVE_HORIZON_WINDOWS: u64 = 2;

/// One neuron as the peer rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub uid: Uid,
    pub hotkey: Hotkey,
    /// Stake in rao.
    pub stake: u64,
    pub validator_permit: bool,
}

/// The leading validator: the most stake among uids with a validator permit (the most stake
/// overall while nobody has one yet); ties go to the lower uid; a uid with no stake never leads.
pub fn leader(members: &[Member]) -> Option<Member> {
    let permitted: Vec<&Member> = members.iter().filter(|m| m.validator_permit).collect();
    let pool: Vec<&Member> = if permitted.is_empty() { members.iter().collect() } else { permitted };
    pool.into_iter().filter(|m| m.stake > 0).max_by_key(|m| (m.stake, std::cmp::Reverse(m.uid))).copied()
}

/// The uids that count as validators (neither evaluated nor gathered): stake at or above
/// `threshold`, and some stake at all.
pub fn validators(members: &[Member], threshold: u64) -> Vec<Uid> {
    members.iter().filter(|m| m.stake >= threshold && m.stake > 0).map(|m| m.uid).collect()
}

/// Whether a miner whose latest commitment names `latest` counts as active in `window`.
pub fn is_active(latest: Option<Window>, window: Window) -> bool {
    latest.is_some_and(|l| l.0.saturating_add(ACTIVE_HORIZON_WINDOWS) >= window.0)
}

/// The active miners of `window`: uids other than `own` and the validators whose latest
/// commitment is within [`ACTIVE_HORIZON_WINDOWS`].
pub fn active_miners(
    latest: impl IntoIterator<Item = (Uid, Option<Window>)>,
    validators: &[Uid],
    own: Uid,
    window: Window,
) -> Vec<Uid> {
    latest
        .into_iter()
        .filter(|(uid, l)| *uid != own && !validators.contains(uid) && is_active(*l, window))
        .map(|(uid, _)| uid)
        .collect()
}

/// The peers of a window's outer step, in aggregation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OuterStepPeers {
    pub used: Vec<Uid>,
    /// Gather peers, and reserves tried in their place, whose payload was not accepted.
    pub skipped: Vec<Uid>,
}

/// The peers whose updates make a window's outer step: the gather list's accepted peers, then
/// reserves, in list order, filling the places of gather peers whose payload was not accepted.
/// Miners and validators call this with the same lists and acceptance, so they apply the same
/// outer step.
pub fn outer_step_peers(gather: &[Uid], reserve: &[Uid], accepted: impl Fn(Uid) -> bool) -> OuterStepPeers {
    let mut used: Vec<Uid> = gather.iter().copied().filter(|&u| accepted(u)).collect();
    let missing = gather.len() - used.len();
    let mut tried = Vec::new();
    for &r in reserve.iter().filter(|u| !gather.contains(u)) {
        if tried.len() >= missing {
            break;
        }
        tried.push(r);
        if accepted(r) {
            used.push(r);
        }
    }
    let skipped = gather.iter().chain(&tried).copied().filter(|u| !used.contains(u)).collect();
    OuterStepPeers { used, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(v: &[u16]) -> Vec<Uid> {
        v.iter().map(|&u| Uid(u)).collect()
    }

    fn member(uid: u16, stake: u64, permit: bool) -> Member {
        Member { uid: Uid(uid), hotkey: Hotkey([uid as u8; 32]), stake, validator_permit: permit }
    }

    #[test]
    fn the_leader_has_the_most_permitted_stake() {
        assert_eq!(leader(&[]), None);
        assert_eq!(leader(&[member(0, 0, false), member(1, 0, true)]), None);
        // Nobody permitted yet: the most stake overall.
        assert_eq!(leader(&[member(0, 5, false), member(1, 9, false)]).unwrap().uid, Uid(1));
        // A permit beats more stake without one.
        assert_eq!(leader(&[member(0, 5, true), member(1, 9, false)]).unwrap().uid, Uid(0));
        // Ties go to the lower uid.
        assert_eq!(leader(&[member(3, 7, true), member(2, 7, true)]).unwrap().uid, Uid(2));
    }

    #[test]
    fn validators_are_staked_above_the_threshold() {
        let m = [member(0, 0, false), member(1, 10, false), member(2, 9, true)];
        assert_eq!(validators(&m, 10), uids(&[1]));
        assert_eq!(validators(&m, 0), uids(&[1, 2]));
    }

    #[test]
    fn active_means_committed_within_the_horizon() {
        let latest = [(Uid(0), Some(Window(10))), (Uid(1), Some(Window(8))), (Uid(2), Some(Window(7))), (Uid(3), None)];
        assert_eq!(active_miners(latest, &[], Uid(9), Window(10)), uids(&[0, 1]));
        assert_eq!(active_miners(latest, &[Uid(1)], Uid(0), Window(10)), Vec::<Uid>::new());
        assert!(is_active(Some(Window(u64::MAX)), Window(3)));
    }

    #[test]
    fn reserves_fill_missing_gather_places_in_order() {
        let ok = |u: Uid| u != Uid(2) && u != Uid(7);
        let p = outer_step_peers(&uids(&[1, 2, 3]), &uids(&[8, 9]), ok);
        assert_eq!((p.used, p.skipped), (uids(&[1, 3, 8]), uids(&[2])));
        // One place, one try: a reserve that fails is not replaced by the next one.
        let p = outer_step_peers(&uids(&[1, 2, 3]), &uids(&[7, 8, 9]), ok);
        assert_eq!((p.used, p.skipped), (uids(&[1, 3]), uids(&[2, 7])));
        // Nothing missing: reserves are not tried.
        let p = outer_step_peers(&uids(&[1, 3]), &uids(&[8]), ok);
        assert_eq!((p.used, p.skipped), (uids(&[1, 3]), vec![]));
        // A reserve already in the gather list is not used twice.
        let p = outer_step_peers(&uids(&[1, 2]), &uids(&[1, 4]), ok);
        assert_eq!(p.used, uids(&[1, 4]));
    }
}
