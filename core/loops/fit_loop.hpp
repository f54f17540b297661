// hookline: FitLoop, the loop of Trainer::fit (Lightning's _FitLoop): the sanity check, then
// epochs of training (TrainingEpochLoop) until max_epochs, max_steps, max_time or a stop.
#pragma once

#include "hookline/core/loops/training_epoch_loop.hpp"

namespace hookline {

class FitLoop {
 public:
  explicit FitLoop(const FitContext& context) : c_(context), epoch_loop_(context) {}

  /// The sanity check: num_sanity_val_steps validation batches before training, which leave
  /// neither logged values nor a trace in the random stream.
  void run_sanity_check();
  /// The epochs, from a resumed position if a checkpoint left one, between on_train_start and
  /// on_train_end.
  void run();
  /// Whether fitting is done: max_steps or max_epochs reached, or a stop requested that
  /// min_epochs/min_steps allow.
  bool done() const;

  TrainingEpochLoop& epoch_loop() { return epoch_loop_; }

 private:
  FitContext c_;
  TrainingEpochLoop epoch_loop_;
};

}  // namespace hookline
