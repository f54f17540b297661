#!/usr/bin/env bash
# The main example's CNN on augmented images made by 2 workers, read from an image folder it
# writes once (root/<split>/<class>/<n>.png, issue 32 item 5): a short run trains and tests, the
# folder has the ten classes, and a second run reads the folder without writing it again.
source "$(dirname "${BASH_SOURCE[0]}")/scratch_dir.sh"
exe=$1
run() {
  "$exe" --cnn --image-folder "$dir/png" --epochs 1 --limit-train-batches 4 \
    --trainer.limit_val_batches=2 --trainer.limit_test_batches=2 --root-dir "$dir/run" "$@"
}
run > "$dir/first.txt"
cat "$dir/first.txt"
grep -q "^4 optimizer steps" "$dir/first.txt"
grep -q "^test_acc " "$dir/first.txt"
for split in train val test; do
  test -f "$dir/png/$split/.complete"
  test "$(ls "$dir/png/$split" | wc -l)" -eq 10
done
test "$(ls "$dir/png/train/9_ankle_boot" | wc -l)" -gt 4000
test "$(ls "$dir/png/test/0_tshirt_top" | wc -l)" -eq 1000
# Written once: the second run leaves the files as they are.
before=$(stat -c %Y "$dir/png/train/.complete")
sleep 1
run --workers 1 > "$dir/second.txt"
grep -q "^4 optimizer steps" "$dir/second.txt"
test "$(stat -c %Y "$dir/png/train/.complete")" = "$before"
echo "example_image_folder: passed"
