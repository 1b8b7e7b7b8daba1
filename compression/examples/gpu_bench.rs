//! GPU benchmark of the codec on 1B-parameter LLaMA shapes (16 layers of hidden 2048, FFN 8192,
//! plus norms: the templar 1.2B model without embeddings), on CUDA:
//! - `encode`: error feedback + top-k + quantization + EF correction of every parameter, on the
//!   device (`DevicePlan::compress`), then the same followed by download and wire encoding;
//! - `aggregate20`: median-clipped mean of 20 peers whose compressed updates are on the device,
//!   then the same starting from host payloads (upload included).
//!
//! Prints one JSON object per measurement and a table. The plain-PyTorch version of the same
//! algorithm is `compression/benches/gpu_baseline.py`; `scripts/gpu-bench.sh` runs both in one go.
//!
//! Build: `cargo build --release -p compression --example gpu_bench`.

use std::time::Instant;

use compression::tensor_ops::{DeviceBatch, DevicePlan};
use compression::wire::{self, IndexCoding};
use compression::{Aggregation, Header, Manifest, ParamSpec, Payload, SparseParam};
use tch::{Device, Kind, Tensor};

fn manifest(layers: usize, hidden: usize, ffn: usize) -> Manifest {
    let mut params = Vec::new();
    let mut add = |name: String, shape: Vec<usize>| params.push(ParamSpec { name, shape });
    for l in 0..layers {
        for w in ["wq", "wk", "wv", "wo"] {
            add(format!("layers.{l}.attention.{w}.weight"), vec![hidden, hidden]);
        }
        add(format!("layers.{l}.feed_forward.w1.weight"), vec![ffn, hidden]);
        add(format!("layers.{l}.feed_forward.w2.weight"), vec![hidden, ffn]);
        add(format!("layers.{l}.feed_forward.w3.weight"), vec![ffn, hidden]);
        add(format!("layers.{l}.attention_norm.weight"), vec![hidden]);
        add(format!("layers.{l}.ffn_norm.weight"), vec![hidden]);
    }
    add("norm.weight".into(), vec![hidden]);
    Manifest::new(params).expect("valid manifest")
}

fn dims(spec: &ParamSpec) -> Vec<i64> {
    spec.shape.iter().map(|&d| d as i64).collect()
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Median wall time in milliseconds of `iters` runs of `f` (after one warm-up run).
fn time(device: Device, iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    sync(device);
    let mut ms: Vec<f64> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            sync(device);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn report(name: &str, ms: f64, params: usize) {
    println!(
        "{{\"impl\": \"rust\", \"bench\": \"{name}\", \"ms\": {ms:.3}, \"params\": {params}, \"gparams_per_s\": {:.2}}}",
        params as f64 / ms / 1e6
    );
}

fn main() {
    // See neuron/src/cuda.rs: libtorch_cuda.so must be loaded by hand for CUDA to be visible.
    // SAFETY: dlopen with a valid NUL-terminated name has no preconditions.
    unsafe { libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    let device = Device::cuda_if_available();
    let small = std::env::args().any(|a| a == "--small");
    let (layers, hidden, ffn, iters) = if small { (2, 256, 512, 3) } else { (16, 2048, 8192, 10) };
    let peers = 20;
    let m = manifest(layers, hidden, ffn);
    let numel = m.numel();
    eprintln!("device {device:?}, {} parameters in {} tensors, {peers} peers", numel, m.len());

    tch::manual_seed(0);
    let opts = (Kind::Float, device);
    let deltas: Vec<Tensor> = m.params().iter().map(|p| Tensor::randn(dims(p), opts) * 1e-3).collect();
    let delta_refs: Vec<&Tensor> = deltas.iter().collect();
    let mut efs: Vec<Tensor> = m.params().iter().map(|p| Tensor::randn(dims(p), opts) * 1e-3).collect();
    let plan = DevicePlan::new(m.geometry(), device).unwrap();

    let _no_grad = tch::no_grad_guard();
    let encode_ms = time(device, iters, || {
        std::hint::black_box(plan.compress(&delta_refs, &mut efs, 0.95).unwrap());
    });
    report("encode (device)", encode_ms, numel);

    let header = Header { netuid: 3, uid: 0, window: 1, hotkey: [0; 32], model: m.fingerprint() };
    let mut bytes = Vec::new();
    let encode_wire_ms = time(device, iters.min(5), || {
        let batch = plan.compress(&delta_refs, &mut efs, 0.95).unwrap();
        let params = plan.download(&batch).unwrap();
        bytes = wire::encode(&Payload { header, params }, &m, IndexCoding::Packed12).unwrap();
    });
    report("encode + download + wire (packed12)", encode_wire_ms, numel);
    eprintln!("payload {} bytes, {:.2} bits per kept value", bytes.len(), bytes.len() as f64 * 8.0 / m.kept() as f64);

    // 20 peers: each compresses its own random update.
    let mut host_peers: Vec<Vec<SparseParam>> = Vec::with_capacity(peers);
    let mut device_peers: Vec<DeviceBatch> = Vec::with_capacity(peers);
    for _ in 0..peers {
        let d: Vec<Tensor> = m.params().iter().map(|p| Tensor::randn(dims(p), opts) * 1e-3).collect();
        let batch = plan.compress(&d.iter().collect::<Vec<_>>(), &mut efs, 0.95).unwrap();
        host_peers.push(plan.download(&batch).unwrap());
        device_peers.push(batch);
    }
    drop(deltas);
    let refs: Vec<&DeviceBatch> = device_peers.iter().collect();
    let aggregate_ms = time(device, iters, || {
        std::hint::black_box(plan.aggregate(&refs, Aggregation::MedianClippedMean).unwrap());
    });
    report("aggregate20 (device-resident peers)", aggregate_ms, numel);
    drop(refs);
    drop(device_peers);
    let aggregate_upload_ms = time(device, iters.min(5), || {
        let up: Vec<DeviceBatch> =
            host_peers.iter().map(|p| plan.upload(&p.iter().collect::<Vec<_>>()).unwrap()).collect();
        let refs: Vec<&DeviceBatch> = up.iter().collect();
        std::hint::black_box(plan.aggregate(&refs, Aggregation::MedianClippedMean).unwrap());
    });
    report("aggregate20 + upload from host", aggregate_upload_ms, numel);
    let decode_wire_ms = time(Device::Cpu, iters.min(5), || {
        std::hint::black_box(wire::decode(&bytes, &m).unwrap());
    });
    report("wire decode (CPU, one payload)", decode_wire_ms, numel);
}
