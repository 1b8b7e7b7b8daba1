//! One test (or a few) per Gauntlet rule, through the public API. Preconditions (a positive final
//! score, a history of evaluations) are set by building a `GauntletState` directly.

use protocol::ProtocolConfig;
use std::collections::{BTreeMap, VecDeque};

use weights::copycat::{detect, CommitPosition, ParamIndices, PeerUpdate};
use weights::state::PendingScore;
use weights::{
    ConsensusLosses, CopycatFinding, EvalOutcome, Evaluation, GatherReport, Gauntlet, GauntletConfig, GauntletError,
    GauntletState, Hotkey, OverlapLevel, PeerSelection, PeerState, PenaltyKind, Rating, Recorded, Uid, WindowStart,
};

fn start(window: u64, active: &[Uid]) -> WindowStart {
    WindowStart {
        // The subnet owner (the burn uid) is uid 1, as on templar's subnet.
        owner_uid: Some(1),
        window,
        global_step: 100,
        hotkeys: Vec::new(),
        active: active.to_vec(),
        gather: None,
        copycats: Vec::new(),
        gather_sync: Vec::new(),
        seed: [window as u8; 32],
    }
}

/// A peer with a positive final score.
fn scored(final_score: f64, bma: f64) -> PeerState {
    PeerState {
        final_score,
        bma,
        sync_score: 1.0,
        rating: Some(Rating { mu: 30.0, sigma: 2.0 }),
        ..PeerState::default()
    }
}

fn gauntlet_with(peers: Vec<(Uid, PeerState)>, config: GauntletConfig) -> Gauntlet {
    let state = GauntletState { peers: peers.into_iter().collect(), start_window: Some(1), ..GauntletState::default() };
    Gauntlet::from_state(config, &ProtocolConfig::default(), state).unwrap()
}

fn eval(random_after: f64, own_after: f64, steps_behind: Option<f64>) -> EvalOutcome {
    EvalOutcome::Evaluated(Evaluation {
        own_before: 3.0,
        own_after,
        random_before: 3.0,
        random_after,
        steps_behind,
        consensus: None,
    })
}

