#!/usr/bin/env bash
# The main example writes checkpoints and --resume continues where the last run stopped:
# one epoch, then a second run asked for two epochs resumes after the first and trains only one.
source "$(dirname "${BASH_SOURCE[0]}")/scratch_dir.sh"
exe=$1
"$exe" --epochs 1 --limit-train-batches 30 --root-dir "$dir" > "$dir/first.txt"
cat "$dir/first.txt"
test -f "$dir/checkpoints/last.ckpt"
grep -q "^30 optimizer steps" "$dir/first.txt"
# Both loggers wrote their files: a CSV with a header and rows, and TensorBoard event files.
head -1 "$dir/csv/version_0/metrics.csv" | grep -q "epoch"
test "$(wc -l < "$dir/csv/version_0/metrics.csv")" -gt 1
ls "$dir"/tensorboard/version_0/events.out.tfevents.* > /dev/null
"$exe" --epochs 2 --limit-train-batches 30 --root-dir "$dir" --resume > "$dir/second.txt"
cat "$dir/second.txt"
grep -q "^resumed from $dir/checkpoints/last.ckpt" "$dir/second.txt"
grep -q "^epoch 2/2" "$dir/second.txt"
if grep -q "^epoch 1/2" "$dir/second.txt"; then
  echo "the resumed run trained epoch 1 again" >&2
  exit 1
fi
grep -q "^60 optimizer steps" "$dir/second.txt"
test -f "$dir/csv/version_1/metrics.csv"  # the resumed run logs into a new version
echo "example_resume: passed"
