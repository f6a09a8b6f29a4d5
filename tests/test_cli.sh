#!/usr/bin/env bash
# test_cli.sh KILN: the kiln binary end to end: help, errors on bad input (naming the
# key, file, shard or offset), checkpoints, and resume matching an uninterrupted run.
set -u
KILN=$1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_fail NAME PATTERN CMD...: non-zero exit and stderr matching PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" >"$W/out" 2>"$W/err"; then bad "$name (exited 0)"; return; fi
  if grep -qE -- "$pat" "$W/err"; then ok "$name"; else bad "$name: stderr was: $(cat "$W/err")"; fi
}
expect_ok() {
  local name=$1; shift
  if "$@" >"$W/out" 2>"$W/err"; then ok "$name"; else bad "$name: $(cat "$W/err")"; fi
}

expect_ok "kiln help" "$KILN" help
grep -q pretrain "$W/out" && ok "help lists pretrain" || bad "help lists pretrain"
expect_ok "kiln version" "$KILN" version
grep -qE '^kiln [0-9]+\.[0-9]+\.[0-9]+ \(commit ' "$W/out" && ok "version format" || bad "version format: $(cat "$W/out")"
expect_ok "kiln help pretrain" "$KILN" help pretrain
grep -q -- '--set' "$W/out" && ok "pretrain help mentions --set" || bad "pretrain help"
expect_ok "pretrain --help" "$KILN" pretrain --help
# kiln help data printed one usage line (issue 12): now every subcommand and stage, one line each
expect_ok "kiln help data" "$KILN" help data
grep -qE '^  run PIPELINE' "$W/out" && grep -qE '^  trace ' "$W/out" && grep -qE '^  minhash_dedup +\[corpus\]' "$W/out" &&
  grep -qE '^  gopher_quality ' "$W/out" && ok "help data lists subcommands and stages" || bad "help data: $(cat "$W/out")"
expect_ok "tokenizer --help" "$KILN" tokenizer --help
expect_ok "kiln help config" "$KILN" help config
grep -q 'model.n_kv_head' "$W/out" && ok "config keys listed" || bad "config keys listed"
expect_fail "unknown command" "no such command 'frobnicate'" "$KILN" frobnicate

# kiln env (issue 12, item 10): unless the user chose one, kiln sets a short OpenMP
# spin (libgomp reads it as it loads, so kiln runs itself again with it set), and
# threads follow the CPUs this process may use
expect_ok "kiln env" env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OMP_NUM_THREADS "$KILN" env
grep -qE '^wait policy: OMP_WAIT_POLICY=unset GOMP_SPINCOUNT=[0-9]+ \(set by kiln' "$W/out" && ok "env: kiln sets the spin count" \
  || bad "env: spin count: $(cat "$W/out")"
expect_ok "kiln env with a wait policy" env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive "$KILN" env
grep -qE '^wait policy: OMP_WAIT_POLICY=passive GOMP_SPINCOUNT=unset \(set in the environment' "$W/out" \
  && ok "env: the user's wait policy stands" || bad "env: user's policy: $(cat "$W/out")"
expect_ok "kiln env on one CPU" env -u OMP_NUM_THREADS taskset -c 0 "$KILN" env
grep -qE '^threads: +1 \(1 CPUs in this process.s affinity mask' "$W/out" && ok "env: threads from the affinity mask" \
  || bad "env: threads: $(cat "$W/out")"
expect_ok "kiln env with OMP_NUM_THREADS" env OMP_NUM_THREADS=3 "$KILN" env
grep -qE '^threads: +3 \(OMP_NUM_THREADS=3' "$W/out" && ok "env: OMP_NUM_THREADS stands" || bad "env: $(cat "$W/out")"
# the bf16 line says how bf16 matmuls run on this CPU (issue 13): oneDNN's bf16
# kernels measured against their theoretical peak where the CPU has
# AVX512_BF16, else the fp32 peak with the reason
if grep -qw avx512_bf16 /proc/cpuinfo; then
  want="^bf16 peak:   [0-9.]+ GFLOP/s theoretical .*oneDNN's bf16 matmul .* measured [0-9.]+ GFLOP/s"
else
  want="^bf16 peak:   the fp32 peak: .*no bf16 kernels: this CPU has no bf16 instructions"
