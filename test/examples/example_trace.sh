#!/usr/bin/env bash
# The main example's --trace (issue 29 item 5) goes through the same front end as HOOKLINE_TRACE:
# the file passes `hookline-trace check` and its records carry durations.
source "$(dirname "${BASH_SOURCE[0]}")/scratch_dir.sh"
exe=$1
tool=$2
cd "$dir"
"$exe" --epochs 1 --limit-train-batches 20 --root-dir run --trace t.jsonl > out.txt
cat out.txt
grep -q "^trace: [0-9]* lines written to t.jsonl" out.txt
"$tool" check t.jsonl
# Durations: emission records with a positive duration_ns, and a summary that is not all zeros.
grep -q '"duration_ns":[1-9]' t.jsonl
"$tool" summary t.jsonl > summary.txt
cat summary.txt
grep -q "training_step" summary.txt
# A spec works too, as HOOKLINE_TRACE takes it: JSON lines and a Chrome trace.
"$exe" --epochs 1 --limit-train-batches 5 --root-dir run2 --trace "s.jsonl,chrome:s.json" > out2.txt
"$tool" check s.jsonl
test -s s.json
