#!/usr/bin/env bash
# Unit tests of the dev chain's pallets (chain/runtime/pallets): a native build of the FRAME crates,
# in a target dir of its own in the cache so that it never touches the project's target/.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="$CACHE/runtime-native-target"
cd "$ROOT/chain/runtime"
exec cargo test -p devnet-pallets --locked "$@"
