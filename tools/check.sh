#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite:
#   1. the release build (library, examples, tools, benchmarks, tests) and all its tests;
#   2. the event bus tests again under ASan+UBSan and under TSan.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
for preset in release asan tsan; do
  echo "== $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