/// Runs a window in which every planned uid is recorded with `outcome(uid)`.
fn run_window(g: &mut Gauntlet, s: &WindowStart, outcome: impl Fn(Uid) -> EvalOutcome) -> weights::WindowSummary {
    let plan = g.begin_window(s).unwrap();
    for uid in plan.uids {
        g.record_evaluation(uid, outcome(uid)).unwrap();
    }
    g.finish_window().unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

// ── Evaluation, BMA, final score ──────────────────────────────────────────────────────────────

/// An evaluation with the consensus control: the miner's update improves random data by
/// `random` and own data by `own` (relative), the consensus update by `random_g` and `own_g`.
fn controlled(random: f64, own: f64, random_g: f64, own_g: f64) -> EvalOutcome {
    EvalOutcome::Evaluated(Evaluation {
        own_before: 4.0,
        own_after: 4.0 * (1.0 - own),
        random_before: 2.0,
        random_after: 2.0 * (1.0 - random),
        steps_behind: Some(0.0),
        consensus: Some(ConsensusLosses { own_after: 4.0 * (1.0 - own_g), random_after: 2.0 * (1.0 - random_g) }),
    })
}

#[test]
fn the_controlled_own_data_test_needs_more_than_what_a_generic_update_does() {
    let config = GauntletConfig { own_data_margin: Some(0.01), ..GauntletConfig::default() };
    let mut g = Gauntlet::new(config, &ProtocolConfig::default()).unwrap();
    g.begin_window(&start(10, &[3, 4, 5, 6, 7])).unwrap();
    // The consensus helps this uid's batches 1.2× as much as random ones (its samples happen to
    // be easy): a generic update that does the same (a freeloader) gets −1, though templar's
    // test would give it +1 (own 0.0012 > random 0.001).
    let r = g.record_evaluation(3, controlled(0.001, 0.0012, 0.002, 0.0024)).unwrap();
    let Recorded::Scored { binary_indicator, own_advantage, .. } = r else { panic!("{r:?}") };
    assert_eq!(binary_indicator, -1.0);
    assert!(own_advantage.unwrap().abs() < 1e-9, "{own_advantage:?}");
    // The same sizes, but own data helped 1.4× as much (it trained on them): advantage
    // (0.0014 − 1.2·0.001)/0.002 = 0.1 > 0.01: +1.
    let r = g.record_evaluation(4, controlled(0.001, 0.0014, 0.002, 0.0024)).unwrap();
    let Recorded::Scored { binary_indicator, own_advantage, .. } = r else { panic!("{r:?}") };
    assert_eq!(binary_indicator, 1.0);
    assert!((own_advantage.unwrap() - 0.1).abs() < 1e-9, "{own_advantage:?}");
    // Noise: tiny effects either way, below the margin in consensus units ((0.5e-5 + 1.2·0.5e-5)
    // / 0.002 = 0.0055): −1, though its own data improved and random data got worse (templar: +1).
    let r = g.record_evaluation(5, controlled(-0.000005, 0.000005, 0.002, 0.0024)).unwrap();
    let Recorded::Scored { binary_indicator, .. } = r else { panic!("{r:?}") };
    assert_eq!(binary_indicator, -1.0);
    // A consensus that made random data worse is no control: templar's test decides.
    let r = g.record_evaluation(6, controlled(0.001, 0.0012, -0.001, 0.0024)).unwrap();
    let Recorded::Scored { binary_indicator, own_advantage, .. } = r else { panic!("{r:?}") };
    assert_eq!((binary_indicator, own_advantage), (1.0, None));
    // Without a control (e.g. nothing gathered this window), templar's test too.
    let r = g.record_evaluation(7, eval(2.997, 2.99, Some(0.0))).unwrap();
    let Recorded::Scored { binary_indicator, own_advantage, .. } = r else { panic!("{r:?}") };
    assert_eq!((binary_indicator, own_advantage), (1.0, None));
    g.finish_window().unwrap();
    let bad = GauntletConfig { own_data_margin: Some(-0.5), ..GauntletConfig::default() };
    assert!(Gauntlet::new(bad, &ProtocolConfig::default()).is_err());
}

#[test]
fn evaluation_sets_gradient_score_indicator_bma_sync_and_final_score() {
    let mut g = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    let s = start(10, &[3, 4]);
    let plan = g.begin_window(&s).unwrap();
    let mut plan_uids = plan.uids.clone();
    plan_uids.sort();
    assert_eq!(plan_uids, vec![3, 4], "fewer candidates than uids_per_window: all are evaluated");
    // uid 3: random loss 3.0 → 2.97 (score 0.01), own 3.0 → 2.94 (own gain 0.02 > 0.01: +1), 1.5 steps behind.
    let r = g.record_evaluation(3, eval(2.97, 2.94, Some(1.5))).unwrap();
    let Recorded::Scored { gradient_score, binary_indicator, sync_score, own_advantage } = r else { panic!("{r:?}") };
    assert_eq!(own_advantage, None, "templar's test by default");
    assert!(close(gradient_score, 0.01));
    assert_eq!(binary_indicator, 1.0);
    assert!(close(sync_score, 0.5f64.powf(2.5)));
    // uid 4: helps random data more than its own (−1), in sync.
    g.record_evaluation(4, eval(2.985, 2.999, Some(0.0))).unwrap();
    let summary = g.finish_window().unwrap();
    let mut rated = summary.rated.clone();
    rated.sort();
    assert_eq!(rated, vec![3, 4]);

    let p3 = g.peer(3).unwrap();
    assert!(close(p3.bma, 0.05), "0.95·0 + 0.05·(+1)");
    assert_eq!(g.peer(4).unwrap().bma, -0.05);
    let r3 = p3.rating.unwrap();
    assert!(r3.mu > 25.0, "the better score wins the match");
    assert!(close(p3.final_score, r3.ordinal() * 0.05 * 0.5f64.powf(2.5)));
    // A negative BMA counts as 0.
    assert_eq!(g.peer(4).unwrap().final_score, 0.0);
    // And the scores are what the model gives.
    let prior = g.model().rating();
    let expect = g.model().rate(&[prior, prior], &[0.01, (3.0 - 2.985) / 3.0]).unwrap();
    assert_eq!(r3, expect[0]);
}

#[test]
fn bma_below_threshold_counts_as_zero_only_after_warmup() {
    let config = GauntletConfig::default();
    for (window, expected_zero) in [(10u64, false), (11, true)] {
        let mut peers = vec![(3, scored(1.0, 0.04)), (4, scored(1.0, 0.5))];
        peers[0].1.bma = 0.04; // after +1: 0.95·0.04 + 0.05 = 0.088 < 0.10
        let mut g = gauntlet_with(peers, config.clone());
        // start_window is 1: window 10 is 9 windows in (warm-up), window 11 is 10 in.
        run_window(&mut g, &start(window, &[3, 4]), |_| eval(2.97, 2.94, Some(0.0)));
        let p = g.peer(3).unwrap();
        assert!(close(p.bma, 0.088));
        if expected_zero {
            assert_eq!(p.final_score, 0.0, "window {window}");
        } else {
            assert!(close(p.final_score, p.rating.unwrap().ordinal() * 0.088), "window {window}");
        }
        assert!(g.peer(4).unwrap().final_score > 0.0, "BMA above the threshold counts");
    }
    let g = Gauntlet::new(config, &ProtocolConfig::default()).unwrap();
    assert_eq!(g.effective_bma(-0.3, 100), 0.0);
}

#[test]
fn a_lone_score_waits_for_a_second_player() {
    let mut g = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    let s = run_window(&mut g, &start(5, &[3]), |_| eval(2.97, 2.94, Some(0.0)));
    assert!(s.rated.is_empty());
    assert_eq!(g.state().pending_scores, vec![PendingScore { uid: 3, score: (3.0 - 2.97) / 3.0 }]);
    let s = run_window(&mut g, &start(6, &[4]), |_| eval(2.99, 2.94, Some(0.0)));
    assert_eq!(s.rated, vec![3, 4]);
    assert!(g.state().pending_scores.is_empty());
}

#[test]
fn non_finite_losses_after_the_update_make_it_invalid() {
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.5))], GauntletConfig::default());
    g.begin_window(&start(5, &[3, 4])).unwrap();
    assert_eq!(g.record_evaluation(3, eval(f64::INFINITY, 2.9, Some(0.0))).unwrap(), Recorded::Invalid);
    assert_eq!(g.peer(3).unwrap().final_score, 0.0);
    // A bad baseline is the validator's problem: an error, nothing recorded.
    let bad = EvalOutcome::Evaluated(Evaluation {
        own_before: 0.0,
        own_after: 1.0,
        random_before: 3.0,
        random_after: 2.9,
        steps_behind: None,
        consensus: None,
    });
    assert!(matches!(g.record_evaluation(4, bad), Err(GauntletError::BadBaseline { uid: 4, .. })));
    g.record_evaluation(4, eval(2.9, 2.9, None)).unwrap();
}

