//! Saving and reloading the Gauntlet: a reload (between windows or in the middle of one) resumes
//! with bit-identical scores, and unusable files are typed errors.

use protocol::ProtocolConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use weights::persist::{self, PersistError};
use weights::{
    CopycatFinding, EvalOutcome, Evaluation, GatherReport, Gauntlet, GauntletConfig, GauntletError, OverlapLevel,
    PeerSelection, Uid, WindowStart,
};

/// A window's inputs, drawn from a generator seeded by the window: two Gauntlets fed the same
/// window get the same inputs.
fn window_start(w: u64) -> WindowStart {
    let mut rng = ChaCha20Rng::seed_from_u64(w);
    let active: Vec<Uid> = (0..60u16).filter(|_| rng.gen_bool(0.8)).collect();
    let intended: Vec<Uid> = active.iter().copied().filter(|_| rng.gen_bool(0.4)).collect();
    let (gathered, skipped): (Vec<Uid>, Vec<Uid>) = intended.iter().partition(|_| rng.gen_bool(0.8));
    let copycats = if rng.gen_bool(0.3) && active.len() > 2 {
        let level = [OverlapLevel::High, OverlapLevel::Max, OverlapLevel::Mega][rng.gen_range(0..3)];
        vec![CopycatFinding { offender: active[rng.gen_range(0..active.len())], original: 0, overlap: 0.55, level }]
    } else {
        Vec::new()
    };
    let gather_sync = intended.iter().map(|&u| (u, rng.gen_bool(0.9).then(|| rng.gen_range(0.0..3.0)))).collect();
    WindowStart {
        // The subnet owner (the burn uid) is uid 1, as on templar's subnet.
        owner_uid: Some(1),
        window: w,
        global_step: w,
        hotkeys: (0..60u16).map(|u| (u, weights::Hotkey([(u as u8) ^ u8::from(w == 9 && u == 7); 32]))).collect(),
        active,
        gather: Some(GatherReport { intended, gathered, skipped }),
        copycats,
        gather_sync,
        seed: [w as u8; 32],
    }
}

fn outcome(w: u64, uid: Uid) -> EvalOutcome {
    let mut rng = ChaCha20Rng::seed_from_u64(w * 1000 + u64::from(uid));
    match rng.gen_range(0..10) {
        0 => EvalOutcome::Missing,
        1 => EvalOutcome::Invalid,
        _ => EvalOutcome::Evaluated(Evaluation {
            own_before: 3.0,
            own_after: 3.0 - rng.gen_range(-0.02..0.05),
            random_before: 3.1,
            random_after: 3.1 - rng.gen_range(-0.02..0.04),
            steps_behind: rng.gen_bool(0.9).then(|| rng.gen_range(0.0..4.0)),
            consensus: None,
        }),
    }
}

fn run(g: &mut Gauntlet, windows: std::ops::RangeInclusive<u64>) {
    for w in windows {
        g.select_peers(&PeerSelection {
            window: w,
            chain_window: w + 1,
            active: (0..60).collect(),
            incentive: vec![(3, 0.2), (9, 0.1)],
            seed: [w as u8; 32],
        });
        let plan = g.begin_window(&window_start(w)).unwrap();
        for uid in plan.uids {
            g.record_evaluation(uid, outcome(w, uid)).unwrap();
        }
        g.finish_window().unwrap();
        g.observe_outer_step([("w", &[w as f32 * 0.01, 1.0][..]), ("b", &[0.5, -(w as f32)][..])]);
    }
}

fn json(g: &Gauntlet) -> String {
    serde_json::to_string(g.state()).unwrap()
}

#[test]
fn a_reload_between_windows_resumes_with_identical_scores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gauntlet.json");
    let mut g = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    run(&mut g, 1..=12);
    assert!(g.state().peers.values().any(|p| p.final_score > 0.0), "the run produced scores");
    assert!(g.state().peers.values().any(|p| p.rating.is_some()));
    persist::save(&path, &g).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("gauntlet.json")], "no temporary file left behind");

    let mut reloaded = persist::load(&path, GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    assert_eq!(reloaded.state(), g.state());
    assert_eq!(json(&reloaded), json(&g));
    for (uid, p) in &g.state().peers {
        let q = &reloaded.state().peers[uid];
        assert_eq!(p.final_score.to_bits(), q.final_score.to_bits());
        assert_eq!(p.bma.to_bits(), q.bma.to_bits());
        assert_eq!(
            p.rating.map(|r| (r.mu.to_bits(), r.sigma.to_bits())),
            q.rating.map(|r| (r.mu.to_bits(), r.sigma.to_bits()))
        );
    }
    run(&mut g, 13..=24);
    run(&mut reloaded, 13..=24);
    assert_eq!(json(&reloaded), json(&g));
    assert_eq!(reloaded.weights(), g.weights());
    assert_eq!(reloaded.u16_weights().unwrap(), g.u16_weights().unwrap());
}

