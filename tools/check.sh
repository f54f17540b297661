#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite:
#   1. the release build (library, examples, tools, benchmarks, tests) and all its tests;
#   2. the event bus tests again under ASan+UBSan and under TSan;
#   3. the fuzz targets (clang, libFuzzer + ASan/UBSan): each replays its seed corpus, then fuzzes
#      for HOOKLINE_FUZZ_SECONDS (30 s unless the build cache says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
for preset in release asan tsan fuzz; do
  echo "== $preset"
  # The release build compiles in unity batches (several sources per compiler run, each paying
  # once for the 600 MB precompiled LibTorch header): about 12 minutes instead of 18 on 2 cores.
  unity=()
  [ "$preset" = release ] && unity=(-DCMAKE_UNITY_BUILD=ON)
  cmake --preset "$preset" "${unity[@]}" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
