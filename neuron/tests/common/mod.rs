//! Shared by the storage tests: payloads of a small model, and SeaweedFS (a second S3
//! implementation) run from the cache that `scripts/setup-seaweedfs.sh` fills.
#![allow(dead_code)]

use compression::wire::{self, IndexCoding};
use compression::{native, Header, Manifest, ParamSpec, Payload};
use neuron::storage::{AccessKey, Bucket, Endpoint, S3};
use rand::{Rng, SeedableRng};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio")
}

/// A two-parameter model (max payload ≈ 13 KB).
pub fn small_manifest() -> Manifest {
    Manifest::new(vec![
        ParamSpec { name: "layers.0.attention.wq.weight".into(), shape: vec![128, 256] },
        ParamSpec { name: "norm.weight".into(), shape: vec![256] },
    ])
    .expect("manifest")
}

/// An encoded (unsigned) payload of random updates for `header`.
pub fn payload_bytes(manifest: &Manifest, header: Header, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let params = manifest
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
    wire::encode(&Payload { header, params }, manifest, IndexCoding::Packed12).expect("encode")
}

pub fn header(manifest: &Manifest, netuid: u16, uid: u16, window: u64, hotkey: [u8; 32]) -> Header {
    Header { netuid, uid, window, hotkey, model: manifest.fingerprint() }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Random bytes.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0u8; n];
    rng.fill(&mut v[..]);
    v
}

/// SeaweedFS `weed mini` on 127.0.0.1 with a fixed S3 identity file. Dropping it stops it.
pub struct Seaweed {
    child: Child,
    pub s3_port: u16,
    _dir: tempfile::TempDir,
}

/// An S3 identity of SeaweedFS: a key and its actions (`Admin`, `Read:bucket`, `Write:bucket`, ...).
pub struct Identity<'a> {
    pub name: &'a str,
    pub key: &'a AccessKey,
    pub actions: Vec<String>,
}

pub fn weed_binary() -> PathBuf {
    if let Ok(p) = std::env::var("COVENANT_WEED") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("COVENANT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/covenant-rs"));
    cache.join("seaweedfs/weed")
}

impl Seaweed {
    pub fn start(identities: &[Identity]) -> Seaweed {
        let weed = weed_binary();
        assert!(
            weed.exists(),
            "SeaweedFS is not installed at {}: run scripts/setup-seaweedfs.sh (make test does)",
            weed.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = serde_json::json!({
            "identities": identities.iter().map(|i| serde_json::json!({
                "name": i.name,
                "credentials": [{"accessKey": i.key.id, "secretKey": i.key.secret}],
                "actions": i.actions,
            })).collect::<Vec<_>>()
        });
        let config_path = dir.path().join("s3.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let s3_port = free_port();
        let port = |flag: &str| format!("-{flag}={}", free_port());
        let mut cmd = Command::new(&weed);
        cmd.arg("mini")
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"])
            .arg(format!("-s3.config={}", config_path.display()))
            .arg(format!("-dir={}", data.display()))
            .arg(format!("-s3.port={s3_port}"))
            .args(
                [
                    "master.port",
                    "master.port.grpc",
                    "volume.port",
                    "volume.port.grpc",
                    "filer.port",
                    "filer.port.grpc",
                    "s3.port.grpc",
                    "admin.port",
                    "admin.port.grpc",
                ]
                .map(port),
            )
            .args(["-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=0"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(dir.path().join("weed.log")).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("weed.err")).unwrap()));
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", weed.display()));
        let mut sw = Seaweed { child, s3_port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(90);
        while std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
            if let Some(status) = sw.child.try_wait().unwrap() {
                panic!("weed exited early ({status}); log:\n{}", sw.log());
            }
            assert!(Instant::now() < deadline, "SeaweedFS did not listen within 90 s; log:\n{}", sw.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        sw
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::url(format!("http://127.0.0.1:{}", self.s3_port))
    }

    pub fn log(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let out = read(&self._dir.path().join("weed.log"));
        let err = read(&self._dir.path().join("weed.err"));
        let tail =
            |s: &str| s.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        format!("{}\n{}", tail(&out), tail(&err))
    }

    /// Creates `bucket` with `admin`'s key, retrying while SeaweedFS finishes starting (its S3
    /// port listens before the filer and volume servers are ready).
    pub async fn create_bucket(&self, s3: &S3, bucket: &str, admin: &AccessKey) -> Bucket {
        let b = s3.bucket(&self.endpoint(), bucket, admin);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match b.create().await {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "SeaweedFS not ready yet");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!("creating a bucket on SeaweedFS: {e}\nlog:\n{}", self.log()),
            }
        }
        b
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        // The process group this test started (weed mini runs its servers in one process).
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The `neuron` binary cargo built for these tests, found next to the test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/neuron`). The compile-time
/// `CARGO_BIN_EXE_neuron` names the checkout that compiled the test, which is another one when
/// checkouts share a target directory and cargo reuses the test binary.
pub fn neuron_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let beside = exe.parent().and_then(Path::parent).map(|dir| dir.join("neuron"));
    beside.filter(|p| p.exists()).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_neuron")))
}
