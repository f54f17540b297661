#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite:
#   1. the release build (library, examples, tools, benchmarks, tests) and all its tests;
#   2. with clang under ASan+UBSan, at -O0: the whole test suite again, and the fuzz targets
#      (libFuzzer): each replays its seed corpus, then fuzzes for HOOKLINE_FUZZ_SECONDS (20 s by
#      default). At -O0 it compiles in under half the CPU time of -O1, and the tests (their heavy
#      work is in LibTorch, which is not instrumented) take about as long;
#   3. with clang under TSan: the whole test suite again but the cases labelled process_faults
#      (LibTorch itself is not instrumented). GCC builds everything in step 1, at -O3.
# Each build's tests run while the next build compiles: the tests keep about one core busy (they
# wait on child processes and on each other), the compiler keeps both. Their output is printed
# when they end; the command fails if a build or any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh --test

status=0
tests_pid=""
tests_preset=""
trap '[[ -n "$tests_pid" ]] && kill "$tests_pid" 2>/dev/null; true' EXIT

# Waits for the tests started last, prints their output and records a failure.
finish_tests() {
  [[ -z "$tests_pid" ]] && return 0
  local result=0
  wait "$tests_pid" || result=$?
  tests_pid=""
  echo "== $tests_preset tests"
  cat "build/$tests_preset/check-tests.log"
  if ((result != 0)); then
    echo "== $tests_preset tests FAILED (exit code $result)"
    status=1
  fi
}

for preset in release asan tsan; do
  echo "== $preset build"
  # Unity batches: the library and test_core compile as two large batches each, every other
  # program as one (each compiler run pays once for LibTorch's header and inline code).
  cmake --preset "$preset" -DCMAKE_UNITY_BUILD=ON >/dev/null
  cmake --build --preset "$preset"
  finish_tests
  # Two tests at a time: the long core runner beside the examples, tools and fuzzers.
  ctest --preset "$preset" -j2 >"build/$preset/check-tests.log" 2>&1 &
  tests_pid=$!
  tests_preset=$preset
done
finish_tests
exit "$status"