// ── Missing and invalid gradients ─────────────────────────────────────────────────────────────

#[test]
fn missing_gradient_slashes_by_three_quarters_and_enters_minus_99() {
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.6)), (4, scored(1.0, 0.5))], GauntletConfig::default());
    g.begin_window(&start(5, &[3, 4])).unwrap();
    assert_eq!(g.record_evaluation(3, EvalOutcome::Missing).unwrap(), Recorded::Missing);
    assert!(close(g.peer(3).unwrap().final_score, 1.5));
    assert!(close(g.peer(3).unwrap().bma, 0.45));
    g.record_evaluation(4, eval(2.97, 2.94, Some(0.0))).unwrap();
    let s = g.finish_window().unwrap();
    assert!(s.events.iter().any(|e| e.uid == 3
        && e.kind == PenaltyKind::MissingGradient
        && close(e.final_before, 2.0)
        && close(e.final_after, 1.5)));
    // The −99 lost the match: μ went down; the final score is recomputed with the slashed BMA.
    let p = g.peer(3).unwrap();
    let r = p.rating.unwrap();
    assert!(r.mu < 30.0);
    assert!(close(p.final_score, r.ordinal() * 0.45 * 1.0));
    assert!(g.state().evaluated.contains(&3));
}

#[test]
fn missing_gradient_below_the_zero_threshold_becomes_zero() {
    let mut g = gauntlet_with(vec![(3, scored(1.2e-4, 0.6))], GauntletConfig::default());
    let plan = g.begin_window(&start(5, &[3])).unwrap();
    assert_eq!(plan.uids, vec![3]);
    g.record_evaluation(3, EvalOutcome::Missing).unwrap();
    assert_eq!(g.peer(3).unwrap().final_score, 0.0, "0.75 · 1.2e-4 < 1e-4");
}

#[test]
fn invalid_gradient_zeroes_a_positive_score_keeps_bma_and_enters_minus_99() {
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.6)), (4, scored(-1.0, 0.6))], GauntletConfig::default());
    g.begin_window(&start(5, &[3, 4])).unwrap();
    g.record_evaluation(3, EvalOutcome::Invalid).unwrap();
    g.record_evaluation(4, EvalOutcome::Invalid).unwrap();
    assert_eq!(g.peer(3).unwrap().final_score, 0.0);
    assert_eq!(g.peer(3).unwrap().bma, 0.6);
    assert_eq!(g.peer(4).unwrap().final_score, -1.0, "a negative score is left as it is");
    assert_eq!(
        g.state().pending_scores,
        vec![PendingScore { uid: 3, score: -99.0 }, PendingScore { uid: 4, score: -99.0 }]
    );
}

// ── Gather misses ─────────────────────────────────────────────────────────────────────────────

fn gather(intended: &[Uid], gathered: &[Uid], skipped: &[Uid]) -> Option<GatherReport> {
    Some(GatherReport { intended: intended.to_vec(), gathered: gathered.to_vec(), skipped: skipped.to_vec() })
}

