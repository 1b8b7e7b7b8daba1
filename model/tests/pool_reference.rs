//! The sample pool against a second, independent implementation of its specification
//! (`tests/reference/pool.py`, pure Python: its own ChaCha20, hashlib's blake2b), run in a
//! separate process — the same pool on every machine and in every implementation.

use model::data::pool::sample_pool;

#[test]
fn rust_and_python_pools_agree() {
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/reference/pool.py");
    for (netuid, uid, window, n, k) in
        [(3u16, 1u16, 42u64, 1_000_000u64, 200u64), (268, 65535, 7, 30, 30), (0, 0, u64::MAX, 5000, 1000)]
    {
        let out = std::process::Command::new("python3")
            .arg(&script)
            .args([&netuid.to_string(), &uid.to_string(), &window.to_string(), &n.to_string(), &k.to_string()])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let python: Vec<u64> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(python, sample_pool(netuid, uid, window, n, k), "({netuid}, {uid}, {window}, {n}, {k})");
    }
}
