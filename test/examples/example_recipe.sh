#!/usr/bin/env bash
# The recipe example: trains with the shipped recipes, and a bad recipe gives its error with the
# file, line and key and exit status 2 before anything trains.
set -euo pipefail
exe=$1
recipes=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"

# The default recipe: classification_defaults (best + last checkpoint, early stopping, LR
# monitor) and a Timer; CSV logs.
"$exe" > default.txt
cat default.txt
grep -q "^recipe $recipes/fashion_mnist.yaml: " default.txt
grep -q "callback defaults/ModelCheckpoint{" default.txt
grep -q "callback defaults/EarlyStopping{" default.txt
grep -q "callback Timer" default.txt
test -f recipe_run/checkpoints/last.ckpt
ls recipe_run/checkpoints/epoch=*.ckpt > /dev/null
head -1 recipe_run/lightning_logs/version_0/metrics.csv | grep -q "lr-Adam"

# A recipe with a pack defined in the file, and the debugging pack.
"$exe" "$recipes/debugging.yaml" > debugging.txt
cat debugging.txt
grep -q "callback debugging/AnomalyDetection" debugging.txt
grep -q "callback watch/Timer" debugging.txt
grep -q "50 optimizer steps" debugging.txt

# A bad recipe: exit status 2, and the message names the file, line, column and key.
cat > bad.yaml <<'YAML'
trainer:
  max_epochs: 2
callbacks:
  - EarlyStopping:
      monitor: val_loss
      patiense: 3
YAML
status=0
"$exe" bad.yaml > bad.out 2> bad.err || status=$?
cat bad.err
test "$status" -eq 2
grep -q "^recipe: bad.yaml:6:7: callbacks\[0\].EarlyStopping.patiense: unknown option 'patiense'" bad.err
test ! -s bad.out
echo "example_recipe: passed"