#[test]
fn gather_misses_escalate_075_05_0_and_a_success_ends_the_run() {
    let intended: Vec<Uid> = (3..8).collect();
    let mut g = gauntlet_with(vec![(3, scored(4.0, 0.8))], GauntletConfig::default());
    let mut bmas = Vec::new();
    for w in 5..8 {
        let mut s = start(w, &[]);
        s.gather = gather(&intended, &[4, 5, 6, 7], &[3]); // success 4/5 ≥ 0.4
        let plan = g.begin_window(&s).unwrap();
        let miss = plan.events.iter().find(|e| e.uid == 3).unwrap();
        assert!(matches!(miss.kind, PenaltyKind::GatherMiss { .. }), "{miss:?}");
        bmas.push(g.peer(3).unwrap().bma);
        g.finish_window().unwrap();
    }
    assert!(close(bmas[0], 0.6) && close(bmas[1], 0.3) && bmas[2] == 0.0, "{bmas:?}");
    assert_eq!(g.peer(3).unwrap().consecutive_missing, 3);
    let mut s = start(8, &[]);
    s.gather = gather(&intended, &[3, 4, 5, 6, 7], &[]);
    g.begin_window(&s).unwrap();
    assert_eq!(g.peer(3).unwrap().consecutive_missing, 0);
    assert_eq!(g.peer(3).unwrap().missing_history, VecDeque::from(vec![true, true, true, false]));
}

#[test]
fn a_poor_gather_zeroes_every_skipped_peer() {
    let mut g = gauntlet_with(vec![(3, scored(4.0, 0.8))], GauntletConfig::default());
    let mut s = start(5, &[]);
    s.gather = gather(&[3, 4, 5, 6, 7], &[4], &[3, 5, 6, 7]); // success 1/5 < 0.4
    let plan = g.begin_window(&s).unwrap();
    let e = plan.events.iter().find(|e| e.uid == 3).unwrap();
    assert_eq!(e.kind, PenaltyKind::GatherMiss { consecutive: 1, multiplier: 0.0 });
    assert_eq!(e.final_after, 0.0);
    assert_eq!(g.peer(3).unwrap().bma, 0.0);
    // Every skipped peer counts as evaluated and enters the match with −99.
    let pending: Vec<Uid> = g.state().pending_scores.iter().map(|p| p.uid).collect();
    assert_eq!(pending, vec![3, 5, 6, 7]);
}

#[test]
fn half_the_last_eight_gathers_missed_puts_a_peer_on_the_naughty_list() {
    let mut g = gauntlet_with(vec![(3, scored(4.0, 0.8))], GauntletConfig::default());
    let intended: Vec<Uid> = (3..8).collect();
    // Windows 1..=9: miss on odd windows, gathered on even ones. At window 9 the last eight are
    // 2..=9: four misses → naughty.
    for w in 1..=9u64 {
        let mut s = start(w, &[3, 4]);
        s.gather = if w % 2 == 1 { gather(&intended, &[4, 5, 6, 7], &[3]) } else { gather(&intended, &intended, &[]) };
        let plan = g.begin_window(&s).unwrap();
        let naughty_now = g.is_naughty(3);
        assert_eq!(naughty_now, w == 9, "window {w}");
        if w == 9 {
            assert!(!plan.uids.contains(&3), "a naughty peer is not evaluated");
            let e = plan.events.iter().find(|e| e.uid == 3).unwrap();
            assert_eq!(e.kind, PenaltyKind::GatherMissNaughty { missed: 4, of: 8 });
        }
        for uid in plan.uids {
            g.record_evaluation(uid, eval(2.99, 2.98, Some(0.0))).unwrap();
        }
        g.finish_window().unwrap();
    }
    assert_eq!(g.state().naughty.get(&3), Some(&20));
    // Excluded from the peer list while naughty.
    let lists = g
        .select_peers(&PeerSelection {
            window: 10,
            chain_window: 11,
            active: vec![3, 4],
            incentive: vec![],
            seed: [0; 32],
        })
        .unwrap();
    assert_eq!(lists.gather, vec![4]);
    assert_eq!(lists.first_effective_window, 12);
}

// ── Out of sync ───────────────────────────────────────────────────────────────────────────────

#[test]
fn gather_peers_out_of_sync_are_slashed_by_three_quarters() {
    let peers: Vec<(Uid, PeerState)> = (3..8).map(|u| (u, scored(2.0, 0.4))).collect();
    let mut g = gauntlet_with(peers, GauntletConfig::default());
    let mut s = start(5, &[]);
    s.gather_sync = vec![(3, Some(2.5)), (4, Some(2.0)), (5, None), (6, Some(f64::NAN)), (7, Some(0.1))];
    g.begin_window(&s).unwrap();
    for (uid, slashed) in [(3, true), (4, false), (5, true), (6, true), (7, false)] {
        let p = g.peer(uid).unwrap();
        let (f, b) = if slashed { (1.5, 0.3) } else { (2.0, 0.4) };
        assert!(close(p.final_score, f) && close(p.bma, b), "uid {uid}: {p:?}");
    }
}

// ── Inactivity ────────────────────────────────────────────────────────────────────────────────

