#!/usr/bin/env bash
# Builds the dev chain's runtime to wasm and its raw chain spec, cached by content:
#   $CACHE/devnet/runtime-<hash>/{runtime.wasm, spec.json, metadata.scale}
# where <hash> covers the runtime's sources and lockfile, this script and the genesis script. An
# unchanged runtime is never rebuilt; `$CACHE/devnet/current` points at the runtime of this checkout.
#
# The wasm comes from Debian's rustc-web (1.96, with the standard library's sources) and
# -Zbuild-std: rustup cannot add the wasm32 target here. Only the wasm is compiled, as a cdylib with
# the flags substrate-wasm-builder would pass; polkadot-sdk is never built natively on this path.
# The genesis state is computed by the runtime itself (GenesisBuilder API) run in chopsticks'
# executor, so no node binary is needed either. Prints the artifact folder on stdout.
set -euo pipefail

CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVNET="$CACHE/devnet"
RUNTIME="$ROOT/chain/runtime"

log() { printf 'build-runtime: %s\n' "$*" >&2; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# Debian's packaged Rust 1.96 with wasm32 support and the library sources, plus lld.
ensure_wasm_toolchain() {
    local version
    version=$(/usr/bin/rustc --version 2>/dev/null || true)
    if [[ $version == "rustc 1.96"* && -d /usr/lib/rustlib/src/rust/library ]] && command -v rust-lld >/dev/null 2>&1; then
        return
    fi
    log "installing Debian's rustc-web, cargo-web, rust-web-src and lld-22 (one-time)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >&2 ||
        { as_root apt-get update -qq >&2 &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src rust-web-llvm lld-22 >&2; }
}

runtime_hash() {
    {
        (cd "$ROOT" && find chain/runtime -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
            -not -path '*/target/*' | LC_ALL=C sort | xargs sha256sum)
        sha256sum "$ROOT/scripts/build-runtime.sh" "$ROOT/chain/devnet/genesis.mjs" | cut -d' ' -f1
    } | sha256sum | cut -c1-16
}

HASH=$(runtime_hash)
OUT="$DEVNET/runtime-$HASH"
if [[ -f "$OUT/spec.json" && -f "$OUT/runtime.wasm" && -f "$OUT/metadata.scale" ]]; then
    log "runtime $HASH is cached"
else
    ensure_wasm_toolchain
    NODE_DIR=$("$ROOT/scripts/setup-chain.sh" node)
    started=$(date +%s)
    log "building runtime $HASH to wasm (cold: several minutes on 2 cores)"
    # Run from outside the clone so that its .cargo/config.toml (host rustflags) is not read; RUSTFLAGS
    # set here would override it anyway.
    (
        cd "$CACHE"
        export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
        export CARGO_TARGET_DIR="$CACHE/runtime-wasm-target"
        export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=rust-lld
        export RUSTFLAGS="-C target-cpu=mvp -C link-arg=--export-table -C link-arg=--export=__heap_base -C link-arg=--import-memory --cfg substrate_runtime"
        # Small code matters more than fast code here: in chopsticks every runtime call costs time that
        # grows with the wasm's size, which sets the cost of each block (opt-level s + fat LTO + no
        # symbol names: 1.2 MB instead of 2.2 MB, about 230 ms instead of 340 ms per empty block).
        export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_OPT_LEVEL=s
        export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort
        /usr/bin/cargo rustc --manifest-path "$RUNTIME/Cargo.toml" -p devnet-runtime --locked --quiet \
            --release --target wasm32-unknown-unknown --no-default-features --crate-type cdylib \
            -Zbuild-std=core,alloc -- -C strip=symbols >&2
    )
    tmp="$DEVNET/.runtime-$HASH.partial.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    cp "$CACHE/runtime-wasm-target/wasm32-unknown-unknown/release/devnet_runtime.wasm" "$tmp/runtime.wasm"
    log "generating the raw chain spec from the runtime's genesis preset"
    node "$NODE_DIR/genesis.mjs" --wasm "$tmp/runtime.wasm" --spec "$tmp/spec.json" --metadata "$tmp/metadata.scale" >&2
    rm -rf "$OUT"
    mv "$tmp" "$OUT"
    log "runtime $HASH built in $(($(date +%s) - started)) s: $(stat -c %s "$OUT/runtime.wasm") bytes of wasm"
fi
# Atomically repoint `current` at this checkout's runtime.
ln -sfn "runtime-$HASH" "$DEVNET/.current.$$"
mv -T "$DEVNET/.current.$$" "$DEVNET/current"
echo "$OUT"