#[test]
fn a_reload_in_the_middle_of_a_window_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let mut g = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    run(&mut g, 1..=5);
    let plan = g.begin_window(&window_start(6)).unwrap();
    assert!(plan.uids.len() > 3);
    for &uid in &plan.uids[..3] {
        g.record_evaluation(uid, outcome(6, uid)).unwrap();
    }
    persist::save(&path, &g).unwrap();
    let mut r = persist::load(&path, GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    // The restarted validator asks for window 6 again: same plan, nothing re-applied.
    assert_eq!(r.begin_window(&window_start(6)).unwrap(), g.begin_window(&window_start(6)).unwrap());
    for gg in [&mut g, &mut r] {
        for &uid in &plan.uids[3..] {
            gg.record_evaluation(uid, outcome(6, uid)).unwrap();
        }
        gg.finish_window().unwrap();
    }
    assert_eq!(json(&r), json(&g));
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn unusable_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gauntlet::new(GauntletConfig::default(), &ProtocolConfig::default()).unwrap();
    run(&mut g, 1..=3);
    let good = dir.path().join("good.json");
    persist::save(&good, &g).unwrap();
    let text = std::fs::read_to_string(&good).unwrap();
    let cfg = GauntletConfig::default;

    let missing = dir.path().join("none.json");
    assert!(matches!(
        persist::load(&missing, cfg(), &ProtocolConfig::default()),
        Err(PersistError::Io { op: "open", .. })
    ));
    assert!(persist::load_or_new(&missing, cfg(), &ProtocolConfig::default()).unwrap().state().peers.is_empty());

    let truncated = write(&dir, "truncated.json", &text[..text.len() / 2]);
    assert!(matches!(persist::load(&truncated, cfg(), &ProtocolConfig::default()), Err(PersistError::Parse { .. })));
    assert!(
        matches!(persist::load_or_new(&truncated, cfg(), &ProtocolConfig::default()), Err(PersistError::Parse { .. })),
        "never silently replaced"
    );

    let other = write(&dir, "other.json", &text.replacen("\"version\":1", "\"version\":7", 1));
    assert!(matches!(
        persist::load(&other, cfg(), &ProtocolConfig::default()),
        Err(PersistError::Format { version: 7, .. })
    ));

    let unknown = write(&dir, "unknown.json", &text.replacen("\"state\":{", "\"state\":{\"surprise\":1,", 1));
    assert!(matches!(persist::load(&unknown, cfg(), &ProtocolConfig::default()), Err(PersistError::Parse { .. })));

    // A BMA outside [−1, 1], a NaN score, a non-positive σ: parsed, then refused.
    let (uid, p) = g.state().peers.iter().find(|(_, p)| p.rating.is_some()).unwrap();
    let mut bad = g.state().clone();
    bad.peers.get_mut(uid).unwrap().bma = 2.5;
    let bad_bma = dir.path().join("bma.json");
    persist::save_state(&bad_bma, &bad).unwrap();
    assert!(matches!(
        persist::load(&bad_bma, cfg(), &ProtocolConfig::default()),
        Err(PersistError::Invalid {
            source: GauntletError::State(weights::state::StateError::PeerValue { field: "bma", .. }),
            ..
        })
    ));
    let mut bad = g.state().clone();
    bad.peers.get_mut(uid).unwrap().final_score = f64::NAN;
    let nan = dir.path().join("nan.json");
    persist::save_state(&nan, &bad).unwrap();
    assert!(matches!(persist::load(&nan, cfg(), &ProtocolConfig::default()), Err(PersistError::Invalid { .. })));
    let mut bad = g.state().clone();
    bad.peers.get_mut(uid).unwrap().rating = Some(weights::Rating { mu: p.rating.unwrap().mu, sigma: 0.0 });
    let sigma = dir.path().join("sigma.json");
    persist::save_state(&sigma, &bad).unwrap();
    assert!(matches!(
        persist::load(&sigma, cfg(), &ProtocolConfig::default()),
        Err(PersistError::Invalid { source: GauntletError::State(weights::state::StateError::Rating { .. }), .. })
    ));
    let garbage = write(&dir, "garbage.json", "\u{0}\u{1}not json");
    assert!(matches!(persist::load(&garbage, cfg(), &ProtocolConfig::default()), Err(PersistError::Parse { .. })));

    // A configuration with shorter histories loads the state and trims them.
    let small =
        GauntletConfig { eval_history_limit: 8, missing_gradient_history_limit: 2, ..GauntletConfig::default() };
    let r = persist::load(&good, small, &ProtocolConfig::default()).unwrap();
    assert!(r.state().peers.values().all(|p| p.eval_history.len() <= 8 && p.missing_history.len() <= 2));
}
