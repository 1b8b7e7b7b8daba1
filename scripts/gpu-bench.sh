#!/usr/bin/env bash
# Runs on a GPU machine with PyTorch 2.11 installed for python3 (no Rust toolchain needed there):
#   scripts/gpu-bench.sh BIN_DIR [--small]
# BIN_DIR holds `gpu_bench` built here with
#   cargo build --release -p compression --example gpu_bench && strip -o BIN_DIR/gpu_bench target/release/examples/gpu_bench
# Runs the Rust codec benchmark and the plain-PyTorch baseline in the same session, then prints a
# table with the ratio of the two.
set -euo pipefail
BIN_DIR=${1:?usage: scripts/gpu-bench.sh BIN_DIR [--small]}
shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TL=$(python3 -c 'import os,torch;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
NV=$(python3 -c 'import os,glob,nvidia;print(":".join(glob.glob(os.path.dirname(nvidia.__path__[0])+"/nvidia/*/lib")))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$TL:$NV:${LD_LIBRARY_PATH:-}"
out=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
"$BIN_DIR/gpu_bench" "$@" | tee "$out/rust.jsonl"
python3 "$ROOT/compression/benches/gpu_baseline.py" "$@" | tee "$out/torch.jsonl"
python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
rows = {}
for f in ("rust.jsonl", "torch.jsonl"):
    for line in open(os.path.join(d, f)):
        r = json.loads(line)
        rows.setdefault(r["bench"], {})[r["impl"]] = r["ms"]
print(f"\n{'benchmark':<40} {'rust ms':>10} {'pytorch ms':>11} {'speed-up':>9}")
for bench, r in rows.items():
    rust, py = r.get("rust"), r.get("pytorch-eager")
    ratio = f"{py / rust:.2f}x" if rust and py else "-"
    print(f"{bench:<40} {rust if rust is not None else '-':>10} {py if py is not None else '-':>11} {ratio:>9}")
PY
