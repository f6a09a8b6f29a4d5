#!/usr/bin/env bash
# Install everything kiln needs to build, test and run, from Debian 12 packages.
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config ca-certificates
  libopenblas-openmp-dev   # sgemm; the OpenMP build shares our thread pool
  openmpi-bin libopenmpi-dev  # several ranks: mpirun -np N kiln pretrain (issue 14)
  libdnnl-dev              # bf16 matmuls in bf16 instructions (train.bf16_kernels); bench_matmul's oneDNN sgemm
  libblis4-openmp          # the other sgemm bench/bench_matmul measures against OpenBLAS (issue 13)
  libyaml-dev              # config files
  libcjson-dev             # JSON state, tokenizer.json, manifests
  libpcre2-dev             # tokenizer pre-tokenization regexes
  libutf8proc-dev          # Unicode normalization (NFKC), categories
  libzstd-dev zlib1g-dev   # compressed inputs (zstd, gzip, dictzip)
  zstd                     # the zstd command: compressed test inputs (tests/test_cli.sh)
  libxxhash-dev            # hashing (tokenizer, dedup)
  libxml2-dev              # HTML parsing (data pipeline)
  libssl-dev               # sha256 of shards (libcrypto)
  libcmocka-dev            # unit tests
  clang libclang-rt-dev    # libFuzzer, ASan and UBSan (scripts/fuzz.sh)
  protobuf-compiler        # protoc decodes our TensorBoard event files in tests
  python3-torch python3-numpy  # PyTorch parity tests and benchmark (/usr/bin/python3)
  bible-kjv                # the King James Bible (`bible` command)
  # the default corpus of `kiln data gather debian` (README main job)
  bible-kjv-text dict-gcide wordnet-base dict-foldoc dict-jargon fortunes fortunes-min
  manpages manpages-dev
  unicode-data             # character and emoji names (scripts/gen_unicode_names.py, clean tests)
  chromium                 # headless screenshots of `kiln report` pages (tests/test_report_screenshot.sh)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi

# Reference encoders for the tokenizer exactness tests: the npm packages
# tiktoken and tokenizers (HF), pinned by tests/tokenizer/package-lock.json.
# Reinstalled only when node_modules is missing or older than the lock file.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="$root/tests/tokenizer"
if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: npm not found; tokenizer reference tests will be skipped (install Node.js >= 18 with npm)"
elif [ ! -d "$ref/node_modules" ] || [ "$ref/package-lock.json" -nt "$ref/node_modules" ]; then
  echo "install-deps: npm ci in tests/tokenizer"
  # a registry hiccup must not stop the build: the exactness tests then skip, loudly
  if npm ci --prefix "$ref" --no-audit --no-fund; then
    touch "$ref/node_modules"
  else
    echo "install-deps: WARNING: npm ci failed; tokenizer exactness tests will be skipped" >&2
  fi
else
  echo "install-deps: tests/tokenizer/node_modules up to date"
fi