fi
grep -Eq "$want" "$W/out" && ok "env: bf16 line" || bad "env: bf16: $(cat "$W/out")"
# the sgemm line: which library runs the linear layers' products, and where the verdicts are kept
grep -Eq "^sgemm:       (OpenBLAS's or oneDNN's per product class of the linear layers, .* [0-9]+ verdicts? kept in |OpenBLAS's \(this build has no oneDNN\))" "$W/out" &&
  ok "env: sgemm line" || bad "env: sgemm: $(cat "$W/out")"

# a small corpus of bytes
head -c 60000 /usr/share/common-licenses/GPL-3 > "$W/text.txt"
expect_ok "encode-corpus" "$KILN" tokenizer encode-corpus --bytes -o "$W/data" "$W/text.txt"
[ -f "$W/data/train_000000.bin" ] && [ -f "$W/data/val_000000.bin" ] && ok "shards written" || bad "shards written"

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
  eval_batches: 4
  checkpoint_every: 10
  log_every: 5
data:
  train: $W/data/train_*.bin
  val: $W/data/val_*.bin
out_dir: $W/run
YAML

# bad config: unknown key, wrong type, bad enum; each names the key and the file
printf 'model:\n  n_layers: 2\n' > "$W/bad1.yaml"
expect_fail "unknown key names key and file:line" "bad1.yaml:2.*'model.n_layers'" "$KILN" pretrain "$W/bad1.yaml"
printf 'train:\n  lr: fast\n' > "$W/bad2.yaml"
expect_fail "wrong type names key" "bad2.yaml:2.*'train.lr' wants a number" "$KILN" pretrain "$W/bad2.yaml"
expect_fail "bad --set key" "--set: unknown config key 'model.depth'" "$KILN" pretrain "$W/tiny.yaml" --set model.depth=3
expect_fail "bad --set enum" "'model.norm' must be one of layernorm, rmsnorm" "$KILN" pretrain "$W/tiny.yaml" --set model.norm=batchnorm
expect_fail "missing config file" "nope.yaml: cannot open" "$KILN" pretrain "$W/nope.yaml"
# no config at all: the complaint is the missing file, not data.train (issue 12, item 8)
expect_fail "pretrain without a config" "pretrain needs a config file" "$KILN" pretrain
expect_fail "pretrain with only -q" "pretrain needs a config file" "$KILN" pretrain -q
expect_fail "config that is a directory" "$W: is a directory" "$KILN" pretrain "$W"
expect_fail "inconsistent shape" "n_embd \(30\) must be a positive multiple of model.n_head \(4\)" "$KILN" pretrain "$W/tiny.yaml" --set model.n_embd=30 --set model.n_head=4

expect_fail "allocation failure names the bytes" "out of memory: could not allocate [0-9]+ bytes" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.n_embd=65536 --set model.n_head=64 --set model.n_layer=64

# absurd sizes are refused by the key that is too large, before any size arithmetic
# can overflow (issue 12, item 11: n_embd 1e9 used to complain about a negative ffn_hidden)
expect_fail "huge n_embd names the key" "model.n_embd \(1000000000\) is too large" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.n_embd=1000000000
expect_fail "huge n_layer names the key" "model.n_layer \(2000000000\) is too large" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.n_layer=2000000000
expect_fail "huge vocab_size names the key" "model.vocab_size \(2000000000\) is too large" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.vocab_size=2000000000
expect_fail "huge block_size names the key" "model.block_size \(2000000000\) is too large" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.block_size=2000000000
expect_fail "huge batch_size names the key" "train.batch_size \(1000000000\) is too large" \
  "$KILN" pretrain "$W/tiny.yaml" --set train.batch_size=1000000000
expect_fail "huge batch_size x seq_len names both keys" "train.batch_size \(1000\) x train.seq_len \(16777216\) is too large" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.block_size=16777216 --set train.batch_size=1000
expect_fail "huge model names the keys and the bytes" "model too large: model.n_layer=16384, model.n_embd=1048576.* would need [0-9.e+]+ bytes" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.n_layer=16384 --set model.n_embd=1048576 --set model.n_head=1
expect_fail "failed activation allocation names train.batch_size" "train.batch_size x train.seq_len = 10000000 x 32: out of memory" \
  "$KILN" pretrain "$W/tiny.yaml" --set train.batch_size=10000000

# kiln data STAGE on a .json file holding one JSON array: every line is skipped, and that
# is bad input (exit 2 naming the file), not success with 0 documents (issue 12, item 8)
printf '[\n  {\n    "text": "hello world"\n  }\n]\n' > "$W/array.json"
printf '{"text": "hello world"}\n' > "$W/one.jsonl"
expect_fail "data clean on a JSON array names the file" "array.json: none of its 5 lines is a document: kiln data reads JSONL" \
  "$KILN" data clean -o "$W/clean.jsonl" "$W/array.json"
