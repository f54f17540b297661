// hookline: the fit loop: when fitting is done, the sanity check, epochs of training.
#include "hookline/core/trainer.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/restore.hpp"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>

#include <chrono>
#include <string>

namespace hookline {

bool Trainer::can_stop_early() const {
  const std::int64_t min_epochs = options_.min_epochs().value_or(options_.min_steps() > 0 ? 1 : 0);
  return current_epoch_ >= min_epochs &&
         (options_.min_steps() < 0 || global_step_ >= options_.min_steps());
}

bool Trainer::time_is_up() const {
  return options_.max_time() &&
         std::chrono::steady_clock::now() - fit_started_ >= *options_.max_time();
}

bool Trainer::fit_done() const {
  if (options_.max_steps() >= 0 && global_step_ >= options_.max_steps()) return true;
  const std::int64_t max_epochs = options_.fast_dev_run() > 0 ? 1 : options_.effective_max_epochs();
  if (max_epochs >= 0 && current_epoch_ >= max_epochs) return true;
  return should_stop_ && can_stop_early();
}

bool Trainer::should_check_val_epoch() const {
  return (current_epoch_ + 1) % options_.check_val_every_n_epoch() == 0;
}

void Trainer::run_sanity_check() {
  const bool val_limited_away = !options_.limit_val_batches().positive();
  if (options_.num_sanity_val_steps() == 0 || options_.fast_dev_run() > 0 || val_limited_away)
    return;
  sanity_checking_ = true;
  metrics_.reset_results(Phase::validation);
  metrics_.reset_metrics();
  // The sanity check must not change the random stream training will see.
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  const at::Tensor rng_state = generator.get_state();
  SanityCheckStart start;
  emit(start);
  evaluation_loop(EvalKind::validation, true);
  SanityCheckEnd end;
  emit(end);
  generator.set_state(rng_state);
  metrics_.reset_results(Phase::validation);
  metrics_.reset_metrics();
  sanity_checking_ = false;
}

void Trainer::fit_loop() {
  ensure_train_loader();
  resume_loader();
  if (restore_) restore_->committed = true;  // from here on a failure is the run's, not the file's
  if (fit_done() || num_training_batches_ == 0) {
    finish_restore();
    return;
  }
  if (!val_loaders_requested_ && should_check_val_epoch() &&
      options_.limit_val_batches().positive())
    ensure_val_loaders();
  fit_started_ = std::chrono::steady_clock::now();
  training_ = true;
  TrainStart start;
  emit(start);
  // A checkpoint saved during on_train_epoch_end resumes after that epoch's hooks.
  if (restore_ && restore_->progress.epoch_end_done) {
    resume_epoch();
    finish_restore();
    end_epoch();
  }
  while (!fit_done()) train_epoch();
  if (options_.max_steps() >= 0 && global_step_ >= options_.max_steps())
    console().info("`Trainer.fit` stopped: `max_steps={}` reached.", options_.max_steps());
  else if (options_.effective_max_epochs() >= 0 &&
           current_epoch_ >= options_.effective_max_epochs())
    console().info("`Trainer.fit` stopped: `max_epochs={}` reached.",
                   options_.effective_max_epochs());
  TrainEnd end;
  emit(end);
  training_ = false;
}

void Trainer::train_epoch() {
  const bool resuming = restore_ != nullptr;
  const std::int64_t reload = options_.reload_dataloaders_every_n_epochs();
  if (!resuming && reload > 0 && current_epoch_ > 0 && current_epoch_ % reload == 0) {
    train_loaders_.clear();
    val_loaders_.clear();
    val_loaders_requested_ = false;
    ensure_train_loader();
  }
  data::DataLoader& loader = *train_loaders_[0];
  loader.set_epoch(current_epoch_);
  TrainEpochStart start;
  emit(start);
  agree();  // DDP: a stop asked for in on_train_epoch_start holds on every rank
  // A checkpoint saved part-way through this epoch continues from its position.
  if (!resume_epoch()) progress_ = EpochProgress{};
  finish_restore();

  bool done = false;
  if (progress_.tail_pending) {
    const std::int64_t batch_idx = progress_.batches_done - 1;
    finish_training_batch(batch_idx);
    done = end_of_batch(batch_idx);
  }
  // A stop requested before the first batch (e.g. in on_train_epoch_start) runs no batch.
  if (!done && progress_.batches_done < num_training_batches_ &&
      !(should_stop_ && can_stop_early())) {
    for (auto it = loader.begin(); it != loader.end(); ++it) {
      check_signal();
      const std::int64_t batch_idx = progress_.batches_done;
      if (batch_idx >= num_training_batches_) break;
      const bool is_last = batch_idx == num_training_batches_ - 1;
      Batch batch = it.take();
      if (!run_training_batch(batch, batch_idx, is_last)) break;
      if (end_of_batch(batch_idx)) break;
    }
  }

  metrics_.epoch_end_reached();
  progress_.epoch_end_done = true;
  TrainEpochEnd end;
  emit(end);
  end_epoch();
}

// After a batch and its tail: whether the epoch ends here.
bool Trainer::end_of_batch(std::int64_t batch_idx) {
  agree();  // DDP: a stop asked for on any rank (a hook, max_time, validation) holds on all
  const bool is_last = batch_idx == num_training_batches_ - 1;
  progress_.reached_last_batch = is_last;
  if (options_.max_steps() >= 0 && global_step_ >= options_.max_steps()) return true;
  if (should_stop_) {
    if (can_stop_early()) return true;
    if (!min_stop_warned_) {
      min_stop_warned_ = true;
      console().warn(
          "Trainer was signaled to stop but the required `min_epochs={}` or `min_steps={}` has "
          "not been met. Training will continue...",
          options_.min_epochs().value_or(options_.min_steps() > 0 ? 1 : 0),
          options_.min_steps() < 0 ? std::string("None") : std::to_string(options_.min_steps()));
    }
  }
  return is_last;
}

// What follows on_train_epoch_end: the epoch-interval plateau schedulers, the epoch count.
void Trainer::end_epoch() {
  metrics_.on_epoch_end(Phase::train);
  if (progress_.reached_last_batch) update_lr_schedulers(Interval::epoch, 0, true);
  // The epoch values go to the loggers at the step of the epoch's last batch, as in Lightning.
  --batches_that_stepped_;
  send_metrics(metrics_.logger_values(Phase::train));
  ++batches_that_stepped_;
  metrics_.reset_results(Phase::train);
  ++current_epoch_;
  // Between epochs (and after the fit): a checkpoint saved now starts the next epoch afresh.
  progress_ = EpochProgress{};
  post_pending_rows();
  bus_.flush();
  agree();  // DDP: EarlyStopping & co. at on_train_epoch_end stop every rank
}

}  // namespace hookline
