//! Shared by the fuzz target (`fuzz/fuzz_targets/decode.rs`) and its seed generator
//! (`examples/fuzz_seeds.rs`), so both agree on the model being fuzzed.

use crate::geometry::ChunkGeometry;
use crate::manifest::{Manifest, ParamSpec};
use crate::native;
use crate::wire::{self, Header, IndexCoding, Payload};

/// 2-D tiles, a 1-D parameter (all elements kept), odd chunks (k = totalk − 1) and a prime
/// dimension (chunks of one row).
pub fn manifest() -> Manifest {
    let p = |name: &str, shape: &[usize]| ParamSpec { name: name.into(), shape: shape.to_vec() };
    Manifest::new(vec![p("a", &[128, 64]), p("b", &[64]), p("c", &[35, 70]), p("d", &[67, 3])])
        .expect("a valid manifest")
}

/// Valid payloads for [`manifest`] in both index codings, from deterministic pseudo-random updates,
/// and a bundle of the two.
pub fn seeds() -> Vec<Vec<u8>> {
    let manifest = manifest();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let params = manifest
        .params()
        .iter()
        .map(|spec| {
            let g = ChunkGeometry::standard(&spec.shape).expect("fuzz shapes are valid");
            let delta: Vec<f32> = (0..g.numel()).map(|_| next()).collect();
            let mut ef = vec![0f32; g.numel()];
            native::compress(&delta, &mut ef, g, 0.95)
        })
        .collect();
    let payload = Payload {
        header: Header { netuid: 3, uid: 1, window: 42, hotkey: [7; 32], model: manifest.fingerprint() },
        params,
    };
    let mut seeds: Vec<Vec<u8>> = [IndexCoding::Packed12, IndexCoding::Entropy]
        .into_iter()
        .map(|c| wire::encode(&payload, &manifest, c).expect("seed payload encodes"))
        .collect();
    let bundle = crate::bundle::Bundle { window: 42, entries: vec![(1, seeds[0].clone()), (2, seeds[1].clone())] };
    seeds.push(bundle.encode());
    seeds
}
