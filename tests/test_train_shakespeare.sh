#!/usr/bin/env bash
# test_train_shakespeare.sh KILN REPO: training dynamics end to end. nanoGPT's CPU
# "baby GPT" (configs/shakespeare-baby.yaml) on Tiny Shakespeare as bytes must reach
# validation loss <= 1.90 nats/byte after 2000 steps (PyTorch reaches ~1.88), in
# fp32 and with train.precision bf16, and bf16 within 0.02 of fp32 (issue 13).
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
for p in fp32 bf16; do
  "$KILN" pretrain "$REPO/configs/shakespeare-baby.yaml" \
    --set "data.train=$W/data/train_*.bin" --set "data.val=$W/data/val_*.bin" \
    --set "train.precision=$p" --set "out_dir=$W/run-$p" | tee "$W/log-$p"
done
fp32=$(grep 'val loss' "$W/log-fp32" | tail -1 | awk '{print $NF}')
bf16=$(grep 'val loss' "$W/log-bf16" | tail -1 | awk '{print $NF}')
echo "final validation loss: fp32 $fp32, bf16 $bf16 nats/byte (targets: <= 1.90, bf16 within 0.02 of fp32)"
awk -v a="$fp32" -v b="$bf16" 'BEGIN { d = b - a; if (d < 0) d = -d; exit !(a <= 1.90 && b <= 1.90 && d <= 0.02) }'