#[test]
fn inactive_peers_lose_a_quarter_per_window_and_are_reset_after_three() {
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.4)), (4, scored(1.0, 0.4))], GauntletConfig::default());
    run_window(&mut g, &start(5, &[3, 4]), |_| eval(2.99, 2.98, Some(0.0)));
    let f0 = g.final_score(3);
    assert!(f0 > 0.0);
    for (w, factor) in [(6, 0.75), (7, 0.5625), (8, 0.421875)] {
        run_window(&mut g, &start(w, &[4]), |_| eval(2.99, 2.98, Some(0.0)));
        assert!(close(g.final_score(3), f0 * factor), "window {w}");
        assert!(g.peer(3).is_some());
    }
    let s = run_window(&mut g, &start(9, &[4]), |_| eval(2.99, 2.98, Some(0.0)));
    assert!(s.events.iter().any(|e| e.uid == 3 && e.kind == PenaltyKind::InactiveReset { since: 6 }));
    assert!(g.peer(3).is_none(), "reset");
    // Coming back before the reset clears the inactivity.
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.4)), (4, scored(1.0, 0.4))], GauntletConfig::default());
    run_window(&mut g, &start(5, &[3, 4]), |_| eval(2.99, 2.98, Some(0.0)));
    run_window(&mut g, &start(6, &[4]), |_| eval(2.99, 2.98, Some(0.0)));
    run_window(&mut g, &start(7, &[3, 4]), |_| eval(2.99, 2.98, Some(0.0)));
    assert!(g.state().inactive_since.is_empty());
}

// ── Copycats ──────────────────────────────────────────────────────────────────────────────────

fn finding(offender: Uid, level: OverlapLevel) -> CopycatFinding {
    CopycatFinding { offender, original: 99, overlap: 0.45, level }
}

#[test]
fn copycat_levels_high_halves_max_resets_mega_resets_and_makes_naughty() {
    let peers: Vec<(Uid, PeerState)> = (3..6).map(|u| (u, scored(2.0, 0.4))).collect();
    let mut g = gauntlet_with(peers, GauntletConfig::default());
    let mut s = start(5, &[3, 4, 5, 6]);
    s.copycats = vec![finding(3, OverlapLevel::High), finding(4, OverlapLevel::Max), finding(5, OverlapLevel::Mega)];
    let plan = g.begin_window(&s).unwrap();
    let p3 = g.peer(3).unwrap();
    assert!(close(p3.final_score, 1.0) && close(p3.bma, 0.2));
    assert!(g.peer(4).is_none() && g.peer(5).is_none(), "max and mega reset");
    assert!(!g.is_naughty(4));
    assert_eq!(g.state().naughty.get(&5), Some(&19), "20 windows, this one included");
    assert!(!plan.uids.contains(&5));
    // A reset forgets the sampling counter too, so a reset uid is not sampled in the window of its
    // reset (as in templar, where `reset_peer` drops it from `eval_peers`); it is again next window.
    assert!(!plan.uids.contains(&4));
    g.finish_window().unwrap();
    assert!(g.begin_window(&start(6, &[3, 4, 5, 6])).unwrap().uids.contains(&4));
}

#[test]
fn a_naughty_peer_is_reset_every_window_for_twenty_windows() {
    let mut g = gauntlet_with(vec![(5, scored(2.0, 0.4))], GauntletConfig::default());
    let mut s = start(100, &[5, 6]);
    s.copycats = vec![finding(5, OverlapLevel::Mega)];
    run_window(&mut g, &s, |_| eval(2.99, 2.98, Some(0.0)));
    for w in 101..=120u64 {
        let plan = g.begin_window(&start(w, &[5, 6])).unwrap();
        let reset =
            plan.events.iter().any(|e| e.uid == 5 && e.kind == PenaltyKind::Copycat { level: OverlapLevel::Max });
        assert_eq!(reset, w <= 119, "window {w}");
        assert_eq!(g.is_naughty(5), w < 119, "window {w}");
        assert_eq!(plan.uids.contains(&5), w == 120, "window {w}");
        for uid in plan.uids {
            g.record_evaluation(uid, eval(2.97, 2.95, Some(0.0))).unwrap();
        }
        g.finish_window().unwrap();
    }
}

#[test]
fn copycat_penalties_wait_for_outer_step_twenty_and_take_the_worst_level() {
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.4))], GauntletConfig::default());
    let mut s = start(5, &[3]);
    s.global_step = 19;
    s.copycats = vec![finding(3, OverlapLevel::Mega)];
    g.begin_window(&s).unwrap();
    assert!(close(g.final_score(3), 2.0) && !g.is_naughty(3));
    g.finish_window().unwrap();
    let mut s = start(6, &[3]);
    s.copycats = vec![finding(3, OverlapLevel::High), finding(3, OverlapLevel::Max), finding(3, OverlapLevel::High)];
    g.begin_window(&s).unwrap();
    assert!(g.peer(3).is_none(), "max wins over high");
}

