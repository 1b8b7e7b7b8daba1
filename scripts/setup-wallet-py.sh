#!/usr/bin/env bash
# Installs the PyPI bittensor-wallet package (pinned by chain/tests/py/wallet-requirements.txt) into a
# venv in the cache, for the wallet compatibility test: $CACHE/wallet-py/py-<hash>, with
# $CACHE/wallet-py/python pointing at it. Prints the venv folder; does nothing when it is complete.
set -euo pipefail

CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/chain/tests/py/wallet-requirements.txt"
BASE="$CACHE/wallet-py"
mkdir -p "$BASE"

h=$(sha256sum "$REQ" | cut -c1-16)
dir="$BASE/py-$h"
if [[ ! -f "$dir/.complete" ]]; then
    printf 'setup-wallet-py: installing bittensor-wallet into %s (one-time)\n' "$dir" >&2
    tmp="$dir.partial.$$"
    rm -rf "$tmp"
    python3 -m venv "$tmp"
    "$tmp/bin/pip" install --quiet --disable-pip-version-check -r "$REQ" >&2
    touch "$tmp/.complete"
    rm -rf "$dir"
    # Only bin/python is used, which keeps working after the move.
    mv "$tmp" "$dir"
fi
ln -sfn "py-$h" "$BASE/.python.$$"
mv -T "$BASE/.python.$$" "$BASE/python"
echo "$dir"
