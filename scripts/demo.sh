#!/usr/bin/env bash
# The main job on its embedded default: install, build, take the King James Bible
# from Debian's bible-kjv package, encode it as bytes, pretrain a small GPT on it
# (a few minutes on 2 cores) and write a checkpoint to runs/kjv/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
mkdir -p build/kjv
bible -f gen1:1-rev22:21 > build/kjv/kjv.txt   # the whole text, one verse a line
./build/kiln tokenizer encode-corpus --bytes --val-fraction 0.05 -o build/kjv build/kjv/kjv.txt
./build/kiln pretrain configs/kjv-demo.yaml "$@"
