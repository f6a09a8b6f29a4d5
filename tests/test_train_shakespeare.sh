#!/usr/bin/env bash
# test_train_shakespeare.sh KILN REPO: training dynamics end to end. nanoGPT's CPU
# "baby GPT" (configs/shakespeare-baby.yaml) on Tiny Shakespeare as bytes must reach
# validation loss <= 1.90 nats/byte after 2000 steps (PyTorch reaches ~1.88).
set -eu
KILN=$1
REPO=$2
INPUT="$REPO/../shared/data/pretrain/tinyshakespeare/input.txt"
if [ ! -f "$INPUT" ]; then
  echo "SKIP: $INPUT not found (the shared data folder is absent)"
  exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$INPUT"
"$KILN" pretrain "$REPO/configs/shakespeare-baby.yaml" \
  --set "data.train=$W/data/train_*.bin" --set "data.val=$W/data/val_*.bin" \
  --set "out_dir=$W/run" | tee "$W/log"
val=$(grep 'val loss' "$W/log" | tail -1 | awk '{print $NF}')
echo "final validation loss: $val nats/byte (target <= 1.90)"
awk -v v="$val" 'BEGIN { exit !(v <= 1.90) }'
