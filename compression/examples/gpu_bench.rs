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

/// The CUDA top-k kernel against its definition on 4,096 chunks of 4,096, random magnitudes and
/// magnitudes with many ties: a stable descending sort, which keeps the lower index among
/// equals as the kernel does. Launched from a fresh thread. Prints one JSON line, then the
/// kernel's time.
fn check_chunk_topk(device: Device) {
    let reference = |m: &Tensor| m.sort_stable(true, -1, true).1.narrow(-1, 0, 64).sort(-1, false).0;
    let random = Tensor::rand([4096, 4096], (Kind::Float, device));
    let ties = Tensor::randint(8, [4096, 4096], (Kind::Float, device));
    let mut mismatched = Vec::new();
    for (name, m) in [("random", &random), ("ties", &ties)] {
        // From a thread that has made no CUDA call yet, as a tokio worker might be.
        let input = m.shallow_clone();
        let selected =
            std::thread::spawn(move || compression::cuda_kernels::chunk_topk(&input, 64)).join().expect("thread");
        match selected.expect("chunk_topk") {
            Some(got) => {
                let rows = got.ne_tensor(&reference(m)).any_dim(-1, false).sum(Kind::Int64).int64_value(&[]);
                mismatched.push(format!("\"{name}\": {rows}"));
            }
            None => mismatched.push(format!("\"{name}\": \"kernel unavailable\"")),
        }
    }
    println!("{{\"check\": \"chunk_topk rows differing from the reference\", {}}}", mismatched.join(", "));
    let t = time(device, 10, || {
        let _ = std::hint::black_box(compression::cuda_kernels::chunk_topk(&random, 64).unwrap());
    });
    report("check: chunk_topk kernel, 4096 chunks of 4096", t, 4096 * 4096);
}

/// The CUDA error-feedback kernel against ATen's `mul_`, `add_` and chunked `abs` on one
/// (8192, 2048) parameter cut in 64×64 chunks: the number of elements that differ in `e` and
/// in the chunk buffer (bit for bit). Prints one JSON line.
fn check_ef_update(device: Device) {
    use compression::cuda_kernels::{ef_update, ChunkLayout};
    let opts = (Kind::Float, device);
    let (r, c, h, w) = (8192i64, 2048i64, 64i64, 64i64);
    let e = Tensor::randn([r, c], opts);
    let d = Tensor::randn([r, c], opts) * 1e-3;
    let mut expected = e.copy();
    let _ = expected.f_mul_scalar_(0.95).unwrap();
    let _ = expected.f_add_(&d).unwrap();
    let expected_magnitude =
        expected.view([r / h, h, c / w, w]).permute([0, 2, 1, 3]).abs().reshape([r * c / (h * w), h * w]);
    let mut got = e.copy();
    let magnitude = Tensor::empty([r * c / (h * w), h * w], opts);
    let layout = ChunkLayout { cols: c, h, w, first_chunk: 0 };
    let line = match ef_update(&mut got, &d, &magnitude, layout, 0.95).expect("ef_update") {
        true => format!(
            "\"e\": {}, \"magnitude\": {}",
            got.ne_tensor(&expected).sum(Kind::Int64).int64_value(&[]),
            magnitude.ne_tensor(&expected_magnitude).sum(Kind::Int64).int64_value(&[])
        ),
        false => "\"e\": \"kernel unavailable\"".into(),
    };
    println!("{{\"check\": \"ef_update elements differing from ATen\", {line}}}");
}

