//! The OpenSkill update against the PyPI `openskill` package (6.1.3, the version of the
//! Covenant-72B run): the committed vectors of `tests/reference/openskill_vectors.json` (see
//! `tests/reference/README.md`), and — when the venv of `scripts/setup-openskill.sh` exists — the
//! package itself on fresh random sequences.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use weights::{PlackettLuce, Rating};

const TOLERANCE: f64 = 1e-9;

fn pair(v: &Value) -> (f64, f64) {
    (v[0].as_f64().expect("mu"), v[1].as_f64().expect("sigma"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOLERANCE * b.abs().max(1.0)
}

/// Replays every sequence with our implementation, chaining our own ratings from window to window,
/// and compares them with the reference before and after every match. Returns the number of
/// player updates checked.
fn check_sequences(doc: &Value) -> usize {
    let model = PlackettLuce::default();
    let m = &doc["model"];
    assert_eq!(m["beta"].as_f64(), Some(model.beta));
    assert_eq!(m["tau"].as_f64(), Some(model.tau));
    assert_eq!(m["kappa"].as_f64(), Some(model.kappa));
    assert_eq!(m["mu"].as_f64(), Some(model.mu));
    assert!(close(m["sigma"].as_f64().unwrap(), model.sigma));

    let mut checked = 0;
    let mut worst = 0.0f64;
    for seq in doc["sequences"].as_array().expect("sequences") {
        let name = seq["name"].as_str().unwrap_or("?");
        let n = seq["players"].as_u64().expect("players") as usize;
        let mut pool = vec![model.rating(); n];
        for (w, window) in seq["windows"].as_array().expect("windows").iter().enumerate() {
            let players: Vec<usize> =
                window["players"].as_array().unwrap().iter().map(|p| p.as_u64().unwrap() as usize).collect();
            let scores: Vec<f64> = window["scores"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).collect();
            let before = window["before"].as_array().unwrap();
            let after = window["after"].as_array().unwrap();
            for (k, &p) in players.iter().enumerate() {
                let (mu, sigma) = pair(&before[k]);
                assert!(
                    close(pool[p].mu, mu) && close(pool[p].sigma, sigma),
                    "{name} window {w} player {p}: before ours {:?}, reference ({mu}, {sigma})",
                    pool[p]
                );
            }
            let ratings: Vec<Rating> = players.iter().map(|&p| pool[p]).collect();
            let new = model.rate(&ratings, &scores).unwrap_or_else(|e| panic!("{name} window {w}: {e}"));
            for (k, &p) in players.iter().enumerate() {
                let (mu, sigma) = pair(&after[k]);
                assert!(
                    close(new[k].mu, mu) && close(new[k].sigma, sigma),
                    "{name} window {w} player {p} (score {}): ours {:?}, reference ({mu}, {sigma})",
                    scores[k],
                    new[k]
                );
                worst = worst.max((new[k].mu - mu).abs()).max((new[k].sigma - sigma).abs());
                pool[p] = new[k];
                checked += 1;
            }
        }
    }
    eprintln!("{checked} updates checked, largest |difference| {worst:e}");
    checked
}

#[test]
fn committed_vectors_match() {
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/reference/openskill_vectors.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["openskill"].as_str(), Some("6.1.3"));
    let checked = check_sequences(&doc);
    assert!(checked > 200, "only {checked} updates in the fixture");
}

/// The interpreter of the venv `scripts/setup-openskill.sh` prepares, if present.
fn reference_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COVENANT_OPENSKILL_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let cache = match std::env::var_os("COVENANT_CACHE") {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/covenant-rs"),
    };
    let python = cache.join("openskill/venv/bin/python");
    python.exists().then_some(python)
}

fn random_sequences(seed: u64) -> Value {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut sequences = Vec::new();
    for s in 0..6 {
        let players = rng.gen_range(2..=48usize);
        let mut windows = Vec::new();
        for _ in 0..rng.gen_range(1..=8) {
            let k = rng.gen_range(2..=players);
            let mut chosen: Vec<usize> = (0..players).collect();
            for i in 0..k {
                let j = rng.gen_range(i..players);
                chosen.swap(i, j);
            }
            chosen.truncate(k);
            let mut scores: Vec<f64> = Vec::new();
            for _ in 0..k {
                let u: f64 = rng.gen();
                let s = if u < 0.15 {
                    -99.0
                } else if u < 0.2 {
                    0.0
                } else if u < 0.3 && !scores.is_empty() {
                    scores[rng.gen_range(0..scores.len())]
                } else {
                    rng.gen_range(-0.05..0.05)
                };
                scores.push(s);
            }
            windows.push(json!({"players": chosen, "scores": scores}));
        }
        sequences.push(json!({"name": format!("random-{seed}-{s}"), "players": players, "windows": windows}));
    }
    json!({ "sequences": sequences })
}

#[test]
fn live_reference_on_random_sequences() {
    let Some(python) = reference_python() else {
        eprintln!("skipped: no openskill venv (run scripts/setup-openskill.sh, or set COVENANT_OPENSKILL_PYTHON)");
        return;
    };
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/reference/openskill_vectors.py");
    let seed: u64 = std::env::var("OPENSKILL_LIVE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("live OpenSkill check, OPENSKILL_LIVE_SEED={seed}");
    let input = serde_json::to_vec(&random_sequences(seed)).unwrap();
    let mut child = Command::new(&python)
        .arg(&script)
        .arg("rate")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked = check_sequences(&doc);
    assert!(checked >= 12, "seed {seed}: only {checked} updates");
}
