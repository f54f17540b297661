#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite:
#   1. the release build (library, examples, tools, benchmarks, tests) and all its tests;
#   2. with clang under ASan+UBSan: the whole test suite again, and the fuzz targets (libFuzzer):
#      each replays its seed corpus, then fuzzes for HOOKLINE_FUZZ_SECONDS (20 s by default);
#   3. with gcc under TSan: the whole test suite again (LibTorch itself is not instrumented).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh --test
for preset in release asan tsan; do
  echo "== $preset"
  # The LibTorch builds compile in unity batches (several sources per compiler run, each paying
  # once for the 600 MB precompiled LibTorch header): 8 minutes instead of 18 for release.
  cmake --preset "$preset" -DCMAKE_UNITY_BUILD=ON >/dev/null
  cmake --build --preset "$preset"
  # Two tests at a time: the long core runner beside the examples, tools and fuzzers.
  ctest --preset "$preset" -j2
done
