//! Property tests: codec invariants on arbitrary shapes and values, wire round trips, and a decoder
//! that survives arbitrary corruption of valid payloads.

use compression::aggregate::Aggregation;
use compression::geometry::ChunkGeometry;
use compression::wire::{self, IndexCoding};
use compression::{native, Backend, Codec, Header, Manifest, ParamSpec, Payload, SparseParam};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Tensor};

/// Shapes covering 1-D, 2-D and higher rank, dimensions that are and are not multiples of 64,
/// primes (chunk edge 1) and odd chunk lengths (k = totalk − 1).
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        (1usize..300).prop_map(|n| vec![n]),
        (1usize..160, 1usize..200).prop_map(|(r, c)| vec![r, c]),
        prop::sample::select(vec![vec![64, 128], vec![128, 64], vec![35, 70], vec![67, 64], vec![96, 96], vec![1, 1]]),
        (1usize..6, 1usize..6, 1usize..9).prop_map(|(a, b, c)| vec![a, b, c]),
    ]
}

/// Values with a random per-row scale, so that quantization bins fill unevenly.
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| (rng.gen::<f32>() - 0.5) * scale * if rng.gen_bool(0.1) { 20.0 } else { 1.0 }).collect()
}

fn compress_native(
    shape: &[usize],
    seed: u64,
    decay: f32,
) -> (ChunkGeometry, Vec<f32>, Vec<f32>, Vec<f32>, SparseParam) {
    let g = ChunkGeometry::standard(shape).unwrap();
    let delta = values(g.numel(), seed, 1e-3);
    let ef_in = values(g.numel(), seed ^ 0xEF, 1e-2);
    let mut ef = ef_in.clone();
    let sparse = native::compress(&delta, &mut ef, g, decay);
    (g, delta, ef_in, ef, sparse)
}

fn single_manifest(shape: &[usize]) -> Manifest {
    Manifest::new(vec![ParamSpec { name: "p".into(), shape: shape.to_vec() }]).unwrap()
}

