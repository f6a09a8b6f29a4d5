#!/usr/bin/env bash
# test_iofault.sh KILN SHIM SRC: kiln's outputs under a full disk (ENOSPC), a
# read-only one (EROFS), short writes and failing fsync (EIO), injected by the
# LD_PRELOAD shim tests/fault/iofault.c. For each output (token shards and their
# manifest, checkpoints and RUN/latest, the HTML report, eval results and
# per-item files) and each fault: a non-zero exit naming the file, the previous
# good output byte for byte as it was, and no temp file left behind. Short
# writes must change nothing at all.
set -u
KILN=$1
SHIM=$2
SRC=$3
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
pass=0
fail=0
faults=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# Under an ASan build (scripts/sanitize.sh): the shim goes ahead of the ASan
# runtime, and reports go to stderr, where faulty() looks for them, not to
# log_path files (the runtime opens those before the environment is set up,
# through the shim's open, which then never learns its fault)
strip_log_path() { sed -E 's/(^|:)log_path=[^:]*//' <<<"$1"; }
[ -z "${ASAN_OPTIONS:-}" ] || ASAN_OPTIONS=$(strip_log_path "$ASAN_OPTIONS")
[ -z "${UBSAN_OPTIONS:-}" ] || export UBSAN_OPTIONS=$(strip_log_path "$UBSAN_OPTIONS")
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
# the shim must load, or every case below would pass vacuously
if ! LD_PRELOAD=$SHIM KILN_FAULT=enospc KILN_FAULT_PATH=/nonexistent "$KILN" version >/dev/null 2>&1; then
  echo "FAIL the shim $SHIM does not load"; exit 1
fi

# snapshot DIR: every file under DIR with its sha256 (temp files included, so
# that a leftover shows as a difference)
snapshot() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
temps() { find "$1" -name '.*.tmp*' -print; }
# tensors FILE: the sha256 of a safetensors file's data, after its header (whose
# metadata holds the config, out_dir included)
tensors() {
  local n
  n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  tail -c +$((n + 9)) "$1" | sha256sum
}

# faulty NAME MODE TARGET AFTER CMD...: runs CMD under the shim (stderr in $W/err)
faulty() {
  local name=$1 mode=$2 target=$3 after=$4; shift 4
  rm -f "$W/fault.log"
  env LD_PRELOAD="$SHIM" KILN_FAULT="$mode" KILN_FAULT_PATH="$target" KILN_FAULT_AFTER="$after" \
    KILN_FAULT_LOG="$W/fault.log" "$@" >"$W/out" 2>"$W/err"
  local rc=$?
  # a leak or UB on the error path (sanitizer builds) fails the case too
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W/err"; then
    bad "$name: sanitizer report: $(grep -m3 -E 'ERROR|runtime error|#[0-9] ' "$W/err" | tr '\n' ' ')"
  fi
  return $rc
}

# expect_safe NAME DIR FILEPAT MODE TARGET AFTER CMD...: with DIR's good output
# in place, CMD under the fault must exit non-zero with FILEPAT in its message,
# leave DIR as it was and leave no temp file. A case where the fault never
# fired (AFTER past the end of the output) is reported and not counted.
expect_safe() {
  local name=$1 dir=$2 pat=$3 mode=$4 target=$5 after=$6; shift 6
  local before
  before=$(snapshot "$dir")
  faulty "$name" "$mode" "$target" "$after" "$@"
  local rc=$?
  if [ ! -s "$W/fault.log" ]; then echo "--   $name: the fault never fired (exit $rc)"; return; fi
  faults=$((faults + 1))
  local why=""
  [ $rc -ne 0 ] || why="$why exited 0;"
  grep -qE -- "$pat" "$W/err" || why="$why message does not name $pat: $(head -c 300 "$W/err");"
  [ "$(snapshot "$dir")" = "$before" ] || why="$why $dir changed: $(diff <(echo "$before") <(snapshot "$dir") | head -5 | tr '\n' ' ');"
  [ -z "$(temps "$dir")" ] || why="$why temp files left: $(temps "$dir" | tr '\n' ' ');"
  if [ -z "$why" ]; then ok "$name"; else bad "$name:$why"; fi
}

# ---------------------------------------------------------------- token shards and manifest
head -c 60000 /usr/share/common-licenses/GPL-3 > "$W/a.txt"
cat /usr/share/common-licenses/GPL-2 /usr/share/common-licenses/LGPL-2.1 > "$W/b.txt"
"$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$W/a.txt" >/dev/null || { echo "FAIL encode-corpus"; exit 1; }
"$KILN" tokenizer encode-corpus --bytes -o "$W/ref_b" "$W/b.txt" >/dev/null || { echo "FAIL encode-corpus"; exit 1; }
cp -r "$W/data" "$W/data_a"
# b.txt's corpus replaces a.txt's: the fault lands at the start, in the train
# shard, in the val shard and in the manifest
tsz=$(stat -c %s "$W/ref_b/train_000000.bin")
vsz=$(stat -c %s "$W/ref_b/val_000000.bin")
for after in 0 $((tsz / 2)) $((tsz + vsz / 2)) $((tsz + vsz + 100)); do
  expect_safe "shards: ENOSPC after $after bytes" "$W/data" 'data/(train|val)_000000.bin|data/manifest.json' \
    enospc "$W/data/" $after "$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$W/b.txt"
