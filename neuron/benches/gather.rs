//! Gather of 20 signed payloads of a ~100M-parameter model (8 layers of hidden 1024 / FFN 2688,
//! as the codec benchmark) from a local S3 server: how the wall time splits between I/O and codec
//! decoding, and the gathering process' peak memory against the size of the decoded payloads.
//!
//! The S3 server (s3s-fs, the same as `LocalS3`) runs in a child process so that its buffers do
//! not count in the gatherer's memory. The chain is not involved: the commitments (hashes) are
//! given to the gather directly — reading them is two RPCs per window, not per payload.
//!
//! Run: `cargo bench -p neuron --bench gather` (prints a table; one run ≈ 1 min on 2 cores).

use compression::wire::{self, IndexCoding};
use compression::{native, Header, Manifest, ParamSpec, Payload, SparseParam};
use neuron::storage::{
    AccessKey, BucketKeys, Committed, Endpoint, GatherOptions, Gatherer, ObjectKey, WindowTiming, WindowView, S3,
};
use neuron::testkit::local_s3::{Grant, LocalS3, LocalS3Config};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HIDDEN: usize = 1024;
const FFN: usize = 2688;
const LAYERS: usize = 8;
const PEERS: u16 = 20;
const RUNS: usize = 5;

fn manifest() -> Manifest {
    let mut params = Vec::new();
    let mut add = |name: String, shape: Vec<usize>| params.push(ParamSpec { name, shape });
    for l in 0..LAYERS {
        for w in ["wq", "wk", "wv", "wo"] {
            add(format!("layers.{l}.attention.{w}.weight"), vec![HIDDEN, HIDDEN]);
        }
        add(format!("layers.{l}.feed_forward.w1.weight"), vec![FFN, HIDDEN]);
        add(format!("layers.{l}.feed_forward.w2.weight"), vec![HIDDEN, FFN]);
        add(format!("layers.{l}.feed_forward.w3.weight"), vec![FFN, HIDDEN]);
        add(format!("layers.{l}.attention_norm.weight"), vec![HIDDEN]);
        add(format!("layers.{l}.ffn_norm.weight"), vec![HIDDEN]);
    }
    add("norm.weight".into(), vec![HIDDEN]);
    Manifest::new(params).expect("manifest")
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak-RSS counter (VmHWM) to the current RSS.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Child mode: serve a folder with the keys in a file, print the endpoint, stop when stdin closes.
fn serve(config: &str) {
    let text = std::fs::read_to_string(config).expect("server config");
    let mut lines = text.lines();
    let root = lines.next().expect("root");
    let mut cfg = LocalS3Config::new(root);
    for l in lines {
        let mut f = l.split(' ');
        let (id, secret, bucket) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        cfg = cfg.with_key(AccessKey::new(id, secret), Grant::Owner { bucket: bucket.into() });
    }
    let server = LocalS3::start(cfg).expect("local S3");
    println!("{}", server.endpoint());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// User + system CPU time of a process (from /proc; clock ticks of 10 ms).
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(&args[i + 1]);
        return;
    }
    // glibc raises its mmap threshold after large frees and then keeps freed payload buffers in
    // the heap, which would hide one run's memory in the next run's baseline: pin the threshold.
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(&args[1..])
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .status()
            .expect("re-run the benchmark");
        std::process::exit(status.code().unwrap_or(1));
    }
    let manifest = Arc::new(manifest());
    let netuid = 3;
    let window = 11;

    // One compressed update (decode cost does not depend on the values), 20 signed payloads.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let params: Vec<SparseParam> = manifest
        .params()
        .iter()
        .zip(manifest.geometry())
        .map(|(spec, &g)| {
            let n: usize = spec.shape.iter().product();
            let delta: Vec<f32> = (0..n).map(|_| rng.gen_range(-1e-3f32..1e-3)).collect();
            let mut ef = vec![0f32; n];
            native::compress(&delta, &mut ef, g, 0.95)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let peers: Vec<(u16, chain::wallet::Keypair, BucketKeys)> =
        (1..=PEERS).map(|uid| (uid, chain::wallet::Keypair::generate(12).unwrap(), BucketKeys::generate())).collect();

    // The S3 server, in a child process.
    let config = dir.path().join("server.txt");
    let mut text = format!("{}\n", dir.path().join("s3").display());
    for (_, _, k) in &peers {
        text += &format!(
            "{} {} {}\n{} {} {}\n",
            k.write.id, k.write.secret, k.account_id, k.read.id, k.read.secret, k.account_id
        );
    }
    std::fs::write(&config, text).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .arg(&config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the S3 server");
    let server_pid = child.id().to_string();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let endpoint = Endpoint::url(line.trim());

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let s3 = S3::default();
    let mut entries = BTreeMap::new();
    let mut object_size = 0;
    let mut sample = Vec::new();
    rt.block_on(async {
        for (uid, hotkey, keys) in &peers {
            let header = Header { netuid, uid: *uid, window, hotkey: hotkey.public().0, model: manifest.fingerprint() };
            let payload = Payload { header, params: params.clone() };
            let mut bytes = wire::encode(&payload, &manifest, IndexCoding::Packed12).unwrap();
            neuron::storage::sign_payload(&mut bytes, hotkey).unwrap();
            let hash = compression::signature::content_hash(&bytes);
            object_size = bytes.len();
            let w = s3.writer(&endpoint, keys);
            w.create().await.unwrap();
            w.put_object(&ObjectKey::gradient(window, *uid), bytes.clone().into()).await.unwrap();
            if sample.is_empty() {
                sample = bytes;
            }
            // Read credentials: the bench server grants the read key the whole bucket.
            let credentials =
                neuron::storage::BucketCredentials::new(keys.account_id.clone(), keys.read.clone()).unwrap();
            entries.insert(
                *uid,
                Ok(Committed { uid: *uid, hotkey: hotkey.public(), credentials, hash, block: 0, extrinsic_index: 0 }),
            );
        }
    });
    drop(params);
    let view = WindowView { window, timing: WindowTiming { blocks_per_window: 1, put_blocks: 1 }, entries };
    let uids: Vec<u16> = (1..=PEERS).collect();
    let decoded = wire::decode(&sample, &manifest).unwrap();
    let decoded_bytes: usize =
        decoded.params.iter().map(|p| p.indices.len() * 2 + p.codes.len() + std::mem::size_of::<SparseParam>()).sum();
    drop(decoded);

    // Decode alone, from memory: one payload, then 20 on 2 threads (what gather can overlap).
    let t = Instant::now();
    for _ in 0..PEERS {
        std::hint::black_box(wire::decode(&sample, &manifest).unwrap());
    }
    let decode_1t = t.elapsed();
    let t = Instant::now();
    for _ in 0..PEERS {
        std::hint::black_box(compression::signature::verify(&sample, &[0; 32]).ok());
    }
    let verify_1t = t.elapsed();
    drop(sample);

    // Download alone (HEAD + GET + streaming blake2b), 20 at once, 8 in flight.
    let mut io_walls = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        rt.block_on(async {
            let limit = wire::max_payload_len(&manifest) as u64;
            let downloads = uids.iter().map(|uid| {
                let Ok(c) = &view.entries[uid] else { unreachable!() };
                let b = s3.reader(&endpoint, &c.credentials);
                let key = ObjectKey::gradient(window, *uid).to_string();
                async move { b.get_capped(&key, limit).await.unwrap().bytes.len() }
            });
            use futures_util::StreamExt;
            let n: usize =
                futures_util::stream::iter(downloads).buffer_unordered(8).collect::<Vec<_>>().await.iter().sum();
            assert_eq!(n, object_size * PEERS as usize);
        });
        io_walls.push(t.elapsed());
    }

    // The gather itself.
    let gatherer = Gatherer::new(S3::default(), endpoint);
    let mut runs = Vec::new();
    for keep_bytes in [false, true] {
        for _ in 0..RUNS {
            unsafe {
                libc::malloc_trim(0);
            }
            let base = proc_status_kb("VmRSS:");
            reset_peak();
            let (cpu_self, cpu_server) = (cpu_time("self"), cpu_time(&server_pid));
            let opts = GatherOptions { concurrency: 8, keep_bytes, ..GatherOptions::default() };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            let got = rt.block_on(gatherer.gather(netuid, &view, &uids, &manifest, deadline, &opts));
            assert_eq!(got.accepted.len(), PEERS as usize, "{:?}", got.rejected);
            let peak = proc_status_kb("VmHWM:");
            let cpu = (cpu_time("self") - cpu_self, cpu_time(&server_pid) - cpu_server);
            runs.push((keep_bytes, got.stats.clone(), peak.saturating_sub(base) * 1024, cpu));
            drop(got);
        }
    }
    drop(child.stdin.take());
    let _ = child.wait();

    let numel = manifest.numel();
    println!();
    println!("gather of {PEERS} payloads, {numel} parameters, {object_size} bytes each ({} MB in all), local S3 (s3s-fs, child process)", object_size * PEERS as usize / 1_000_000);
    println!("decoded payload: {decoded_bytes} bytes each; {RUNS} runs, medians");
    println!("| stage | time |");
    println!("|---|---|");
    println!("| decode only, from memory, 1 thread, 20 payloads | {} |", ms(decode_1t));
    println!("| signature verify only, 1 thread, 20 payloads | {} |", ms(verify_1t));
    println!("| download only (HEAD + GET + blake2b), 8 in flight | {} |", ms(median(io_walls)));
    for keep in [false, true] {
        let sel: Vec<_> = runs.iter().filter(|r| r.0 == keep).collect();
        let cpu_g = median(sel.iter().map(|r| r.3 .0).collect());
        let cpu_s = median(sel.iter().map(|r| r.3 .1).collect());
        let wall = median(sel.iter().map(|r| r.1.wall).collect());
        let dl = median(sel.iter().map(|r| r.1.download).collect());
        let ver = median(sel.iter().map(|r| r.1.verify).collect());
        let dec = median(sel.iter().map(|r| r.1.decode).collect());
        let mut peaks: Vec<u64> = sel.iter().map(|r| r.2).collect();
        peaks.sort();
        let peak = peaks[peaks.len() - 1];
        println!(
            "| gather (keep_bytes={keep}): wall | {} (per-peer sums: download {}, verify {}, decode {}) |",
            ms(wall),
            ms(dl),
            ms(ver),
            ms(dec)
        );
        println!(
            "| gather (keep_bytes={keep}): CPU time | gatherer {} (decode + verify: {}), S3 server {} |",
            ms(cpu_g),
            ms(dec + ver),
            ms(cpu_s)
        );
        println!(
            "| gather (keep_bytes={keep}): peak RSS growth (max of runs) | {:.1} MB = {:.2}× the {:.1} MB of decoded payloads |",
            peak as f64 / 1e6,
            peak as f64 / (decoded_bytes * PEERS as usize) as f64,
            (decoded_bytes * PEERS as usize) as f64 / 1e6
        );
    }
}
