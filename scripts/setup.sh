#!/usr/bin/env bash
# Installs what the build needs and is missing, idempotently, into a cache outside the clone:
#   - libtorch 2.11.0 (the version tch 0.24 binds), taken from PyPI's torch wheel:
#       * no NVIDIA GPU: the minimal CPU runtime (torch without its CUDA wheels, ~1.2 GB);
#       * NVIDIA GPU: a torch 2.11.0 already importable by python3, or the full wheel set;
#   - `.cargo/config.toml` pointing torch-sys at that libtorch, with an rpath so that
#     `target/release/neuron` runs with no LD_LIBRARY_PATH;
#   - `target/` as a link into the cache, so a fresh clone builds incrementally.
# Re-running it changes nothing once everything is in place.
set -euo pipefail

TORCH_VERSION=2.11.0
CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$CACHE"

log() { printf 'setup: %s\n' "$*" >&2; }

have_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# Prints the directory that holds torch/ (the pip --target layout) for the chosen variant.
install_libtorch() {
    if [[ -n "${LIBTORCH:-}" ]]; then
        dirname "$LIBTORCH"
        return
    fi
    if have_gpu; then
        local sys
        sys=$(python3 - <<EOF 2>/dev/null || true
import os, torch
if torch.__version__.split("+")[0] == "$TORCH_VERSION" and torch.version.cuda:
    print(os.path.dirname(os.path.dirname(torch.__file__)))
EOF
)
        if [[ -n "$sys" ]]; then
            log "using the CUDA torch $TORCH_VERSION of python3 at $sys"
            echo "$sys"
            return
        fi
        install_wheels "$CACHE/libtorch/$TORCH_VERSION-cuda" "torch==$TORCH_VERSION"
    else
        # PyPI has no CPU-only torch wheel for Linux: take torch without its dependencies plus the
        # two small CUDA runtime libraries that libtorch_cuda.so (never loaded on CPU) links to.
        install_wheels "$CACHE/libtorch/$TORCH_VERSION-cpu" --no-deps "torch==$TORCH_VERSION" \
            nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
    fi
}

# install_wheels DIR PIP-ARGS...: pip-installs into DIR through a temporary folder renamed at the end,
# so an interrupted install never leaves a half-filled DIR behind.
install_wheels() {
    local dir=$1
    shift
    if [[ -f "$dir/torch/lib/libtorch.so" ]]; then
        echo "$dir"
        return
    fi
    log "installing torch $TORCH_VERSION into $dir (one-time, about 1 minute for the CPU runtime)"
    local tmp="$dir.partial.$$"
    rm -rf "$tmp"
    python3 -m pip install --quiet --disable-pip-version-check --target "$tmp" "$@" >&2
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "$dir"
}

SITE=$(install_libtorch)
LIBTORCH_DIR="$SITE/torch"
[[ -f "$LIBTORCH_DIR/lib/libtorch.so" ]] || { log "no libtorch.so under $LIBTORCH_DIR"; exit 1; }

# Library folders the binary needs at run time: libtorch itself and the NVIDIA wheels beside it.
RPATHS=("$LIBTORCH_DIR/lib")
for d in "$SITE"/nvidia/*/lib; do
    [[ -d "$d" ]] && RPATHS+=("$d")
done

mkdir -p "$ROOT/.cargo"
config="$ROOT/.cargo/config.toml"
new=$(mktemp)
{
    echo "# Written by scripts/setup.sh for this machine; not tracked. Re-run \`make setup\` to refresh."
    echo "[env]"
    echo "LIBTORCH = \"$LIBTORCH_DIR\""
    echo
    echo "[target.x86_64-unknown-linux-gnu]"
    printf 'rustflags = ['
    for p in "${RPATHS[@]}"; do printf '"-C", "link-arg=-Wl,-rpath,%s", ' "$p"; done
    printf ']\n'
} >"$new"
if ! cmp -s "$new" "$config" 2>/dev/null; then
    mv "$new" "$config"
    log "wrote $config"
else
    rm -f "$new"
fi

# One target directory per machine, shared by every clone, so builds are incremental.
if [[ ! -e "$ROOT/target" ]]; then
    mkdir -p "$CACHE/target"
    ln -s "$CACHE/target" "$ROOT/target"
    log "target/ -> $CACHE/target"
fi

log "ready: libtorch $TORCH_VERSION at $LIBTORCH_DIR"
