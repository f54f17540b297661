// hookline: TrainingEpochLoop, one epoch of training (Lightning's _TrainingEpochLoop): the
// batches with their hooks and verdicts, the step (automatic or manual optimization), when to
// validate inside the epoch, the LR schedulers, and when the epoch or the fit stops.
#pragma once

#include "hookline/core/loops/evaluation_loop.hpp"
#include "hookline/core/loops/logger_connector.hpp"
#include "hookline/core/loops/optimization.hpp"
#include "hookline/core/loops/run_parts.hpp"
#include "hookline/core/loops/signal_connector.hpp"

#include <chrono>
#include <cstdint>

namespace hookline {

class CheckpointConnector;

/// What the fit's loops share: the trainer's state, how to emit hooks, the connectors.
struct FitContext : RunParts {
  LoggerConnector& logger;
  SignalConnector& signals;
  CheckpointConnector& checkpoint;
  EvaluationLoop& evaluation;
};

class TrainingEpochLoop {
 public:
  explicit TrainingEpochLoop(const FitContext& context)
      : c_(context),
        automatic_(context.options, context.hooks, context.strategy, context.optimizers,
                   context.progress),
        manual_(context.options, context.hooks) {}

  /// A new fit starts: its timer (max_time) runs from now.
  void start();
  /// Runs the current epoch (from a resumed position if a checkpoint left one), its epoch-end
  /// hooks, and end_epoch().
  void run();
  /// What follows on_train_epoch_end: the epoch-interval plateau schedulers, the epoch values to
  /// the loggers, the epoch count.
  void end_epoch();

  /// Whether min_epochs and min_steps allow a requested stop now.
  bool can_stop_early() const;
  /// Whether validation runs in this epoch (check_val_every_n_epoch).
  bool should_check_val_epoch() const {
    return (c_.progress.current_epoch + 1) % c_.options.check_val_every_n_epoch() == 0;
  }

 private:
  /// One batch; returns false when the rest of the epoch is skipped.
  bool run_batch(Batch& batch, std::int64_t batch_idx, bool is_last);
  /// The rest of a batch after on_train_batch_end: logging, the validation check, the
  /// step-interval plateau schedulers. A run resumed from a checkpoint saved in between starts
  /// here.
  void finish_batch(std::int64_t batch_idx);
  /// After a batch and its tail: whether the epoch ends here.
  bool end_of_batch(std::int64_t batch_idx);
  bool time_is_up() const;
  void update_lr_schedulers(Interval interval, std::int64_t batch_idx, bool plateau_pass);

  FitContext c_;
  AutomaticOptimization automatic_;
  ManualOptimization manual_;
  std::chrono::steady_clock::time_point started_;
  bool min_stop_warned_ = false;  // "Trainer was signaled to stop but ..." said once per fit
};

}  // namespace hookline
