//! The dev chain end to end: start, block clock, stop; and compatibility test (b), a client that
//! is not ours (PyPI substrate-interface, tests/py/compat.py) driving it.

use chain::devnet::{Artifacts, Devnet, DevnetConfig};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn python() -> PathBuf {
    let py = Artifacts::default_dir().join("python/bin/python");
    assert!(py.is_file(), "{} is missing: run scripts/setup-chain.sh", py.display());
    py
}

fn run_python(mode: &str, devnet: &Devnet) {
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/py/compat.py");
    let out = Command::new(python()).arg(&script).arg(mode).arg(devnet.ws_url()).output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "compat.py {mode} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{mode}: all checks passed")), "compat.py {mode} did not finish");
}

#[test]
fn starts_builds_blocks_on_a_timer_and_stops() {
    let mut devnet = Devnet::start(&DevnetConfig::for_tests()).expect("start");
    println!("ready in {:?} at {}", devnet.started_in(), devnet.ws_url());
    // The target is 10 s on an idle machine (docs/BENCHMARKS.md); tests start several chains at
    // once next to other builds, so only a gross regression fails here.
    assert!(devnet.started_in() < Duration::from_secs(45), "start took {:?}", devnet.started_in());
    let first = devnet.best_block().expect("best block");
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let last = devnet.best_block().expect("best block");
    let per_block = since.elapsed() / (last - first).max(1) as u32;
    println!("{} blocks in {:?}: {:?} per block (target 250 ms)", last - first, since.elapsed(), per_block);
    // 250 ms blocks: 20 in 5 s; allow for a busy machine but require a running clock.
    assert!(last - first >= 10, "only {} blocks in 5 s", last - first);
    let chain = devnet.rpc("system_chain", serde_json::json!([])).expect("system_chain");
    assert_eq!(chain, "covenant_devnet", "chopsticks answers system_chain with the spec id");
    let addr = devnet.addr();
    devnet.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "port still open after stop");
}

#[test]
fn drop_stops_the_chain() {
    let devnet = Devnet::start(&DevnetConfig::for_tests()).expect("start");
    let addr = devnet.addr();
    drop(devnet);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(), "port still open after drop");
}

#[test]
fn a_taken_port_is_refused() {
    let first = Devnet::start(&DevnetConfig::for_tests()).expect("start");
    let cfg = DevnetConfig { port: first.addr().port(), ..DevnetConfig::for_tests() };
    assert!(Devnet::start(&cfg).is_err(), "a second chain started on a taken port");
}

#[test]
fn python_substrate_interface_drives_the_subtensor_flow() {
    let devnet = Devnet::start(&DevnetConfig::for_tests()).expect("start");
    run_python("flow", &devnet);
}

#[test]
fn hundred_extrinsics_fit_in_one_block() {
    // No timer blocks during the test: the script builds the block itself (dev_newBlock).
    let cfg = DevnetConfig { block_ms: 3_600_000, ..DevnetConfig::for_tests() };
    let devnet = Devnet::start(&cfg).expect("start");
    run_python("throughput", &devnet);
}
