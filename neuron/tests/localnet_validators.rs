//! Two validators on one subnet, end to end on this machine (the dev chain, a real S3 server on
//! 127.0.0.1, `neuron` processes training the `tiny` model on real text): both score every window
//! and set weights, one of them leads, both stay on the same model step, and Yuma pays both
//! dividends for weights that agree, while the miners earn the incentive.
//! Needs `make setup`. (One local network per test binary: two at once would share two cores.)

mod common;

use std::process::Command;

use neuron::testkit::subnet::report::Summary;

#[test]
fn two_validators_follow_one_leader_and_both_earn_dividends() {
    // Weights go on chain in windows 0, 3 and 6; the epochs after window 3 pay for them well
    // before the run ends.
    const WINDOWS: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let mut args: Vec<String> =
        ["localnet", "--validators", "2", "--miners", "2", "--windows"].map(String::from).into();
    args.extend([WINDOWS.to_string(), "--out".into(), out.display().to_string()]);
    let run = Command::new(common::neuron_binary()).args(&args).output().expect("run neuron localnet");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(run.status.success(), "localnet failed: {}\n{stdout}", String::from_utf8_lossy(&run.stderr));

    let s: Summary =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary.json")).expect("parses");
    assert_eq!(s.stopped_early, None);
    let [a, b] = s.validators.as_slice() else { panic!("two validators expected: {:#?}", s.validators) };
    for v in [a, b] {
        // The run stops when the first validator has done WINDOWS; the other may be one behind.
        assert!(v.windows >= WINDOWS - 1, "validator {} processed {} windows", v.uid, v.windows);
        // Weights go on chain every third window (windows_per_weights), from window 0.
        assert!(v.weights_set >= WINDOWS / 3, "validator {} set weights in {} windows", v.uid, v.weights_set);
    }
    // One leader (the larger stake), followed by the other in every window.
    assert!(a.led + b.led >= WINDOWS - 1 && a.led.min(b.led) == 0, "leaders: {} and {}", a.led, b.led);
    // Both applied the same outer steps: at the same last window, the same global step.
    if a.last_window == b.last_window {
        assert_eq!(a.global_step, b.global_step, "validators diverged: {:#?}", s.validators);
    }

    let uid = |v: u16| s.uids.iter().find(|u| u.uid == v).unwrap_or_else(|| panic!("uid {v} in the summary"));
    for v in [a, b] {
        let u = uid(v.uid);
        assert_eq!(u.role, "validator");
        assert!(u.dividends > 0.0, "validator {} earned no dividends: {s:#?}", v.uid);
    }
    // The validators' weights reached the chain: miners and the owner's burn share hold all
    // incentive, and the miners some of it (a few windows rank the best miner first).
    let miners: Vec<_> = s.uids.iter().filter(|u| u.role == "miner").collect();
    assert_eq!(miners.len(), 2);
    let miner_incentive: f64 = miners.iter().map(|m| m.incentive).sum();
    let owner = s.owner.as_ref().expect("owner in the summary");
    assert!(miner_incentive > 0.1, "miners' incentive {miner_incentive}: {s:#?}");
    assert!((miner_incentive + owner.incentive - 1.0).abs() < 0.01, "incentive does not add up: {s:#?}");
    // The two validators' dividends are the validators' whole share.
    let dividends: f64 = s.uids.iter().chain(s.owner.iter()).map(|u| u.dividends).sum();
    assert!((uid(a.uid).dividends + uid(b.uid).dividends - dividends).abs() < 1e-3);
    // Every honest payload verifies from public data.
    assert!(s.audit.ok > 0 && s.audit.failed == 0, "audit: {:?}", s.audit);
}
