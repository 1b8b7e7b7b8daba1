#!/usr/bin/env bash
# Fuzzes the payload decoder (compression/fuzz/fuzz_targets/decode.rs) with libFuzzer:
#   make fuzz                 # 60 seconds
#   FUZZ_SECONDS=3600 make fuzz
# cargo-fuzz is installed into the cache on first use. It needs nightly compiler flags
# (-Zsanitizer); RUSTC_BOOTSTRAP=1 enables them on the stable toolchain.
set -euo pipefail

CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$CACHE/tools/bin:$PATH"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz into $CACHE/tools (one-time)" >&2
    cargo install cargo-fuzz --locked --version 0.13.2 --root "$CACHE/tools"
fi

corpus="$ROOT/compression/fuzz/corpus/decode"
mkdir -p "$corpus"
# Seed the corpus with valid payloads of the fuzzed model, in both index codings.
(cd "$ROOT" && cargo run --release --quiet -p compression --example fuzz_seeds -- "$corpus")

cd "$ROOT/compression/fuzz"
RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CACHE/fuzz-target" \
    cargo fuzz run decode "$corpus" -- -max_total_time="${FUZZ_SECONDS:-60}" -rss_limit_mb=2048