fn payload_for(manifest: &Manifest, params: Vec<SparseParam>) -> Payload {
    Payload { header: Header { netuid: 3, uid: 7, window: 11, hotkey: [5; 32], model: manifest.fingerprint() }, params }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn compression_invariants(shape in shape(), seed in any::<u64>(), decay in 0.0f32..1.0) {
        let (g, delta, ef_in, ef, sparse) = compress_native(&shape, seed, decay);
        // Exactly k kept per chunk, increasing in-range indices, codes in 0..=3.
        sparse.validate().unwrap();
        prop_assert_eq!(sparse.indices.len(), g.num_chunks() * g.k);
        prop_assert!(sparse.codes.iter().all(|&c| c <= 3));
        // EF conservation: β·e + Δ == transmitted + e_new (exact where nothing was sent).
        let mut sent = vec![0f32; g.numel()];
        native::decompress(&sparse, &mut sent);
        for i in 0..g.numel() {
            let mid = ef_in[i] * decay + delta[i];
            if sent[i] == 0.0 {
                prop_assert_eq!(ef[i].to_bits(), mid.to_bits());
            } else {
                let ulp = f32::EPSILON * mid.abs().max(sent[i].abs()).max(ef[i].abs());
                prop_assert!((mid - (sent[i] + ef[i])).abs() <= ulp, "element {}", i);
            }
        }
        // The kept values are the largest of each chunk.
        let mid: Vec<f32> = (0..g.numel()).map(|i| ef_in[i] * decay + delta[i]).collect();
        for (chunk, idx) in sparse.indices.chunks(g.k).enumerate() {
            let origin = g.chunk_origin(chunk);
            let kept_min = idx.iter().map(|&l| mid[g.offset(origin, l as usize)].abs()).fold(f32::INFINITY, f32::min);
            for l in 0..g.totalk() {
                if !idx.contains(&(l as u16)) {
                    prop_assert!(mid[g.offset(origin, l)].abs() <= kept_min);
                }
            }
        }
    }

    #[test]
    fn torch_ops_agree_with_native_kernels(shape in shape(), seed in any::<u64>()) {
        let (g, delta, ef_in, ef_native, native_sparse) = compress_native(&shape, seed, 0.95);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let torch = Codec { backend: Backend::Torch, ..Codec::default() };
        let mut ef = Tensor::from_slice(&ef_in).view(dims.as_slice());
        let sparse = torch.compress(&Tensor::from_slice(&delta).view(dims.as_slice()), &mut ef).unwrap();
        prop_assert_eq!(&sparse.indices, &native_sparse.indices);
        let scale = native_sparse.quant.scale;
        // Codes agree except for values within float noise of a bin edge.
        let mid: Vec<f32> = (0..g.numel()).map(|i| ef_in[i] * 0.95 + delta[i]).collect();
        for ((o, &a), &b) in native_sparse.offsets().zip(&native_sparse.codes).zip(&sparse.codes) {
            let x = (mid[o] - native_sparse.quant.shift) / scale + 2.0;
            prop_assert!(a == b || (x - x.floor() - 0.5).abs() < 1e-4, "code {} vs {} at {}", a, b, x);
        }
        let ef_torch = Vec::<f32>::try_from(ef.flatten(0, -1)).unwrap();
        let tol = 1e-5 * ef_native.iter().fold(0f32, |m, v| m.max(v.abs()));
        prop_assert!(ef_torch.iter().zip(&ef_native).all(|(a, b)| (a - b).abs() <= tol));
    }

    #[test]
    fn aggregation_backends_agree(shape in shape(), seed in any::<u64>(), peers in 1usize..5, mean in any::<bool>()) {
        let sparse: Vec<SparseParam> = (0..peers).map(|p| compress_native(&shape, seed.wrapping_add(p as u64), 0.95).4).collect();
        let refs: Vec<&SparseParam> = sparse.iter().collect();
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mode = if mean { Aggregation::Mean } else { Aggregation::MedianClippedMean };
        let a = Codec::default().aggregate(&refs, mode, &dims, Device::Cpu).unwrap();
        let b = Codec { backend: Backend::Torch, ..Codec::default() }.aggregate(&refs, mode, &dims, Device::Cpu).unwrap();
        let (a, b) = (Vec::<f32>::try_from(a.flatten(0, -1)).unwrap(), Vec::<f32>::try_from(b.flatten(0, -1)).unwrap());
        let tol = 1e-5 * a.iter().fold(0f32, |m, v| m.max(v.abs()));
        prop_assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol));
        // Every element is a mean of sent values: never larger than the largest sent magnitude.
        let bound = sparse.iter().flat_map(|s| s.values()).fold(0f32, |m, v| m.max(v.abs()));
        prop_assert!(a.iter().all(|v| v.abs() <= bound * (1.0 + 1e-6)));
    }

    #[test]
    fn wire_round_trip(shape in shape(), seed in any::<u64>(), entropy in any::<bool>()) {
        let manifest = single_manifest(&shape);
        let payload = payload_for(&manifest, vec![compress_native(&shape, seed, 0.95).4]);
        let coding = if entropy { IndexCoding::Entropy } else { IndexCoding::Packed12 };
        let bytes = wire::encode(&payload, &manifest, coding).unwrap();
        prop_assert!(bytes.len() <= wire::max_payload_len(&manifest));
        prop_assert_eq!(wire::decode(&bytes, &manifest).unwrap(), payload);
        prop_assert_eq!(wire::read_layout(&bytes).unwrap().manifest().unwrap(), manifest);
    }

    #[test]
    fn decoder_survives_corruption(
        shape in shape(),
        seed in any::<u64>(),
        entropy in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    ) {
        let manifest = single_manifest(&shape);
        let payload = payload_for(&manifest, vec![compress_native(&shape, seed, 0.95).4]);
        let coding = if entropy { IndexCoding::Entropy } else { IndexCoding::Packed12 };
        let mut bytes = wire::encode(&payload, &manifest, coding).unwrap();
        for (at, value, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] ^= value | 1,
                1 => bytes.truncate(i),
                2 => bytes.insert(i, value),
                _ => { bytes.remove(i); }
            }
        }
        // Never a panic; whatever decodes satisfies every invariant of a payload.
        if let Ok(decoded) = wire::decode(&bytes, &manifest) {
            for p in &decoded.params {
                prop_assert!(p.validate().is_ok());
                prop_assert!(p.quant.validate().is_ok());
            }
        }
        let _ = wire::read_layout(&bytes).and_then(|l| l.manifest());
    }
}