"$KILN" data clean -o "$W/clean.jsonl" "$W/array.json" 2>/dev/null; rc=$?
[ $rc = 2 ] && [ ! -e "$W/clean.jsonl" ] && ok "JSON array: exit 2, no output" || bad "JSON array: exit $rc"
expect_fail "corpus stage on a JSON array" "exact_dedup: .*array.json: none of its 5 lines" \
  "$KILN" data exact_dedup -o "$W/dedup.jsonl" "$W/array.json"
expect_fail "corpus stage on JSONL and a JSON array" "exact_dedup: .*array.json: none of its 5 lines" \
  "$KILN" data exact_dedup -o "$W/dedup.jsonl" "$W/one.jsonl" "$W/array.json"
expect_ok "an empty input is no error" "$KILN" data clean -o "$W/clean.jsonl" /dev/null

# kiln eval on a run directory that has written no checkpoint yet (issue 12, item 8:
# it reported "state.json: cannot open")
mkdir -p "$W/nockpt" && : > "$W/nockpt/metrics.jsonl"
expect_fail "eval on a run without a checkpoint" "nockpt holds no checkpoint" \
  "$KILN" eval --model "$W/nockpt" --tasks arc_easy

# bad data: missing shards, a token outside the vocabulary, a truncated shard
expect_fail "missing shards" "no shard matches" "$KILN" pretrain "$W/tiny.yaml" --set "data.train=$W/none_*.bin"
expect_fail "token >= vocab names shard and offset" "train_000000.bin: token [0-9]+ at offset [0-9]+ .*vocab_size = 64" \
  "$KILN" pretrain "$W/tiny.yaml" --set model.vocab_size=64
head -c 5000 "$W/data/train_000000.bin" > "$W/trunc.bin"
expect_fail "truncated shard" "trunc.bin: truncated shard" "$KILN" pretrain "$W/tiny.yaml" --set "data.train=$W/trunc.bin"

# a run: falling loss, a checkpoint, then resume from step 10 reproduces step 20 exactly
expect_ok "pretrain tiny" "$KILN" pretrain "$W/tiny.yaml"
cp "$W/out" "$W/run.log"
first=$(grep -m1 -oE 'loss [0-9.]+' "$W/run.log" | awk '{print $2}')
last=$(grep -E '^step +20/' "$W/run.log" | grep -oE 'loss [0-9.]+' | awk '{print $2}')
awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a - 0.5)}' && ok "loss falls ($first -> $last)" || bad "loss falls ($first -> $last)"
grep -q 'val loss' "$W/run.log" && ok "validation logged" || bad "validation logged"
for f in model.safetensors optimizer.safetensors state.json; do
  [ -f "$W/run/ckpt-00000020/$f" ] && ok "checkpoint has $f" || bad "checkpoint has $f"
done
[ "$(cat "$W/run/latest")" = "ckpt-00000020" ] && ok "latest points at step 20" || bad "latest"
ls -a "$W/run" | grep -q '\.tmp' && bad "temp files left behind" || ok "no temp files left"
cp "$W/run/ckpt-00000020/model.safetensors" "$W/full.safetensors"
expect_ok "resume from step 10" "$KILN" pretrain "$W/tiny.yaml" --resume "$W/run/ckpt-00000010"
grep -q 'resumed from' "$W/out" && ok "resume logged" || bad "resume logged"
cmp -s "$W/full.safetensors" "$W/run/ckpt-00000020/model.safetensors" && ok "resumed run matches the uninterrupted run bit for bit" \
  || bad "resumed weights differ from the uninterrupted run"
grep -E '^step +20/' "$W/out" | grep -qF "loss $last" && ok "resumed loss at step 20 matches" || bad "resumed loss at step 20"

# kiln eval without --decontam: no "(N clean)" counts (issue 12); on a run directory the
# results are kept in RUN/eval/ for kiln report
expect_ok "eval of a run" "$KILN" eval --model "$W/run" --tasks lambada_openai --limit 3 --tokenizer bytes
grep -q 'lambada_openai: 3 items' "$W/err" && ok "eval logs its item count" || bad "eval log: $(cat "$W/err")"
grep -q 'clean' "$W/err" && bad "clean counts without --decontam: $(cat "$W/err")" || ok "no clean counts without --decontam"
ls "$W"/run/eval/ckpt-00000020-*.json >/dev/null 2>&1 && ok "eval results kept in RUN/eval" || bad "no RUN/eval results"
grep -q '"perplexity"' "$W"/run/eval/ckpt-00000020-*.json && ok "RUN/eval holds the results" || bad "RUN/eval content"

