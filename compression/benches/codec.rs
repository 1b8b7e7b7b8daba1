//! CPU benchmarks of the codec on a ~100M-parameter LLaMA-shaped model (8 layers of the 150M
//! preset: hidden 1024, FFN 2688, plus norms), one thread:
//! - `encode`: error feedback + top-k + quantization + wire encoding of every parameter;
//! - `decode`: wire decoding + dense transmitted update of every parameter;
//! - `aggregate20`: median-clipped mean of 20 peers' payloads into dense updates.
//!
//! Each has a `torch-ops` twin: the same algorithm as libtorch operations (`Backend::Torch`) in
//! the same run, the baseline the native kernels are compared with.
//!
//! Run: `make bench` (or `OMP_NUM_THREADS=1 cargo bench -p compression --bench codec`).

use compression::wire::{self, IndexCoding};
use compression::{native, Aggregation, Backend, Codec, Header, Manifest, ParamSpec, Payload, SparseParam};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tch::{Device, Kind, Tensor};

const HIDDEN: usize = 1024;
const FFN: usize = 2688;
const LAYERS: usize = 8;
const PEERS: usize = 20;

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
    Manifest::new(params).unwrap()
}

fn randn(shape: &[usize], scale: f64) -> Tensor {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::randn(dims.as_slice(), (Kind::Float, Device::Cpu)) * scale
}

struct Model {
    manifest: Manifest,
    deltas: Vec<Tensor>,
    efs: Vec<Tensor>,
}

fn model(seed: i64) -> Model {
    tch::manual_seed(seed);
    let manifest = manifest();
    let deltas = manifest.params().iter().map(|p| randn(&p.shape, 1e-3)).collect();
    let efs = manifest.params().iter().map(|p| randn(&p.shape, 1e-3)).collect();
    Model { manifest, deltas, efs }
}

fn compress_all(codec: &Codec, m: &mut Model) -> Vec<SparseParam> {
    m.deltas.iter().zip(m.efs.iter_mut()).map(|(d, e)| codec.compress(d, e).unwrap()).collect()
}

fn payload(m: &Model, params: Vec<SparseParam>, uid: u16) -> Payload {
    Payload { header: Header { netuid: 3, uid, window: 1, hotkey: [0; 32], model: m.manifest.fingerprint() }, params }
}

fn shape(spec: &ParamSpec) -> Vec<i64> {
    spec.shape.iter().map(|&d| d as i64).collect()
}

fn bench(c: &mut Criterion) {
    tch::set_num_threads(1);
    let native = Codec::default();
    let torch = Codec { backend: Backend::Torch, ..Codec::default() };
    let mut m = model(1);
    let numel = m.manifest.numel() as u64;

    // Sizes on the wire, reported once.
    let params = compress_all(&native, &mut m);
    let p = payload(&m, params, 0);
    for coding in [IndexCoding::Packed12, IndexCoding::Entropy] {
        let bytes = wire::encode(&p, &m.manifest, coding).unwrap();
        eprintln!(
            "{coding:?}: {numel} parameters, {} kept, {} bytes = {:.3} bits per kept value (header included), {:.1}x vs fp32",
            m.manifest.kept(),
            bytes.len(),
            bytes.len() as f64 * 8.0 / m.manifest.kept() as f64,
            numel as f64 * 4.0 / bytes.len() as f64
        );
    }

    let encode = |codec: &Codec, m: &mut Model, coding| {
        let params = compress_all(codec, m);
        wire::encode(&payload(m, params, 0), &m.manifest, coding).unwrap()
    };
    let mut g = c.benchmark_group("encode");
    g.sample_size(10).throughput(Throughput::Elements(numel));
    g.bench_function("native", |b| b.iter(|| encode(&native, &mut m, IndexCoding::Packed12)));
    g.bench_function("native-entropy", |b| b.iter(|| encode(&native, &mut m, IndexCoding::Entropy)));
    g.bench_function("torch-ops", |b| b.iter(|| encode(&torch, &mut m, IndexCoding::Packed12)));
    g.finish();

    let packed = wire::encode(&p, &m.manifest, IndexCoding::Packed12).unwrap();
    let entropy = wire::encode(&p, &m.manifest, IndexCoding::Entropy).unwrap();
    let mut g = c.benchmark_group("decode");
    g.sample_size(10).throughput(Throughput::Elements(numel));
    let decode_dense = |codec: &Codec, bytes: &[u8]| {
        let d = wire::decode(bytes, &m.manifest).unwrap();
        for (s, spec) in d.params.iter().zip(m.manifest.params()) {
            let _ = std::hint::black_box(codec.decompress(s, &shape(spec), Device::Cpu).unwrap());
        }
    };
    g.bench_function("native", |b| b.iter(|| decode_dense(&native, &packed)));
    g.bench_function("native-entropy", |b| b.iter(|| decode_dense(&native, &entropy)));
    g.bench_function("torch-ops", |b| b.iter(|| decode_dense(&torch, &packed)));
    g.bench_function("wire-only-packed12", |b| b.iter(|| wire::decode(&packed, &m.manifest).unwrap()));
    g.bench_function("wire-only-entropy", |b| b.iter(|| wire::decode(&entropy, &m.manifest).unwrap()));
    g.finish();

    // 20 peers with different data (and so different selections).
    let peers: Vec<Payload> = (0..PEERS)
        .map(|i| {
            let mut peer = model(100 + i as i64);
            let params = compress_all(&native, &mut peer);
            payload(&peer, params, i as u16)
        })
        .collect();
    drop(m);
    let manifest = manifest();
    let aggregate = |codec: &Codec| {
        for (i, spec) in manifest.params().iter().enumerate() {
            let refs: Vec<&SparseParam> = peers.iter().map(|p| &p.params[i]).collect();
            let _ = std::hint::black_box(
                codec.aggregate(&refs, Aggregation::MedianClippedMean, &shape(spec), Device::Cpu).unwrap(),
            );
        }
    };
    let mut g = c.benchmark_group("aggregate20");
    g.sample_size(10).throughput(Throughput::Elements(numel));
    g.bench_function("native", |b| b.iter(|| aggregate(&native)));
    g.bench_function("torch-ops", |b| b.iter(|| aggregate(&torch)));
    // The native kernel alone, into preallocated outputs (no tensor allocation).
    let mut outs: Vec<Vec<f32>> = manifest.params().iter().map(|p| vec![0f32; p.shape.iter().product()]).collect();
    g.bench_function("native-kernel", |b| {
        b.iter_batched(
            || (),
            |()| {
                for (i, out) in outs.iter_mut().enumerate() {
                    let refs: Vec<&SparseParam> = peers.iter().map(|p| &p.params[i]).collect();
                    native::aggregate(&refs, Aggregation::MedianClippedMean, out);
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
