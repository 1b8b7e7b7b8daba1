#!/usr/bin/env bash
# Installs what the dev chain needs, idempotently, into the cache outside the clone:
#   node     chopsticks (pinned by chain/devnet/package-lock.json) in $CACHE/devnet/node-<hash>, plus
#            the devnet's Node scripts beside it; `$CACHE/devnet/runner` points at it
#   runtime  the runtime wasm + raw chain spec (scripts/build-runtime.sh, cached by content hash)
#   python   a venv with substrate-interface for the compatibility test, in $CACHE/devnet/py-<hash>;
#            `$CACHE/devnet/python` points at it
#   all      (default) all three
# Each step prints the folder it prepared on stdout and does nothing when that folder is complete.
set -euo pipefail

CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVNET="$CACHE/devnet"
SRC="$ROOT/chain/devnet"
PY_REQUIREMENTS="$SRC/requirements.txt"
mkdir -p "$DEVNET"

log() { printf 'setup-chain: %s\n' "$*" >&2; }

hash_files() { sha256sum "$@" | cut -d' ' -f1 | sha256sum | cut -c1-16; }

# point NAME TARGET: atomically makes $DEVNET/NAME a link to TARGET (a sibling folder name).
point() {
    ln -sfn "$2" "$DEVNET/.$1.$$"
    mv -T "$DEVNET/.$1.$$" "$DEVNET/$1"
}

setup_node() {
    command -v node >/dev/null || { log "node is required (Debian: apt-get install nodejs npm)"; exit 1; }
    local h dir tmp f
    h=$(hash_files "$SRC/package.json" "$SRC/package-lock.json")
    dir="$DEVNET/node-$h"
    if [[ ! -f "$dir/.complete" ]]; then
        log "installing chopsticks into $dir (one-time, about a minute)"
        tmp="$dir.partial.$$"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        cp "$SRC/package.json" "$SRC/package-lock.json" "$tmp/"
        # --ignore-scripts: chopsticks' optional sqlite3 would otherwise try to download a prebuilt
        # binary and then compile for many minutes; the devnet never uses a database.
        (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$tmp/.complete"
        rm -rf "$dir"
        mv "$tmp" "$dir"
    fi
    # The devnet's scripts sit beside node_modules so that their imports resolve; refresh them.
    for f in "$SRC"/*.mjs; do
        if ! cmp -s "$f" "$dir/$(basename "$f")"; then
            cp "$f" "$dir/.$(basename "$f").$$"
            mv "$dir/.$(basename "$f").$$" "$dir/$(basename "$f")"
        fi
    done
    point runner "node-$h"
    echo "$dir"
}

setup_python() {
    local h dir tmp
    h=$(hash_files "$PY_REQUIREMENTS")
    dir="$DEVNET/py-$h"
    if [[ ! -f "$dir/.complete" ]]; then
        log "installing substrate-interface into $dir (one-time)"
        tmp="$dir.partial.$$"
        rm -rf "$tmp"
        python3 -m venv "$tmp"
        "$tmp/bin/pip" install --quiet --disable-pip-version-check -r "$PY_REQUIREMENTS" >&2
        touch "$tmp/.complete"
        rm -rf "$dir"
        # Only bin/python is used (its scripts' shebangs keep the temporary path), which works after a move.
        mv "$tmp" "$dir"
    fi
    point python "py-$h"
    echo "$dir"
}

case "${1:-all}" in
node) setup_node ;;
python) setup_python ;;
runtime) "$ROOT/scripts/build-runtime.sh" ;;
all)
    setup_node >/dev/null
    "$ROOT/scripts/build-runtime.sh" >/dev/null
    setup_python >/dev/null
    log "ready: $DEVNET/current (runtime), $DEVNET/runner (chopsticks), $DEVNET/python (venv)"
    ;;
*)
    log "usage: $0 [node|runtime|python|all]"
    exit 2
    ;;
esac
