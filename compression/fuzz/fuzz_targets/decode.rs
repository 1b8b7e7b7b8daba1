//! Fuzzes the decoders of untrusted bytes: payloads (against a fixed manifest and against the
//! manifest a payload declares for itself) and bundles of payloads. None may panic, and whatever
//! decodes must satisfy every invariant of a payload.
#![no_main]

use compression::{fuzzing, wire, Manifest};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(fuzzing::manifest)
}

fn check(payload: &wire::Payload) {
    for p in &payload.params {
        p.validate().expect("decoded parameter violates an invariant");
        p.quant.validate().expect("decoded statistics are out of range");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = compression::bundle::Bundle::decode(data, 64, wire::max_payload_len(manifest())) {
        for (_, payload) in &bundle.entries {
            if let Ok(p) = wire::decode(payload, manifest()) {
                check(&p);
            }
        }
    }
    if let Ok(payload) = wire::decode(data, manifest()) {
        check(&payload);
    }
    if let Ok(m) = wire::read_layout(data).and_then(|l| l.manifest()) {
        // Self-described models can be large; only decode those a fuzzer input could fill.
        if wire::max_payload_len(&m) <= 1 << 20 {
            if let Ok(payload) = wire::decode(data, &m) {
                check(&payload);
            }
        }
    }
});