done
for after in 0 1 2 3 4 5; do
  expect_safe "shards: EROFS after $after creates/renames" "$W/data" "$W/data" \
    erofs "$W/data/" $after "$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$W/b.txt"
done
for after in 0 1 2 3; do
  expect_safe "shards: fsync EIO after $after" "$W/data" "$W/data" \
    eio_fsync "$W/data/" $after "$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$W/b.txt"
done
cmp -s <(snapshot "$W/data") <(snapshot "$W/data_a") && ok "shards: a.txt's corpus intact after the faults" ||
  bad "shards: a.txt's corpus changed"
faulty short short "$W/data/" 0 "$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$W/b.txt"
if [ $? -eq 0 ] && [ -s "$W/fault.log" -o 1 ] && cmp -s "$W/data/train_000000.bin" "$W/ref_b/train_000000.bin" &&
  cmp -s "$W/data/val_000000.bin" "$W/ref_b/val_000000.bin" && [ -z "$(temps "$W/data")" ]; then
  ok "shards: short writes change nothing"
else
  bad "shards: short writes: $(cat "$W/err")"
fi

# ---------------------------------------------------------------- checkpoints, RUN/latest
cat > "$W/tiny.yaml" <<YAML
model:
  vocab_size: 256
  block_size: 32
  n_layer: 2
  n_head: 2
  n_embd: 32
train:
  batch_size: 4
  steps: 20
  lr: 3.0e-3
  warmup_steps: 2
  eval_every: 10
  eval_batches: 2
  checkpoint_every: 5
  keep_last: 2
  log_every: 5
data:
  train: $W/data_a/train_*.bin
  val: $W/data_a/val_*.bin
out_dir: $W/ref
YAML
"$KILN" pretrain "$W/tiny.yaml" -q --set train.keep_last=0 >/dev/null 2>&1 || { echo "FAIL reference pretrain"; exit 1; }
# the run as it stood after its checkpoint at step 10
cp -a "$W/ref" "$W/base"
rm -rf "$W/base/ckpt-00000015" "$W/base/ckpt-00000020"
echo ckpt-00000010 > "$W/base/latest"
# the checkpoint at step 15 is the one a fault hits: RUN/ckpt-00000010 and
# RUN/latest must stay as they were, and the run must then resume to the
# reference's weights. Targets: the checkpoint's temp directory, and the run
# directory itself (RUN/latest, its temp file, the rename)
ckpt_case() {
  local name=$1 mode=$2 target=$3 after=$4
  rm -rf "$W/run" && cp -a "$W/base" "$W/run"
  local keep before
  keep=$(snapshot "$W/run/ckpt-00000010")
  before=$(cat "$W/run/latest")
  faulty "$name" "$mode" "$target" "$after" "$KILN" pretrain "$W/tiny.yaml" -q --resume latest --set out_dir="$W/run"
  local rc=$?
  if [ ! -s "$W/fault.log" ]; then echo "--   $name: the fault never fired (exit $rc)"; return; fi
  faults=$((faults + 1))
  local why=""
  [ $rc -ne 0 ] || why="$why exited 0;"
  grep -qE -- "ckpt|latest|$W/run" "$W/err" || why="$why message names no file: $(head -c 300 "$W/err");"
  [ -d "$W/run/ckpt-00000010" ] && [ "$(snapshot "$W/run/ckpt-00000010")" = "$keep" ] || why="$why ckpt-00000010 changed;"
  local now
  now=$(cat "$W/run/latest")
  [ "$now" = "$before" ] || [ "$now" = ckpt-00000015 -a -d "$W/run/ckpt-00000015" ] || why="$why latest is '$now';"
  [ -z "$(temps "$W/run")" ] || why="$why temp files left: $(temps "$W/run" | tr '\n' ' ');"
  # and the run goes on from there to the uninterrupted run's weights
  if "$KILN" pretrain "$W/tiny.yaml" -q --resume latest --set out_dir="$W/run" >/dev/null 2>"$W/err2"; then
    [ "$(tensors "$W/run/ckpt-00000020/model.safetensors")" = "$(tensors "$W/ref/ckpt-00000020/model.safetensors")" ] ||
      why="$why resumed run's weights differ from the reference;"
  else
    why="$why resume failed: $(head -c 300 "$W/err2");"
  fi
  if [ -z "$why" ]; then ok "$name"; else bad "$name:$why"; fi
}
for after in 0 3000 20000; do
  ckpt_case "checkpoint: ENOSPC after $after bytes" enospc "$W/run/.ckpt-" $after
