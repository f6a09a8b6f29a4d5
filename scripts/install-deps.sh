#!/usr/bin/env bash
# Install everything kiln needs to build, test and run, from Debian 12 packages.
# Idempotent: packages already present are skipped, so a second run is quick.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config ca-certificates
  libopenblas-openmp-dev   # sgemm; the OpenMP build shares our thread pool
  libyaml-dev              # config files
  libcjson-dev             # JSON state, tokenizer.json, manifests
  libpcre2-dev             # tokenizer pre-tokenization regexes
  libutf8proc-dev          # Unicode normalization
  libzstd-dev libxxhash-dev
  libcmocka-dev            # unit tests
  python3-torch python3-numpy  # PyTorch parity tests and benchmark (/usr/bin/python3)
  bible-kjv                # the README demo's training text (King James Bible)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