#[test]
fn every_malformation_has_its_own_error() {
    use compression::wire::DecodeError as E;
    let shape = [128usize, 256];
    let manifest = single_manifest(&shape);
    let payload = payload_for(&manifest, vec![compress_native(&shape, 1, 0.95).4]);
    let good = wire::encode(&payload, &manifest, IndexCoding::Packed12).unwrap();
    let record = wire::HEADER_LEN; // the only record starts right after the header
    let name_len = 1;
    let quant_at = record + 2 + name_len + 4 + 8 + 6; // after name, codings, dims, chunk
    let data = good.len() - 64 - wire::bits::packed2_len(64 * 8) - wire::bits::packed12_len(64 * 8);

    let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        wire::decode(&b, &manifest).unwrap_err()
    };
    assert!(matches!(mutate(&|b| b[0] = b'X'), E::BadMagic(_)));
    assert!(matches!(mutate(&|b| b[8] = 2), E::UnsupportedVersion(2)));
    assert!(matches!(mutate(&|b| b[10] = 1), E::UnsupportedFlags(1)));
    assert!(matches!(mutate(&|b| b[60] ^= 1), E::ModelMismatch { .. }));
    assert!(matches!(mutate(&|b| b.truncate(100)), E::Truncated(_)));
    // A packed12 payload is already the largest the model allows: one more byte is over the limit.
    assert!(matches!(mutate(&|b| b.insert(data, 0)), E::TooLarge { .. }));
    let mut rice = wire::encode(&payload, &manifest, IndexCoding::Entropy).unwrap();
    let end = rice.len() - 64;
    rice.insert(end, 0);
    assert!(matches!(wire::decode(&rice, &manifest), Err(E::TrailingBytes(1))));
    rice.remove(end);
    rice[end - 200] ^= 0x5A; // inside the Rice stream
    assert!(matches!(wire::decode(&rice, &manifest), Err(E::IndexStream { .. } | E::NonCanonicalPadding { .. })));
    assert!(matches!(mutate(&|b| b[record + 2] = b'q'), E::UnexpectedParameter { .. }));
    assert!(matches!(mutate(&|b| b[record + 2 + name_len + 4] = 0x81), E::ShapeMismatch { .. }));
    assert!(matches!(mutate(&|b| b[record + 2 + name_len + 1] = 9), E::UnknownCoding { .. }));
    assert!(matches!(
        mutate(&|b| b[quant_at + 4..quant_at + 8].copy_from_slice(&f32::NAN.to_le_bytes())),
        E::Quant { .. }
    ));
    assert!(matches!(
        mutate(&|b| b[quant_at..quant_at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes())),
        E::Quant { .. }
    ));
    assert!(matches!(
        mutate(&|b| b[quant_at + 8..quant_at + 12].copy_from_slice(&f32::NAN.to_le_bytes())),
        E::Quant { .. }
    ));
    assert!(matches!(
        mutate(&|b| b[quant_at + 4..quant_at + 8].copy_from_slice(&1e9f32.to_le_bytes())),
        E::Quant { .. }
    ));
    // Index 4095 twice in the first chunk: [0xFF, 0xFF, 0xFF] packs (4095, 4095).
    assert!(matches!(mutate(&|b| b[data..data + 3].copy_from_slice(&[0xFF, 0xFF, 0xFF])), E::Indices { .. }));
    // Indices out of order.
    assert!(matches!(mutate(&|b| b[data..data + 3].copy_from_slice(&[0x10, 0x00, 0x00])), E::Indices { .. }));
    let big = vec![0u8; wire::max_payload_len(&manifest) + 1];
    assert!(matches!(wire::decode(&big, &manifest), Err(E::TooLarge { .. })));
    let other = single_manifest(&[256, 256]);
    assert!(matches!(wire::decode(&good, &other), Err(E::ModelMismatch { .. })));
}

