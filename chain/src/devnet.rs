//! The local dev chain: our FRAME runtime (chain/runtime, which mirrors subtensor's interface) run by
//! chopsticks in genesis mode, producing a block every `block_ms` on 127.0.0.1.
//!
//! The runtime wasm, its raw chain spec and chopsticks are prepared by `scripts/setup-chain.sh`
//! into the cache (`$COVENANT_CACHE/devnet`, by default `~/.cache/covenant-rs/devnet`):
//! `current/` holds the runtime of the checkout that ran the script, `runner/` chopsticks and
//! `run.mjs`. [`Devnet::start`] spawns `node runner/run.mjs` in its own process group, waits until
//! it serves, and kills the whole group when dropped.
//!
//! ```no_run
//! let chain = chain::devnet::Devnet::start(&chain::devnet::DevnetConfig::for_tests())?;
//! println!("{}", chain.ws_url());
//! # Ok::<(), chain::devnet::DevnetError>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long [`Devnet::start`] waits for chopsticks to serve before giving up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stop waits after SIGTERM before it sends SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("the dev chain is not set up: {missing} is missing (run `scripts/setup-chain.sh` or `make setup`)")]
    NotSetUp { missing: PathBuf },
    #[error("could not start `{program}`: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("the dev chain exited before it was ready ({status}); its log is above")]
    ExitedEarly { status: String },
    #[error("the dev chain did not become ready within {0:?}")]
    StartTimeout(Duration),
    #[error("unexpected ready line from the dev chain: {0:?}")]
    BadReadyLine(String),
    #[error("block time must be at least 1 ms")]
    BadBlockTime,
    #[error("rpc {method}: {source}")]
    RpcIo { method: String, source: std::io::Error },
    #[error("rpc {method}: {detail}")]
    Rpc { method: String, detail: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the dev chain's prepared files live.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// `run.mjs` beside chopsticks' node_modules.
    pub runner: PathBuf,
    /// The raw chain spec (genesis with `:code`).
    pub spec: PathBuf,
    /// The runtime's V16 metadata.
    pub metadata: PathBuf,
    /// The runtime wasm.
    pub wasm: PathBuf,
}

impl Artifacts {
    /// `$COVENANT_DEVNET_DIR`, else `$COVENANT_CACHE/devnet`, else `~/.cache/covenant-rs/devnet`.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("COVENANT_DEVNET_DIR") {
            return PathBuf::from(dir);
        }
        let cache = std::env::var_os("COVENANT_CACHE").map(PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
            home.join(".cache/covenant-rs")
        });
        cache.join("devnet")
    }

    /// The artifacts under `dir`, checked to exist.
    pub fn locate(dir: &Path) -> Result<Self, DevnetError> {
        let a = Self {
            runner: dir.join("runner/run.mjs"),
            spec: dir.join("current/spec.json"),
            metadata: dir.join("current/metadata.scale"),
            wasm: dir.join("current/runtime.wasm"),
        };
        for p in [&a.runner, &a.spec, &a.metadata, &a.wasm] {
            if !p.is_file() {
                return Err(DevnetError::NotSetUp { missing: p.clone() });
            }
        }
        Ok(a)
    }
}

/// How to run the dev chain.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Interface to serve on; 127.0.0.1 unless you mean to expose it.
    pub host: IpAddr,
    /// Port for ws:// and http:// JSON-RPC; 0 picks a free one.
    pub port: u16,
    /// Milliseconds between blocks (250 and up is what the targets are measured at).
    pub block_ms: u64,
    /// The artifacts folder; `None` is [`Artifacts::default_dir`].
    pub dir: Option<PathBuf>,
    /// Chopsticks' log level (`LOG_LEVEL`: error, warn, info, debug).
    pub log_level: String,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self { host: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 9944, block_ms: 500, dir: None, log_level: "warn".into() }
    }
}

impl DevnetConfig {
    /// One chain per test: a free port, 250 ms blocks, only errors logged.
    pub fn for_tests() -> Self {
        Self { port: 0, block_ms: 250, log_level: "error".into(), ..Self::default() }
    }
}

/// A running dev chain. Dropping it stops the chain (its whole process group).
#[derive(Debug)]
pub struct Devnet {
    child: Option<Child>,
    addr: SocketAddr,
    artifacts: Artifacts,
    started_in: Duration,
}

