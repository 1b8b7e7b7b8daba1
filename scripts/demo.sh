#!/usr/bin/env bash
# `make demo`: what runs end to end today, on this machine, offline.
#   1. the dev chain (our subtensor-compatible runtime under chopsticks) starts and produces blocks;
#   2. a real pseudo-gradient (templar's reference input) goes through the codec: error feedback +
#      compression + a signed payload, inspection, decoding.
# The full local subnet (miners, validators, buckets) replaces this as `neuron localnet`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEURON="$ROOT/target/release/neuron"
work=$(mktemp -d)
chain_pid=""
cleanup() {
    [[ -n "$chain_pid" ]] && kill "$chain_pid" 2>/dev/null && wait "$chain_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== 1. dev chain"
"$NEURON" localnet chain --port 0 --block-ms 500 >"$work/chain.out" 2>"$work/chain.log" &
chain_pid=$!
for _ in $(seq 1 120); do
    [[ -s "$work/chain.out" ]] && break
    kill -0 "$chain_pid" 2>/dev/null || { cat "$work/chain.log"; exit 1; }
    sleep 0.5
done
url=$(head -n1 "$work/chain.out")
echo "chain at $url"
http=${url/ws:/http:}
header() { curl -s -H 'Content-Type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"chain_getHeader","params":[]}' "$http" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["result"]["number"],16))'; }
first=$(header)
sleep 3
echo "block $first -> $(header) after 3 s"
kill "$chain_pid"; wait "$chain_pid" 2>/dev/null || true; chain_pid=""

echo
echo "== 2. codec on templar's reference pseudo-gradient (256x512)"
input="$ROOT/compression/tests/fixtures/golden/single_2d/input.safetensors"
seed=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
"$NEURON" codec encode --input "$input" --output "$work/grad.bin" --ef-out "$work/ef.safetensors" \
    --index-coding entropy --netuid 3 --uid 1 --window 42 --seed "$seed"
"$NEURON" codec inspect "$work/grad.bin"
"$NEURON" codec decode --input "$work/grad.bin" --output "$work/transmitted.safetensors"
echo "decoded into $(du -h "$work/transmitted.safetensors" | cut -f1) of dense tensors"
