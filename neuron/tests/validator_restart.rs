//! A validator killed with SIGKILL in a running local network (dev chain, local S3, miner
//! processes) resumes from what it saved. Needs `make setup`.

mod common;

use std::time::{Duration, Instant};

use neuron::testkit::adversary::Adversary;
use neuron::testkit::subnet::{Localnet, LocalnetOptions, Role};
use neuron::validator::{read_statuses, WindowStatus};

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The validator is killed with SIGKILL after a few windows and started again: it resumes from
/// the scores it saved (the digest of what it loads equals the digest of the file on disk), with
/// its outer steps, and goes on processing windows.
#[test]
fn a_validator_killed_mid_run_resumes_with_its_saved_scores() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let options = LocalnetOptions {
        miners: 2,
        validators: 1,
        windows: 0,
        model: model::Preset::Tiny,
        adversaries: vec![Adversary::Noise],
        keep: false,
        out: out.clone(),
        block_ms: 500,
        blocks_per_window: 40,
        put_blocks: 6,
        inner_steps: 4,
        batch_size: 4,
        seq_len: 128,
        binary: common::neuron_binary(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut net = rt.block_on(Localnet::create(options)).expect("local network");
    net.launch().unwrap();
    let validator = net.nodes.iter().find(|n| n.role == Role::Validator).unwrap().clone();
    let statuses = || read_statuses(&validator.state_dir);
    wait_for("three processed windows", Duration::from_secs(600), || statuses().len() >= 3);

    net.kill_and_restart(&validator.name).unwrap();
    // What the killed process left on disk is a complete checkpoint (never a torn one).
    let ckpt = neuron::node::checkpoint_dir(&validator.state_dir);
    let manifest = model::checkpoint::read_manifest(&ckpt).expect("a consistent checkpoint after kill -9");
    let saved = model::checkpoint::read_extra(&ckpt, &manifest, "gauntlet.json").unwrap().expect("scores saved");
    let digest = hex::encode(compression::signature::content_hash(&saved));
    let before = statuses();
    let last = before.last().unwrap().clone();
    assert!(manifest.window >= last.window, "checkpoint {} behind status {}", manifest.window, last.window);

    wait_for("two windows after the restart", Duration::from_secs(600), || {
        statuses().iter().filter(|s| s.window > manifest.window).count() >= 2
    });
    let log = std::fs::read_to_string(&validator.log).unwrap();
    let restored: Vec<&str> = log.lines().filter(|l| l.contains("scores restored")).collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert!(restored[0].contains(&digest), "restored {:?}, saved {digest}", restored[0]);
    let after: Vec<WindowStatus> = statuses().into_iter().filter(|s| s.window > manifest.window).collect();
    // It picked up at the window after the saved one, with the saved outer steps.
    assert_eq!(after[0].window, manifest.window + 1, "{after:?}");
    assert!(after[0].global_step >= manifest.global_step, "{after:?}");
    assert!(after.iter().all(|s| s.loss.is_some()));
    net.stop_nodes();
}
