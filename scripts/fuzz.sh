#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_<reader>.c) into build-fuzz/ with
# clang, coverage, ASan (leaks included) and UBSan, and runs each one on a copy
# of its seed corpus tests/fuzz/corpus/<reader>/, one target at a time.
#
#   scripts/fuzz.sh                   CI: about 2 minutes of fuzzing in all, split evenly
#   scripts/fuzz.sh --long SECONDS    each target for SECONDS (e.g. --long 600)
#   scripts/fuzz.sh [...] NAME...     only these targets (config, warc, ...)
#
# Any crash, leak, UB, timeout (-timeout=10 per input) or memory blow-up
# (-rss_limit_mb=2048) fails the run and names the reproducer; rerun one with
#   build-fuzz/tests/fuzz_NAME REPRODUCER
# Inputs found along the way grow build-fuzz/fuzz-run/NAME/corpus, never the
# repository's seeds. fuzz_tokenizer needs ../shared/data/tokenizers/cl100k_base.tiktoken
# (or $KILN_FUZZ_TOKENIZER) and is skipped without it.
set -euo pipefail
cd "$(dirname "$0")/.."

total=120 per=0
if [ "${1:-}" = "--long" ]; then
    per=${2:?--long takes a number of seconds per target}
    shift 2
fi
CC=${CC:-clang}
if ! command -v "$CC" >/dev/null; then
    echo "fuzz.sh: $CC not found (libFuzzer needs clang)" >&2
    exit 1
fi

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Fuzz -DKILN_FUZZ=ON -DKILN_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_all

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets+=("${t#fuzz_}")
    done
fi
export KILN_FUZZ_TOKENIZER=${KILN_FUZZ_TOKENIZER:-$PWD/../shared/data/tokenizers/cl100k_base.tiktoken}
runnable=()
for t in "${targets[@]}"; do
    if [ ! -x "build-fuzz/tests/fuzz_$t" ]; then
        echo "fuzz.sh: no target fuzz_$t" >&2
        exit 1
    fi
    if [ "$t" = tokenizer ] && [ ! -r "$KILN_FUZZ_TOKENIZER" ]; then
        echo "fuzz.sh: skipping tokenizer ($KILN_FUZZ_TOKENIZER not found)"
        continue
    fi
    runnable+=("$t")
done
[ "$per" -gt 0 ] || per=$(( total / ${#runnable[@]} > 2 ? total / ${#runnable[@]} : 2 ))

# One thread per target: the machine is shared, and OpenMP pools only slow
# the readers down here. Leaks are checked (LeakSanitizer is on with ASan).
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
printf '%-12s %10s %10s  %s\n' target execs exec/s result
for t in "${runnable[@]}"; do
    dir=build-fuzz/fuzz-run/$t
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -r "tests/fuzz/corpus/$t/." "$dir/corpus/"
    dict=()
    case $t in
    config | pipeline | task) dict=(-dict=tests/fuzz/yaml.dict) ;;
    state | safetensors | manifest | jsonl | hf_json | template) dict=(-dict=tests/fuzz/json.dict) ;;
    esac
    rc=0
    "build-fuzz/tests/fuzz_$t" "$dir/corpus" "${dict[@]}" -max_total_time="$per" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
    repro=$(ls "$dir/artifacts" 2>/dev/null | head -1)
    if [ "$rc" -ne 0 ] || [ -n "$repro" ]; then
        failed=1
        printf '%-12s %10s %10s  FAILED (exit %d)\n' "$t" "${execs:--}" "${speed:--}" "$rc"
        grep -E -m1 -A25 '^==[0-9]+==ERROR|runtime error|ERROR: libFuzzer' "$dir/log" || tail -30 "$dir/log"
        for a in "$dir"/artifacts/*; do
            [ -e "$a" ] && echo "reproducer: $a   (rerun: build-fuzz/tests/fuzz_$t $a)"
        done
        echo "full log: $dir/log"
    else
        printf '%-12s %10s %10s  ok\n' "$t" "${execs:--}" "${speed:--}"
    fi
done
exit $failed
