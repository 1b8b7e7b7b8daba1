//! End to end on this machine: the dev chain (our runtime under chopsticks), a real S3 server on
//! 127.0.0.1, and miner and validator processes of the `neuron` binary training the `tiny` model
//! on real text. Needs `make setup` (runtime, chopsticks, text and tokenizer in the cache).
//! (One local network per test binary: two at once would share two cores.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use neuron::testkit::subnet::report::Summary;
use serde_json::Value;

const ADVERSARIES: [&str; 7] = ["noise", "scaled", "stale", "copycat", "late", "malformed", "freeloader"];

fn read_summary(out: &Path) -> Summary {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary.json")).expect("summary parses")
}

/// Three honest miners, one validator and one adversary of every kind, for ten windows: every
/// adversary ends with zero weight, every honest miner with positive weight, the validator's
/// loss falls, and the audit from public data accepts every honest payload and refuses the
/// adversaries' broken ones.
#[test]
fn honest_miners_earn_and_every_kind_of_adversary_ends_with_zero_weight() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let mut args: Vec<String> = ["localnet", "--miners", "3", "--windows", "10", "--out"].map(String::from).into();
    args.push(out.display().to_string());
    args.push("--adversaries".into());
    args.extend(ADVERSARIES.map(String::from));
    let run = Command::new(common::neuron_binary()).args(&args).output().expect("run neuron localnet");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(run.status.success(), "localnet failed: {}\n{stdout}", String::from_utf8_lossy(&run.stderr));

    let s = read_summary(&out);
    assert_eq!(s.stopped_early, None);
    assert_eq!(s.windows.len(), 10);
    let by_role: BTreeMap<&str, Vec<&neuron::testkit::subnet::report::UidSummary>> =
        s.uids.iter().fold(BTreeMap::new(), |mut m, u| {
            m.entry(u.role.as_str()).or_insert_with(Vec::new).push(u);
            m
        });
    let miners = &by_role["miner"];
    assert_eq!(miners.len(), 3);
    for m in miners {
        assert!(m.weight > 0.0, "honest miner {} ended with no weight: {s:#?}", m.uid);
    }
    for kind in ADVERSARIES {
        let role = format!("adversary:{kind}");
        let a = by_role.get(role.as_str()).unwrap_or_else(|| panic!("no {role} in the summary"));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].weight, 0.0, "{role} (uid {}) ended with weight {}", a[0].uid, a[0].weight);
        assert_eq!(a[0].incentive, 0.0, "{role} (uid {}) earned on chain", a[0].uid);
    }
    // Weights reached the chain: the honest miners and the owner's burn share hold all incentive.
    let honest_incentive: f64 = miners.iter().map(|m| m.incentive).sum();
    assert!(honest_incentive > 0.1, "honest miners' incentive {honest_incentive}");
    let owner = s.owner.as_ref().expect("owner in the summary");
    assert!((owner.incentive + honest_incentive - 1.0).abs() < 0.01, "incentive does not add up: {s:#?}");

    // The validator's loss falls.
    let losses: Vec<f64> = s.windows.iter().filter_map(|w| w.loss).collect();
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < first - 0.3, "validator loss {first} -> {last}");

    // The audit from public data: every honest payload verifies; malformed and stale ones do not.
    let audit: Value = serde_json::from_slice(&std::fs::read(out.join("audit.json")).unwrap()).unwrap();
    let uid_of = |role: &str| s.uids.iter().find(|u| u.role == role).unwrap().uid;
    let mut verdicts: BTreeMap<u64, Vec<(bool, String)>> = BTreeMap::new();
    for w in audit.as_array().unwrap() {
        for v in w["verdicts"].as_array().unwrap() {
            let uid = v["uid"].as_u64().unwrap();
            verdicts.entry(uid).or_default().push((v["problem"].is_null(), v["problem"].to_string()));
        }
    }
    for m in miners {
        let mine = &verdicts[&u64::from(m.uid)];
        assert!(mine.len() >= 7 && mine.iter().all(|(ok, _)| *ok), "miner {}: {mine:?}", m.uid);
    }
    for role in ["adversary:malformed", "adversary:stale"] {
        let theirs = &verdicts[&u64::from(uid_of(role))];
        assert!(theirs.iter().filter(|(ok, _)| !ok).count() >= 5, "{role}: {theirs:?}");
    }
    assert!(s.audit.ok > 0 && s.audit.failed > 0);
    assert!(out.join("report.html").exists());
}
