#!/usr/bin/env bash
# Build kiln with AddressSanitizer, LeakSanitizer and UBSan (gcc, -O1 -g) into
# build-asan/ and run the CTest suite there; any finding fails its test.
# The slow training test (label slow) is left out: at -O1 under ASan it would
# take most of CI's budget, and every code path it runs is run by the
# test_train_* tests on smaller models. docs/reliability.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cmake -S . -B build-asan -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug \
  -DKILN_SANITIZE=ON -DKILN_WERROR=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
# halt_on_error: the first finding ends the process with a failing status.
# Leaks only third-party libraries make are named in tests/lsan.supp.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:detect_stack_use_after_return=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
cd build-asan
ctest --output-on-failure --timeout 1200 -j"$(nproc)" -LE slow "$@"
