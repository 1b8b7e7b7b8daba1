#!/usr/bin/env bash
# Installs the PyPI `openskill` package (pinned by weights/tests/reference/requirements.txt) into a
# venv in the cache, idempotently, for the weights crate's OpenSkill cross-check:
#   $CACHE/openskill/py-<hash>   the venv (folder named by the requirements' hash)
#   $CACHE/openskill/venv        a link to it; the tests and the vector script use venv/bin/python
# Prints the interpreter's path on stdout; does nothing when the venv is complete.
set -euo pipefail

CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$CACHE/openskill"
REQUIREMENTS="$ROOT/weights/tests/reference/requirements.txt"
mkdir -p "$DIR"

log() { printf 'setup-openskill: %s\n' "$*" >&2; }

h=$(sha256sum "$REQUIREMENTS" | cut -c1-16)
venv="$DIR/py-$h"
if [[ ! -f "$venv/.complete" ]]; then
    log "installing openskill into $venv (one-time)"
    tmp="$venv.partial.$$"
    rm -rf "$tmp"
    python3 -m venv "$tmp"
    "$tmp/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS" >&2
    touch "$tmp/.complete"
    rm -rf "$venv"
    # Only bin/python is used (pip's scripts keep the temporary path in their shebangs).
    mv "$tmp" "$venv"
fi
ln -sfn "py-$h" "$DIR/.venv.$$"
mv -T "$DIR/.venv.$$" "$DIR/venv"
"$DIR/venv/bin/python" -c 'import openskill' || { log "the venv at $venv cannot import openskill"; exit 1; }
echo "$DIR/venv/bin/python"
