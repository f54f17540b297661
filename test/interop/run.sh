#!/usr/bin/env bash
# The `interop` test: Python writes (interop.py make), hookline reads and writes (test_core's
# `interop` suite), Python checks (interop.py check).
#   run.sh TEST_CORE INTEROP_PY WORK_DIR
# Python is Debian's /usr/bin/python3 with python3-torch (another python3 on PATH may lack torch),
# run without the sanitizer settings meant for our binaries. Exit 77 (skipped) without it.
set -euo pipefail
test_core=$1 script=$2 work=$3
python=/usr/bin/python3
py() { env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS -u TSAN_OPTIONS \
  "$python" "$script" "$@"; }
if ! env -u LD_PRELOAD "$python" -c "import torch" 2>/dev/null; then
  echo "interop: SKIPPED: $python cannot import torch (tools/install-deps.sh --test installs python3-torch)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
py make "$work"
"$test_core" --run_test=interop --report_level=short -- --interop-dir="$work"
py check "$work"
