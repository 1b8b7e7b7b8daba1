//! Prometheus metrics of a node, served as text on `GET /metrics`.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use prometheus::{Encoder, Gauge, GaugeVec, IntCounter, IntGauge, Opts, Registry, TextEncoder};

/// Every metric a miner or validator reports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// The node's uid on the subnet, once known (−1 before). The `uid` label is only there when
    /// the uid is known at start; this gauge always is, for joins in dashboards.
    pub uid: IntGauge,
    pub window: IntGauge,
    pub global_step: IntGauge,
    pub loss: Gauge,
    pub tokens_per_s: Gauge,
    pub upload_bytes: IntCounter,
    pub upload_seconds: Gauge,
    pub download_bytes: IntCounter,
    pub download_seconds: Gauge,
    pub window_failures: IntCounter,
    pub accepted: IntGauge,
    pub rejected: IntGauge,
    pub eval_loss: Gauge,
    pub score: GaugeVec,
    pub weight: GaugeVec,
}

impl Metrics {
    /// Metrics labelled with the node's `role` (`miner` or `validator`) and `uid`.
    pub fn new(role: &str, uid: Option<u16>) -> Self {
        let mut labels = std::collections::HashMap::new();
        labels.insert("role".to_string(), role.to_string());
        if let Some(uid) = uid {
            labels.insert("uid".to_string(), uid.to_string());
        }
        let registry = Registry::new_custom(Some("covenant".into()), Some(labels)).expect("valid registry");
        macro_rules! register {
            ($metric:expr) => {{
                let m = $metric.expect("valid metric");
                registry.register(Box::new(m.clone())).expect("unique metric");
                m
            }};
        }
        let uid_gauge = register!(IntGauge::new("uid", "The node's uid on the subnet (-1 before it is known)"));
        uid_gauge.set(uid.map_or(-1, i64::from));
        Self {
            uid: uid_gauge,
            window: register!(IntGauge::new("window", "Current training window")),
            global_step: register!(IntGauge::new("global_step", "Outer steps applied")),
            loss: register!(Gauge::new("train_loss", "Mean inner-loop loss of the last window")),
            tokens_per_s: register!(Gauge::new("tokens_per_second", "Training throughput of the last window")),
            upload_bytes: register!(IntCounter::new("upload_bytes_total", "Bytes uploaded")),
            upload_seconds: register!(Gauge::new("upload_seconds", "Duration of the last upload and commit")),
            download_bytes: register!(IntCounter::new("download_bytes_total", "Bytes downloaded by gathers")),
            download_seconds: register!(Gauge::new("gather_seconds", "Duration of the last gather")),
            window_failures: register!(IntCounter::new("window_failures_total", "Windows that failed")),
            accepted: register!(IntGauge::new("gather_accepted", "Payloads accepted in the last gather")),
            rejected: register!(IntGauge::new("gather_rejected", "Peers rejected in the last gather")),
            eval_loss: register!(Gauge::new("eval_loss", "Validator's loss on random data after the outer step")),
            score: register!(GaugeVec::new(Opts::new("score", "Final Gauntlet score per uid"), &["peer"])),
            weight: register!(GaugeVec::new(Opts::new("weight", "Weight set per uid"), &["peer"])),
            registry,
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// Serves `GET /metrics` on `addr` until the task is dropped; returns the bound address.
    pub async fn serve(&self, addr: SocketAddr) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics on {addr}"))?;
        let bound = listener.local_addr()?;
        let metrics = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let metrics = metrics.clone();
                        async move {
                            let response = if req.uri().path() == "/metrics" {
                                Response::builder()
                                    .header("content-type", "text/plain; version=0.0.4")
                                    .body(Full::new(Bytes::from(metrics.render())))
                            } else {
                                Response::builder().status(404).body(Full::new(Bytes::from_static(b"not found\n")))
                            };
                            Ok::<_, hyper::http::Error>(response.expect("valid response"))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        tracing::info!("metrics on http://{bound}/metrics");
        Ok((bound, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_prometheus_text() {
        let m = Metrics::new("miner", Some(3));
        m.window.set(42);
        m.score.with_label_values(&["7"]).set(0.5);
        let (addr, _task) = m.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut body = String::new();
        stream.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        // The exposition orders constant labels as it likes: compare label sets.
        let sample = |name: &str, labels: &[&str], value: &str| {
            body.lines().any(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('{'))
                    .and_then(|rest| rest.split_once("} "))
                    .is_some_and(|(found, v)| {
                        let mut found: Vec<&str> = found.split(',').collect();
                        found.sort_unstable();
                        let mut want = labels.to_vec();
                        want.sort_unstable();
                        found == want && v == value
                    })
            })
        };
        assert!(sample("covenant_window", &["role=\"miner\"", "uid=\"3\""], "42"), "{body}");
        assert!(sample("covenant_score", &["peer=\"7\"", "role=\"miner\"", "uid=\"3\""], "0.5"), "{body}");
        assert!(!sample("covenant_window", &["role=\"miner\"", "uid=\"3\""], "41"));
    }
}