# a damaged checkpoint is refused with the file named, and the good one is untouched
cp -r "$W/run/ckpt-00000010" "$W/broken"
head -c 3000 "$W/run/ckpt-00000010/model.safetensors" > "$W/broken/model.safetensors"
expect_fail "truncated checkpoint" "broken/model.safetensors" "$KILN" pretrain "$W/tiny.yaml" --resume "$W/broken"
echo '{"step": 3' > "$W/broken/state.json"
expect_fail "corrupt state.json" "broken/state.json: not valid JSON" "$KILN" pretrain "$W/tiny.yaml" --resume "$W/broken"
cmp -s "$W/full.safetensors" "$W/run/ckpt-00000020/model.safetensors" && ok "good checkpoint untouched" || bad "good checkpoint changed"

# tokenizer: train, encode, decode, stats, and their errors
expect_ok "tokenizer train" "$KILN" tokenizer train --vocab-size 600 --special '<|endoftext|>' --output "$W/tok.json" "$W/text.txt"
grep -q '"<|endoftext|>"' "$W/tok.json" && ok "trained tokenizer.json has the special token" || bad "special token in tokenizer.json"
expect_ok "tokenizer train again" "$KILN" tokenizer train --vocab-size 600 --special '<|endoftext|>' --output "$W/tok2.json" "$W/text.txt"
cmp -s "$W/tok.json" "$W/tok2.json" && ok "training is deterministic (same file twice)" || bad "training is not deterministic"
expect_ok "tokenizer encode" "$KILN" tokenizer encode -t "$W/tok.json" "$W/text.txt"
cp "$W/out" "$W/ids.txt"
expect_ok "tokenizer decode" "$KILN" tokenizer decode -t "$W/tok.json" "$W/ids.txt"
cmp -s "$W/out" "$W/text.txt" && ok "decode(encode(text)) == text" || bad "round trip through the CLI"
expect_ok "tokenizer stats" "$KILN" tokenizer stats -t "$W/tok.json" "$W/text.txt"
grep -q 'bytes/tok' "$W/out" && ok "stats table" || bad "stats table"
expect_ok "encode-corpus with a tokenizer" "$KILN" tokenizer encode-corpus -t "$W/tok.json" -o "$W/bpe" "$W/text.txt"
# JSONL, gzip-compressed too: a line that is not a document is skipped and named, not fatal
printf '{"text": "one document"}\nnot json\n{"text": "two documents"}\n' | gzip > "$W/docs.jsonl.gz"
expect_ok "tokenizer train on a .jsonl.gz" "$KILN" tokenizer train --vocab-size 300 --output "$W/tokj.json" "$W/docs.jsonl.gz"
grep -q 'docs.jsonl.gz:2: not a JSON object' "$W/err" && ok "train names the skipped line" || bad "train's skipped line: $(cat "$W/err")"
expect_ok "tokenizer encode of a .jsonl.gz" "$KILN" tokenizer encode -t "$W/tok.json" "$W/docs.jsonl.gz"
[ "$(wc -l < "$W/out")" = 2 ] && grep -q 'skipped 1 bad lines' "$W/err" && ok "one id list per document" || bad "encode of a .jsonl.gz: $(cat "$W/out" "$W/err")"
# compressed JSONL reads as its documents in every tokenizer command (issue 12, item 4: the
# bytes of .jsonl.gz/.zst files were tokenized as text): the same shards and stats as plain JSONL
printf '{"text": "one document"}\nnot json\n{"text": "two documents"}\n' > "$W/docs.jsonl"
zstd -q -f "$W/docs.jsonl" -o "$W/docs.jsonl.zst"
for ext in jsonl jsonl.gz jsonl.zst; do
  expect_ok "encode-corpus of a .$ext" "$KILN" tokenizer encode-corpus -t "$W/tok.json" -o "$W/ec-$ext" "$W/docs.$ext"
  expect_ok "stats of a .$ext" "$KILN" tokenizer stats -t "$W/tok.json" "$W/docs.$ext"
  awk '{ $1 = ""; print }' "$W/out" > "$W/stats-$ext"  # all but the source column (the file's name)
