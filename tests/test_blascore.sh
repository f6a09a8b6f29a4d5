#!/usr/bin/env bash
# test_blascore.sh KILN SHIM: where OpenBLAS fell back to its generic Prescott
# kernels (faked by tests/fault/blascore.c), kiln runs itself again with the
# kernels the CPU's instruction sets allow, and says so; a core the user chose
# with OPENBLAS_CORETYPE is kept (issue 13).
KILN=$1 SHIM=$2
# an ASan build (scripts/sanitize.sh) accepts a preloaded library ahead of its runtime
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
flags=$(grep -m1 '^flags' /proc/cpuinfo)
want=""
if [[ $flags =~ avx512f && $flags =~ avx512bw && $flags =~ avx512dq && $flags =~ avx512vl ]]; then want=SkylakeX
elif [[ $flags =~ avx2 && $flags =~ fma ]]; then want=Haswell; fi

out=$(env -u OPENBLAS_CORETYPE LD_PRELOAD="$SHIM" "$KILN" env)
got=$(sed -n 's/^kernels: *//p' <<<"$out")
if [ -n "$want" ]; then
  [[ $got == "$want (set by kiln: OpenBLAS picked its generic Prescott kernels"* ]] &&
    ok "Prescott replaced by $want" || bad "Prescott fallback: kernels: $got (want $want)"
else
  [[ $got == "Prescott (picked by OpenBLAS"* ]] && ok "no better kernels here: Prescott kept" || bad "kernels: $got"
fi
out=$(OPENBLAS_CORETYPE=Prescott LD_PRELOAD="$SHIM" "$KILN" env)
[[ $(sed -n 's/^kernels: *//p' <<<"$out") == "Prescott (OPENBLAS_CORETYPE=Prescott in the environment)" ]] &&
  ok "the user's OPENBLAS_CORETYPE is kept" || bad "user's core: $out"
# without the shim: OpenBLAS's own choice is kept, unless it is itself a
# fallback (Debian's 0.3.21 on a Xeon newer than it knows, issue 13)
out=$(env -u OPENBLAS_CORETYPE "$KILN" env)
got=$(sed -n 's/^kernels: *//p' <<<"$out")
if [[ $got == *"(picked by OpenBLAS for this CPU)" && $got != Prescott* ]]; then
  ok "OpenBLAS's own choice is kept where it is not a fallback: $got"
elif [ -n "$want" ] && [[ $got == "$want (set by kiln: OpenBLAS picked its generic"* ]]; then
  ok "OpenBLAS itself fell back on this CPU, and kiln runs $want: $got"
else
  bad "own choice: $out"
fi
exit $((fails > 0))
