# Sourced by the example tests: strict mode, and a scratch directory $dir removed at exit.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