#[test]
fn the_chains_commit_order_decides_who_copied() {
    let honest: Vec<u16> = (0..64).collect();
    let copy = honest.clone();
    let mut g = gauntlet_with(
        vec![(3, scored(2.0, 0.4)), (4, scored(2.0, 0.4)), (5, scored(2.0, 0.4))],
        GauntletConfig::default(),
    );
    let other: Vec<u16> = (0..64).map(|i| i * 3 + 1000).collect();
    let peers = vec![
        PeerUpdate {
            uid: 4,
            commit: CommitPosition { block: 12, extrinsic_index: 2 },
            params: vec![ParamIndices { k: 16, indices: &copy }],
        },
        PeerUpdate {
            uid: 3,
            commit: CommitPosition { block: 12, extrinsic_index: 1 },
            params: vec![ParamIndices { k: 16, indices: &honest }],
        },
        PeerUpdate {
            uid: 5,
            commit: CommitPosition { block: 11, extrinsic_index: 0 },
            params: vec![ParamIndices { k: 16, indices: &other }],
        },
    ];
    let c = g.config().clone();
    let (findings, errors) = detect(&peers, c.idx_overlap_threshold, c.idx_overlap_max, c.idx_overlap_mega);
    assert!(errors.is_empty());
    assert_eq!(findings.len(), 1);
    let mut s = start(5, &[3, 4, 5]);
    s.copycats = findings;
    g.begin_window(&s).unwrap();
    assert!(close(g.final_score(3), 2.0), "committed first: untouched");
    assert!(g.peer(4).is_none() && g.is_naughty(4), "committed later with the same indices: mega");
    assert!(close(g.final_score(5), 2.0));
}

// ── Negative evaluations ─────────────────────────────────────────────────────────────────────

fn with_history(final_score: f64, negatives: &[bool]) -> PeerState {
    PeerState { eval_history: negatives.iter().copied().collect(), ..scored(final_score, 0.4) }
}

#[test]
fn mostly_negative_last_eight_is_slashed_to_a_quarter() {
    let five_of_eight = [false, true, true, false, true, true, false, true];
    let four_of_eight = [false, true, true, false, true, false, false, true];
    let seven = [true; 7];
    let mut g = gauntlet_with(
        vec![
            (3, with_history(2.0, &five_of_eight)),
            (4, with_history(2.0, &four_of_eight)),
            (5, with_history(2.0, &seven)),
        ],
        GauntletConfig::default(),
    );
    // No evaluation this window: the rule runs on histories alone.
    let s = run_window(&mut g, &start(5, &[]), |_| unreachable!());
    assert!(!s.negative_rules_skipped);
    assert!(close(g.final_score(3), 0.5) && close(g.peer(3).unwrap().bma, 0.1));
    assert!(close(g.final_score(4), 2.0), "4 of 8 is not more than half");
    assert!(close(g.final_score(5), 2.0), "fewer than 8 evaluations");
}

#[test]
fn negative_rules_are_skipped_when_the_fifth_best_score_is_negative() {
    let five_of_eight = [false, true, true, false, true, true, false, true];
    let mut peers = vec![(3, with_history(2.0, &five_of_eight))];
    peers.extend((10..16).map(|u| (u, scored(1.0, 0.4))));
    // Four positive and two negative scores: the 5th best is negative → skip.
    let mut g = gauntlet_with(peers.clone(), GauntletConfig::default());
    let s = run_window(&mut g, &start(5, &[10, 11, 12, 13, 14, 15]), |u| {
        if u < 14 {
            eval(2.99, 2.98, Some(0.0))
        } else {
            eval(3.01, 2.98, Some(0.0))
        }
    });
    assert!(s.negative_rules_skipped);
    assert!(close(g.final_score(3), 2.0));
    // Five positive: the 5th best is positive → the rule applies.
    let mut g = gauntlet_with(peers, GauntletConfig::default());
    let s = run_window(&mut g, &start(5, &[10, 11, 12, 13, 14, 15]), |u| {
        if u < 15 {
            eval(2.99, 2.98, Some(0.0))
        } else {
            eval(3.01, 2.98, Some(0.0))
        }
    });
    assert!(!s.negative_rules_skipped);
    assert!(close(g.final_score(3), 0.5));
}