done
for ext in jsonl.gz jsonl.zst; do
  same=1
  for f in "$W"/ec-jsonl/*.bin; do cmp -s "$f" "$W/ec-$ext/$(basename "$f")" || same=0; done
  [ $same = 1 ] && ok "encode-corpus: .$ext gives the plain file's shards" || bad "encode-corpus of .$ext differs"
  cmp -s "$W/stats-jsonl" "$W/stats-$ext" && ok "stats: .$ext counts the plain file's documents" || bad "stats of .$ext: $(cat "$W/stats-$ext")"
done
expect_fail "vocabulary too small" "smaller than the 256 bytes" "$KILN" tokenizer train --vocab-size 100 --output "$W/x.json" "$W/text.txt"
expect_fail "unknown pattern name" "unknown pattern name 'gpt5'" "$KILN" tokenizer train --vocab-size 600 --pattern gpt5 --output "$W/x.json" "$W/text.txt"
expect_fail "train needs --output" "--output" "$KILN" tokenizer train --vocab-size 600 "$W/text.txt"
printf '{"model": {"type": "BPE"' > "$W/broken.json"
expect_fail "truncated tokenizer.json" "broken.json" "$KILN" tokenizer encode -t "$W/broken.json" "$W/text.txt"
expect_fail "special token in text is refused" "special token '<\|endoftext\|>'" sh -c "echo 'a<|endoftext|>b' | '$KILN' tokenizer encode -t '$W/tok.json'"
printf '{"text": "a"}\n{"text": "b<|endoftext|>"}\n' > "$W/special.jsonl"
expect_fail "encode-corpus names the document with special-token text" "special.jsonl, document 2: the text contains the special token" "$KILN" tokenizer encode-corpus -t "$W/tok.json" -o "$W/special-corpus" "$W/special.jsonl"
"$KILN" tokenizer encode-corpus -t "$W/tok.json" --allow-special -o "$W/special-corpus" "$W/special.jsonl" > /dev/null 2>&1 && ok "encode-corpus --allow-special" || bad "encode-corpus --allow-special failed"
expect_fail "encode of a .jsonl names the document" "special.jsonl: document 2:" "$KILN" tokenizer encode -t "$W/tok.json" "$W/special.jsonl"
printf '1 2 99999\n' > "$W/badids.txt"
expect_fail "decode of an unknown id" "id 99999 at position 2" "$KILN" tokenizer decode -t "$W/tok.json" "$W/badids.txt"

# temp files (issue 12, item 9): a link planted at the old temp name OUT.tmp is
# never followed; a 255-byte output name works; a work directory that is a link
# is not emptied through it
printf '{"id":"a","text":"one document here"}\n{"id":"b","text":"another document"}\n' > "$W/tmpin.jsonl"
printf 'precious\n' > "$W/tmpvictim"
ln -s "$W/tmpvictim" "$W/tmpout.jsonl.tmp"
expect_ok "data stage -o with a planted OUT.tmp link" "$KILN" data exact_dedup -o "$W/tmpout.jsonl" "$W/tmpin.jsonl"
[ "$(cat "$W/tmpvictim")" = precious ] && ok "planted OUT.tmp link not followed" || bad "planted OUT.tmp link followed: victim now $(cat "$W/tmpvictim")"
[ "$(wc -l < "$W/tmpout.jsonl")" -eq 2 ] && ok "output written beside the link" || bad "output beside the link"
long=$(printf 'n%.0s' $(seq 255))
expect_ok "data stage -o with a 255-byte name" "$KILN" data exact_dedup -o "$W/$long" "$W/tmpin.jsonl"
[ "$(cat "$W/$long" 2>/dev/null | wc -l)" -eq 2 ] && ok "255-byte output name written" || bad "255-byte output name"
mkdir -p "$W/tmppipe" "$W/tmpworkvictim"
printf 'precious\n' > "$W/tmpworkvictim/keep.txt"
ln -s "$W/tmpworkvictim" "$W/tmppipe/work"
cat > "$W/tmppipe.yaml" <<YAML
seed: 1
out_dir: $W/tmppipe
sources:
  - {name: s, format: jsonl, paths: [$W/tmpin.jsonl]}
stages:
  - exact_dedup
output: {tokenizer: bytes, shard_tokens: 100000, val_fraction: 0}
YAML
expect_fail "data run with work/ a link is refused" "tmppipe/work: not a directory \\(a symbolic link" \
  "$KILN" data run "$W/tmppipe.yaml"
[ "$(ls -A "$W/tmpworkvictim")" = keep.txt ] && ok "nothing written or removed through the work/ link" ||
  bad "work/ link written through: $(ls -A "$W/tmpworkvictim")"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
