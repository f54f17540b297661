#!/usr/bin/env bash
# The examples' command lines (issue 29 item 8 and the LightningCLI of "what a user reaches for
# next"): --help and --version exit 0 without training; an unknown option, a missing value or a
# bad value is refused with the option named and exit status 2, before anything trains; recipe
# overrides (--trainer.*, --model.*, --data.*, --callbacks+=/-=) reach the run, and
# --print-config writes a recipe that loads back to the same run.
set -uo pipefail
fashion_mnist=$1
ddp=$2
recipe=$3
readme_example=$4
dir=$(mktemp -d)
conf=$(mktemp -d)  # recipe files the commands read (outside $dir, where nothing may be written)
trap 'rm -rf "$dir" "$conf"' EXIT
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

# Bad values and missing values, the option named (hookline::Cli: every recipe key is an option,
# --epochs and friends are aliases of keys; a bad value names the argument and the key).
expect_exit 2 "--devices abc: trainer.devices: expected an integer, got 'abc'" "$ddp" --devices abc
expect_exit 2 "--devices needs a value" "$ddp" --devices
expect_exit 2 "--devices 0: trainer.devices: TrainerOptions::devices(0) is invalid" "$ddp" --devices 0
expect_exit 2 "--limit-train-batches 1.5: trainer.limit_train_batches:" "$ddp" --limit-train-batches 1.5
expect_exit 2 "--epochs -2: trainer.max_epochs:" "$ddp" --epochs -2
expect_exit 2 "--epochs needs a value" "$fashion_mnist" --epochs
expect_exit 2 "--batch-size many: data.batch_size: expected an integer, got 'many'" \
  "$fashion_mnist" --batch-size many
expect_exit 2 "--batch-size 0: data.batch_size: expected a positive integer" \
  "$fashion_mnist" --batch-size 0
expect_exit 2 "--limit-train-batches 1.5: trainer.limit_train_batches: TrainerOptions::limit_train_batches" \
  "$fashion_mnist" --limit-train-batches 1.5
expect_exit 2 "--threads=x: trainer.num_threads: expected an integer, got 'x'" "$fashion_mnist" --threads=x
expect_exit 2 "--trainer.max_epochs=abc: trainer.max_epochs: expected an integer, got 'abc'" \
  "$fashion_mnist" --trainer.max_epochs=abc
expect_exit 2 "--trainer.precision 16: trainer.precision: expected a precision" \
  "$fashion_mnist" --trainer.precision 16
expect_exit 2 "unknown option 'fast_dev_rn' for the trainer" "$fashion_mnist" --trainer.fast_dev_rn=1
expect_exit 2 "--model.lr=-1: model.lr: expected a learning rate > 0" "$fashion_mnist" --model.lr=-1
expect_exit 2 "--model.hiden=3: model.hiden: unknown option 'hiden'" "$fashion_mnist" --model.hiden=3
expect_exit 2 "did you mean 'EarlyStopping'?" "$fashion_mnist" "--callbacks+=EarlyStoping:{monitor: val_loss}"
expect_exit 2 "no callback or pack 'Nope'" "$fashion_mnist" --callbacks-=Nope
printf 'trainer:\n  max_epochs: 2\n  limit_val_batchs: 3\n' > "$conf/bad.yaml"
expect_exit 2 "$conf/bad.yaml:3:3: trainer.limit_val_batchs: unknown option 'limit_val_batchs'" \
  "$fashion_mnist" --config "$conf/bad.yaml" --trainer.max_steps=5
expect_exit 2 "--data-dir needs a value" "$recipe" --data-dir
expect_exit 2 "extra.yaml" "$recipe" a.yaml extra.yaml
expect_exit 2 "--model.class=Nope: model.class: unknown model 'Nope'" "$recipe" --model.class=Nope

# --help lists every option, with the value in effect (the overrides given count). One run of
# --help is read for all of them (each program start costs LibTorch's ~0.7 s).
"$fashion_mnist" --help > out.txt 2> err.txt
for option in --trainer.fast_dev_run --trainer.max_steps --trainer.precision \
  --trainer.limit_val_batches --trainer.accumulate_grad_batches --model.lr --model.hidden \
  --data.batch_size --data.data_dir "--callbacks+=NAME" --print-config --resume; do
  grep -qF -- "$option" out.txt || fail "fashion_mnist --help does not list $option"
done
expect_exit 0 "--trainer.devices" "$ddp" --help
expect_exit 0 "RECIPE" "$recipe" --help
"$fashion_mnist" --epochs 7 --help > out.txt 2> err.txt
if ! grep -qE -- "--trainer.max_epochs +integer +7$" out.txt; then fail "--help does not show max_epochs 7"; fi

# --print-config writes the merged recipe; it loads back (--config) to the same recipe, and a run
# from it takes further overrides. (The recipe files go to $conf: nothing may appear in $dir.)
expect_exit 0 "class: Perceptron" "$recipe" --print-config
expect_exit 0 "devices: 3" "$ddp" --devices 3 --print-config
expect_exit 0 "max_epochs: 3" "$fashion_mnist" --epochs 3 --model.lr=0.02 \
  "--callbacks+=EarlyStopping:{monitor: val_loss, patience: 1}" --print-config
cp out.txt "$conf/run.yaml"
for text in "lr: 0.02" "class: FashionClassifier" "EarlyStopping: {monitor: val_loss, patience: 1}"; do
  grep -qF -- "$text" "$conf/run.yaml" || fail "--print-config did not write '$text'"
done
expect_exit 0 "max_epochs: 3" "$fashion_mnist" --config "$conf/run.yaml" --print-config
diff "$conf/run.yaml" out.txt > /dev/null ||
  { fail "the printed recipe did not load back the same"; diff "$conf/run.yaml" out.txt; }
# A run from the printed recipe with overrides on top: the epoch and batch limits reach the
# trainer, the model trains with lr 0.02 (the added EarlyStopping finds its val_loss).
if "$fashion_mnist" --config "$conf/run.yaml" --trainer.max_epochs=1 --trainer.limit_train_batches=3 \
  --trainer.limit_val_batches=2 --trainer.limit_test_batches=2 --root-dir "$conf/run" > out.txt 2> err.txt; then
  grep -q "^3 optimizer steps" out.txt || fail "--trainer.limit_train_batches=3 did not give 3 steps"
  grep -q "lr 0.02 " out.txt || fail "--model.lr=0.02 did not reach the optimizer"
else
  fail "the run from run.yaml failed"
fi
rm -f out.txt err.txt

if [ "$failures" -ne 0 ]; then
  echo "$failures failed"
  exit 1
fi
echo "all command lines behaved"
