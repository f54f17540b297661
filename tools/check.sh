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
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
