#!/usr/bin/env bash
# Installs what is missing, builds the main example and trains it on Fashion-MNIST (from the
# Debian package dataset-fashion-mnist: no download). Extra arguments go to the example,
# e.g. `bash tools/quickstart.sh --epochs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
# Only the library and the example: no tests, benchmarks or tools (the test command builds those
# in the same tree, so nothing is compiled twice).
cmake --preset release -DHOOKLINE_BUILD_TESTS=OFF -DHOOKLINE_BUILD_BENCH=OFF \
  -DHOOKLINE_BUILD_TOOLS=OFF >/dev/null
cmake --build --preset release --target fashion_mnist
./build/release/examples/fashion_mnist "$@"