#[test]
fn three_negative_evaluations_in_a_row_exclude_from_gather_until_a_positive_one() {
    let peers: Vec<(Uid, PeerState)> = (3..9).map(|u| (u, scored(2.0, 0.4))).collect();
    let mut g = gauntlet_with(peers, GauntletConfig::default());
    let active: Vec<Uid> = (3..9).collect();
    // uid 3 negative, five others positive: the 5th best is positive, so the rules apply.
    let negative_3 = |u: Uid| if u == 3 { eval(3.01, 2.9, Some(0.0)) } else { eval(2.99, 2.9, Some(0.0)) };
    for w in 1..=3 {
        let s = run_window(&mut g, &start(w, &active), negative_3);
        assert!(!s.negative_rules_skipped);
        assert_eq!(g.excluded_from_gather(3), w == 3, "window {w}");
    }
    assert_eq!(g.peer(3).unwrap().consecutive_negative, 3);
    let sel =
        |w| PeerSelection { window: w, chain_window: w + 1, active: active.clone(), incentive: vec![], seed: [0; 32] };
    let lists = g.select_peers(&sel(4)).unwrap();
    assert!(!lists.gather.contains(&3) && !lists.reserve.contains(&3));
    assert_eq!(lists.gather.len(), 5);
    run_window(&mut g, &start(4, &active), |_| eval(2.99, 2.9, Some(0.0)));
    assert!(!g.excluded_from_gather(3));
    assert!(g.select_peers(&sel(5)).is_none(), "not due: lists change every 2 windows");
    let lists = g.select_peers(&sel(6)).unwrap();
    assert!(lists.gather.contains(&3));
    assert!(!lists.initial_selection);
}

#[test]
fn the_fifth_best_exception_also_lifts_the_exclusion() {
    // Only two players, one negative: the worst of fewer than five is negative → rules skipped.
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.4)), (4, scored(1.0, 0.4))], GauntletConfig::default());
    for w in 1..=3 {
        let s = run_window(&mut g, &start(w, &[3, 4]), |u| {
            if u == 3 {
                eval(3.01, 2.9, Some(0.0))
            } else {
                eval(2.99, 2.9, Some(0.0))
            }
        });
        assert!(s.negative_rules_skipped);
    }
    assert_eq!(g.peer(3).unwrap().consecutive_negative, 3);
    assert!(!g.excluded_from_gather(3));
}

#[test]
fn excluded_peers_fill_up_to_the_minimum() {
    let mut p = scored(2.0, 0.4);
    p.consecutive_negative = 4;
    let mut g = gauntlet_with(vec![(3, p)], GauntletConfig::default());
    let lists = g
        .select_peers(&PeerSelection { window: 1, chain_window: 2, active: vec![3], incentive: vec![], seed: [0; 32] })
        .unwrap();
    assert_eq!(lists.gather, vec![3], "minimum_peers = 1");
    assert!(lists.initial_selection);
}

// ── Reset, hotkeys, selection, ordering ──────────────────────────────────────────────────────

#[test]
fn reset_peer_forgets_scores_rating_counters_and_histories() {
    let mut p = with_history(2.0, &[true, false]);
    p.consecutive_missing = 2;
    p.missing_history = VecDeque::from(vec![true, true]);
    let mut state = GauntletState { peers: [(3, p)].into_iter().collect(), ..GauntletState::default() };
    state.eval_counters.insert(3, 7);
    state.inactive_since.insert(3, 4);
    state.weights.insert(3, weights::exact::ExactF64(0.2));
    state.evaluated.insert(3);
    state.naughty.insert(3, 5);
    let mut g = Gauntlet::from_state(GauntletConfig::default(), &ProtocolConfig::default(), state).unwrap();
    g.reset_peer(3);
    assert!(g.peer(3).is_none());
    assert_eq!(g.final_score(3), 0.0);
    assert_eq!(g.rating(3), g.model().rating());
    let s = g.state();
    assert!(!s.eval_counters.contains_key(&3) && !s.inactive_since.contains_key(&3) && !s.weights.contains_key(&3));
    assert!(s.evaluated.contains(&3) && s.naughty.contains_key(&3), "kept, as templar");
}

#[test]
fn a_new_hotkey_at_a_uid_is_a_new_peer() {
    let mut g = gauntlet_with(vec![(3, scored(2.0, 0.4))], GauntletConfig::default());
    let mut s = start(5, &[3]);
    s.hotkeys = vec![(3, Hotkey([1; 32]))];
    run_window(&mut g, &s, |_| eval(2.99, 2.9, Some(0.0)));
    assert!(g.final_score(3) > 0.0);
    let mut s = start(6, &[3]);
    s.hotkeys = vec![(3, Hotkey([2; 32]))];
    let plan = g.begin_window(&s).unwrap();
    assert!(plan.events.iter().any(|e| e.uid == 3 && e.kind == PenaltyKind::HotkeyChanged));
    assert_eq!(g.final_score(3), 0.0);
    assert!(!g.state().evaluated.contains(&3));
}

#[test]
fn evaluation_sample_is_reproducible_and_counters_favour_the_waiting() {
    let active: Vec<Uid> = (0..50).collect();
    let mut a = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    let mut b = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    let pa = a.begin_window(&start(3, &active)).unwrap();
    let pb = b.begin_window(&start(3, &active)).unwrap();
    assert_eq!(pa.uids, pb.uids);
    assert_eq!(pa.uids.len(), 20);
    // Record only the first 5 (the window ended early): they restart at 1, everyone else waits.
    for &u in &pa.uids[..5] {
        a.record_evaluation(u, eval(2.99, 2.9, Some(0.0))).unwrap();
    }
    a.finish_window().unwrap();
    let c = &a.state().eval_counters;
    assert!(pa.uids[..5].iter().all(|u| c[u] == 1));
    assert!(active.iter().filter(|u| !pa.uids[..5].contains(u)).all(|u| c[u] == 2));
    // A different seed gives a different sample.
    let mut s = start(4, &active);
    s.seed = [42; 32];
    let p2 = a.begin_window(&s).unwrap();
    assert_ne!(p2.uids, pa.uids);
}