impl Devnet {
    /// Starts the chain and returns once it serves JSON-RPC and has built its first block.
    pub fn start(cfg: &DevnetConfig) -> Result<Self, DevnetError> {
        if cfg.block_ms == 0 {
            return Err(DevnetError::BadBlockTime);
        }
        let dir = cfg.dir.clone().unwrap_or_else(Artifacts::default_dir);
        let artifacts = Artifacts::locate(&dir)?;
        let started = Instant::now();
        let mut cmd = Command::new("node");
        cmd.arg(&artifacts.runner)
            .arg("--spec")
            .arg(&artifacts.spec)
            .arg("--host")
            .arg(cfg.host.to_string())
            .arg("--port")
            .arg(cfg.port.to_string())
            .arg("--block-ms")
            .arg(cfg.block_ms.to_string())
            .env("LOG_LEVEL", &cfg.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        own_process_group(&mut cmd);
        let child = cmd.spawn().map_err(|source| DevnetError::Spawn { program: "node".into(), source })?;
        // From here on, dropping `devnet` (any early return) stops the chain.
        let mut devnet = Self {
            child: Some(child),
            addr: SocketAddr::new(cfg.host, cfg.port),
            artifacts,
            started_in: Duration::ZERO,
        };
        let stdout = devnet.child.as_mut().and_then(|c| c.stdout.take());
        let Some(stdout) = stdout else {
            return Err(DevnetError::BadReadyLine("the chain's stdout is not piped".into()));
        };
        // A reader thread forwards the ready line, then keeps draining stdout so that the chain never
        // blocks on a full pipe.
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::Builder::new().name("devnet-stdout".into()).spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && line.starts_with("ready ") {
                    sent = tx.send(line).is_ok();
                } else {
                    tracing::debug!(target: "devnet", "{line}");
                }
            }
        })?;
        let deadline = started + START_TIMEOUT;
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if let Some(status) = devnet.try_wait()? {
                        devnet.child = None;
                        return Err(DevnetError::ExitedEarly { status: status.to_string() });
                    }
                    if Instant::now() > deadline {
                        return Err(DevnetError::StartTimeout(START_TIMEOUT));
                    }
                }
            }
        };
        devnet.addr = parse_ready(&line)?;
        devnet.started_in = started.elapsed();
        tracing::info!(url = %devnet.ws_url(), ms = devnet.started_in.as_millis() as u64, "dev chain ready");
        Ok(devnet)
    }

    /// `ws://HOST:PORT`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://HOST:PORT` (chopsticks answers JSON-RPC over plain HTTP POST too).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn artifacts(&self) -> &Artifacts {
        &self.artifacts
    }

    /// Time from spawn to ready.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// One JSON-RPC call over HTTP; returns `result` or the node's error as [`DevnetError::Rpc`].
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value, DevnetError> {
        rpc_call(self.addr, method, params)
    }

    /// The best block number.
    pub fn best_block(&self) -> Result<u64, DevnetError> {
        let header = self.rpc("chain_getHeader", serde_json::json!([]))?;
        header
            .get("number")
            .and_then(|n| n.as_str())
            .and_then(|n| u64::from_str_radix(n.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| DevnetError::Rpc {
                method: "chain_getHeader".into(),
                detail: format!("no number in {header}"),
            })
    }

    /// The chain's exit status if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, DevnetError> {
        match &mut self.child {
            Some(child) => Ok(child.try_wait()?),
            None => Ok(None),
        }
    }

    /// Runs until the chain exits or this process gets SIGINT/SIGTERM, then stops the chain.
    pub fn run_until_interrupted(mut self) -> Result<(), DevnetError> {
        install_stop_handler();
        loop {
            if STOP_REQUESTED.load(Ordering::SeqCst) {
                tracing::info!("stopping the dev chain");
                self.stop();
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Err(DevnetError::ExitedEarly { status: status.to_string() });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the chain: SIGTERM to its process group, SIGKILL after a grace period.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_ready(line: &str) -> Result<SocketAddr, DevnetError> {
    line.strip_prefix("ready ws://")
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
        .ok_or_else(|| DevnetError::BadReadyLine(line.to_string()))
}

/// The child leads a process group of its own, so that one signal reaches node and anything it
/// spawned (chopsticks runs the wasm executor in worker threads of the same process).
fn own_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
}

fn kill_group(child: &mut Child) {
    let Ok(pid) = i32::try_from(child.id()) else { return };
    // SAFETY: kill(2) with a negative pid signals the process group the child leads; it has no
    // memory-safety preconditions.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            // Reap stragglers of the group, if any.
            // SAFETY: as above.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait();
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

fn install_stop_handler() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_stop_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop_signal as *const () as libc::sighandler_t);
    }
}

fn rpc_call(addr: SocketAddr, method: &str, params: serde_json::Value) -> Result<serde_json::Value, DevnetError> {
    let io = |source| DevnetError::RpcIo { method: method.to_string(), source };
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(io)?;
    // HTTP/1.0: the server closes the connection after one unchunked response.
    let request = format!(
        "POST / HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let rpc_err = |detail: String| DevnetError::Rpc { method: method.to_string(), detail };
    let (_, payload) = text.split_once("\r\n\r\n").ok_or_else(|| rpc_err(format!("malformed response: {text}")))?;
    let mut v: serde_json::Value = serde_json::from_str(payload).map_err(|e| rpc_err(format!("{e}: {payload}")))?;
    if let Some(err) = v.get("error") {
        return Err(rpc_err(err.to_string()));
    }
    v.get_mut("result").map(serde_json::Value::take).ok_or_else(|| rpc_err(format!("no result: {payload}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        let a = parse_ready("ready ws://127.0.0.1:40123").unwrap();
        assert_eq!(a, "127.0.0.1:40123".parse().unwrap());
        assert!(matches!(parse_ready("ready http://x"), Err(DevnetError::BadReadyLine(_))));
        assert!(matches!(parse_ready("ready ws://127.0.0.1:notaport"), Err(DevnetError::BadReadyLine(_))));
    }

    #[test]
    fn missing_artifacts_are_a_typed_error() {
        let dir = std::env::temp_dir().join("covenant-devnet-missing-artifacts");
        match Artifacts::locate(&dir) {
            Err(DevnetError::NotSetUp { missing }) => assert!(missing.ends_with("runner/run.mjs")),
            other => panic!("expected NotSetUp, got {other:?}"),
        }
    }

    #[test]
    fn zero_block_time_is_refused() {
        let cfg = DevnetConfig { block_ms: 0, ..DevnetConfig::for_tests() };
        assert!(matches!(Devnet::start(&cfg), Err(DevnetError::BadBlockTime)));
    }
}