/// The CUDA aggregation kernel against ATen's scatter of (value, 1) pairs on one (8192, 2048)
/// parameter in 64×64 chunks and 20 peers of 64 random positions per chunk: the largest
/// difference relative to the largest value (float sums in another order). Prints one JSON line.
fn check_chunk_mean(device: Device) {
    let (rows, peers, k, cols) = (4096i64, 20i64, 64i64, 2048i64);
    let int64 = (Kind::Int64, device);
    let local = Tensor::randint(4096, [peers, rows, k], int64);
    let values = Tensor::randn([peers, rows, k], (Kind::Float, device));
    let chunk = Tensor::arange(rows, int64);
    let row_out = chunk.floor_divide_scalar(cols / 64) * (64 * cols) + chunk.remainder(cols / 64) * 64;
    let row_cols = Tensor::full([rows], cols, int64);
    let at = (local.floor_divide_scalar(64) * cols + local.remainder(64) + row_out.view([1, rows, 1])).flatten(0, -1);
    let pairs = Tensor::stack(&[values.flatten(0, -1), Tensor::ones([peers * rows * k], (Kind::Float, device))], 1);
    let acc = Tensor::zeros([rows * 4096, 2], (Kind::Float, device)).index_add(0, &at, &pairs);
    let expected = acc.select(1, 0) / acc.select(1, 1).clamp_min(1.0);
    let got = compression::cuda_kernels::chunk_mean(
        &local.to_kind(Kind::Int16),
        &values,
        &row_out,
        &row_cols,
        rows * 4096,
        64,
        64,
    )
    .expect("chunk_mean");
    let line = match got {
        Some(dense) => {
            let diff = (&dense - &expected).abs().max().double_value(&[]);
            format!("\"max_relative_difference\": {:.2e}", diff / expected.abs().max().double_value(&[]))
        }
        None => "\"max_relative_difference\": \"kernel unavailable\"".into(),
    };
    println!("{{\"check\": \"chunk_mean against ATen's scatter\", {line}}}");
}

