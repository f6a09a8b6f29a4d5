#!/usr/bin/env bash
# Self-check of the tokenizer reference side (no kiln code): builds the corpus
# and HF tokenizer.json files from the rank files, then runs check_reference.mjs
# (rank files == tiktoken's built-in encoders, decode round trip, HF == tiktoken
# for gpt2, r50k_base, p50k_base, cl100k_base, o200k_base).  About 30 s.
#
#   tests/tokenizer/selfcheck.sh [WORKDIR]    (default: a temporary folder, removed)
#
# Exit 0 ok, 1 mismatch, 77 skipped (no node/npm packages or no shared/data).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="$(cd "$here/../.." && pwd)/../shared/data"
py=/usr/bin/python3
[ -x "$py" ] || py=python3

skip() { echo "selfcheck: SKIP: $*"; exit 77; }
command -v node >/dev/null 2>&1 || skip "node not found"
[ -d "$here/node_modules/tiktoken" ] && [ -d "$here/node_modules/tokenizers" ] ||
  skip "tests/tokenizer/node_modules missing (run scripts/install-deps.sh)"
[ -f "$data/tokenizers/gpt2.tiktoken" ] || skip "$data/tokenizers not found"

if [ $# -ge 1 ]; then
  work="$1"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
"$py" "$here/make_corpus.py" "$work/corpus"
mkdir -p "$work/hf"
for e in gpt2 r50k_base p50k_base cl100k_base o200k_base; do
  "$py" "$here/make_hf_gpt2.py" "$work/hf/$e.json" --encoding "$e"
done
node "$here/check_reference.mjs" "$work/corpus" --hf-dir "$work/hf"