done
ckpt_case "checkpoint: EROFS on its directory" erofs "$W/run/.ckpt-" 0
ckpt_case "checkpoint: EROFS on its 3rd file" erofs "$W/run/.ckpt-" 3
ckpt_case "checkpoint: fsync EIO" eio_fsync "$W/run/.ckpt-" 0
ckpt_case "checkpoint: fsync EIO on state.json" eio_fsync "$W/run/.ckpt-" 2
ckpt_case "checkpoint: EROFS renaming it into place" erofs "$W/run/ckpt-00000015" 0
ckpt_case "checkpoint: ENOSPC writing RUN/latest" enospc "$W/run/.kiln-" 0
ckpt_case "checkpoint: fsync EIO writing RUN/latest" eio_fsync "$W/run/.kiln-" 0

# the same step written again (a run resumed from an earlier checkpoint by name,
# here ckpt-10, writes ckpt-15 over the one there): the earlier ckpt-15 must
# survive a failure to rename the new one over it
rm -rf "$W/run" && cp -a "$W/base" "$W/run"
cp -a "$W/ref/ckpt-00000015" "$W/run/"
keep15=$(snapshot "$W/run/ckpt-00000015")
faulty "checkpoint: rewrite" erofs "$W/run/ckpt-00000015" 0 "$KILN" pretrain "$W/tiny.yaml" -q \
  --resume "$W/run/ckpt-00000010" --set out_dir="$W/run"
rc=$?
if [ -s "$W/fault.log" ] && [ $rc -ne 0 ] && [ -d "$W/run/ckpt-00000015" ] &&
  [ "$(snapshot "$W/run/ckpt-00000015")" = "$keep15" ] && [ -z "$(temps "$W/run")" ]; then
  ok "checkpoint: EROFS replacing the same step keeps the earlier one"
  faults=$((faults + 1))
else
  bad "checkpoint: EROFS replacing the same step (exit $rc, fault: $(cat "$W/fault.log" 2>/dev/null)): $(ls -A "$W/run" | tr '\n' ' ') $(head -c 300 "$W/err")"
fi

# ---------------------------------------------------------------- kiln report
cp -a "$W/ref" "$W/rep"
"$KILN" report "$W/rep" >/dev/null 2>&1 || bad "report"
for after in 0 4096 20000; do
  expect_safe "report: ENOSPC after $after bytes" "$W/rep" "report.html" enospc "$W/rep/" $after "$KILN" report "$W/rep"
done
expect_safe "report: EROFS" "$W/rep" "report.html" erofs "$W/rep/" 0 "$KILN" report "$W/rep"
expect_safe "report: EROFS on rename" "$W/rep" "report.html" erofs "$W/rep/" 1 "$KILN" report "$W/rep"
expect_safe "report: fsync EIO" "$W/rep" "report.html" eio_fsync "$W/rep/" 0 "$KILN" report "$W/rep"
cp "$W/rep/report.html" "$W/report.html"
faulty short short "$W/rep/" 0 "$KILN" report "$W/rep"
[ $? -eq 0 ] && [ -s "$W/fault.log" -o 1 ] && [ -z "$(temps "$W/rep")" ] && ok "report: short writes" ||
  bad "report: short writes: $(cat "$W/err")"

# ---------------------------------------------------------------- kiln eval --output, --keep-items
mkdir -p "$W/ev"
EVAL=("$KILN" eval --model "$W/ref" --tasks piqa --limit 8 --task-dir "$SRC/tasks" --data-dir "$SRC/../shared/data"
  -q --output "$W/ev/results.json" --keep-items "$W/ev/items.jsonl")
if [ -f "$SRC/../shared/data/eval/piqa/valid.jsonl" ]; then
  "${EVAL[@]}" >/dev/null 2>&1 || bad "eval"
  cp -a "$W/ev" "$W/ev_good"
  for after in 0 100 600; do
    expect_safe "eval: ENOSPC after $after bytes" "$W/ev" "results.json|items.jsonl" enospc "$W/ev/" $after "${EVAL[@]}"
  done
  for after in 0 1 2; do
    expect_safe "eval: EROFS after $after" "$W/ev" "results.json|items.jsonl" erofs "$W/ev/" $after "${EVAL[@]}"
  done
  for after in 0 1; do
    expect_safe "eval: fsync EIO after $after" "$W/ev" "results.json|items.jsonl" eio_fsync "$W/ev/" $after "${EVAL[@]}"
  done
  faulty short short "$W/ev/" 0 "${EVAL[@]}"
  [ $? -eq 0 ] && cmp -s "$W/ev/items.jsonl" "$W/ev_good/items.jsonl" && [ -z "$(temps "$W/ev")" ] &&
    ok "eval: short writes change nothing" || bad "eval: short writes: $(cat "$W/err")"
else
  echo "--   eval: ../shared/data/eval/piqa not found, skipped"
fi

echo "$pass passed, $fail failed ($faults faults injected)"
[ $fail -eq 0 ]
