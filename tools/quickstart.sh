#!/usr/bin/env bash
# Installs what is missing, builds the main example and trains it on Fashion-MNIST (from the
# Debian package dataset-fashion-mnist: no download). Extra arguments go to the example,
# e.g. `bash tools/quickstart.sh --epochs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target fashion_mnist
./build/release/examples/fashion_mnist "$@"
