// hookline: the progress counters of the fit loop and of the training epoch it is in.
#pragma once

#include <cstdint>

namespace hookline {

/// The fit's counters (Lightning's current_epoch, global_step and _batches_that_stepped).
struct FitProgress {
  std::int64_t current_epoch = 0;         ///< epochs completed
  std::int64_t global_step = 0;           ///< optimizer steps taken
  std::int64_t batches_that_stepped = 0;  ///< steps as counted for logging
};

/// Where the current training epoch is, at the granularity a checkpoint may be taken at.
struct EpochProgress {
  std::int64_t batches_done = 0;    ///< batches past on_train_batch_end (or skipped)
  bool tail_pending = false;        ///< the last of them has not finished its tail yet
  bool last_ran_step = false;       ///< it ran training_step (not skipped)
  bool last_stepped = false;        ///< it made an optimizer step
  bool validated = false;           ///< its validation check already ran
  bool reached_last_batch = false;  ///< the epoch's last batch was reached
  bool epoch_end_done = false;      ///< on_train_epoch_end ran
};

}  // namespace hookline
