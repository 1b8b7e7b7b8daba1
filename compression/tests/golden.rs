//! The codec against vectors produced by templar's own code (`tests/fixtures/golden/README.txt`).
//!
//! Comparisons follow the fixture's README: exact where torch is deterministic (codes, index sets,
//! packing, the EF step, everything downstream of the reference's own quantization statistics) and
//! within `1e-5·max|golden|` where f32 reductions differ between implementations.

use std::collections::HashMap;

use compression::aggregate::{clip_factor, lower_median};
use compression::wire::bits;
use compression::{
    native, quant, Aggregation, Backend, Codec, Header, IndexCoding, Manifest, ParamSpec, Payload, QuantParams,
    SparseParam,
};
use tch::{Device, Tensor};

type Tensors = HashMap<String, Tensor>;

fn load(case: &str, file: &str) -> Tensors {
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures/golden")
    .join(case)
    .join(file);
    Tensor::read_safetensors(&path).expect("golden fixture").into_iter().collect()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1).contiguous()).unwrap()
}

fn get<'a>(t: &'a Tensors, name: &str) -> &'a Tensor {
    t.get(name).unwrap_or_else(|| panic!("fixture lacks {name}"))
}

fn scalar(t: &Tensors, name: &str) -> f32 {
    f32s(get(t, name))[0]
}

