#include "hookline/core/loops/training_epoch_loop.hpp"

#include "hookline/core/console.hpp"
#include "hookline/core/data/dataloader.hpp"
#include "hookline/core/loops/checkpoint_connector.hpp"

#include <numeric>
#include <stdexcept>
#include <string>

namespace hookline {

void TrainingEpochLoop::start() {
  started_ = std::chrono::steady_clock::now();
  min_stop_warned_ = false;
}

bool TrainingEpochLoop::can_stop_early() const {
  const std::int64_t min_epochs =
      c_.options.min_epochs().value_or(c_.options.min_steps() > 0 ? 1 : 0);
  return c_.progress.current_epoch >= min_epochs &&
         (c_.options.min_steps() < 0 || c_.progress.global_step >= c_.options.min_steps());
}

bool TrainingEpochLoop::time_is_up() const {
  return c_.options.max_time() &&
         std::chrono::steady_clock::now() - started_ >= *c_.options.max_time();
}

void TrainingEpochLoop::run() {
  const std::int64_t reload = c_.options.reload_dataloaders_every_n_epochs();
  const std::int64_t epoch = c_.progress.current_epoch;
  if (!c_.checkpoint.restoring() && reload > 0 && epoch > 0 && epoch % reload == 0)
    c_.data.reload_train_and_val();
  data::DataLoader& loader = c_.data.train_loader();
  loader.set_epoch(c_.progress.current_epoch);
  TrainEpochStart start;
  c_.hooks.emit(start);
  c_.signals.agree();  // DDP: a stop asked for in on_train_epoch_start holds on every rank
  // A checkpoint saved part-way through this epoch continues from its position.
  if (!c_.checkpoint.resume_epoch()) c_.epoch = EpochProgress{};
  c_.checkpoint.finish_restore();

  bool done = false;
  if (c_.epoch.tail_pending) {
    const std::int64_t batch_idx = c_.epoch.batches_done - 1;
    finish_batch(batch_idx);
    done = end_of_batch(batch_idx);
  }
  // A stop requested before the first batch (e.g. in on_train_epoch_start) runs no batch.
  if (!done && c_.epoch.batches_done < c_.data.num_training_batches() &&
      !(c_.state.should_stop && can_stop_early())) {
    for (auto it = loader.begin(); it != loader.end(); ++it) {
      c_.signals.check();
      const std::int64_t batch_idx = c_.epoch.batches_done;
      if (batch_idx >= c_.data.num_training_batches()) break;
      const bool is_last = batch_idx == c_.data.num_training_batches() - 1;
      Batch batch = it.take();
      if (!run_batch(batch, batch_idx, is_last)) break;
      if (end_of_batch(batch_idx)) break;
    }
  }

  c_.metrics.epoch_end_reached();
  c_.epoch.epoch_end_done = true;
  TrainEpochEnd end;
  c_.hooks.emit(end);
  end_epoch();
}

bool TrainingEpochLoop::end_of_batch(std::int64_t batch_idx) {
  c_.signals
      .agree();  // DDP: a stop asked for on any rank (a hook, max_time, validation) holds on all
  const bool is_last = batch_idx == c_.data.num_training_batches() - 1;
  c_.epoch.reached_last_batch = is_last;
  if (c_.options.max_steps() >= 0 && c_.progress.global_step >= c_.options.max_steps()) return true;
  if (c_.state.should_stop) {
    if (can_stop_early()) return true;
    if (!min_stop_warned_) {
      min_stop_warned_ = true;
      console().warn(
          "Trainer was signaled to stop but the required `min_epochs={}` or `min_steps={}` has "
          "not been met. Training will continue...",
          c_.options.min_epochs().value_or(c_.options.min_steps() > 0 ? 1 : 0),
          c_.options.min_steps() < 0 ? std::string("None")
                                     : std::to_string(c_.options.min_steps()));
    }
  }
  return is_last;
}

void TrainingEpochLoop::end_epoch() {
  c_.metrics.on_epoch_end(Phase::train);
  if (c_.epoch.reached_last_batch) update_lr_schedulers(Interval::epoch, 0, true);
  // The epoch values go to the loggers at the step of the epoch's last batch, as in Lightning.
  c_.logger.update_train_epoch_metrics();
  c_.metrics.reset_results(Phase::train);
  ++c_.progress.current_epoch;
  // Between epochs (and after the fit): a checkpoint saved now starts the next epoch afresh.
  c_.epoch = EpochProgress{};
  c_.logger.post_pending_rows();
  c_.hooks.bus().flush();
  c_.signals.agree();  // DDP: EarlyStopping & co. at on_train_epoch_end stop every rank
}

bool TrainingEpochLoop::run_batch(Batch& batch, std::int64_t batch_idx, bool is_last) {
  batch = c_.data.transfer(std::move(batch), 0);
  c_.logger.set_batch_size(batch.batch_size());
  c_.metrics.on_batch_start(Phase::train, std::nullopt);

  // A stop and a skip are two axes: a StopFit (already in should_stop, which agree() reduces
  // too) does not hide a skip given beside it, and both apply, as in Lightning, where a callback's
  // should_stop and the module's -1 on the same batch skip it and then stop.
  Action skip = Action::Continue;
  if (c_.hooks.wants<TrainBatchStart>()) {  // its default does nothing
    TrainBatchStart start;
    start.batch = std::move(batch);
    start.batch_idx = batch_idx;
    skip = c_.hooks.emit(start).skip_action();
    batch = std::move(start.batch);
  }
  skip = c_.signals.agree(skip);  // every rank agrees, whether or not it emitted
  if (skip == Action::SkipRestOfEpoch) return false;

  const std::int64_t steps_before = c_.progress.global_step;
  const bool runs = skip != Action::SkipBatch;
  const bool automatic = c_.hooks.module()->automatic_optimization();
  StepOutput outputs;
  if (!runs) {
    if (automatic) automatic_.skip(batch_idx, is_last);
  } else if (!automatic) {
    manual_.run(batch, batch_idx, outputs);
  } else if (automatic_.run(batch, batch_idx, is_last, outputs)) {
    update_lr_schedulers(Interval::step, batch_idx, false);
  }
  // Lightning steps the epoch-interval schedulers once the epoch's batches are done, whether or
  // not the last one stepped (a skipped last batch included).
  if (is_last) update_lr_schedulers(Interval::epoch, batch_idx, false);
  // From here a checkpoint resumes after this batch (see finish_batch).
  c_.epoch.batches_done = batch_idx + 1;
  c_.epoch.tail_pending = true;
  c_.epoch.last_ran_step = runs;
  c_.epoch.last_stepped = c_.progress.global_step != steps_before;
  c_.epoch.validated = false;
  if (runs) {
    TrainBatchEnd end;
    end.outputs = std::move(outputs);
    end.batch = std::move(batch);
    end.batch_idx = batch_idx;
    c_.hooks.emit(end);
  }
  finish_batch(batch_idx);
  return true;
}

void TrainingEpochLoop::finish_batch(std::int64_t batch_idx) {
  const bool is_last = batch_idx == c_.data.num_training_batches() - 1;
  const std::int64_t n = c_.hooks.module()->automatic_optimization()
                             ? c_.options.accumulate_grad_batches()
                             : std::int64_t{1};
  const bool accumulating = (batch_idx + 1) % n != 0 && !is_last;
  c_.logger.update_train_step_metrics(accumulating);
  const bool stepped = c_.epoch.last_stepped;
  if (time_is_up()) c_.state.set_should_stop(true, "max_time reached");

  const bool stop_requested = c_.state.should_stop && can_stop_early();
  // Validation is on unless limited away or known to have no batches (loaders not requested yet
  // count as present: they are requested inside the first validation run, as in Lightning).
  const bool val_enabled = c_.options.limit_val_batches().positive() &&
                           (!c_.data.val_loaders_requested() ||
                            std::accumulate(c_.data.num_val_batches().begin(),
                                            c_.data.num_val_batches().end(), std::int64_t{0}) > 0);
  if (!c_.epoch.validated && val_enabled && should_check_val_epoch() &&
      ((batch_idx + 1) % c_.data.val_check_batch() == 0 || stop_requested)) {
    // As Lightning's trainer.validating = True: validating from on_validation_model_zero_grad
    // and the (lazy) val_dataloader call on, training again after the validation.
    c_.state.training = false;
    c_.state.validating = true;
    if (stepped) {
      ValidationModelZeroGrad zero;
      c_.hooks.emit(zero);
    }
    c_.metrics.begin_nested_evaluation();
    c_.evaluation.run(EvalKind::validation, false, &c_.epoch);
    c_.metrics.end_nested_evaluation();
    c_.state.validating = false;
    c_.state.training = true;
  }
  update_lr_schedulers(Interval::step, batch_idx, true);
  // Lightning counts a batch that ends an accumulation window whether or not it stepped.
  if (!accumulating) ++c_.progress.batches_that_stepped;
  if (c_.state.should_stop) c_.logger.save_on_stop();
  c_.epoch.tail_pending = false;
}

void TrainingEpochLoop::update_lr_schedulers(Interval interval, std::int64_t batch_idx,
                                             bool plateau_pass) {
  if (!c_.hooks.module()->automatic_optimization()) return;
  auto& schedulers = c_.optimizers.schedulers;
  for (std::size_t i = 0; i < schedulers.size(); ++i) {
    SchedulerConfig& config = schedulers[i];
    const bool plateau = !config.monitor().empty();
    if (config.interval() != interval || plateau != plateau_pass) continue;
    const std::int64_t count =
        interval == Interval::step ? batch_idx + 1 : c_.progress.current_epoch + 1;
    if (count % config.frequency() != 0) continue;
    LrSchedulerStep step;
    step.scheduler = &config;
    step.scheduler_idx = i;
    if (plateau) {
      const auto& metrics = c_.metrics.callback_metrics(c_.state.active_phase());
      auto it = metrics.find(config.monitor());
      if (it == metrics.end()) {
        std::string available;
        for (const auto& [key, value] : metrics) available += (available.empty() ? "" : ", ") + key;
        throw std::invalid_argument(
            "scheduler '" + config.name() + "' monitors '" + config.monitor() +
            "', which was not logged (logged: " + (available.empty() ? "nothing" : available) +
            "); log it with Module::log or change monitor()");
      }
      step.metric = it->second;
    }
    c_.hooks.emit_or_default(step);
  }
}

}  // namespace hookline
