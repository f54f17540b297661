#!/usr/bin/env bash
# The examples' command lines (issue 29 item 8): --help and --version exit 0 without training;
# an unknown option, a missing value or a bad value is refused with the option named and exit
# status 2, before anything trains.
set -uo pipefail
fashion_mnist=$1
ddp=$2
recipe=$3
readme_example=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
failures=0
fail() {
  echo "FAIL: $*"
  echo "--- stdout"; cat out.txt
  echo "--- stderr"; cat err.txt
  failures=$((failures + 1))
}

# expect_exit STATUS TEXT COMMAND...: COMMAND exits STATUS, its output holds TEXT, nothing
# trained (no run directory, no progress or epoch lines).
expect_exit() {
  local want=$1 text=$2
  shift 2
  local status=0
  "$@" > out.txt 2> err.txt < /dev/null || status=$?
  if [ "$status" -ne "$want" ]; then
    fail "$* exited $status, expected $want"
  elif ! grep -qF -- "$text" out.txt err.txt; then
    fail "$* did not say '$text'"
  elif grep -qE "Epoch [0-9]|optimizer steps|train_loss" out.txt err.txt || [ -n "$(ls -A | grep -v '^out.txt$\|^err.txt$')" ]; then
    fail "$* trained or wrote files"
  else
    echo "ok: $* -> $status"
  fi
}

for exe in "$fashion_mnist" "$ddp" "$recipe" "$readme_example"; do
  name=$(basename "$exe")
  expect_exit 0 "Usage:" "$exe" --help
  expect_exit 0 "Usage:" "$exe" -h
  expect_exit 0 "$name (hookline " "$exe" --version
  expect_exit 2 "--bogus" "$exe" --bogus
  expect_exit 2 "--bogus" "$exe" --bogus=3
done

# Bad values and missing values, the option named.
expect_exit 2 "--devices: expected a positive integer, got 'abc'" "$ddp" --devices abc
expect_exit 2 "--devices" "$ddp" --devices
expect_exit 2 "--devices" "$ddp" --devices 0
expect_exit 2 "--limit-train-batches: expected a positive integer (a number of batches), got '0.5'" \
  "$ddp" --limit-train-batches 0.5
expect_exit 2 "--epochs" "$ddp" --epochs -1
expect_exit 2 "--epochs" "$fashion_mnist" --epochs 0
expect_exit 2 "--epochs" "$fashion_mnist" --epochs
expect_exit 2 "--batch-size" "$fashion_mnist" --batch-size many
expect_exit 2 "--limit-train-batches: expected a number of batches > 0 or a fraction in (0, 1], got '1.5'" \
  "$fashion_mnist" --limit-train-batches 1.5
expect_exit 2 "--limit-train-batches" "$fashion_mnist" --limit-train-batches 0
expect_exit 2 "--threads" "$fashion_mnist" --threads=x
expect_exit 2 "--data-dir" "$recipe" --data-dir
expect_exit 2 "extra.yaml" "$recipe" a.yaml extra.yaml

if [ "$failures" -ne 0 ]; then
  echo "$failures failed"
  exit 1
fi
echo "all command lines behaved"