fn quant_of(t: &Tensors, p: &str) -> QuantParams {
    let lookup = f32s(get(t, &format!("{p}.lookup")));
    QuantParams {
        shift: scalar(t, &format!("{p}.shift")),
        scale: scalar(t, &format!("{p}.scale")),
        lookup: [lookup[0], lookup[1], lookup[2], lookup[3]],
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

fn assert_close(what: &str, ours: &[f32], golden: &[f32], rel_to_max: f32) {
    assert_eq!(ours.len(), golden.len(), "{what}: length");
    let tol = rel_to_max * max_abs(golden);
    let worst = ours.iter().zip(golden).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst <= tol, "{what}: max deviation {worst:e} > tolerance {tol:e}");
}

/// The golden top-k as per-chunk sorted (index, code) lists — the canonical order we transmit.
fn golden_sorted(t: &Tensors, p: &str) -> (Vec<u16>, Vec<u8>) {
    let idx = Vec::<i64>::try_from(get(t, &format!("{p}.idx")).flatten(0, -1)).unwrap();
    let q = Vec::<u8>::try_from(get(t, &format!("{p}.q")).flatten(0, -1)).unwrap();
    let k = *get(t, &format!("{p}.idx")).size().last().unwrap() as usize;
    let (mut indices, mut codes) = (Vec::new(), Vec::new());
    for (ci, cq) in idx.chunks(k).zip(q.chunks(k)) {
        let mut pairs: Vec<(u16, u8)> = ci.iter().map(|&i| i as u16).zip(cq.iter().copied()).collect();
        pairs.sort_unstable();
        indices.extend(pairs.iter().map(|p| p.0));
        codes.extend(pairs.iter().map(|p| p.1));
    }
    (indices, codes)
}

fn backends() -> [Codec; 2] {
    [Codec::default(), Codec { backend: Backend::Torch, ..Codec::default() }]
}

/// Compresses one golden parameter and checks every output the README lists.
fn check_parameter(codec: &Codec, input: &Tensors, expected: &Tensors, p: &str) -> SparseParam {
    let delta = get(input, p);
    let mut ef = get(input, &format!("{p}.ef")).copy();
    let sparse = codec.compress(delta, &mut ef).unwrap();
    sparse.validate().unwrap();

    // Index sets per chunk and their codes: exact.
    let (indices, codes) = golden_sorted(expected, p);
    assert_eq!(sparse.indices, indices, "{p}: index sets");
    assert_eq!(sparse.codes, codes, "{p}: codes");

    // Statistics: within 1e-5·scale.
    let golden = quant_of(expected, p);
    let tol = 1e-5 * golden.scale;
    assert!((sparse.quant.shift - golden.shift).abs() <= tol, "{p}: shift");
    assert!((sparse.quant.scale - golden.scale).abs() <= tol, "{p}: scale");
    for b in 0..4 {
        assert!((sparse.quant.lookup[b] - golden.lookup[b]).abs() <= tol, "{p}: lookup[{b}]");
    }

    // Transmitted and EF out: within tolerance.
    let transmitted = codec.decompress(&sparse, &delta.size(), Device::Cpu).unwrap();
    assert_close(
        &format!("{p}.transmitted"),
        &f32s(&transmitted),
        &f32s(get(expected, &format!("{p}.transmitted"))),
        1e-5,
    );
    assert_close(&format!("{p}.ef_out"), &f32s(&ef), &f32s(get(expected, &format!("{p}.ef_out"))), 1e-5);

    // Given the reference's statistics, everything downstream is bitwise.
    let with_golden_quant = SparseParam { quant: golden, ..sparse.clone() };
    let mut dense = vec![0f32; sparse.geometry.numel()];
    native::decompress(&with_golden_quant, &mut dense);
    let golden_transmitted = f32s(get(expected, &format!("{p}.transmitted")));
    assert!(dense.iter().zip(&golden_transmitted).all(|(a, b)| a.to_bits() == b.to_bits()), "{p}: transmitted bitwise");
    let ef_mid = f32s(get(expected, &format!("{p}.ef_mid")));
    let ef_out = f32s(get(expected, &format!("{p}.ef_out")));
    for i in 0..ef_mid.len() {
        assert_eq!((ef_mid[i] - dense[i]).to_bits(), ef_out[i].to_bits(), "{p}: ef_out[{i}] bitwise");
    }
    let values: Vec<f32> = sparse.offsets().map(|o| ef_mid[o]).collect();
    let q: Vec<u8> = values.iter().map(|&v| quant::code(v, golden.shift, golden.scale)).collect();
    assert_eq!(q, sparse.codes, "{p}: codes from the reference statistics");

    // The EF step itself is bitwise (two rounded f32 operations).
    let delta_v = f32s(delta);
    let ef_in = f32s(get(input, &format!("{p}.ef")));
    for i in 0..ef_mid.len() {
        assert_eq!((ef_in[i] * 0.95 + delta_v[i]).to_bits(), ef_mid[i].to_bits(), "{p}: ef_mid[{i}]");
    }

    // Conservation: β·e + Δ = transmitted + e_new, to about one ulp.
    let ours_t = f32s(&transmitted);
    let ours_e = f32s(&ef);
    let worst = (0..ef_mid.len()).map(|i| (ef_mid[i] - (ours_t[i] + ours_e[i])).abs()).fold(0f32, f32::max);
    assert!(worst <= 1.5e-9_f32.max(1e-7 * max_abs(&ef_mid)), "{p}: conservation {worst:e}");

    // templar's 12-bit packing of its own (unsorted) indices is byte-identical.
    let raw_idx: Vec<u16> = Vec::<i64>::try_from(get(expected, &format!("{p}.idx")).flatten(0, -1))
        .unwrap()
        .into_iter()
        .map(|i| i as u16)
        .collect();
    let mut packed = Vec::new();
    bits::pack12(&raw_idx, &mut packed);
    assert_eq!(packed, Vec::<u8>::try_from(get(expected, &format!("{p}.idx_packed"))).unwrap(), "{p}: pack12");
    sparse
}

#[test]
fn single_2d_matches_templar() {
    let (input, expected) = (load("single_2d", "input.safetensors"), load("single_2d", "expected.safetensors"));
    for codec in backends() {
        let sparse = check_parameter(&codec, &input, &expected, "w");
        assert_eq!(sparse.geometry.kept(), 4 * 8 * 64);
    }
}

#[test]
fn aggregate3_matches_templar() {
    let (input, expected) = (load("aggregate3", "input.safetensors"), load("aggregate3", "expected.safetensors"));
    for codec in backends() {
        for param in ["a", "b"] {
            let peers: Vec<SparseParam> =
                (0..3).map(|i| check_parameter(&codec, &input, &expected, &format!("peer{i}.{param}"))).collect();
            let shape = get(&input, &format!("peer0.{param}")).size();
            let all: Vec<&SparseParam> = peers.iter().collect();

            // Norms within an ulp or two; clip factors bitwise given the reference norms.
            let golden_norms = f32s(get(&expected, &format!("{param}.block_norms")));
            let ours: Vec<f32> = peers.iter().map(native::value_norm).collect();
            assert_close(&format!("{param}.block_norms"), &ours, &golden_norms, 1e-6);
            let med = lower_median(&golden_norms);
            let clips: Vec<f32> = golden_norms.iter().map(|&n| clip_factor(n, med)).collect();
            let golden_clips = f32s(get(&expected, &format!("{param}.clip_factor")));
            assert!(clips.iter().zip(&golden_clips).all(|(a, b)| a.to_bits() == b.to_bits()), "{param}: clip factors");

            let g = codec.aggregate(&all, Aggregation::MedianClippedMean, &shape, Device::Cpu).unwrap();
            assert_close(
                &format!("{param}.G_median_mean"),
                &f32s(&g),
                &f32s(get(&expected, &format!("{param}.G_median_mean"))),
                1e-5,
            );
            let g01 = codec.aggregate(&all[..2], Aggregation::MedianClippedMean, &shape, Device::Cpu).unwrap();
            assert_close(
                &format!("{param}.G_median_mean_p01"),
                &f32s(&g01),
                &f32s(get(&expected, &format!("{param}.G_median_mean_p01"))),
                1e-5,
            );
            let mean = codec.aggregate(&all, Aggregation::Mean, &shape, Device::Cpu).unwrap();
            assert_close(
                &format!("{param}.G_sum"),
                &f32s(&mean),
                &f32s(get(&expected, &format!("{param}.G_sum"))),
                1e-5,
            );
        }
    }
}

#[test]
fn both_index_codings_transmit_the_same_update() {
    let (input, expected) = (load("aggregate3", "input.safetensors"), load("aggregate3", "expected.safetensors"));
    let codec = Codec::default();
    let params: Vec<SparseParam> =
        ["a", "b"].iter().map(|p| check_parameter(&codec, &input, &expected, &format!("peer1.{p}"))).collect();
    let manifest = Manifest::new(vec![
        ParamSpec { name: "a".into(), shape: vec![128, 256] },
        ParamSpec { name: "b".into(), shape: vec![512] },
    ])
    .unwrap();
    let payload = Payload {
        header: Header { netuid: 3, uid: 1, window: 7, hotkey: [9; 32], model: manifest.fingerprint() },
        params,
    };
    let mut sizes = Vec::new();
    for coding in [IndexCoding::Packed12, IndexCoding::Entropy] {
        let bytes = compression::encode(&payload, &manifest, coding).unwrap();
        let decoded = compression::decode(&bytes, &manifest).unwrap();
        assert_eq!(decoded, payload, "{coding:?} round trip");
        for (p, spec) in decoded.params.iter().zip(manifest.params()) {
            let shape: Vec<i64> = spec.shape.iter().map(|&d| d as i64).collect();
            let t = codec.decompress(p, &shape, Device::Cpu).unwrap();
            assert_close(
                &format!("{}.transmitted", spec.name),
                &f32s(&t),
                &f32s(get(&expected, &format!("peer1.{}.transmitted", spec.name))),
                1e-5,
            );
        }
        sizes.push(bytes.len());
    }
    assert!(sizes[1] < sizes[0], "entropy coding is smaller: {sizes:?}");
}