/// Inputs the fuzzer once crashed on (`tests/fixtures/fuzz-regressions/`, one file per finding).
#[test]
fn fuzz_regressions() {
    let manifest = compression::fuzzing::manifest();
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/fuzz-regressions");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = wire::decode(&bytes, &manifest);
        if let Ok(m) = wire::read_layout(&bytes).and_then(|l| l.manifest()) {
            assert!(wire::max_payload_len(&m) > 0);
        }
        seen += 1;
    }
    assert!(seen > 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The batched device plan (torch ops, several parameters per group) against the native
    /// kernels parameter by parameter: same selections, same EF, same aggregates.
    #[test]
    fn batched_plan_matches_native_per_parameter(
        shapes in prop::collection::vec(shape(), 1..6),
        repeat in 1usize..3,
        seed in any::<u64>(),
        peers in 1usize..4,
    ) {
        use compression::tensor_ops::{DeviceBatch, DevicePlan};
        // Repeated shapes land in the same group.
        let shapes: Vec<Vec<usize>> = shapes.iter().cycle().take(shapes.len() * repeat).cloned().collect();
        let geometry: Vec<ChunkGeometry> = shapes.iter().map(|s| ChunkGeometry::standard(s).unwrap()).collect();
        let plan = DevicePlan::new(&geometry, Device::Cpu).unwrap();
        let mut batches = Vec::new();
        let mut natives: Vec<Vec<SparseParam>> = Vec::new();
        for peer in 0..peers {
            let mut deltas = Vec::new();
            let mut efs = Vec::new();
            let mut native_params = Vec::new();
            for (i, g) in geometry.iter().enumerate() {
                let s = seed.wrapping_add((peer * 1000 + i) as u64);
                let delta = values(g.numel(), s, 1e-3);
                let ef_in = values(g.numel(), s ^ 0xEF, 1e-2);
                let mut ef = ef_in.clone();
                native_params.push(native::compress(&delta, &mut ef, *g, 0.95));
                deltas.push(Tensor::from_slice(&delta));
                efs.push((Tensor::from_slice(&ef_in), ef));
            }
            let delta_refs: Vec<&Tensor> = deltas.iter().collect();
            let mut ef_tensors: Vec<Tensor> = efs.iter().map(|(t, _)| t.copy()).collect();
            let batch = plan.compress(&delta_refs, &mut ef_tensors, 0.95).unwrap();
            let params = plan.download(&batch).unwrap();
            for (i, (p, n)) in params.iter().zip(&native_params).enumerate() {
                prop_assert_eq!(&p.indices, &n.indices, "parameter {}", i);
                let ef_t = Vec::<f32>::try_from(&ef_tensors[i]).unwrap();
                let tol = 1e-5 * efs[i].1.iter().fold(0f32, |m, v| m.max(v.abs()));
                prop_assert!(ef_t.iter().zip(&efs[i].1).all(|(a, b)| (a - b).abs() <= tol), "EF of parameter {}", i);
            }
            // Upload of the host form gives the same batch back.
            let again = plan.download(&plan.upload(&params.iter().collect::<Vec<_>>()).unwrap()).unwrap();
            prop_assert_eq!(&again, &params);
            batches.push(batch);
            natives.push(native_params);
        }
        let refs: Vec<&DeviceBatch> = batches.iter().collect();
        for mode in [Aggregation::MedianClippedMean, Aggregation::Mean] {
            let dense = plan.aggregate(&refs, mode).unwrap();
            for (i, g) in geometry.iter().enumerate() {
                let peers_i: Vec<&SparseParam> = natives.iter().map(|n| &n[i]).collect();
                let mut expect = vec![0f32; g.numel()];
                native::aggregate(&peers_i, mode, &mut expect);
                let got = Vec::<f32>::try_from(&dense[i]).unwrap();
                let tol = 1e-5 * expect.iter().fold(0f32, |m, v| m.max(v.abs()));
                prop_assert!(got.iter().zip(&expect).all(|(a, b)| (a - b).abs() <= tol), "aggregate of parameter {}", i);
            }
        }
    }
}
