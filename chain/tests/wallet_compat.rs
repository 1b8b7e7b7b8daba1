//! Wallet compatibility with bittensor's own tools: wallets made by the PyPI `bittensor-wallet`
//! package (what btcli uses) load here, and wallets written here load there. The Python package is
//! installed into the cache by `scripts/setup-wallet-py.sh` (run by `make test`).
//!
//! One test function: it sets a `BT_PW_…` variable, which must not race with other tests.

use chain::wallet::{password, Keypair, PasswordSource, PublicKey, Wallet};
use std::path::PathBuf;
use std::process::Command;

const PASSWORD: &str = "Test1234!pw";

fn python() -> PathBuf {
    let cache = std::env::var_os("COVENANT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/covenant-rs"));
    let py = cache.join("wallet-py/python/bin/python");
    assert!(py.is_file(), "{} is missing: run scripts/setup-wallet-py.sh (make test does)", py.display());
    py
}

fn run_py(args: &[&str]) -> serde_json::Value {
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/py/wallets.py");
    let out = Command::new(python()).arg(script).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "wallets.py {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).expect("a JSON line");
    serde_json::from_str(line).expect("JSON")
}

#[test]
fn wallets_cross_load_with_bittensor_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();

    // 1. bittensor-wallet writes, we read.
    let made = run_py(&["create", root, PASSWORD]);
    let w = Wallet::new("pyw", "hk1", dir.path()).unwrap();
    let hot = w.hotkey(&PasswordSource::env_only()).expect("plain hotkey");
    assert_eq!(hot.ss58(), made["hotkey"].as_str().unwrap());
    assert!(hot.phrase().is_some(), "loaded from secretPhrase");
    assert_eq!(w.hotkey_public().unwrap().ss58(), made["hotkey"].as_str().unwrap());
    assert_eq!(w.coldkey_public().unwrap().ss58(), made["coldkey"].as_str().unwrap());
    // The password through bittensor's environment convention, exactly as btwallet stores it.
    let var = password::env_var_name(&w.coldkey_path());
    assert_eq!(var, made["env_var"].as_str().unwrap());
    assert_eq!(password::env_value(&w.coldkey_path(), PASSWORD), made["env_value"].as_str().unwrap());
    std::env::set_var(&var, made["env_value"].as_str().unwrap());
    let started = std::time::Instant::now();
    let cold = w.coldkey(&PasswordSource::env_only()).expect("decrypt the $NACL coldkey");
    println!("$NACL coldkey made by bittensor-wallet unlocked in {:?}", started.elapsed());
    std::env::remove_var(&var);
    assert_eq!(cold.ss58(), made["coldkey"].as_str().unwrap());
    assert!(matches!(w.coldkey(&PasswordSource::env_only()), Err(chain::wallet::WalletError::PasswordNeeded { .. })));

    // 2. We write (encrypted coldkey, plain hotkey), bittensor-wallet reads and signs.
    let ours = Wallet::new("rsw", "hk9", dir.path()).unwrap();
    let (c, h) = (Keypair::generate(12).unwrap(), Keypair::generate(24).unwrap());
    ours.write_coldkey(&c, Some(PASSWORD), false).unwrap();
    ours.write_hotkey(&h, None, false).unwrap();
    let loaded = run_py(&["load", root, "rsw", "hk9", PASSWORD]);
    assert_eq!(loaded["coldkey"].as_str().unwrap(), c.ss58());
    assert_eq!(loaded["coldkeypub"].as_str().unwrap(), c.ss58());
    assert_eq!(loaded["hotkey"].as_str().unwrap(), h.ss58());
    assert_eq!(loaded["hotkeypub"].as_str().unwrap(), h.ss58());
    assert_eq!(loaded["coldkey_encrypted"].as_bool(), Some(true));
    let sig = hex::decode(loaded["hotkey_signature"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let sig: [u8; 64] = sig.try_into().expect("64-byte signature");
    assert!(PublicKey::from_ss58(&h.ss58()).unwrap().verify(b"covenant", &sig), "python's signature verifies here");
}
