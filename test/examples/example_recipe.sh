#!/usr/bin/env bash
# The recipe example: trains with the shipped recipes, and a bad recipe gives its error with the
# file, line and key and exit status 2 before anything trains.
source "$(dirname "${BASH_SOURCE[0]}")/scratch_dir.sh"
exe=$1
recipes=$2
cd "$dir"

# Runs the example on $1.yaml, which it must refuse with exit status 2; output in $1.out, $1.err.
refused() {
  local status=0
  "$exe" "$1.yaml" > "$1.out" 2> "$1.err" || status=$?
  cat "$1.err"
  test "$status" -eq 2
}

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

# Command-line overrides on top of the recipe (hookline::Cli): trainer options, the model's
# options, a callback removed and one added.
"$exe" "$recipes/fashion_mnist.yaml" --trainer.max_epochs=1 --trainer.limit_train_batches=5 \
  --trainer.limit_val_batches=2 --model.hidden=32 --callbacks-=Timer \
  "--callbacks+=ModelSummary:{max_depth: 2}" > override.txt
cat override.txt
grep -q "^recipe $recipes/fashion_mnist.yaml: 1 epochs, 5 optimizer steps" override.txt
grep -q "callback ModelSummary" override.txt
if grep -q "callback Timer" override.txt; then
  echo "--callbacks-=Timer left the Timer" >&2
  exit 1
fi

# A model option the factory does not know, in a file: its line and column.
cat > bad_model.yaml <<'YAML'
model:
  class: Perceptron
  hiden: 32
YAML
refused bad_model
grep -q "^recipe: bad_model.yaml:3:3: model.hiden: unknown option 'hiden' for 'Perceptron'" bad_model.err

# A bad recipe: exit status 2, and the message names the file, line, column and key.
cat > bad.yaml <<'YAML'
trainer:
  max_epochs: 2
callbacks:
  - EarlyStopping:
      monitor: val_loss
      patiense: 3
YAML
refused bad
grep -q "^recipe: bad.yaml:6:7: callbacks\[0\].EarlyStopping.patiense: unknown option 'patiense'" bad.err
test ! -s bad.out
echo "example_recipe: passed"
