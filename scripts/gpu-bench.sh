#!/usr/bin/env bash
# Runs on a GPU machine with PyTorch 2.11 installed for python3 (no Rust toolchain needed there):
#   scripts/gpu-bench.sh BIN_DIR [codec|train|all] [--small]
# BIN_DIR holds `gpu_bench` and `train_bench` built here with
#   cargo build --release -p compression --example gpu_bench && strip -o BIN_DIR/gpu_bench target/release/examples/gpu_bench
#   cargo build --release -p model --example train_bench && strip -o BIN_DIR/train_bench target/release/examples/train_bench
# Runs each Rust benchmark and its plain-PyTorch baseline in the same session, then prints tables
# with the ratio of the two.
set -euo pipefail
BIN_DIR=${1:?usage: scripts/gpu-bench.sh BIN_DIR [codec|train|all] [--small]}
shift
WHAT=${1:-all}
[[ $# -gt 0 ]] && shift
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TL=$(python3 -c 'import os,torch;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
NV=$(python3 -c 'import os,glob,nvidia;print(":".join(glob.glob(os.path.dirname(nvidia.__path__[0])+"/nvidia/*/lib")))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$TL:$NV:${LD_LIBRARY_PATH:-}"
out=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
if [[ $WHAT == codec || $WHAT == all ]]; then
"$BIN_DIR/gpu_bench" "$@" | tee "$out/rust.jsonl"
python3 "$ROOT/compression/benches/gpu_baseline.py" "$@" | tee "$out/torch.jsonl"
python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
rows = {}
for f in ("rust.jsonl", "torch.jsonl"):
    for line in open(os.path.join(d, f)):
        r = json.loads(line)
        if "bench" in r:
            rows.setdefault(r["bench"], {})[r["impl"]] = r["ms"]
print(f"\n{'codec benchmark':<40} {'rust ms':>10} {'pytorch ms':>11} {'speed-up':>9}")
for bench, r in rows.items():
    rust, py = r.get("rust"), r.get("pytorch-eager")
    ratio = f"{py / rust:.2f}x" if rust and py else "-"
    print(f"{bench:<40} {rust if rust is not None else '-':>10} {py if py is not None else '-':>11} {ratio:>9}")
PY
fi
if [[ $WHAT == train || $WHAT == all ]]; then
# One process per run so that each one's GPU memory reading is its own.
for p in 150m:16 1b:8; do
    "$BIN_DIR/train_bench" --preset "$p" | tee "$out/one.jsonl"
    grep -v '"check"' "$out/one.jsonl" >> "$out/train.jsonl"
    python3 "$ROOT/model/benches/train_baseline.py" --preset "$p" | tee -a "$out/train.jsonl"
done
# The same 1b batch of 8 sequences accumulated from micro-batches of 4 and 2 (for GPUs with
# less memory).
for p in 1b:8:4 1b:8:2; do
    "$BIN_DIR/train_bench" --preset "$p" | grep -v '"check"' | tee -a "$out/train.jsonl"
done
python3 - "$out" <<'PY'
import json, sys, os
rows = {}
for line in open(os.path.join(sys.argv[1], "train.jsonl")):
    r = json.loads(line)
    key = f'{r["preset"]} {r.get("batch", r["micro_batch"])}/{r["micro_batch"]}'
    rows.setdefault(key, {})[r["impl"]] = r
print(f"\n{'train (batch/micro)':<14} {'rust tok/s':>11} {'MFU':>6} {'mem MiB':>8} {'torch tok/s':>12} {'MFU':>6} {'mem MiB':>8} {'rust/torch':>10}")
for p, r in rows.items():
    a, b = r.get("rust", {}), r.get("pytorch-eager", {})
    ratio = f"{a['tokens_per_s'] / b['tokens_per_s']:.2f}x" if a and b else "-"
    print(f"{p:<14} {a.get('tokens_per_s', '-'):>11} {a.get('mfu', '-'):>6} {a.get('gpu_mem_mib', '-'):>8} "
          f"{b.get('tokens_per_s', '-'):>12} {b.get('mfu', '-'):>6} {b.get('gpu_mem_mib', '-'):>8} {ratio:>10}")
PY
fi