#[test]
fn calls_out_of_order_are_typed_errors_and_begin_is_idempotent() {
    let mut g = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    assert_eq!(g.finish_window().unwrap_err(), GauntletError::NoWindowInProgress);
    assert_eq!(g.record_evaluation(3, EvalOutcome::Missing).unwrap_err(), GauntletError::NoWindowInProgress);
    let p1 = g.begin_window(&start(5, &[3, 4])).unwrap();
    let p1b = g.begin_window(&start(5, &[3, 4])).unwrap();
    assert_eq!(p1, p1b);
    assert!(matches!(
        g.begin_window(&start(6, &[3])),
        Err(GauntletError::WindowInProgress { in_progress: 5, requested: 6 })
    ));
    assert!(matches!(
        g.record_evaluation(9, EvalOutcome::Missing),
        Err(GauntletError::NotPlanned { uid: 9, window: 5 })
    ));
    g.record_evaluation(3, EvalOutcome::Missing).unwrap();
    assert!(matches!(g.record_evaluation(3, EvalOutcome::Missing), Err(GauntletError::AlreadyRecorded { uid: 3, .. })));
    g.finish_window().unwrap();
    assert!(matches!(g.begin_window(&start(5, &[3])), Err(GauntletError::StaleWindow { window: 5, last: 5 })));
}

// ── Weights ──────────────────────────────────────────────────────────────────────────────────

#[test]
fn weights_from_final_scores_with_burn_and_u16_form() {
    let peers: Vec<(Uid, PeerState)> = (10..50).map(|u| (u, scored(f64::from(u), 0.4))).collect();
    let mut state = GauntletState { peers: peers.into_iter().collect(), ..GauntletState::default() };
    state.evaluated = (10..50).collect();
    let mut g = Gauntlet::from_state(GauntletConfig::default(), &ProtocolConfig::default(), state).unwrap();
    let s = run_window(&mut g, &start(6, &[]), |_| unreachable!());
    assert!(s.set_weights, "6 % 3 == 0");
    let w: BTreeMap<Uid, f64> = s.weights.iter().copied().collect();
    assert_eq!(w.len(), 31);
    assert_eq!(w[&1], 0.5);
    assert!((w.values().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(close(w[&49] / w[&30], 2.0), "best gather / 20th gather");
    assert!(close(w[&28] / w[&29], 0.5), "reserve is geometric");
    assert!(!w.contains_key(&19));
    let u16w = g.u16_weights().unwrap();
    assert_eq!(u16w.iter().find(|x| x.0 == 1).unwrap().1, 65535, "the largest weight maps to 65535");
    assert_eq!(g.weights(), s.weights);
    assert!(!g.weights_due(7));
}

#[test]
fn the_burn_goes_to_the_chains_subnet_owner_unless_configured() {
    let with = |config: GauntletConfig| {
        let state = GauntletState {
            peers: [(5, scored(0.8, 1.0)), (6, scored(0.4, 1.0))].into_iter().collect(),
            evaluated: [5, 6].into_iter().collect(),
            start_window: Some(1),
            ..GauntletState::default()
        };
        Gauntlet::from_state(config, &ProtocolConfig::default(), state).unwrap()
    };
    let weights_after = |mut g: Gauntlet, owner: Option<Uid>| {
        run_window(&mut g, &WindowStart { owner_uid: owner, ..start(4, &[5, 6]) }, |_| EvalOutcome::Missing);
        g.weights()
    };
    let of = |w: &[(Uid, f64)], uid: Uid| w.iter().find(|x| x.0 == uid).map(|x| x.1);
    // Default: the owner's uid in the window, as the chain has it.
    let w = weights_after(with(GauntletConfig::default()), Some(7));
    assert_eq!((of(&w, 7), of(&w, 1)), (Some(0.5), None), "{w:?}");
    // Configured: that uid, whoever owns the subnet.
    let w = weights_after(with(GauntletConfig { burn_uid: Some(3), ..GauntletConfig::default() }), Some(7));
    assert_eq!((of(&w, 3), of(&w, 7)), (Some(0.5), None), "{w:?}");
    // No owner on chain and none configured: nothing is burned, the miners share everything.
    let w = weights_after(with(GauntletConfig::default()), None);
    assert!(w.iter().all(|x| x.0 == 5 || x.0 == 6), "{w:?}");
    assert!((w.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-12, "{w:?}");
}