/// The main kernels of encoding and aggregation timed alone on the benchmark's sizes (all 2-D
/// parameters use 64×64 chunks with k = 64), to see where the time of the whole goes.
fn stages(device: Device, plan: &DevicePlan, deltas: &[&Tensor], efs: &mut [Tensor], iters: usize) {
    let numel: i64 = efs.iter().map(|e| e.numel() as i64).sum();
    // How long the host takes to issue a whole encode (the device may still be working after).
    let mut issue: Vec<f64> = (0..iters)
        .map(|_| {
            sync(device);
            let t = Instant::now();
            let batch = plan.compress(deltas, efs, 0.95).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            sync(device);
            drop(batch);
            ms
        })
        .collect();
    issue.sort_by(f64::total_cmp);
    report("stage: encode, host time to issue every kernel", issue[issue.len() / 2], numel as usize);
    if let Some(p) = efs.iter().position(|e| e.size() == [8192, 2048]) {
        use compression::cuda_kernels::{ef_update, ChunkLayout};
        let magnitude = Tensor::empty([4096, 4096], (Kind::Float, device));
        let layout = ChunkLayout { cols: 2048, h: 64, w: 64, first_chunk: 0 };
        let d = deltas[p].shallow_clone();
        let t = time(device, iters, || {
            assert!(ef_update(&mut efs[p], &d, &magnitude, layout, 0.95).unwrap());
        });
        report("stage: ef_update kernel, one 8192x2048 parameter", t, 8192 * 2048);
    }
    let rows = numel / 4096;
    let t = time(device, iters, || {
        for (e, d) in efs.iter_mut().zip(deltas) {
            let _ = e.f_mul_scalar_(0.95).unwrap();
            let _ = e.f_add_(d).unwrap();
        }
    });
    report("stage: error feedback (mul_, add_ per parameter)", t, numel as usize);
    let magnitude = Tensor::empty([rows, 4096], (Kind::Float, device));
    let t = time(device, iters, || {
        let mut at = 0;
        for e in efs.iter() {
            let n = (e.numel() as i64).min(rows * 4096 - at);
            let _ = e.view([-1]).narrow(0, 0, n).abs_out(&magnitude.view([-1]).narrow(0, at, n));
            at += n;
        }
    });
    report("stage: |e| into the chunk buffer", t, numel as usize);
    let t = time(device, iters, || {
        let _ = std::hint::black_box(magnitude.topk(64, -1, true, false));
    });
    report("stage: top-64 of 4096 per row", t, numel as usize);
    let local = magnitude.topk(64, -1, true, false).1;
    let t = time(device, iters, || {
        let _ = std::hint::black_box(local.sort(-1, false));
    });
    report("stage: sort of the kept indices", t, numel as usize);
    let t = time(device, iters, || {
        let _ = std::hint::black_box(compression::cuda_kernels::chunk_topk(&magnitude, 64).unwrap());
    });
    report("stage: top-64 of 4096 per row and sort, one kernel (cuda_kernels)", t, numel as usize);
    // Quantization statistics: 4 bins per parameter, summed over every kept value.
    let kept = rows * 64;
    let members = efs.len() as i64;
    let bin = Tensor::randint(members * 4, [kept], (Kind::Int64, device));
    let centred = Tensor::randn([kept], (Kind::Double, device));
    let t = time(device, iters, || {
        let s = Tensor::zeros([members * 4], (Kind::Double, device)).index_add(0, &bin, &centred);
        let _ = std::hint::black_box(s);
    });
    report("stage: index_add of every kept value into 4 bins per parameter (f64)", t, numel as usize);
    let per_param = kept / members;
    let offsets = Tensor::randint(2048, [per_param], (Kind::Int64, device));
    let t = time(device, iters, || {
        let taken: Vec<Tensor> = efs.iter().map(|e| e.view([-1]).take(&offsets)).collect();
        let _ = std::hint::black_box(Tensor::cat(&taken, 0));
    });
    report("stage: take of the kept values, per parameter", t, numel as usize);
    let minus = Tensor::randn([per_param], (Kind::Float, device));
    let t = time(device, iters, || {
        for e in efs.iter() {
            let _ = e.view([-1]).put_(&offsets, &minus, true);
        }
    });
    report("stage: put_ of the EF correction, per parameter", t, numel as usize);
    // Aggregation: 20 peers' kept offsets (int64) scattered into the dense buffer.
    let peers = 20;
    let at = Tensor::randint(numel, [peers * rows * 64], (Kind::Int64, device));
    let values = Tensor::randn([peers * rows * 64], (Kind::Float, device));
    let t = time(device, iters, || {
        let sum = Tensor::zeros([numel], (Kind::Float, device)).index_add(0, &at, &values);
        let _ = std::hint::black_box(sum);
    });
    report("stage: index_add of 20 peers' values (int64 offsets)", t, numel as usize);
    let at32 = at.to_kind(Kind::Int);
    let t = time(device, iters, || {
        let sum = Tensor::zeros([numel], (Kind::Float, device)).index_add(0, &at32, &values);
        let _ = std::hint::black_box(sum);
    });
    report("stage: index_add of 20 peers' values (int32 offsets)", t, numel as usize);
    let pairs = Tensor::stack(&[&values, &Tensor::ones_like(&values)], 1);
    let t = time(device, iters, || {
        let sum = Tensor::zeros([numel, 2], (Kind::Float, device)).index_add(0, &at32, &pairs);
        let _ = std::hint::black_box(sum);
    });
    report("stage: index_add of (value, 1) pairs (int32 offsets)", t, numel as usize);
    let local16 = Tensor::randint(4096, [peers, rows, 64], (Kind::Int64, device));
    let t = time(device, iters, || {
        let cols = Tensor::full([rows], 2048, (Kind::Int64, device));
        let origin = Tensor::zeros([rows], (Kind::Int64, device));
        let o = local16
            .f_floor_divide_scalar(64)
            .and_then(|t| t.f_mul(&cols.unsqueeze(1)))
            .and_then(|t| t.f_add(&local16.remainder(64)))
            .and_then(|t| t.f_add(&origin.unsqueeze(-1)))
            .unwrap();
        let _ = std::hint::black_box(o);
    });
    report("stage: offsets of 20 peers' indices (int64)", t, numel as usize);
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
    check_chunk_topk(device);
    check_ef_update(device);
    check_chunk_mean(device);
    if std::env::args().any(|a| a == "--stages") {
        stages(device, &plan, &delta_refs, &mut efs, iters);
        return;
    }
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
